"""Datasets: genre folders or a manifest CSV -> tracks, and leak-free splits.

A *track* is one song (an audio file, or a ``.npz`` of feature windows exported by the
bot). Splits are made by **group**, never by window: a group is one track, or several
tracks known to be near-duplicates, so no song is heard on both sides of a split.
:func:`by_artist` widens the groups to whole artists (where the data names them), which is
what an estimate of accuracy on *unseen artists* needs: GTZAN repeats artists (Bob Marley is
24 of its 30 reggae files here), and folds grouped only by track read several points high.
"""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from genre_model.artifact import sha256
from genre_model.config import AUDIO_EXTENSIONS, WINDOWS_EXTENSION
from genre_model.errors import DatasetError

#: Near-duplicate GTZAN excerpts (Sturm 2013; the training data's README). Each set is one group.
KNOWN_NEAR_DUPLICATES: tuple[frozenset[str], ...] = (
    frozenset({"pop.00056", "pop.00059"}),
    frozenset({"pop.00030", "pop.00031"}),
    frozenset({"reggae.00003", "reggae.00054"}),
    frozenset({"reggae.00008", "reggae.00057"}),
    frozenset({"reggae.00005", "reggae.00056"}),
)


@dataclasses.dataclass(frozen=True)
class Track:
    """One labelled song; ``group`` ties together the tracks a split must keep on one side."""

    path: Path
    label: str
    group: str
    #: The performer, when the data names one ("" = unknown: the track counts as its own artist).
    artist: str = ""
    #: A predefined split the data came with (e.g. ``train``/``valid`` of the fault-filtered split), if any.
    split: str = ""

    @property
    def is_windows(self) -> bool:
        """True for pre-computed feature windows rather than audio."""
        return self.path.suffix.lower() == WINDOWS_EXTENSION


def track_id(path: Path) -> str:
    """The file name without its extension (``blues.00042.ogg`` -> ``blues.00042``)."""
    return path.stem


def load_dataset(source: Path, labels: Sequence[str] | None = None) -> list[Track]:
    """Read tracks from a folder of genre sub-folders or a manifest CSV.

    A folder that holds a ``MANIFEST.csv`` with ``path`` (or ``file``) and ``genre`` (or
    ``label``) columns is read through it, with the optional columns ``group``, ``artist``
    and ``split`` (or ``ff_split``); other folders by their sub-folder names. Unknown genres
    raise :class:`DatasetError` when ``labels`` is given.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        tracks = _from_manifest(source)
    elif source.is_dir() and _is_manifest(source / MANIFEST_NAME):
        tracks = _from_manifest(source / MANIFEST_NAME)
    elif source.is_dir():
        tracks = _from_folders(source)
    else:
        raise DatasetError(f"{source}: not a data folder or manifest CSV")
    if not tracks:
        raise DatasetError(f"{source}: no audio or windows files found")
    if labels is not None:
        unknown = sorted({t.label for t in tracks} - set(labels))
        if unknown:
            raise DatasetError(f"{source}: genres not known to the model: {', '.join(unknown)}")
    return merge_near_duplicates(tracks)


_PATH_COLUMNS = ("path", "file")
_LABEL_COLUMNS = ("genre", "label")
_SPLIT_COLUMNS = ("split", "ff_split")


def _column(columns: set[str], choices: Sequence[str]) -> str | None:
    return next((c for c in choices if c in columns), None)


def _is_manifest(path: Path) -> bool:
    """A CSV this library can read: it has a path (``path``/``file``) and a label (``genre``/``label``) column."""
    if not path.is_file():
        return False
    with path.open(newline="") as handle:
        columns = set(next(csv.reader(handle), []))
    return bool(_column(columns, _PATH_COLUMNS) and _column(columns, _LABEL_COLUMNS))


def _usable(path: Path) -> bool:
    suffix = path.suffix.lower()
    return path.is_file() and (suffix in AUDIO_EXTENSIONS or suffix == WINDOWS_EXTENSION)


def _from_folders(root: Path) -> list[Track]:
    tracks = []
    for genre_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(genre_dir.rglob("*")):
            if _usable(path):
                tracks.append(Track(path, genre_dir.name, f"{genre_dir.name}/{track_id(path)}"))
    return tracks


def _from_manifest(manifest: Path) -> list[Track]:
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        path_col, label_col = _column(columns, _PATH_COLUMNS), _column(columns, _LABEL_COLUMNS)
        split_col = _column(columns, _SPLIT_COLUMNS)
        if path_col is None or label_col is None:
            raise DatasetError(f"{manifest.name}: needs 'path' and 'genre' columns")
        tracks = []
        for row in reader:
            path = (manifest.parent / row[path_col]).resolve()
            if not _usable(path):
                raise DatasetError(f"{manifest.name}: missing or unsupported file {row[path_col]}")
            group = row.get("group") or f"{row[label_col]}/{track_id(path)}"
            tracks.append(Track(path, row[label_col], group, artist=(row.get("artist") or "").strip(),
                                split=(row[split_col] or "").strip() if split_col else ""))
    return tracks


def _join_groups(tracks: Sequence[Track], keys: Iterable[Sequence[str]]) -> list[Track]:
    """Merge the groups of tracks that share a key (union-find); the merged group keeps its smallest name."""
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    for groups in keys:
        for g in groups[1:]:
            ra, rb = find(groups[0]), find(g)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return [dataclasses.replace(t, group=find(t.group)) for t in tracks]


def merge_near_duplicates(tracks: Iterable[Track]) -> list[Track]:
    """Give known near-duplicates and byte-identical files one shared group.

    Identical files may carry different genres (two members corrected two uploads of one
    song differently): they stay, in one group, so the split never sees them on both sides.
    """
    tracks = list(tracks)
    by_id = defaultdict(list)
    by_hash = defaultdict(list)
    for t in tracks:
        by_id[track_id(t.path)].append(t.group)
        by_hash[sha256(t.path)].append(t.group)
    keys = [[g for tid in dupes for g in by_id.get(tid, [])] for dupes in KNOWN_NEAR_DUPLICATES]
    keys += list(by_hash.values())
    return _join_groups(tracks, keys)


GROUPINGS = ("artist", "track")


def by_artist(tracks: Sequence[Track]) -> list[Track]:
    """Widen each track's group to everything by the same artist (and its near-duplicates).

    Tracks with no artist keep their own group, as if each were by an artist of its own.
    """
    artists: dict[str, list[str]] = defaultdict(list)
    for t in tracks:
        if t.artist:
            artists[t.artist.casefold()].append(t.group)
    return _join_groups(tracks, artists.values())


def regroup(tracks: Sequence[Track], by: str) -> list[Track]:
    """Groups for splitting: ``"artist"`` (:func:`by_artist`) or ``"track"`` (near-duplicates only)."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; choose from {GROUPINGS}")
    return by_artist(tracks) if by == "artist" else list(tracks)


