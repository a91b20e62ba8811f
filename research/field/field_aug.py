"""Field copies in training: do they keep the genre of field recordings without costing clean accuracy?

Every GTZAN track is also written as two *training* field copies (a phone's microphone across a
room; a telephone line), with parameters unlike the benchmark's (``benchmarks/bench_loudness.py
--field room,phone``), and as the benchmark's own two conditions for *evaluation*. A head is
fitted on the shipped recipe's song embeddings (musicnn, every window, hop 1.5 s) of the clean
training tracks only, or of the clean tracks plus their training copies (each copy a row with its
track's label and group, weights shared so every genre still weighs the same); both are scored on
held-out artists' clean tracks and on the benchmark's conditions of the same tracks, 5 folds
grouped by artist x 3 fold seeds (``--ff``: the fault-filtered train -> valid split instead).
``--copy-weights 1,0.5`` also tries the copies' rows at lower weight.

    python research/field/field_aug.py /work/shared/data/gtzan-trainval/MANIFEST.csv \\
        --cache /work/cache/front/emb --work /work/cache/field-all --eval room,phone --copy-weights 1,0.5,0.25
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_loudness import FIELD  # noqa: E402  (the benchmark's conditions, used for evaluation)

from genre_model.augment import FIELD_COPIES  # noqa: E402  (the training copies the product makes)

# Written under WORK/<name>-train/ here; the same ffmpeg options as genre_model.augment.field_copy.
TRAIN_FIELD = {f"{name}-train": options for name, options in FIELD_COPIES.items()}


def copy_of(song: Path, name: str, args: list[str], work: Path) -> Path:
    from pydub import AudioSegment

    target = work / name / f"{song.parent.name}_{song.stem}.mp3"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([AudioSegment.converter, "-nostdin", "-loglevel", "error", "-y", "-i", str(song),
                        *args, str(target)], check=True)
    return target


def bootstrap_ci(values: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean, resampling scored tracks."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--eval", default="room,phone,noise", help="benchmark conditions to score on")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--copy-weights", default="1", help="weights of the copies' rows to try, e.g. 1,0.5")
    parser.add_argument("--ff", action="store_true", help="score the fault-filtered train -> valid split instead")
    args = parser.parse_args()

    from genre_model.dataset import group_folds, load_dataset, regroup
    from genre_model.recipe import TrainOptions
    from genre_model.train import Trainer, _song_means, _targets, fit_logistic, sample_weights

    opts = TrainOptions(cache_dir=args.cache)
    trainer = Trainer(opts)
    tracks = regroup(trainer.usable(load_dataset(args.manifest)), "artist")
    y = _targets(tracks, trainer.labels)
    conditions = {**TRAIN_FIELD, **{c: FIELD[c] for c in args.eval.split(",")}}
    x = {"clean": _song_means(trainer.inputs(tracks))}
    for name, ffargs in conditions.items():
        copies = [dataclasses.replace(t, path=copy_of(t.path, name, ffargs, args.work)) for t in tracks]
        x[name] = _song_means(trainer.inputs(copies))
        print(f"embedded {name}", file=sys.stderr)

    variants = {"clean only": (["clean"], 1.0)}
    for w in [float(v) for v in args.copy_weights.split(",")]:
        variants[f"clean + field copies (weight {w:g})"] = (["clean", *TRAIN_FIELD], w)
    scored = ["clean", *args.eval.split(",")]
    results: dict[str, dict[str, list]] = {v: {c: [] for c in scored} | {f"{c} kept": [] for c in scored[1:]}
                                          for v in variants}
    truth = []
    if args.ff:  # the fault-filtered split: train part -> valid part (no shared artist)
        splits = [np.array([t.split == "valid" for t in tracks])]
        keep = np.array([t.split in ("train", "valid") for t in tracks])
    else:
        splits = [np.array([t.group in set(groups) for t in tracks])
                  for seed in [int(s) for s in args.seeds.split(",")] for groups in group_folds(tracks, 5, seed)]
        keep = np.ones(len(tracks), dtype=bool)
    for held in splits:
        trainable = ~held & keep
        truth.append(y[held])
        for variant, (parts, copy_weight) in variants.items():
            train = [t for t, h in zip(tracks, trainable) if h]
            xs = np.concatenate([x[p][trainable] for p in parts])
            ys = np.concatenate([y[trainable]] * len(parts))
            base = sample_weights(train, opts.weighting)
            w = np.concatenate([base] + [base * copy_weight] * (len(parts) - 1))
            head = fit_logistic(xs, ys, w, len(trainer.labels), opts.c)
            clean_pred = head(x["clean"][held]).argmax(axis=1)
            for c in scored:
                pred = head(x[c][held]).argmax(axis=1)
                results[variant][c].append(pred)
                if c != "clean":
                    results[variant][f"{c} kept"].append(pred == clean_pred)
    y_all = np.concatenate(truth)
    table = {}
    print("| head | " + " | ".join(f"{c} accuracy" for c in scored) + " | "
          + " | ".join(f"{c}: genre kept" for c in scored[1:]) + " |")
    print("|---" * (len(scored) * 2) + "|")
    for variant, r in results.items():
        row = {}
        for c in scored:
            right = (np.concatenate(r[c]) == y_all).astype(float)
            row[c] = (float(right.mean()), bootstrap_ci(right))
        for c in scored[1:]:
            kept = np.concatenate(r[f"{c} kept"]).astype(float)
            row[f"{c} kept"] = (float(kept.mean()), bootstrap_ci(kept))
        table[variant] = row
        print(f"| {variant} | " + " | ".join(f"{row[c][0]:.3f} [{row[c][1][0]:.3f}, {row[c][1][1]:.3f}]"
                                               for c in scored) + " | "
              + " | ".join(f"{row[c + ' kept'][0]:.3f}" for c in scored[1:]) + " |")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
