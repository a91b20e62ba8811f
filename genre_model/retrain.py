"""Retraining and the promotion rule, run as its own process: ``python -m genre_model.retrain ...``.

It trains a candidate on the base data plus the exported corrections and scores it,
through the serving path (LiteRT), on one fixed held-out set of songs by artists (and
uploaders) it never heard:

* the base data's part is a fixed split **by artist** where the data names artists (by
  track group otherwise), stratified by genre, the same on every retrain;
* corrections are grouped by uploader and file hash (the export's ``group``); a group
  is held out when a stable hash of its name says so, so a candidate cannot win by
  memorising one member's uploads.

The candidate is promoted only if it is not worse on accuracy and on balanced accuracy
than the *reference*: the live model when it was trained with this same held-out set
kept out (its metadata records the set's fingerprint), otherwise (e.g. the shipped model,
which heard all the base data) the live recipe trained on the same base part without the
corrections, so a leaky live model cannot block every candidate. Progress and the verdict
are JSON lines on stdout, so the bot can relay them without sharing memory with
TensorFlow; the bot never imports TensorFlow and starts this module with :func:`command`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
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
HOLDOUT_SCORES = ("n_tracks", "accuracy", "balanced_accuracy", "macro_f1", "ece")
#: Set by the process that starts a retrain (the bot) to its pid: the retrain then dies with it.
PARENT_PID_ENV = "GENRE_MODEL_PARENT_PID"


@dataclasses.dataclass(frozen=True)
class RetrainRequest:
    """What to retrain from and where to write the candidate: the process's command line, typed."""

    base: Path
    live: Path
    out: Path
    corrections: Path | None = None
    holdout: Path | None = None
    cache: Path | None = None
    epochs: int = 0

    def argv(self) -> list[str]:
        """The command that runs this request in a fresh Python process (:func:`main` reads it back)."""
        argv = [sys.executable, "-m", "genre_model.retrain", "--base", str(self.base), "--live", str(self.live),
                "--out", str(self.out)]
        for flag, value in (("--corrections", self.corrections), ("--holdout", self.holdout), ("--cache", self.cache)):
            if value is not None:
                argv += [flag, str(value)]
        return argv + (["--epochs", str(self.epochs)] if self.epochs else [])

    @classmethod
    def parse(cls, argv: Sequence[str] | None = None) -> "RetrainRequest":
        parser = argparse.ArgumentParser(prog="python -m genre_model.retrain", description=__doc__)
        parser.add_argument("--base", type=Path, required=True, help="base training data (genre folders or manifest)")
        parser.add_argument("--corrections", type=Path, default=None,
                            help="exported corrections (genre-bot export-corrections)")
        parser.add_argument("--holdout", type=Path, default=None,
                            help="fixed held-out data (default: a fixed split of --base)")
        parser.add_argument("--live", type=Path, required=True, help="the live model directory")
        parser.add_argument("--out", type=Path, required=True, help="where to write the candidate model")
        parser.add_argument("--cache", type=Path, default=None,
                            help="folder for cached embeddings (kept between retrains)")
        parser.add_argument("--epochs", type=int, default=0)
        return cls(**vars(parser.parse_args(argv)))


@dataclasses.dataclass(frozen=True)
class Progress:
    """A line of progress, for the admin who asked."""

    message: str


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    """The verdict: the candidate ``version`` at ``path``, whether to ``promote`` it and why, and the
    held-out scores of the candidate and of the ``reference`` it was compared with."""

    promote: bool
    reason: str
    version: str
    path: str
    candidate: dict[str, Any]
    reference: dict[str, Any]
    reference_name: str


@dataclasses.dataclass(frozen=True)
class RetrainFailed:
    """Why the retrain could not finish, in one readable line."""

    message: str


Event = Progress | RetrainResult | RetrainFailed
_EVENTS: dict[str, type] = {"progress": Progress, "result": RetrainResult, "error": RetrainFailed}


