"""Does the answer survive a quieter recording? Real songs played 0, 20 and 30 dB quieter, old model vs new.

Each song is written at every level with ``ffmpeg -af volume=<dB>dB`` (re-encoded to MP3 at
192 kbit/s, as a quieter upload would come), then every model predicts the original and each
copy. Printed per model and level: how many songs keep the genre the model gave the original,
how many became something else (and what they became most), and how many were called not music.

``--field`` adds recordings as they come from the field, each re-encoded the same way:
``phone`` (a 300-3400 Hz band at 8 kHz, mono: a song played down a telephone line), ``noise``
(pink noise at -30 dBFS mixed in: a song in a noisy room), ``lowbitrate`` (mono, 22 kHz, MP3 at
48 kbit/s), ``room`` (a phone's microphone across a room: 150 Hz-8 kHz, three early echoes,
12 dB quieter, pink noise at -40 dBFS, MP3 at 64 kbit/s).

    python benchmarks/bench_loudness.py /work/shared/data/gtzan-trainval /work/cache/music \\
        --model old=/work/cache/front/model-old --model new=genre_model/models/default

Folders are searched for audio files (recursively); ``--every K`` keeps every K-th file. The
level copies are written under ``--work`` (kept, so a second run re-uses them).
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIO = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".au", ".webm")


def _songs(paths: list[Path], every: int) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO and p.is_file())
        elif path.suffix.lower() in AUDIO:
            found.append(path)
    return found[::every]


FIELD = {
    "phone": ["-af", "highpass=f=300:poles=2,lowpass=f=3400:poles=2", "-ac", "1", "-ar", "8000", "-b:a", "32k"],
    "noise": ["-filter_complex", "[0:a]aformat=channel_layouts=mono[s];"
              "anoisesrc=color=pink:amplitude=0.0316:seed=7[n];[s][n]amix=inputs=2:duration=first:normalize=0",
              "-b:a", "192k"],
    "lowbitrate": ["-ac", "1", "-ar", "22050", "-b:a", "48k"],
    "room": ["-filter_complex", "[0:a]aformat=channel_layouts=mono,highpass=f=150,lowpass=f=8000,"
             "aecho=0.8:0.5:23|41|67:0.35|0.25|0.15,volume=-12dB[s];"
             "anoisesrc=color=pink:amplitude=0.01:seed=7[n];[s][n]amix=inputs=2:duration=first:normalize=0",
             "-ar", "44100", "-b:a", "64k"],
}


def _condition_args(condition: str) -> list[str]:
    """ffmpeg's output options that make one condition: a gain in dB ("-20") or a FIELD name."""
    if condition in FIELD:
        return FIELD[condition]
    return ["-af", f"volume={float(condition):g}dB", "-b:a", "192k"]


def _label(condition: str) -> str:
    return condition if condition in FIELD else f"{float(condition):+.0f} dB"


def _copy(song: Path, condition: str, work: Path, root: Path) -> Path | None:
    from pydub import AudioSegment

    name = "_".join(song.relative_to(root).with_suffix("").parts) if song.is_relative_to(root) else song.stem
    target = work / _label(condition).replace(" ", "") / f"{name}.mp3"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([AudioSegment.converter, "-nostdin", "-loglevel", "quiet", "-y", "-i", str(song),
                               *_condition_args(condition), str(target)])
        if done.returncode != 0:  # a file ffmpeg cannot read is left out, as an unreadable original
            target.unlink(missing_ok=True)
            return None
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", type=Path, help="folders of real songs (searched recursively) or files")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                        help="a model to compare (repeat); default: the shipped model")
    parser.add_argument("--levels", default="0,-20,-30", help="gains in dB (default: %(default)s)")
    parser.add_argument("--field", default="", help=f"field conditions too, from {','.join(FIELD)} (default: none)")
    parser.add_argument("--every", type=int, default=1, help="keep every K-th song (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_loudness"),
                        help="where the level copies are written (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.errors import AudioError
    from genre_model.predict import Classifier

    models = dict(m.split("=", 1) for m in args.model) or {"shipped": str(DEFAULT_MODEL_DIR)}
    levels = [x.strip() for x in args.levels.split(",")] + [x for x in args.field.split(",") if x]
    unknown = [x for x in args.field.split(",") if x and x not in FIELD]
    if unknown:
        parser.error(f"unknown --field {','.join(unknown)}; choose from {','.join(FIELD)}")
    songs = _songs(args.data, args.every)
    if not songs:
        parser.error("no audio files found")
    roots = [p for p in args.data if p.is_dir()]
    started = time.perf_counter()
    copies = {}
    for song in songs:
        root = next((r for r in roots if song.is_relative_to(r)), song.parent)
        copies[song] = {c: _copy(song, c, args.work, root) for c in levels}
    print(f"{len(songs)} songs, {len(levels)} conditions written in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)

    result: dict[str, dict] = {}
    for name, directory in models.items():
        clf = Classifier(directory)
        rows = {}
        reference: dict[Path, str | None] = {}
        for song in songs:
            try:
                p = clf.predict(song)
                reference[song] = p.genre if p.music else None
            except AudioError:
                reference[song] = "unreadable"
        usable = [song for song in songs if reference[song] != "unreadable"  # e.g. a silent file
                  and None not in copies[song].values()]
        for condition in levels:
            kept, not_music, doubted, became = 0, 0, 0, collections.Counter()
            for song in usable:
                try:
                    p = clf.predict(copies[song][condition])
                    answer = p.genre if p.music else None
                    doubted += bool(p.music and p.doubtful)
                except AudioError as exc:
                    answer = f"error: {exc}"
                if answer is None:
                    not_music += 1
                if answer == reference[song]:
                    kept += 1
                else:
                    became[str(answer)] += 1
            rows[_label(condition)] = {"kept": kept, "not_music": not_music, "doubted": doubted,
                                       "n": len(usable),
                                       "became": dict(became.most_common(3))}
        result[name] = {"model": str(directory), "version": clf.version,
                        "loudness_target": clf.info.features.loudness_target,
                        "original_not_music": sum(1 for g in reference.values() if g is None),
                        "unreadable": [str(s) for s in songs if s not in usable], "levels": rows}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for name, r in result.items():
        if r["unreadable"]:
            print(f"{name}: left out, unusable as originals: {', '.join(Path(p).name for p in r['unreadable'])}")
    print(f"{len(songs)} real songs; kept = same genre as the model gave the original file")
    print("| model | condition | kept | not music | doubted | became instead (top 3) |\n|---|---|---|---|---|---|")
    for name, r in result.items():
        for level, row in r["levels"].items():
            became = ", ".join(f"{g} {n}" for g, n in row["became"].items()) or "-"
            print(f"| {name} (target {r['loudness_target']}) | {level} | {row['kept']}/{row['n']} "
                  f"({row['kept'] / row['n']:.0%}) | {row['not_music']} | {row['doubted']} | {became} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