def has_artists(tracks: Sequence[Track]) -> bool:
    """True when the data names the artist of at least one track."""
    return any(t.artist for t in tracks)


def default_grouping(tracks: Sequence[Track]) -> str:
    """How splits group these tracks: by ``"artist"`` whenever the data names artists, else ``"track"``."""
    return "artist" if has_artists(tracks) else "track"


def split_tracks(tracks: Sequence[Track], val_fraction: float, seed: int) -> tuple[list[Track], list[Track]]:
    """Stratified split by group: every genre gives about ``val_fraction`` of its groups."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be between 0 and 1")
    folds = group_folds(tracks, n_folds=max(2, round(1.0 / val_fraction)), seed=seed)
    val = set(folds[0])
    return [t for t in tracks if t.group not in val], [t for t in tracks if t.group in val]


def group_folds(tracks: Sequence[Track], n_folds: int, seed: int) -> list[list[str]]:
    """Assign groups to ``n_folds`` folds, balancing each genre across folds; returns the groups of each fold.

    A group may hold several genres (an artist who plays two). Groups are placed largest first
    (random order among equals, by ``seed``) into the fold where they least overfill any genre.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    rng = np.random.default_rng(seed)
    labels = sorted({t.label for t in tracks})
    column = {label: i for i, label in enumerate(labels)}
    counts: dict[str, np.ndarray] = {}
    for t in tracks:
        counts.setdefault(t.group, np.zeros(len(labels)))[column[t.label]] += 1
    groups = sorted(counts)
    rng.shuffle(groups)
    groups.sort(key=lambda g: -counts[g].sum())  # stable: equal sizes stay in shuffled order
    target = np.maximum(sum(counts.values()) / n_folds, 1e-9)
    filled = np.zeros((n_folds, len(labels)))
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    for g in groups:
        # Growth of the squared relative overfill, per fold; ties go to the emptier fold, then at random.
        cost = (((filled + counts[g] - target) ** 2 - (filled - target) ** 2) / target).sum(axis=1)
        order = np.lexsort((rng.random(n_folds), filled.sum(axis=1), np.round(cost, 9)))
        best = int(order[0])
        folds[best].append(g)
        filled[best] += counts[g]
    return folds


def summarise(tracks: Sequence[Track]) -> dict[str, int]:
    """Number of tracks per genre."""
    counts: dict[str, int] = defaultdict(int)
    for t in tracks:
        counts[t.label] += 1
    return dict(sorted(counts.items()))


# ------------------------------------------------------------------------------------ manifests

#: The manifest a data folder may hold; :func:`load_dataset` reads a folder through it.
MANIFEST_NAME = "MANIFEST.csv"
#: The columns :func:`write_manifest` writes. :func:`load_dataset` needs ``path`` and ``genre``
#: and honours ``group``, ``artist`` and ``split``; ``source`` says where a label came from.
MANIFEST_COLUMNS = ("path", "genre", "group", "artist", "split", "source")


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One line of a manifest: ``path`` is relative to the manifest's folder, or absolute.

    ``group`` ties together examples a split must keep on one side (empty: the track alone);
    ``artist`` and ``split`` are :class:`Track`'s; ``source`` is free text such as the bot's
    ``corrected`` / ``confirmed``.
    """

    path: str
    genre: str
    group: str = ""
    artist: str = ""
    split: str = ""
    source: str = ""

    @classmethod
    def of(cls, track: Track, source: str = "") -> "ManifestRow":
        """The row that :func:`load_dataset` reads back as ``track`` (absolute path)."""
        return cls(str(track.path), track.label, track.group, track.artist, track.split, source)


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> int:
    """Write a manifest CSV that :func:`load_dataset` reads (the one writer of the format).

    Returns the number of rows written.
    """
    rows = list(rows)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows([str(r.path), r.genre, r.group, r.artist, r.split, r.source] for r in rows)
    return len(rows)
