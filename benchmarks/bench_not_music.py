"""Real sounds vs real music: how often a model's sound detector says "not music", per category.

    python benchmarks/bench_not_music.py CORPUS [--model DIR] [--music DATA_DIR ...] [--refit] [--cache DIR]

CORPUS is a folder built by ``python -m genre_model.realsounds build`` (real recordings from
Debian packages, with its MANIFEST.csv). Prints, per category, how many clips the detector
called not music (for music rows: how many songs it wrongly called not music), the
category-balanced share of non-music caught, and false alarms on all music given.

``--refit`` also fits a detector on the same embeddings (plus ``--generated`` clips of each
generated kind in every training fold, as ``genre-model fit-detector`` does) and reports it on
groups it never saw: 5 grouped folds where a group is a source package (a music data folder's
tracks are grouped by artist), so no package is on both sides. Each table has a second count,
"or doubted": clips called not music or given a genre with "this may not be music" (probability
of music below the detector's doubt band, 0.5). Without ``--refit`` the model's own detector is measured
as it ships (its training music was GTZAN: pass held-out music only if you want a clean music figure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("corpus", type=Path, nargs="+", help="corpus folder(s) built by genre_model.realsounds")
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--music", type=Path, nargs="*", default=[], help="more music: genre folders or manifests")
    parser.add_argument("--refit", action="store_true", help="also refit the detector in grouped folds and report it")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0", help="fold seeds for --refit, e.g. 0,1,2")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the refitted detector")
    parser.add_argument("--generated", type=int, default=10,
                        help="generated clips of each kind added to every refit's training folds (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=None, help="where song embeddings are cached")
    parser.add_argument("--field-copies", default="",
                        help="field copies of the --music songs (room,phone) added as music, each in its song's group")
    parser.add_argument("--show", action="store_true", help="list the music called not music and the sounds missed")
    args = parser.parse_args(argv)

    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.predict import Classifier
    from genre_model.detector import DOUBT_BELOW, MUSIC_THRESHOLD
    from genre_model.realsounds import gather, generated_examples, grouped_evaluation

    clf = Classifier(args.model or DEFAULT_MODEL_DIR)
    ex = gather(clf, args.music, args.corpus, args.cache, log=lambda m: print(m, file=sys.stderr),
                field_copies=[n for n in args.field_copies.split(",") if n])
    if clf._detector is not None:
        judged = [clf._detector.judge(x) for x in ex.x]
        verdicts = [v for v, _ in judged]
        print(_table(ex, verdicts, [p["music"] for _, p in judged], clf._detector.threshold,
                     f"model {clf.version}: its own detector ({', '.join(clf._detector.sounds)}; "
                     f"threshold {clf._detector.threshold:g}, doubted below {DOUBT_BELOW:g})"))
        _show(args, ex, verdicts)
    if args.refit:
        extra = generated_examples(clf, args.generated) if args.generated else None
        for seed in [int(s) for s in args.seeds.split(",")]:
            verdicts, p_music = grouped_evaluation(ex, folds=args.folds, seed=seed, c=args.c, extra=extra)
            print()
            print(_table(ex, verdicts, p_music, MUSIC_THRESHOLD,
                         f"refitted on real sounds (+{args.generated} generated clips per kind), {args.folds} folds "
                         f"grouped by package/artist, seed {seed}; threshold {MUSIC_THRESHOLD:g}"))
            _show(args, ex, verdicts)
    return 0


def _table(ex, verdicts: list[str], p_music: list[float], threshold: float, title: str) -> str:
    """The per-category table, with a last column counting clips called not music *or* doubted."""
    from genre_model.detector import DOUBT_BELOW
    from genre_model.realsounds import category_table, format_table

    doubted = ["sound" if v != "music" or threshold <= p < DOUBT_BELOW else "music" for v, p in zip(verdicts, p_music)]
    rows, balanced, alarms, n_music = category_table(ex.categories, verdicts)
    rows2, balanced2, alarms2, _ = category_table(ex.categories, doubted)
    lines = format_table(rows, balanced, alarms, n_music, title=title).splitlines()
    out = [lines[0], lines[1] + "  or doubted"]
    for line, (_, hit2, _) in zip(lines[2:2 + len(rows)], rows2):
        out.append(f"{line:<58}{hit2:>6}")
    out += lines[2 + len(rows):]
    out.append(f"called not music or doubted: {balanced2:.3f} of non-music (category-balanced); "
               f"real music doubted or called not music: {alarms2} of {n_music}")
    return "\n".join(out)


def _show(args, ex, verdicts) -> None:
    if not args.show:
        return
    for name, category, verdict in zip(ex.names, ex.categories, verdicts):
        if (verdict == "music") != category.startswith("music"):
            print(f"  {'FALSE ALARM' if category.startswith('music') else 'missed'} [{category}] {name} -> {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
