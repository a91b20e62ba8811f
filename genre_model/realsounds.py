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
``build`` re-creates the corpus from it::

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
import lzma
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

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
        return Path(root) / self.source_package / self.file_in_package.lstrip("/")


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
            data = files.get(c.file_in_package.lstrip("/"))
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


# --- scanning a package by hand ------------------------------------------------------------

#: (package, path regex, category) guesses used by ``scan``; the first match wins, no match = not listed.
RULES: list[tuple[str, str, str]] = []


def duration(path: Path) -> float:
    """Seconds of audio (ffprobe)."""
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                       capture_output=True, text=True)
    try:
        return float(r.stdout.strip())
    except ValueError:
        return 0.0


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
