"""The ``genre-model`` command: predict, evaluate, cross-validate and train from the command line.

Results go to stdout (one JSON line or object with ``--json``); progress, logs and
errors go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

from genre_model import __version__
from genre_model.config import DEFAULT_MODEL_DIR, EXAMPLE_CLIP, MAX_AUDIO_SECONDS, TOP_K, coverage, display_name
from genre_model.errors import GenreModelError

DESCRIPTION = "Tell the genre of songs; evaluate, cross-validate and train the models that do."
EPILOG = "Run 'genre-model COMMAND --help' for the options of a command."


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _at_least_two(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def _image_path(text: str) -> Path:
    """A picture to write: a .png (or .jpg/.jpeg/.webp, converted) in a folder that exists."""
    from genre_model.plots import IMAGE_FORMATS

    path = Path(text)
    if path.suffix.lower() not in IMAGE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: name the picture with one of {', '.join(IMAGE_FORMATS)} (it is drawn as PNG)")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: folder {str(path.parent)!r} does not exist")
    return path


class VersionAction(argparse.Action):
    """``--version``: the command (``parser.prog``), the package version and the bundled model's."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from genre_model.artifact import load_info

        try:
            model = f" (bundled model {load_info(DEFAULT_MODEL_DIR, verify=False).version})"
        except GenreModelError:
            model = ""
        print(f"{parser.prog} {__version__}{model}")
        parser.exit()


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout meanwhile (Keras epoch logs, native libraries) to stderr."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):  # not a real file (captured): Python-level only
        fd = saved = -1
    try:
        if saved >= 0:
            os.dup2(sys.stderr.fileno(), fd)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        if saved >= 0:
            os.dup2(saved, fd)
            os.close(saved)


def _lufs(text: str) -> float | None:
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a loudness in LUFS: {text!r}") from None
    if not -70.0 < value <= 0.0:
        raise argparse.ArgumentTypeError(f"a loudness target is between -70 and 0 LUFS, got {value:g}")
    return value


def _field_copies(text: str) -> tuple[str, ...]:
    from genre_model.augment import check_names

    names = [] if text.strip().lower() == "none" else [n.strip() for n in text.split(",") if n.strip()]
    try:
        return check_names(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_train_options(p: argparse.ArgumentParser) -> None:
    """Every :class:`~genre_model.train.TrainOptions` field as a flag, its default taken from there."""
    from genre_model.recipe import ARCHS, WEIGHTINGS, TrainOptions

    d = TrainOptions()
    p.add_argument("data", nargs="+", type=Path, help="genre folders (GTZAN layout) or manifest CSVs")
    p.add_argument("--arch", choices=ARCHS, default=d.arch,
                   help="musicnn: pretrained backbone + logistic head (default); cnn: the original study's CNN")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed of splits and training (default: %(default)s)")
    p.add_argument("--max-seconds", type=_seconds, default=d.max_seconds, metavar="SECONDS",
                   help="read at most this many seconds of each file (default: %(default)g)")
    p.add_argument("--cache", type=Path, default=None, help="folder to cache embeddings in (default: none)")
    p.add_argument("--loudness-target", type=_lufs, default=d.loudness_target, metavar="LUFS",
                   help="scale every song to this integrated loudness (ITU-R BS.1770) before its features; "
                        "'none' keeps the raw level (default: %(default)s)")
    m = p.add_argument_group("musicnn head")
    m.add_argument("--c", type=float, default=d.c,
                   help="inverse L2 strength of the logistic regression (default: %(default)s)")
    m.add_argument("--weighting", choices=WEIGHTINGS, default=d.weighting,
                   help="equal weight per genre (class), and per artist within it (default: %(default)s)")
    m.add_argument("--pooling", default=d.pooling,
                   help="musicnn outputs in the embedding: mean, max, penultimate joined by _ (default: %(default)s)")
    m.add_argument("--transform", default=d.transform, choices=("none", "sqrt"),
                   help="per-window transform of the pooled features (default: %(default)s)")
    m.add_argument("--detector-clips", type=_positive_int, metavar="N", default=d.detector_clips,
                   help="generated non-music clips of each kind for the sound detector (default: %(default)s)")
    m.add_argument("--field-copies", type=_field_copies, metavar="NAMES", default=d.field_copies,
                   help="also train on these field copies of every song, comma-separated, from "
                        "room,phone; 'none' for none (default: %s)" % (",".join(d.field_copies) or "none"))
    m.add_argument("--calibration-folds", type=_at_least_two, metavar="K", default=d.calibration_folds,
                   help="folds grouped by artist whose held-out predictions fit the temperature (default: %(default)s)")
    c = p.add_argument_group("cnn (trained end to end)")
    c.add_argument("--epochs", type=_positive_int, metavar="N", default=d.epochs, help="maximum epochs (default: %(default)s)")
    c.add_argument("--batch-size", type=_positive_int, metavar="N", default=d.batch_size, help="windows per batch (default: %(default)s)")
    c.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=d.learning_rate,
                   help="Adam learning rate (default: %(default)s)")
    c.add_argument("--patience", type=_positive_int, metavar="N", default=d.patience, help="early-stopping patience in epochs (default: %(default)s)")
    c.add_argument("--dropout", type=float, default=d.dropout, help="dropout rate (default: %(default)s)")
    c.add_argument("--mixup", type=float, default=d.mixup, help="mixup alpha, 0 = off (default: %(default)s)")
    c.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="share of track (or artist) groups kept for validation (default: %(default)s)")


