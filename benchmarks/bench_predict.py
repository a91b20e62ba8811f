"""Benchmark prediction, this checkout against a baseline checkout, interleaved in one run.

Usage::

    bash benchmarks/make_baseline.sh <previous main> ../genrebot-baseline   # once: that main + its venv
    .venv/bin/python benchmarks/bench_predict.py --baseline ../genrebot-baseline
    .venv/bin/python benchmarks/bench_predict.py --rounds 11 --json    # this checkout only

It synthesises musical-ish clips (harmonics, a kick, noise; 44.1 kHz stereo 192 kbit/s MP3, like
a typical upload): 30 s, 3 minutes, and 20 minutes (the 3-minute one looped), and measures, for
each checkout:

* **whole process**: ``genre-model predict CLIP --json`` from process start to exit, on the
  3-minute and the 20-minute MP3, against ``ffmpeg`` alone decoding the whole file to 16 kHz
  mono (``-ac 1 -ar 16000``, to /dev/null);
* **in process** (a fresh Python per round; model loading excluded): ``read`` (what the
  checkout decodes for a prediction: ``read_song``, or ``load_audio`` before it existed),
  ``features`` (log-mel + windows), ``inference`` (LiteRT embedder + head on those windows),
  ``image`` (the PNG the bot posts) and ``total`` = ``predict`` + ``image``, end to end, as the
  bot's worker does it.

Rounds alternate the checkouts (and ffmpeg), so both see the same machine load; figures are
medians over all rounds. Every checkout runs with the environment this script was started
with (nothing it sets itself leaks into the baseline).

Targets (issue 17, 2 cores): whole process <= 1.5x ffmpeg alone on the 3-minute MP3 (aim 1.0x),
the 20-minute MP3 within 1.2x the 3-minute one; in process <= 0.2 s for the 30-s clip.
"""

from __future__ import annotations

import os

ENV = dict(os.environ)  # before anything below can change it

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAGES = ("read", "features", "inference", "image", "total")
TARGETS = {"30s": 0.2}
CLIPS = {"30s": 30.0, "3min": 180.0, "20min": 1200.0}
#: Clips timed as whole processes.
WHOLE = ("3min", "20min")

#: Runs inside a checkout's own interpreter: argv = model-less (default), reps, clip paths.
CHILD = r"""
import json, statistics, sys, time
reps, clips = int(sys.argv[1]), sys.argv[2:]
from genre_model.audio import load_audio
from genre_model.config import MAX_AUDIO_SECONDS, MAX_WINDOWS
from genre_model.features import cut_windows, log_mel, window_starts
from genre_model.predict import Classifier
clf = Classifier()
cfg = clf.info.features
def timed(fn):
    fn()  # warm-up
    out = []
    for _ in range(reps):
        start = time.perf_counter(); fn(); out.append(time.perf_counter() - start)
    return out
result = {}
for path in clips:
    try:  # the serving path's own reader: only the windows' pieces of a seekable file
        from genre_model.reading import read_song
        from genre_model.features import song_features
        from genre_model.predict import OVERVIEW_FRAMES
        read = lambda: read_song(path, cfg, MAX_WINDOWS)
        song = read()
        def features():
            return song_features(song.excerpts, cfg, song.starts, OVERVIEW_FRAMES)[0]
    except ImportError:  # a baseline that decodes the whole song (its first MAX_AUDIO_SECONDS)
        read = lambda: load_audio(path, cfg.sample_rate, max_seconds=MAX_AUDIO_SECONDS, min_seconds=cfg.min_samples / cfg.sample_rate)
        samples = read()
        try:
            from genre_model.features import song_features, song_window_starts
            from genre_model.predict import OVERVIEW_FRAMES
            def features():
                starts = song_window_starts(1 + samples.size // cfg.hop_length, cfg, MAX_WINDOWS)
                return song_features(samples, cfg, starts, OVERVIEW_FRAMES)[0]
        except ImportError:
            def features():
                spec = log_mel(samples, cfg)
                return cut_windows(spec, cfg, window_starts(spec.shape[-1], cfg, max_windows=MAX_WINDOWS))
    windows = features()
    pred = clf.predict(path)
    result[path] = {
        "windows": int(len(windows)),
        "read": timed(read), "features": timed(features),
        "inference": timed(lambda: clf.probabilities(windows)),
        "image": timed(lambda: pred.image(clf.labels, "clip")),
        "total": timed(lambda: clf.predict(path).image(clf.labels, "clip")),
    }
print(json.dumps(result))
"""


