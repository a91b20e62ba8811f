"""Datasets: genre folders or a manifest CSV -> tracks, and track-level splits.

A *track* is one song (an audio file, or a ``.npz`` of feature windows exported by the
bot). Splits are made by **group**, never by window: a group is one track, or several
tracks known to be near-duplicates, so no song is heard on both sides of a split.
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
    """One labelled song; ``group`` ties near-duplicates together for splitting."""

    path: Path
    label: str
    group: str

    @property
    def is_windows(self) -> bool:
        """True for pre-computed feature windows rather than audio."""
        return self.path.suffix.lower() == WINDOWS_EXTENSION


def track_id(path: Path) -> str:
    """The file name without its extension (``blues.00042.ogg`` -> ``blues.00042``)."""
    return path.stem


def load_dataset(source: Path, labels: Sequence[str] | None = None) -> list[Track]:
    """Read tracks from a folder of genre sub-folders or a manifest CSV.

    A folder that holds a ``MANIFEST.csv`` with ``path`` and ``genre`` columns (and
    optionally ``group``) is read through it; other folders by their sub-folder names. Unknown genres raise :class:`DatasetError`
    when ``labels`` is given.
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


def _is_manifest(path: Path) -> bool:
    """A CSV this library can read: it has ``path`` and ``genre`` (or ``label``) columns."""
    if not path.is_file():
        return False
    with path.open(newline="") as handle:
        columns = set(next(csv.reader(handle), []))
    return "path" in columns and bool(columns & {"genre", "label"})


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
        label_col = "genre" if "genre" in columns else "label"
        if "path" not in columns or label_col not in columns:
            raise DatasetError(f"{manifest.name}: needs 'path' and 'genre' columns")
        tracks = []
        for row in reader:
            path = (manifest.parent / row["path"]).resolve()
            if not _usable(path):
                raise DatasetError(f"{manifest.name}: missing or unsupported file {row['path']}")
            group = row.get("group") or f"{row[label_col]}/{track_id(path)}"
            tracks.append(Track(path, row[label_col], group))
    return tracks


def merge_near_duplicates(tracks: Iterable[Track]) -> list[Track]:
    """Give known near-duplicates and byte-identical files one shared group."""
    tracks = list(tracks)
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_id = defaultdict(list)
    by_hash = defaultdict(list)
    for t in tracks:
        by_id[track_id(t.path)].append(t.group)
        by_hash[sha256(t.path)].append(t.group)
    for dupes in KNOWN_NEAR_DUPLICATES:
        groups = [g for tid in dupes for g in by_id.get(tid, [])]
        for g in groups[1:]:
            union(groups[0], g)
    for groups in by_hash.values():
        for g in groups[1:]:
            union(groups[0], g)
    return [dataclasses.replace(t, group=find(t.group)) for t in tracks]


def split_tracks(tracks: Sequence[Track], val_fraction: float, seed: int) -> tuple[list[Track], list[Track]]:
    """Stratified split by group: every genre gives about ``val_fraction`` of its groups."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be between 0 and 1")
    folds = group_folds(tracks, n_folds=max(2, round(1.0 / val_fraction)), seed=seed)
    val = set(folds[0])
    return [t for t in tracks if t.group not in val], [t for t in tracks if t.group in val]


def group_folds(tracks: Sequence[Track], n_folds: int, seed: int) -> list[list[str]]:
    """Assign groups to ``n_folds`` folds, stratified by genre; returns the groups of each fold."""
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    rng = np.random.default_rng(seed)
    label_of: dict[str, str] = {}
    for t in tracks:
        if label_of.setdefault(t.group, t.label) != t.label:
            raise DatasetError(f"group {t.group} mixes genres {label_of[t.group]} and {t.label}")
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    offset = 0
    for label in sorted(set(label_of.values())):
        groups = sorted(g for g, lab in label_of.items() if lab == label)
        rng.shuffle(groups)
        for i, g in enumerate(groups):
            folds[(i + offset) % n_folds].append(g)
        offset += len(groups)  # rotate so small genres don't all start in fold 0
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
#: and honours ``group`` and ``artist``; ``source`` says where a label came from.
MANIFEST_COLUMNS = ("path", "genre", "group", "artist", "source")


@dataclasses.dataclass(frozen=True)
class ManifestRow:
    """One line of a manifest: ``path`` is relative to the manifest's folder, or absolute.

    ``group`` ties together examples a split must keep on one side (empty: the track alone);
    ``source`` is free text such as the bot's ``corrected`` / ``confirmed``.
    """

    path: str
    genre: str
    group: str = ""
    artist: str = ""
    source: str = ""


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> int:
    """Write a manifest CSV that :func:`load_dataset` reads (the one writer of the format).

    Returns the number of rows written.
    """
    rows = list(rows)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows([str(r.path), r.genre, r.group, r.artist, r.source] for r in rows)
    return len(rows)
