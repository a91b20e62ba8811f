"""Benchmark the serving path: decode -> features -> LiteRT inference -> image.

Usage::

    python benchmarks/bench_predict.py                      # default model, synthetic clips
    python benchmarks/bench_predict.py --model runs/model --runs 11 --json
    python benchmarks/bench_predict.py --file song.mp3 --file other.ogg

Without ``--file`` it synthesises two musical-ish clips (harmonics, a kick, noise;
44.1 kHz stereo MP3, like a typical upload): 30 s and 3 minutes. For each clip it
prints the median over ``--runs`` runs (after one warm-up) of

* ``decode``    -- :func:`genre_model.audio.load_audio`
* ``features``  -- :func:`~genre_model.features.log_mel` + window cut (``max_windows``)
* ``inference`` -- :meth:`Classifier.probabilities` (LiteRT embedder + head)
* ``image``     -- :meth:`Prediction.image` (the PNG the bot posts)
* ``total``     -- end to end: :meth:`Classifier.predict` + :meth:`Prediction.image`

plus the process RSS after loading the classifier (psutil). Times use
``time.perf_counter`` and exclude process start and model loading.

Targets (2 cores, excluding process start): end-to-end **< 0.35 s for a 30 s clip**
and **< 1.0 s for a 3-minute song**.

"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genre_model.config import DEFAULT_MODEL_DIR, MAX_AUDIO_SECONDS, MAX_WINDOWS  # noqa: E402

TARGETS = {30.0: 0.35, 180.0: 1.0}  # clip seconds -> end-to-end target (s)
STAGES = ("decode", "features", "inference", "image", "total")

def synth_music(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
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
    from pydub import AudioSegment

    sr = 44100
    pcm = (synth_music(seconds, sr, seed) * 32767).astype("<i2").tobytes()
    AudioSegment(data=pcm, sample_width=2, frame_rate=sr, channels=2).export(
        str(path), format="mp3", bitrate="192k").close()
    return path


def median_time(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_clip(clf, path: Path, runs: int, max_windows: int) -> dict:
    from genre_model.audio import load_audio
    from genre_model.features import cut_windows, log_mel, window_starts

    cfg = clf.info.features
    min_seconds = cfg.min_samples / cfg.sample_rate

    def decode():
        return load_audio(path, cfg.sample_rate, max_seconds=MAX_AUDIO_SECONDS, min_seconds=min_seconds)

    samples = decode()

    def features():
        spec = log_mel(samples, cfg)
        return cut_windows(spec, cfg, window_starts(spec.shape[-1], cfg, max_windows=max_windows))

    windows = features()
    pred = clf.predict(path, max_windows=max_windows)

    def total():
        clf.predict(path, max_windows=max_windows).image(clf.labels, path.name)

    result = {
        "file": str(path), "audio_s": round(samples.size / cfg.sample_rate, 2), "windows": int(windows.shape[0]),
        "decode": median_time(decode, runs),
        "features": median_time(features, runs),
        "inference": median_time(lambda: clf.probabilities(windows), runs),
        "image": median_time(lambda: pred.image(clf.labels, path.name), runs),
        "total": median_time(total, runs),
    }
    target = next((t for secs, t in TARGETS.items() if abs(result["audio_s"] - secs) < 1.0), None)
    result["target_s"] = target
    result["meets_target"] = None if target is None else result["total"] < target
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model directory (default: %(default)s)")
    parser.add_argument("--file", type=Path, action="append", default=[], help="clip(s) to use instead of synthetic ones")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per stage, after one warm-up")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT threads (default: the Classifier's)")
    parser.add_argument("--max-windows", type=int, default=MAX_WINDOWS)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    import psutil

    with tempfile.TemporaryDirectory(prefix="bench_predict-") as tmp:
        tmp = Path(tmp)
        model_dir = args.model
        if not (model_dir / "metadata.json").is_file():
            print(f"bench_predict: no model at {model_dir}. Train one (genre-model train ...) or pass --model DIR.",
                  file=sys.stderr)
            return 2

        clips = args.file or [write_mp3(tmp / "clip-30s.mp3", 30.0, seed=1),
                              write_mp3(tmp / "song-3min.mp3", 180.0, seed=2)]
        from genre_model.predict import Classifier

        process = psutil.Process()
        rss_before = process.memory_info().rss
        clf = Classifier(model_dir, num_threads=args.threads)
        rss_loaded = process.memory_info().rss
        results = [bench_clip(clf, Path(c), args.runs, args.max_windows) for c in clips]
        report = {
            "model": str(model_dir), "model_version": clf.version, "arch": clf.info.arch,
            "input_shape": list(clf.info.features.input_shape), "runs": args.runs, "cpus": os.cpu_count(),
            "affinity_cpus": len(process.cpu_affinity()) if hasattr(process, "cpu_affinity") else None,
            "rss_after_load_mb": round(rss_loaded / 2**20, 1),
            "rss_load_delta_mb": round((rss_loaded - rss_before) / 2**20, 1),
            "rss_after_runs_mb": round(process.memory_info().rss / 2**20, 1),
            "tensorflow_imported": "tensorflow" in sys.modules,
            "clips": results,
        }

    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model {report['model_version']} ({report['arch']}, input {tuple(report['input_shape'])}); "
          f"median of {args.runs} runs; {report['cpus']} CPUs")
    header = f"{'clip':<22} {'audio':>6} {'win':>4} " + " ".join(f"{s:>9}" for s in STAGES) + f" {'target':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        verdict = "" if r["target_s"] is None else f"<{r['target_s']:.2f} {'ok' if r['meets_target'] else 'MISS'}"
        print(f"{Path(r['file']).name[:22]:<22} {r['audio_s']:>5.0f}s {r['windows']:>4} "
              + " ".join(f"{r[s] * 1000:>7.1f}ms" for s in STAGES) + f" {verdict:>8}")
    print(f"RSS after loading the classifier: {report['rss_after_load_mb']} MB "
          f"(+{report['rss_load_delta_mb']} MB for the model); after the runs: {report['rss_after_runs_mb']} MB; "
          f"TensorFlow imported: {report['tensorflow_imported']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