def write_event(event: Event) -> None:
    """One event as a JSON line on stdout (:func:`read_event` reads it back)."""
    name = next(k for k, v in _EVENTS.items() if isinstance(event, v))
    print(json.dumps({"event": name, **dataclasses.asdict(event)}), flush=True)


def read_event(line: bytes | str) -> Event | None:
    """The event a line of the retrain process's stdout carries, or None for any other line."""
    try:
        data = json.loads(line)
        kind = _EVENTS[data.pop("event")]
        return kind(**data)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def not_worse(candidate: dict[str, Any], live: dict[str, Any]) -> tuple[bool, str]:
    """The promotion rule: accuracy and balanced accuracy both at least the live model's."""
    c = (candidate["accuracy"], candidate["balanced_accuracy"])
    l_ = (live["accuracy"], live["balanced_accuracy"])
    if c[0] >= l_[0] and c[1] >= l_[1]:
        return True, f"candidate {c[0]:.1%} / {c[1]:.1%} balanced vs live {l_[0]:.1%} / {l_[1]:.1%}"
    return False, f"candidate is worse: {c[0]:.1%} / {c[1]:.1%} balanced vs live {l_[0]:.1%} / {l_[1]:.1%}"


def same_recipe(saved: dict[str, Any], *, arch: str, epochs: int, cache_dir: Path | None):
    """The live model's training options (as recorded in its metadata), with a new cache and epoch cap."""
    from genre_model.recipe import TrainOptions

    known = {f.name for f in dataclasses.fields(TrainOptions)} - {"cache_dir", "epochs"}
    options = TrainOptions(**{k: v for k, v in saved.items() if k in known})
    return dataclasses.replace(options, arch=arch, epochs=epochs or options.epochs, cache_dir=cache_dir)


def _stable_share(group: str, fraction: float) -> bool:
    """True for about ``fraction`` of group names, always the same ones (no seed, no state)."""
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 0x100000000 < fraction


def holdout_split(base: Sequence[Any], corrections: Sequence[Any] = ()) -> tuple[list[Any], list[Any]]:
    """(tracks a candidate may learn from, the fixed held-out tracks); see the module docstring."""
    from genre_model.dataset import default_grouping, regroup, split_tracks

    grouped = regroup(base, default_grouping(base))
    learn, held = split_tracks(grouped, HOLDOUT_FRACTION, HOLDOUT_SEED)
    for track in corrections:
        (held if _stable_share(track.group, HOLDOUT_FRACTION) else learn).append(track)
    return learn, held


def fingerprint(tracks: Sequence[Any]) -> str:
    """Identifies a held-out set (its files' contents), recorded in every candidate's metadata."""
    from genre_model.artifact import sha256

    return hashlib.sha256("\n".join(sorted(sha256(t.path) for t in tracks)).encode()).hexdigest()[:16]