def _options(args: argparse.Namespace):
    from genre_model.recipe import TrainOptions

    names = [f.name for f in dataclasses.fields(TrainOptions) if f.name != "cache_dir"]
    return TrainOptions(**{name: getattr(args, name) for name in names}, cache_dir=args.cache)


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers separated by commas, not {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genre-model", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model artifact")
    _add_train_options(p)
    p.add_argument("--out", type=Path, default=Path("runs/model"), help="model directory to write")
    p.add_argument("--sounds", type=Path, nargs="+", default=None, metavar="CORPUS",
                   help="after training, refit the sound detector on real recordings (folders built by "
                        "python -m genre_model.realsounds build) against the training songs and the "
                        "corpus's music and --detector-clips generated clips of each kind, as fit-detector does")

    p = sub.add_parser("fit-detector", help="refit only the sound detector of a model on real recordings")
    p.add_argument("model", type=Path, help="model directory to update (its embedder and head stay as they are)")
    p.add_argument("--music", type=Path, nargs="*", default=[], metavar="DATA",
                   help="music: genre folders or manifests (e.g. the model's training data)")
    p.add_argument("--sounds", type=Path, nargs="+", required=True, metavar="CORPUS",
                   help="real-sound corpora built by python -m genre_model.realsounds build (their music counts as music)")
    p.add_argument("--generated", type=int, default=0, metavar="N",
                   help="also N generated clips of each kind (tones, noise, espeak speech, synthesised bands) (default: 0)")
    p.add_argument("--c", type=float, default=0.1, help="inverse L2 strength (default: %(default)s)")
    p.add_argument("--field-copies", type=_field_copies, metavar="NAMES", default=(),
                   help="field copies of the --music songs that count as music too, from room,phone (default: none)")
    p.add_argument("--cache", type=Path, default=None, help="folder to cache song embeddings (and field copies) in")

    p = sub.add_parser("cv", help="grouped k-fold cross-validation estimate (by artist when the data names artists)")
    _add_train_options(p)
    p.add_argument("--folds", type=_at_least_two, metavar="K", default=5, help="number of folds (default: %(default)s)")
    p.add_argument("--group-by", choices=("auto", "artist", "track"), default="auto",
                   help="keep each artist (artist) or only near-duplicates (track) inside one fold; "
                        "auto = artist when the manifest has an artist column (default: %(default)s)")
    p.add_argument("--seeds", type=_seed_list, default=None,
                   help="repeat the k-fold run with these fold seeds, e.g. 1,2,3 (default: --seed once)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--confusion", type=_image_path, default=None, help="write the pooled confusion matrix PNG")

    p = sub.add_parser("evaluate", help="track-level metrics of a model on labelled data")
    p.add_argument("data", type=Path, help="genre folders or a manifest CSV")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, metavar="DIR",
                   help="model directory (default: the bundled model)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--confusion", type=_image_path, default=None,
                   help="write the confusion matrix as a PNG (default: no file)")

    p = sub.add_parser("predict", help="genre of audio files")
    p.add_argument("files", nargs="*", type=Path, help="audio files (default: the bundled example clip)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, metavar="DIR",
                   help="model directory (default: the bundled model)")
    p.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    p.add_argument("--image", type=_image_path, default=None, metavar="PNG",
                   help="write the spectrogram and genre timeline as a PNG (.jpg/.webp are converted); "
                        "with several files, each file's name is appended: out-song.png")
    p.add_argument("--top", type=_positive_int, metavar="N", default=TOP_K,
                   help="genres listed per file (default: %(default)s)")
    p.add_argument("--max-seconds", type=_seconds, default=MAX_AUDIO_SECONDS, metavar="SECONDS",
                   help="read at most this many seconds of each file (default: %(default)g)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": _train, "cv": _cv, "evaluate": _evaluate, "predict": _predict,
                "fit-detector": _fit_detector}[args.command](args)
    except GenreModelError as exc:
        print(f"genre-model: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _train(args: argparse.Namespace) -> int:
    from genre_model.train import train

    with _stdout_to_stderr():
        info = train(args.data, args.out, _options(args), verbose=1 if sys.stderr.isatty() else 2)
        if args.sounds:
            from genre_model.realsounds import refit_detector

            refit_detector(args.out, args.data, args.sounds, generated=args.detector_clips, cache_dir=args.cache,
                           field_copies=args.field_copies, log=_log)
    print(json.dumps({"model": str(args.out), "version": info.version, **info.metrics}))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _fit_detector(args: argparse.Namespace) -> int:
    from genre_model.realsounds import refit_detector

    info = refit_detector(args.model, args.music, args.sounds, generated=args.generated, c=args.c,
                          cache_dir=args.cache, field_copies=args.field_copies, log=_log)
    print(json.dumps({"model": str(args.model), "version": info.version, "detector": info.detector,
                      "examples": info.training["detector"]["examples"]}))
    return 0


def _cv(args: argparse.Namespace) -> int:
    from genre_model import plots
    from genre_model.evaluate import format_report
    from genre_model.train import cross_validate

    with _stdout_to_stderr():
        rep = cross_validate(args.data, _options(args), folds=args.folds, group_by=args.group_by, seeds=args.seeds)
    title = f"{args.folds}-fold CV grouped by {rep['grouping']} ({args.arch})"
    if args.confusion:
        plots.write(args.confusion, plots.confusion_image(rep["confusion"], rep["labels"], title))
    flagged = rep["flagged_not_music"]
    print(json.dumps(rep) if args.json else
          f"{title}, seeds {rep['seeds']}\n{format_report(rep)}\nfold accuracy: {rep['fold_accuracy']}\n"
          f"songs the held-out detector called not music: {len(flagged)}"
          + "".join(f"\n  {Path(f).name}" for f in flagged))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from genre_model import plots
    from genre_model.config import WINDOWS_EXTENSION
    from genre_model.dataset import load_dataset
    from genre_model.evaluate import format_report, report, score_tracks
    from genre_model.predict import Classifier

    clf = Classifier(args.model)
    tracks = load_dataset(args.data, clf.labels)
    not_music: list[dict[str, str]] = []

    def probabilities_of(track):
        """A song's genre probabilities; a file the model calls not music is set aside (not a genre error)."""
        if track.path.suffix.lower() == WINDOWS_EXTENSION:
            return clf.file_probabilities(track.path)
        pred = clf.predict(track.path)
        if not pred.music:
            not_music.append({"file": str(track.path), "label": track.label, "sound": pred.sound})
            return None
        return pred.probabilities_array(clf.labels)

    results, skipped = score_tracks(
        tracks, clf.labels, probabilities_of,
        progress=None if args.json else lambda i, n: print(f"\r{i}/{n} tracks", end="", file=sys.stderr))
    if not args.json:
        print(file=sys.stderr)
    rep = report(results, clf.labels)
    rep["per_genre"] = {g: m for g, m in rep["per_genre"].items() if m["support"] or m["predicted"]}
    rep.update(model_version=clf.version, skipped=skipped, not_music=not_music)
    if args.confusion:
        plots.write(args.confusion, plots.confusion_image(rep["confusion"], rep["labels"], f"model {clf.version}"))
    text = format_report(rep)
    if not_music:
        text += (f"\n\n{len(not_music)} of {len(not_music) + len(results)} songs called not music "
                 f"(set apart, not counted as genre errors):\n")
        text += "\n".join(f"  {m['file']} ({m['label']}): {m['sound']}" for m in not_music)
    if skipped:
        text += f"\n\nskipped {len(skipped)} unreadable file{'s' if len(skipped) > 1 else ''} (not scored):\n"
        text += "\n".join(f"  {s['file']}: {s['error']}" for s in skipped)
    print(json.dumps(rep) if args.json else text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from genre_model.predict import Classifier

    clf = Classifier(args.model, lazy=True)  # LiteRT loads while ffmpeg decodes the first file
    cfg = clf.info.features
    shortest = cfg.min_samples / cfg.sample_rate
    if args.max_seconds < shortest:
        raise GenreModelError(f"--max-seconds {args.max_seconds:g} is shorter than one analysis window "
                              f"({shortest:.1f} s): use at least {math.ceil(shortest)}")
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
            from genre_model import plots  # the picture's libraries: only when one is asked for

            out = args.image if len(args.files) <= 1 else args.image.with_stem(f"{args.image.stem}-{path.stem}")
            try:
                plots.write(out, pred.image(clf.labels, path.name))
            except OSError as exc:
                raise GenreModelError(f"cannot write {out}: {exc.strerror or exc}") from exc
        if args.json:
            print(json.dumps(pred.to_json(str(path))), flush=True)
        else:
            analysed = f"analysed {coverage(pred.analysed_s, pred.duration_s, pred.n_windows, pred.file_s)}"
            if not pred.music:
                print(f"{path}: {pred.verdict()}; {analysed}")
                continue
            ranked = ", ".join(f"{display_name(g)} {p:.0%}" for g, p in pred.top_k(args.top))
            tags = f"; tags (not genres): {', '.join(t for t, _ in pred.tags)}" if pred.tags else ""
            print(f"{path}: {pred.verdict()} ({ranked}){tags}; {analysed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
