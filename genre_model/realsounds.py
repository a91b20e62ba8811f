"""Real recordings for the sound detector, taken from Debian packages (a developer's tool).

The detector (:mod:`genre_model.detector`) learns what is *not* music from real sounds:
speech (voice prompts, voice acting), animals, machines and vehicles, sirens and alarms,
crowds, human non-speech (laughter, coughs, footsteps, breathing), nature and noise, and
learns music from the training songs plus real music that is not GTZAN (game soundtracks,
music on hold). Nothing here runs when the product serves or the tests run: a developer
builds the corpus once with the package manager, and ``genre-model train --sounds`` /
``genre-model fit-detector --sounds`` read the built folder.

The committed manifest (:data:`MANIFEST`, beside this module) names every clip:
``side, category, source_package, version, file_in_package, licence, duration_s, sha256``.
A file inside a zip archive of the package (a game's ``.pk3``/``.wz``) is named
``ARCHIVE!MEMBER``. ``build`` re-creates the corpus from it::

    python -m genre_model.realsounds build /work/cache/sounds/corpus [--debs DIR]

which runs ``apt-get download PKG=VERSION`` for each package (falling back to the version the
archive has, and then refusing any file whose sha256 differs), reads the ``.deb`` (an ``ar``
archive holding ``data.tar.*``) and copies only the listed files to ``OUT/PKG/file_in_package``,
then writes ``OUT/MANIFEST.csv``. ``scan`` lists a package tree's audio files with their
duration and a category guessed from the path (:data:`RULES`), for a developer to review by
hand; clips shorter than :data:`MIN_SECONDS` are left out (the model needs 3 s, nothing is looped).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import lzma
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

#: The committed list of clips.
MANIFEST = Path(__file__).with_name("realsounds.csv")
#: Columns of the manifest, in order.
COLUMNS = ("side", "category", "source_package", "version", "file_in_package", "licence", "duration_s", "sha256")
#: What a non-music clip is; "music" for the music side.
CATEGORIES = ("speech", "animals", "machines", "alarms", "crowd", "human", "nature", "noise")
SIDES = ("music", "not_music")
#: The detector class each category teaches (see :data:`genre_model.detector.SOUNDS`).
DETECTOR_CLASS = {"music": "music", "speech": "speech", "noise": "noise", "nature": "noise",
                  "animals": "sound", "machines": "sound", "alarms": "sound", "crowd": "sound", "human": "sound"}
#: Shorter clips are not used (the model reads 3-s windows; a clip under 3 s is refused at serving).
MIN_SECONDS = 3.0
AUDIO_SUFFIXES = (".wav", ".ogg", ".mp3", ".flac", ".opus", ".oga")


@dataclass(frozen=True)
class Clip:
    side: str
    category: str
    source_package: str
    version: str
    file_in_package: str
    licence: str
    duration_s: float
    sha256: str

    @property
    def detector_class(self) -> str:
        return DETECTOR_CLASS["music" if self.side == "music" else self.category]

    def path(self, root: Path) -> Path:
        """Where the built corpus keeps the clip (a zip archive's member sits in a folder named like the archive)."""
        return Path(root) / self.source_package / self.file_in_package.lstrip("/").replace("!", "/")


def validate(clip: Clip) -> None:
    """Raise ValueError for a manifest row that is not well formed."""
    if clip.side not in SIDES:
        raise ValueError(f"unknown side {clip.side!r}")
    if clip.side == "music" and clip.category != "music":
        raise ValueError("a music clip's category is 'music'")
    if clip.side == "not_music" and clip.category not in CATEGORIES:
        raise ValueError(f"unknown category {clip.category!r}")
    if not re.fullmatch(r"[0-9a-f]{64}", clip.sha256):
        raise ValueError(f"bad sha256 {clip.sha256!r}")
    if not clip.licence.strip() or not clip.source_package or not clip.version:
        raise ValueError("every clip needs a package, a version and a licence")
    if not clip.duration_s >= MIN_SECONDS:
        raise ValueError(f"{clip.file_in_package}: {clip.duration_s} s is shorter than {MIN_SECONDS} s")
    if ".." in Path(clip.file_in_package).parts:
        raise ValueError("file paths stay inside their package")


def read_manifest(path: Path | str = MANIFEST) -> list[Clip]:
    """The clips of a manifest CSV (checked with :func:`validate`)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    clips = []
    for row in rows:
        clip = Clip(**{**{k: row[k] for k in COLUMNS}, "duration_s": float(row["duration_s"])})
        validate(clip)
        clips.append(clip)
    return clips


def write_manifest(path: Path, clips: Iterable[Clip]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for c in sorted(clips, key=lambda c: (c.side, c.category, c.source_package, c.file_in_package)):
            w.writerow([c.side, c.category, c.source_package, c.version, c.file_in_package, c.licence,
                        f"{c.duration_s:.2f}", c.sha256])


def corpus_clips(root: Path | str) -> list[tuple[Path, Clip]]:
    """(file, clip) of a built corpus folder (its ``MANIFEST.csv``), or of a manifest CSV whose
    folder holds the files; files that are missing are skipped."""
    root = Path(root)
    manifest = root if root.suffix == ".csv" else root / "MANIFEST.csv"
    return [(c.path(manifest.parent), c) for c in read_manifest(manifest) if c.path(manifest.parent).is_file()]


# --- .deb reading --------------------------------------------------------------------------

def deb_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the members of an ``ar`` archive (a .deb)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not a .deb (ar) archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        yield name, data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)


def deb_files(deb: Path) -> dict[str, bytes]:
    """Regular files of a .deb's data part: {path without leading './': bytes}."""
    for name, blob in deb_members(Path(deb).read_bytes()):
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                blob = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
            elif name.endswith(".xz"):
                blob = lzma.decompress(blob)
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
                return {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar if m.isfile()}
    raise ValueError(f"{deb}: no data.tar member")


def _member(files: dict[str, bytes], name: str) -> bytes | None:
    """A file of the package, or ``ARCHIVE!MEMBER``: a member of a zip archive in the package
    (games keep sounds in .pk3/.wz zips)."""
    if "!" not in name:
        return files.get(name)
    archive, member = name.split("!", 1)
    if archive not in files:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(files[archive])) as z:
            return z.read(member)
    except (KeyError, zipfile.BadZipFile):
        return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(package: str, version: str, debs: Path) -> Path:
    """The .deb of ``package`` at ``version`` in ``debs`` (``apt-get download`` when missing; the
    archive's current version when that one is gone; sha256 checks catch any difference)."""
    debs.mkdir(parents=True, exist_ok=True)
    for attempt in (f"{package}={version}", package):
        found = sorted(debs.glob(f"{package}_*.deb"))
        if found:
            return found[-1]
        subprocess.run(["apt-get", "download", attempt], cwd=debs, capture_output=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise RuntimeError(f"cannot download {package}")
    return found[-1]


def build(out: Path, manifest: Path = MANIFEST, debs: Path | None = None) -> list[Clip]:
    """Re-create the corpus of ``manifest`` in ``out`` (see the module's doc)."""
    out = Path(out)
    debs = Path(debs) if debs else out / ".debs"
    clips = read_manifest(manifest)
    kept = []
    for package in sorted({c.source_package for c in clips}):
        wanted = [c for c in clips if c.source_package == package]
        files = deb_files(fetch(package, wanted[0].version, debs))
        for c in wanted:
            data = _member(files, c.file_in_package.lstrip("/"))
            if data is None or sha256_bytes(data) != c.sha256:
                print(f"skipped {package}/{c.file_in_package}: missing or changed", file=sys.stderr)
                continue
            target = c.path(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            kept.append(c)
        print(f"{package}: {sum(1 for c in kept if c.source_package == package)} of {len(wanted)} clips")
    write_manifest(out / "MANIFEST.csv", kept)
    return kept


# --- embedding and fitting ----------------------------------------------------------------

def song_embedding(classifier, path: Path) -> np.ndarray:
    """A file's mean window embedding, read and windowed exactly as :meth:`Classifier.predict` does."""
    from genre_model.config import MAX_WINDOWS
    from genre_model.features import song_features
    from genre_model.reading import read_song

    cfg = classifier.info.features
    song = read_song(path, cfg, MAX_WINDOWS)
    return classifier.embed(song_features(song.excerpts, cfg, song.starts, 64)[0]).mean(axis=0)


def embed_files(classifier, paths: Sequence[Path], cache_dir: Path | None = None,
                log=lambda msg: None) -> tuple[np.ndarray, list[bool]]:
    """(mean embeddings ``(n, d)``, usable flags) of files; unusable files get a zero row.

    With ``cache_dir``, embeddings are kept in one ``.npz`` per model embedder (keyed by the
    embedder's checksum and feature settings) and file content hash."""
    from genre_model.errors import AudioError

    cache: dict[str, np.ndarray] = {}
    store = None
    if cache_dir is not None:
        key = hashlib.sha256((classifier.info.checksums.get("embedder.tflite", "") +
                              json.dumps(classifier.info.features.to_dict(), sort_keys=True)).encode()).hexdigest()[:20]
        store = Path(cache_dir) / f"song-embeddings-{key}.npz"
        if store.is_file():
            with np.load(store) as data:
                cache = {k: data[k] for k in data.files}
    rows, ok = [], []
    for i, path in enumerate(paths):
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest not in cache:
            try:
                cache[digest] = song_embedding(classifier, Path(path))
            except AudioError as exc:
                log(f"skipped {path}: {exc}")
                cache[digest] = np.zeros(0)
            if store is not None and i % 50 == 49:
                _save_cache(store, cache)
        rows.append(cache[digest])
        ok.append(cache[digest].size > 0)
    if store is not None:
        _save_cache(store, cache)
    width = max((r.size for r in rows), default=0)
    return np.stack([r if r.size else np.zeros(width) for r in rows]) if rows else np.zeros((0, 0)), ok


def _save_cache(store: Path, cache: dict[str, np.ndarray]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_suffix(".tmp.npz")
    np.savez(tmp, **cache)
    tmp.replace(store)


@dataclass
class Examples:
    """Labelled song embeddings for the detector: class, category and group (package or artist) of each."""

    x: np.ndarray
    sounds: list[str]
    categories: list[str]
    groups: list[str]
    names: list[str] = dataclasses.field(default_factory=list)


def gather(classifier, music: Sequence[Path], corpora: Sequence[Path], cache_dir: Path | None = None,
           log=lambda msg: None, field_copies: Sequence[str] = ()) -> Examples:
    """Embeddings of labelled music (data folders or manifests, grouped like ``train`` groups them:
    by artist where named), of its ``field_copies`` (:mod:`genre_model.augment`, music too, each in
    its song's group) and of real-sound corpora (grouped by source package)."""
    from genre_model.augment import CACHE_FOLDER, copies_of
    from genre_model.dataset import by_artist, has_artists, load_dataset

    with tempfile.TemporaryDirectory(prefix="genre_model-copies-") as scratch:
        copies = Path(cache_dir) / CACHE_FOLDER if cache_dir is not None else Path(scratch)
        paths, sounds, categories, groups = [], [], [], []
        for source in music:
            tracks = [t for t in load_dataset(Path(source)) if not t.is_windows]
            tracks = by_artist(tracks) if has_artists(tracks) else tracks
            for t in tracks:
                paths.append(t.path), sounds.append("music"), categories.append("music (" + Path(source).name + ")")
                groups.append(f"{Path(source).name}:{t.group}")
            for name in field_copies:
                for copy in copies_of(tracks, [name], copies, log):
                    paths.append(copy.path), sounds.append("music")
                    categories.append(f"music ({Path(source).name}, {name} copies)")
                    groups.append(f"{Path(source).name}:{copy.group}")
        for corpus in corpora:
            for path, clip in corpus_clips(corpus):
                paths.append(path), sounds.append(clip.detector_class)
                categories.append("music (other)" if clip.side == "music" else clip.category)
                groups.append(clip.source_package)
        log(f"embedding {len(paths)} files for the sound detector")
        x, ok = embed_files(classifier, paths, cache_dir, log)
    keep = [i for i, good in enumerate(ok) if good]
    return Examples(x[keep], [sounds[i] for i in keep], [categories[i] for i in keep], [groups[i] for i in keep],
                    [str(paths[i]) for i in keep])


def grouped_evaluation(ex: Examples, folds: int = 5, seed: int = 0, c: float = 0.1,
                       threshold: float | None = None, extra: Examples | None = None) -> tuple[list[str], list[float]]:
    """The detector's verdict ("music" or a sound) and probability of music for every example, each
    predicted by a detector that never saw its group (package or artist): grouped k-fold, groups
    spread at random. ``extra`` examples (generated clips) join every training fold, never a test."""
    from genre_model.detector import MUSIC_THRESHOLD, fit_detector

    names = sorted(set(ex.groups))
    rng = np.random.default_rng(seed)
    fold_of = {g: i % folds for i, g in enumerate(rng.permutation(names))}
    verdicts, p_music = [""] * len(ex.sounds), [0.0] * len(ex.sounds)
    for k in range(folds):
        test = [i for i, g in enumerate(ex.groups) if fold_of[g] == k]
        train = [i for i, g in enumerate(ex.groups) if fold_of[g] != k]
        if not test:
            continue
        x, sounds = ex.x[train], [ex.sounds[i] for i in train]
        if extra is not None:
            x, sounds = np.concatenate([x, extra.x]), sounds + extra.sounds
        det = fit_detector(x, sounds, c=c, threshold=MUSIC_THRESHOLD if threshold is None else threshold)
        for i in test:
            verdicts[i], p = det.judge(ex.x[i])
            p_music[i] = p["music"]
    return verdicts, p_music


def category_table(categories: Sequence[str], verdicts: Sequence[str]) -> tuple[list[tuple[str, int, int]], float, int, int]:
    """(rows (category, caught or kept, total), balanced share of non-music caught, music called
    not music, music total). For music rows the count is songs *called not music*."""
    rows = []
    for cat in sorted(set(categories)):
        idx = [i for i, c in enumerate(categories) if c == cat]
        if cat.startswith("music"):
            rows.append((cat, sum(verdicts[i] != "music" for i in idx), len(idx)))
        else:
            rows.append((cat, sum(verdicts[i] != "music" for i in idx), len(idx)))
    shares = [hit / n for cat, hit, n in rows if not cat.startswith("music")]
    alarms = sum(hit for cat, hit, n in rows if cat.startswith("music"))
    n_music = sum(n for cat, hit, n in rows if cat.startswith("music"))
    return rows, float(np.mean(shares)) if shares else float("nan"), alarms, n_music


def format_table(rows, balanced: float, alarms: int, n_music: int, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'category':<26}{'caught':>8}{'total':>7}{'share':>8}")
    for cat, hit, n in rows:
        label = "called not music" if cat.startswith("music") else ""
        lines.append(f"{cat:<26}{hit:>8}{n:>7}{hit / n:>8.2f}  {label}")
    lines.append(f"non-music caught (category-balanced mean): {balanced:.3f}")
    lines.append(f"real music called not music: {alarms} of {n_music}")
    return "\n".join(lines)


def generated_examples(classifier, per_kind: int, seed: int = 1234) -> Examples:
    """Embeddings of the generated clips of :mod:`genre_model.sounds` (tones, noise, espeak speech,
    synthesised bands as music), each its own group."""
    from genre_model.features import song_features, song_window_starts
    from genre_model.config import MAX_WINDOWS
    from genre_model.sounds import detector_set

    cfg = classifier.info.features
    rows, sounds = [], []
    for clip in detector_set(per_kind, cfg.sample_rate, part="train", seed=seed):
        starts = song_window_starts(1 + clip.samples.size // cfg.hop_length, cfg, MAX_WINDOWS)
        rows.append(classifier.embed(song_features(clip.samples.astype(np.float32), cfg, starts, 64)[0]).mean(axis=0))
        sounds.append(clip.sound)
    return Examples(np.stack(rows), sounds, [f"generated {s}" for s in sounds],
                    [f"generated:{i}" for i in range(len(rows))], [f"generated:{i}" for i in range(len(rows))])


def refit_detector(model_dir: Path, music: Sequence[Path], corpora: Sequence[Path], *, generated: int = 0,
                   c: float = 0.1, threshold: float | None = None, cache_dir: Path | None = None,
                   field_copies: Sequence[str] = (), log=lambda msg: None):
    """Fit the sound detector of ``model_dir`` on its own embedder (as served: LiteRT) from labelled
    music (and its ``field_copies``), real-sound corpora and (``generated`` > 0) generated clips,
    and write it into the model (:func:`genre_model.artifact.replace_detector`). Returns the new
    :class:`ModelInfo`."""
    from genre_model.artifact import replace_detector
    from genre_model.detector import MUSIC_THRESHOLD, fit_detector
    from genre_model.predict import Classifier

    classifier = Classifier(model_dir)
    ex = gather(classifier, music, corpora, cache_dir, log, field_copies)
    if generated:
        g = generated_examples(classifier, generated)
        ex = Examples(np.concatenate([ex.x, g.x]), ex.sounds + g.sounds, ex.categories + g.categories,
                      ex.groups + g.groups, ex.names + g.names)
    counts = {s: ex.sounds.count(s) for s in sorted(set(ex.sounds))}
    log(f"fitting the detector on {counts}")
    detector = fit_detector(ex.x, ex.sounds, c=c, threshold=MUSIC_THRESHOLD if threshold is None else threshold)
    return replace_detector(Path(model_dir), detector, examples=counts, c=c, generated_per_kind=generated,
                            music=[str(m) for m in music], sounds=[str(s) for s in corpora],
                            field_copies=list(field_copies))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_model.realsounds", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download the manifest's packages and copy its clips into OUT")
    b.add_argument("out", type=Path)
    b.add_argument("--manifest", type=Path, default=MANIFEST)
    b.add_argument("--debs", type=Path, help="where .deb files are kept (default OUT/.debs)")
    args = parser.parse_args(argv)
    if args.command == "build":
        kept = build(args.out, args.manifest, args.debs)
        print(f"{len(kept)} clips in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
