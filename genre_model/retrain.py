"""Retraining, run as its own process: ``python -m genre_model.retrain ...``.

It trains a candidate on the base data plus the exported corrections, scores the
candidate and the live model on one fixed held-out set through the serving path
(LiteRT), and says whether the candidate may be promoted: only if it is not worse
on accuracy and on balanced accuracy. Progress and the verdict are JSON lines on
stdout, so the bot can relay them without sharing memory with TensorFlow.
The bot never imports TensorFlow: it starts this module with :func:`command`.
"""

from __future__ import annotations

import argparse
import dataclasses
import csv
import json
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Sequence

from genre_model.errors import GenreModelError

#: The held-out part of the base data is the same split on every retrain.
HOLDOUT_SEED = 20261125
HOLDOUT_FRACTION = 0.2


def command(*, base: Path, corrections: Path | None, holdout: Path | None, live: Path, out: Path, cache: Path,
            epochs: int = 0) -> list[str]:
    """argv for running a retrain in a fresh Python process."""
    argv = [sys.executable, "-m", "genre_model.retrain", "--base", str(base), "--live", str(live), "--out", str(out),
            "--cache", str(cache)]
    if corrections is not None:
        argv += ["--corrections", str(corrections)]
    if holdout is not None:
        argv += ["--holdout", str(holdout)]
    if epochs:
        argv += ["--epochs", str(epochs)]
    return argv


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def not_worse(candidate: dict[str, Any], live: dict[str, Any]) -> tuple[bool, str]:
    """The promotion rule: accuracy and balanced accuracy both at least the live model's."""
    c = (candidate["accuracy"], candidate["balanced_accuracy"])
    l_ = (live["accuracy"], live["balanced_accuracy"])
    if c[0] >= l_[0] and c[1] >= l_[1]:
        return True, f"candidate {c[0]:.1%} / {c[1]:.1%} balanced vs live {l_[0]:.1%} / {l_[1]:.1%}"
    return False, f"candidate is worse: {c[0]:.1%} / {c[1]:.1%} balanced vs live {l_[0]:.1%} / {l_[1]:.1%}"


def same_recipe(saved: dict[str, Any], *, arch: str, epochs: int, cache_dir: Path | None):
    """The live model's training options (as recorded in its metadata), with a new cache and epoch cap."""
    from genre_model.train import TrainOptions

    known = {f.name for f in dataclasses.fields(TrainOptions)} - {"cache_dir", "epochs"}
    options = TrainOptions(**{k: v for k, v in saved.items() if k in known})
    return dataclasses.replace(options, arch=arch, epochs=epochs, cache_dir=cache_dir)


def run(args: argparse.Namespace) -> int:
    from genre_model.artifact import load_info
    from genre_model.dataset import load_dataset, split_tracks
    from genre_model.evaluate import report, score_tracks
    from genre_model.predict import Classifier
    from genre_model.train import train as train_model

    live_info = load_info(args.live)
    base = load_dataset(args.base, live_info.labels)
    if args.holdout:
        holdout, rest = load_dataset(args.holdout, live_info.labels), base
    else:
        rest, holdout = split_tracks(base, HOLDOUT_FRACTION, HOLDOUT_SEED)
    with tempfile.TemporaryDirectory(prefix="genrebot-retrain-") as tmp:
        manifest = Path(tmp) / "train.csv"  # the base tracks the candidate may learn from
        with manifest.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "genre", "group"])
            writer.writerows([str(t.path), t.label, t.group] for t in rest)
        sources = [manifest]
        if args.corrections and any(args.corrections.rglob("*.npz")):
            sources.append(args.corrections)
        emit("progress", message=f"training a {live_info.arch} candidate on {len(rest)} base tracks"
                                 f"{' + corrections' if len(sources) > 1 else ''}; {len(holdout)} held out")
        opts = same_recipe(live_info.training.get("options", {}), arch=live_info.arch, epochs=args.epochs,
                           cache_dir=args.cache)
        candidate_info = train_model(sources, args.out, opts, log=lambda m: emit("progress", message=m), verbose=0)
    emit("progress", message="scoring candidate and live model on the held-out set")
    scores = {}
    for name, model_dir in (("candidate", args.out), ("live", args.live)):
        clf = Classifier(model_dir)
        results, _ = score_tracks(holdout, clf.labels, lambda t: clf.file_probabilities(t.path))
        rep = report(results, clf.labels)
        scores[name] = {k: rep[k] for k in ("n_tracks", "accuracy", "balanced_accuracy", "macro_f1", "ece")}
    promote, reason = not_worse(scores["candidate"], scores["live"])
    emit("result", promote=promote, reason=reason, version=candidate_info.version, path=str(args.out),
         candidate=scores["candidate"], live=scores["live"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_model.retrain", description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="base training data (genre folders or manifest)")
    parser.add_argument("--corrections", type=Path, default=None, help="exported corrections (genre-bot export-corrections)")
    parser.add_argument("--holdout", type=Path, default=None, help="fixed held-out data (default: a fixed split of --base)")
    parser.add_argument("--live", type=Path, required=True, help="the live model directory")
    parser.add_argument("--out", type=Path, required=True, help="where to write the candidate model")
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached embeddings (kept between retrains)")
    parser.add_argument("--epochs", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except GenreModelError as exc:  # a reason the admin can act on (bad data, no training extra): one line
        emit("error", message=str(exc))
        return 1
    except Exception as exc:  # report every failure as one readable line, details on stderr
        traceback.print_exc()
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
