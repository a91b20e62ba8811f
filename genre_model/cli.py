"""``genre-model``: train, cross-validate, evaluate and predict from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from genre_model.config import DEFAULT_MODEL_DIR, EXAMPLE_CLIP, MAX_AUDIO_SECONDS, TOP_K
from genre_model.errors import GenreModelError


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="+", type=Path, help="genre folders (GTZAN layout) or manifest CSVs")
    p.add_argument("--arch", choices=("musicnn", "cnn"), default="musicnn",
                   help="musicnn: pretrained backbone + trained head (default); cnn: the original study's CNN")
    p.add_argument("--epochs", type=int, default=0, help="maximum epochs (default: per architecture)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=0.0,
                   help="Adam learning rate (default: per architecture)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of track groups kept for validation")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--patience", type=int, default=0, help="early-stopping patience in epochs")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--l2", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=0, help="hidden units in the head (0 = linear head)")
    p.add_argument("--mixup", type=float, default=0.2, help="mixup alpha (0 = off)")
    p.add_argument("--pooling", default="mean_max", help="musicnn embedding: mean, max, penultimate, or joined by _")
    p.add_argument("--transform", default="sqrt", choices=("none", "sqrt"),
                   help="musicnn per-window embedding transform (sqrt = signed square root)")
    p.add_argument("--ensemble", type=int, default=5, help="musicnn: number of heads (different seeds) averaged")
    p.add_argument("--max-seconds", type=float, default=MAX_AUDIO_SECONDS)
    p.add_argument("--cache", type=Path, default=None, help="folder to cache embeddings in")


def _options(args: argparse.Namespace):
    from genre_model.train import TrainOptions

    return TrainOptions(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=args.learning_rate, val_fraction=args.val_fraction, seed=args.seed,
                        patience=args.patience, dropout=args.dropout, l2=args.l2, hidden=args.hidden,
                        mixup=args.mixup, pooling=args.pooling,
                        transform=args.transform, ensemble=args.ensemble, max_seconds=args.max_seconds, cache_dir=args.cache)


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers separated by commas, not {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genre-model", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model artifact")
    _add_train_options(p)
    p.add_argument("--out", type=Path, default=Path("runs/model"), help="model directory to write")

    p = sub.add_parser("cv", help="grouped k-fold cross-validation estimate (by artist when the data names artists)")
    _add_train_options(p)
    p.add_argument("--folds", type=int, default=5, help="number of folds (default: %(default)s)")
    p.add_argument("--group-by", choices=("auto", "artist", "track"), default="auto",
                   help="keep each artist (artist) or only near-duplicates (track) inside one fold; "
                        "auto = artist when the manifest has an artist column (default: %(default)s)")
    p.add_argument("--seeds", type=_seed_list, default=None,
                   help="repeat the k-fold run with these fold seeds, e.g. 1,2,3 (default: --seed once)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--confusion", type=Path, default=None, help="write the pooled confusion matrix PNG")

    p = sub.add_parser("evaluate", help="track-level metrics of a model on labelled data")
    p.add_argument("data", type=Path, help="genre folders or a manifest CSV")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--confusion", type=Path, default=Path("confusion.png"), help="confusion-matrix PNG to write")

    p = sub.add_parser("predict", help="genre of audio files")
    p.add_argument("files", nargs="*", type=Path, help="audio files (default: the bundled example clip)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    p.add_argument("--image", type=Path, default=None,
                   help="spectrogram + timeline PNG (with several files: FILE stem is appended)")
    p.add_argument("--top", type=int, default=TOP_K)
    p.add_argument("--max-seconds", type=float, default=MAX_AUDIO_SECONDS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": _train, "cv": _cv, "evaluate": _evaluate, "predict": _predict}[args.command](args)
    except GenreModelError as exc:
        print(f"genre-model: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _train(args: argparse.Namespace) -> int:
    from genre_model.train import train

    info = train(args.data, args.out, _options(args), verbose=1 if sys.stderr.isatty() else 2)
    print(json.dumps({"model": str(args.out), "version": info.version, **info.metrics}))
    return 0


def _cv(args: argparse.Namespace) -> int:
    from genre_model import plots
    from genre_model.evaluate import format_report
    from genre_model.train import cross_validate

    rep = cross_validate(args.data, _options(args), folds=args.folds, group_by=args.group_by, seeds=args.seeds)
    title = f"{args.folds}-fold CV grouped by {rep['grouping']} ({args.arch})"
    if args.confusion:
        plots.write(args.confusion, plots.confusion_image(rep["confusion"], rep["labels"], title))
    print(json.dumps(rep) if args.json else
          f"{title}, seeds {rep['seeds']}\n{format_report(rep)}\nfold accuracy: {rep['fold_accuracy']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from genre_model import plots
    from genre_model.dataset import load_dataset
    from genre_model.evaluate import format_report, report, score_tracks
    from genre_model.predict import Classifier

    clf = Classifier(args.model)
    tracks = load_dataset(args.data, clf.labels)
    results, skipped = score_tracks(
        tracks, clf.labels, lambda t: clf.file_probabilities(t.path),
        progress=None if args.json else lambda i, n: print(f"\r{i}/{n} tracks", end="", file=sys.stderr))
    if not args.json:
        print(file=sys.stderr)
    rep = report(results, clf.labels)
    rep.update(model_version=clf.version, skipped=skipped)
    if args.confusion:
        plots.write(args.confusion, plots.confusion_image(rep["confusion"], rep["labels"], f"model {clf.version}"))
    print(json.dumps(rep) if args.json else format_report(rep))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from genre_model.predict import Classifier

    clf = Classifier(args.model, lazy=True)  # LiteRT loads while ffmpeg decodes the first file
    failed = 0
    for path in args.files or [EXAMPLE_CLIP]:
        try:
            pred = clf.predict(path, max_seconds=args.max_seconds)
        except GenreModelError as exc:
            failed += 1
            if args.json:
                print(json.dumps({"file": str(path), "error": str(exc)}), flush=True)
            else:
                print(f"{path}: {exc}", file=sys.stderr)
            continue
        if args.image:
            from genre_model import plots  # matplotlib: only when a picture is asked for

            out = args.image if len(args.files) <= 1 else args.image.with_name(f"{args.image.stem}-{path.stem}.png")
            plots.write(out, pred.image(clf.labels, path.name))
        if args.json:
            print(json.dumps(pred.to_json(str(path))), flush=True)
        else:
            ranked = ", ".join(f"{g} {p:.0%}" for g, p in pred.top_k(args.top))
            print(f"{path}: {pred.genre} ({ranked}); {pred.duration_s:.1f} s analysed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