def synth_music(seconds: float, sr: int, seed: int) -> np.ndarray:
    """Stereo float32 ``(n, 2)``: a triad with harmonics, a kick on every beat, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr), dtype=np.float64) / sr
    f0, beat = rng.uniform(110, 220), 60.0 / rng.uniform(90, 140)
    x = np.zeros_like(t)
    for ratio in (1.0, 1.25, 1.5):
        for k in range(1, 5):
            x += (0.12 / k) * np.sin(2 * np.pi * f0 * ratio * k * t + rng.uniform(0, 2 * np.pi))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.1 * t) ** 2
    phase = np.mod(t, beat)
    x += 0.5 * np.exp(-phase * 30.0) * np.sin(2 * np.pi * 60.0 * phase)
    x += 0.02 * rng.standard_normal(t.size)
    x = 0.8 * x / np.max(np.abs(x))
    return np.stack([x, 0.9 * x], axis=1).astype(np.float32)


def write_mp3(path: Path, seconds: float, seed: int) -> Path:
    """A 44.1 kHz stereo 192 kbit/s MP3 (encoded by ffmpeg from raw PCM)."""
    pcm = (synth_music(seconds, 44100, seed) * 32767).astype("<i2").tobytes()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "s16le", "-ar", "44100", "-ac", "2", "-i", "pipe:0",
                    "-b:a", "192k", str(path)], input=pcm, check=True)
    return path


class Checkout:
    """A source tree with its own ``.venv`` (this one, or a baseline made by make_baseline.sh)."""

    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        self.python = root / ".venv" / "bin" / "python"
        if not self.python.is_file():
            raise SystemExit(f"{root}: no .venv (run scripts/setup.sh or benchmarks/make_baseline.sh there)")

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        env = {**ENV, "PYTHONPATH": str(self.root)}
        return subprocess.run([str(self.python), *argv], cwd=self.root, env=env, **kwargs)


def whole_process(checkout: Checkout, clip: Path) -> float:
    start = time.perf_counter()
    out = checkout.run(["-m", "genre_model.cli", "predict", str(clip), "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{checkout.name}: predict failed: {out.stderr}")
    json.loads(out.stdout)
    return elapsed


def loop_mp3(source: Path, path: Path, seconds: float) -> Path:
    """``source`` repeated to ``seconds`` (re-encoded the same way: one long MP3 as an upload would be)."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(source), "-t", f"{seconds}",
                    "-b:a", "192k", str(path)], check=True)
    return path


def ffmpeg_alone(clip: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-ac", "1", "-ar", "16000", "-f", "s16le",
                    "-y", "/dev/null"], check=True, env=ENV)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=None, help="a checkout of the previous main with its .venv")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (fresh processes each)")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per stage in each in-process round")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is not installed")

    checkouts = [Checkout("new", REPO)] + ([Checkout("baseline", args.baseline.resolve())] if args.baseline else [])
    cli = {key: {c.name: [] for c in checkouts} | {"ffmpeg": []} for key in WHOLE}
    stages: dict[str, dict[str, dict[str, list[float]]]] = {c.name: {k: {s: [] for s in STAGES} for k in CLIPS}
                                                           for c in checkouts}
    windows: dict[str, dict[str, int]] = {c.name: {} for c in checkouts}
    with tempfile.TemporaryDirectory(prefix="bench_predict-") as tmp:
        clips = {key: write_mp3(Path(tmp) / f"clip-{key}.mp3", seconds, seed=i + 1)
                 for i, (key, seconds) in enumerate(CLIPS.items()) if seconds <= 180}
        clips["20min"] = loop_mp3(clips["3min"], Path(tmp) / "clip-20min.mp3", CLIPS["20min"])
        for r in range(args.rounds):
            order = checkouts if r % 2 == 0 else checkouts[::-1]
            for key in WHOLE:
                for checkout in order:
                    cli[key][checkout.name].append(whole_process(checkout, clips[key]))
                cli[key]["ffmpeg"].append(ffmpeg_alone(clips[key]))
            for checkout in order:
                out = checkout.run(["-c", CHILD, str(args.reps), *map(str, clips.values())], capture_output=True,
                                   text=True)
                if out.returncode != 0:
                    raise SystemExit(f"{checkout.name}: {out.stderr}")
                per_clip = json.loads(out.stdout.strip().splitlines()[-1])
                for key, path in clips.items():
                    figures = per_clip[str(path)]
                    windows[checkout.name][key] = figures["windows"]
                    for stage in STAGES:
                        stages[checkout.name][key][stage] += figures[stage]
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    med = statistics.median
    report = {
        "rounds": args.rounds, "reps": args.reps, "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "whole_process_s": {key: {name: med(v) for name, v in by.items()} for key, by in cli.items()},
        "in_process_s": {name: {key: {s: med(v) for s, v in per.items()} for key, per in by_clip.items()}
                         for name, by_clip in stages.items()},
        "windows": windows,
    }
    report["ratio_to_ffmpeg"] = {key: {c.name: w[c.name] / w["ffmpeg"] for c in checkouts}
                                 for key, w in report["whole_process_s"].items()}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"median of {args.rounds} interleaved rounds ({args.reps} reps each in process); "
          f"{report['cpus']} CPUs; load average at the end {report['load_average'][0]:.1f}")
    print("\nwhole process (target: <= 1.5x ffmpeg alone on 3 minutes, aim 1.0x; 20 minutes <= 1.2x 3 minutes)")
    for key in WHOLE:
        w = report["whole_process_s"][key]
        print(f"  {key:<5} ffmpeg alone (whole file, 16 kHz mono)  {w['ffmpeg'] * 1000:7.0f} ms")
        for c in checkouts:
            print(f"  {key:<5} genre-model predict --json [{c.name:<8}] {w[c.name] * 1000:7.0f} ms  = "
                  f"{report['ratio_to_ffmpeg'][key][c.name]:.2f}x ffmpeg")
    for c in checkouts:
        long, short = report["whole_process_s"]["20min"][c.name], report["whole_process_s"]["3min"][c.name]
        print(f"  20 min / 3 min [{c.name}]: {long / short:.2f}x")
    print("\nin process (model loaded), medians")
    header = f"  {'clip':<5} {'checkout':<9} {'win':>3} " + " ".join(f"{s:>10}" for s in STAGES) + "   target"
    print(header)
    for key in CLIPS:
        for c in checkouts:
            f = report["in_process_s"][c.name][key]
            verdict = (f"<= {TARGETS[key]:.2f} s {'ok' if f['total'] <= TARGETS[key] else 'MISSED'}"
                       if key in TARGETS else "")
            print(f"  {key:<5} {c.name:<9} {windows[c.name][key]:>3} "
                  + " ".join(f"{f[s] * 1000:>8.0f}ms" for s in STAGES) + f"   {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
