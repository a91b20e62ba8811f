"""The feedback loop, end to end through the project's own code: does correcting the bot help?

    python benchmarks/bench_feedback_loop.py --data ../shared/data/gtzan-trainval [--cache /tmp/cache]

1. Train a model (the shipped recipe) on the fault-filtered ``train`` part only.
2. Split the ``valid`` part by artist into two halves: *uploads* and *held back*.
3. Send every upload through the bot's path: the classifier the workers run, then storage
   (SQLite: prediction + feature windows), as a member's upload would be.
4. Simulated members vote: a wrong answer gets a correction to the true genre from the
   member menu, a right one a ✅ (each song from one of several uploaders).
5. Export the corrections (the bot's export) and retrain (``python -m genre_model.retrain``:
   the same process ``/retrain`` runs, with its promotion verdict).
6. Score the model before and after on the held-back artists, which no correction came
   from, and on the uploads themselves (learnt from, so only a sanity check).

A script, not a test: it needs the GTZAN data and several minutes. It prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path


from bot.storage.base import Upload  # noqa: E402
from genre_model.dataset import ManifestRow, group_folds, load_dataset, regroup, write_manifest  # noqa: E402
from genre_model.evaluate import format_report, report, score_tracks  # noqa: E402
from genre_model.predict import Classifier  # noqa: E402

UPLOADERS = 5


def score(model: Path, tracks) -> dict:
    clf = Classifier(model)
    results, _ = score_tracks(tracks, clf.labels, lambda t: clf.file_probabilities(t.path))
    return report(results, clf.labels)


def line(name: str, rep: dict) -> str:
    lo, hi = rep["accuracy_ci"]
    blo, bhi = rep["balanced_accuracy_ci"]
    return (f"{name:<28} {rep['n_tracks']:>4} songs  accuracy {rep['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]  "
            f"balanced {rep['balanced_accuracy']:.3f} [{blo:.3f}, {bhi:.3f}]")


async def upload_and_vote(model: Path, uploads, work: Path) -> tuple[int, int, Path]:
    """Classify every upload, store it as the bot does, let members vote; export the corrections."""
    from bot.storage import SqliteStorage

    clf = Classifier(model)
    store = await SqliteStorage.open(work / "bot.sqlite3", work / "data")
    wrong = 0
    try:
        for i, track in enumerate(uploads):
            data = track.path.read_bytes()
            pred = clf.predict(data)
            uploader = 1000 + i % UPLOADERS
            upload = Upload(uploader, 1, 2, 10_000 + i, track.path.name, data)
            pid = await store.record_prediction(upload, pred, keep_windows=pred.music, keep_audio=False)
            member = 2000 + i % 3
            if pred.genre != track.label:
                wrong += 1
                await store.set_correction(pid, member, track.label)
            else:
                await store.set_vote(pid, member, "right")
        exported = await store.export_corrections(work / "corrections")
    finally:
        await store.close()
    return wrong, exported, work / "corrections"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the GTZAN folder with MANIFEST.csv (artist, ff_split)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "genrebot-bench-cache")
    parser.add_argument("--seed", type=int, default=7, help="how the valid artists are halved")
    args = parser.parse_args()
    tracks = load_dataset(args.data)
    train_part = [t for t in tracks if t.split == "train"]
    valid = regroup([t for t in tracks if t.split == "valid"], "artist")
    halves = group_folds(valid, 2, args.seed)
    uploads = [t for t in valid if t.group in set(halves[0])]
    held_back = [t for t in valid if t.group in set(halves[1])]
    print(f"fault-filtered train: {len(train_part)} songs; valid: {len(uploads)} uploads "
          f"({len({t.group for t in uploads})} artists) / {len(held_back)} held back "
          f"({len({t.group for t in held_back})} artists)", flush=True)

    with tempfile.TemporaryDirectory(prefix="genrebot-loop-") as tmp:
        work = Path(tmp)
        base = work / "base.csv"
        write_manifest(base, [ManifestRow.of(t) for t in train_part])
        before = work / "before"
        subprocess.run([sys.executable, "-m", "genre_model.cli", "train", str(base), "--out", str(before),
                        "--cache", str(args.cache)], check=True, stdout=subprocess.DEVNULL)
        wrong, exported, corrections = asyncio.run(upload_and_vote(before, uploads, work))
        print(f"members corrected {wrong} of {len(uploads)} answers; {exported} examples exported", flush=True)
        after = work / "after"
        result = subprocess.run([sys.executable, "-m", "genre_model.retrain", "--base", str(base),
                                 "--corrections", str(corrections), "--live", str(before), "--out", str(after),
                                 "--cache", str(args.cache)], capture_output=True, text=True)
        verdict = next((json.loads(x) for x in reversed(result.stdout.splitlines()) if '"event": "result"' in x), None)
        if verdict is None:
            print(result.stderr[-3000:])
            return 1
        print(f"/retrain verdict: {'promote' if verdict['promote'] else 'keep'}: {verdict['reason']}")
        rows = [("before, held-back artists", score(before, held_back)), ("after, held-back artists", score(after, held_back)),
                ("before, uploads", score(before, uploads)), ("after, uploads (learnt)", score(after, uploads))]
    print()
    for name, rep in rows:
        print(line(name, rep))
    print("\nafter, held-back artists:\n" + format_report(rows[1][1]))
    gain = rows[1][1]["accuracy"] - rows[0][1]["accuracy"]
    print(f"\nheld-back accuracy change: {gain:+.3f} ({'helps' if gain > 0 else 'does not help'} on artists no "
          f"correction came from; the intervals above say how much of it is noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