def run(request: RetrainRequest) -> int:
    """Train, score and judge a candidate; the events go to stdout (:func:`write_event`)."""
    from genre_model.artifact import load_info, update_training
    from genre_model.dataset import ManifestRow, load_dataset, write_manifest
    from genre_model.evaluate import report, score_tracks
    from genre_model.predict import Classifier
    from genre_model.train import train as train_model

    live_info = load_info(request.live)
    base = load_dataset(request.base, live_info.labels)
    corrections = load_dataset(request.corrections, live_info.labels) if request.corrections else []
    if request.holdout:
        learn, holdout = list(base) + list(corrections), load_dataset(request.holdout, live_info.labels)
    else:
        learn, holdout = holdout_split(base, corrections)
    mark = fingerprint(holdout)
    opts = same_recipe(live_info.training.get("options", {}), arch=live_info.arch, epochs=request.epochs,
                       cache_dir=request.cache)
    learn_corrections = [t for t in learn if t.is_windows]
    write_event(Progress(f"training a {live_info.arch} candidate on {len(learn) - len(learn_corrections)} base "
                             f"tracks + {len(learn_corrections)} corrections; {len(holdout)} held out"))
    with tempfile.TemporaryDirectory(prefix="genrebot-retrain-") as tmp:
        def fit(tracks: Sequence[Any], out: Path) -> Any:
            manifest = Path(tmp) / f"{out.name}.csv"
            write_manifest(manifest, [ManifestRow.of(t) for t in tracks])
            info = train_model([manifest], out, opts, log=lambda m: write_event(Progress(m)), verbose=0)
            update_training(out, holdout_fingerprint=mark)
            return info

        candidate_info = fit(learn, request.out)
        if keep_detector(request.live, request.out):
            write_event(Progress("kept the live model's sound detector (learnt from real sounds; same embedder)"))
        reference, reference_name = request.live, "live"
        if live_info.training.get("holdout_fingerprint") != mark:
            write_event(Progress("the live model heard some held-out songs: training a reference without "
                                 "the corrections to compare with"))
            reference, reference_name = Path(tmp) / "reference", "reference"
            fit([t for t in learn if not t.is_windows], reference)
        write_event(Progress(f"scoring candidate and {reference_name} model on {len(holdout)} held-out songs"))
        scores = {}
        for name, model_dir in (("candidate", request.out), (reference_name, reference)):
            clf = Classifier(model_dir)
            results, _ = score_tracks(holdout, clf.labels, lambda t: clf.file_probabilities(t.path))
            rep = report(results, clf.labels)
            scores[name] = {k: rep[k] for k in HOLDOUT_SCORES}
    promote, reason = not_worse(scores["candidate"], scores[reference_name])
    write_event(RetrainResult(promote, f"{reason} ({reference_name}, {len(holdout)} held-out songs)",
                              candidate_info.version, str(request.out), scores["candidate"], scores[reference_name],
                              reference_name))
    return 0


def keep_detector(live: Path, candidate: Path) -> bool:
    """Give ``candidate`` the live model's sound detector when that one learnt from real sounds (it
    has the "sound" class; ``train`` alone fits generated clips only) and both models embed songs
    alike (musicnn's frozen backbone, the same feature settings): a retrain changes the genre head,
    not what the embedder hears. Returns whether the detector was kept."""
    from genre_model.artifact import load_detector, load_info, replace_detector

    live_info, candidate_info = load_info(live), load_info(candidate)
    detector = load_detector(live_info)
    if detector is None or "sound" not in detector.sounds:
        return False
    if not (live_info.arch == candidate_info.arch == "musicnn" and live_info.features == candidate_info.features):
        return False
    replace_detector(candidate, detector, kept_from=live_info.version,
                     **{k: v for k, v in live_info.training.get("detector", {}).items() if k != "kept_from"})
    return True


def die_with_parent() -> None:
    """When started by a bot (``GENRE_MODEL_PARENT_PID``): ask Linux to SIGKILL this process when its
    parent dies (``prctl(PR_SET_PDEATHSIG)``, kept across exec, even if the parent is SIGKILLed), and
    exit at once if the parent is already gone. Elsewhere (no such variable, not Linux) nothing."""
    import os

    parent = os.environ.get(PARENT_PID_ENV, "")
    if not parent.isdigit():
        return
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            print(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}", file=sys.stderr)
    if os.getppid() != int(parent):  # the parent died before the request above took effect
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> int:
    die_with_parent()
    request = RetrainRequest.parse(argv)
    try:
        return run(request)
    except GenreModelError as exc:  # a reason the admin can act on (bad data, no training extra): one line
        write_event(RetrainFailed(str(exc)))
        return 1
    except Exception as exc:  # report every failure as one readable line, details on stderr
        traceback.print_exc()
        write_event(RetrainFailed(f"{type(exc).__name__}: {exc}"))
        return 1


if __name__ == "__main__":
    sys.exit(main())
