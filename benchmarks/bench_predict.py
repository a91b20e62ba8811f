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

If the model directory does not exist (the default model is not trained yet), the
benchmark says so and, by default, builds a throwaway *untrained* full-size CNN
artifact (``--fallback cnn``: same network and features as ``--arch cnn``, so the same
compute; a musicnn model will differ) in a subprocess, so this process never imports
TensorFlow and its RSS stays that of a serving worker. ``--fallback tiny`` builds a
very small model instead; ``--fallback none`` just exits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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

_BUILD_FALLBACK = r"""
import sys
import numpy as np
import keras
from genre_model.artifact import save_artifact
from genre_model.config import GENRES
from genre_model.features import CNN_FEATURES, FeatureConfig
from genre_model.model import build_cnn, split_cnn

kind, out = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)
if kind == "tiny":
    features = FeatureConfig(n_fft=1024, n_mels=32, window_frames=32).with_normalisation(
        np.array([-30.0, 0.0, 0.0]), np.array([20.0, 1.5, 1.0]))
    model = build_cnn(features, len(GENRES), filters=(4, 8), embedding_dim=16)
else:
    features = CNN_FEATURES.with_normalisation(np.array([-30.0, 0.0, 0.0]), np.array([20.0, 1.5, 1.0]))
    model = build_cnn(features, len(GENRES))
embedder, head = split_cnn(model)
save_artifact(out, embedder=embedder, head=head, arch="cnn", labels=GENRES, features=features,
              temperature=1.0, training={"note": "untrained benchmark stand-in"}, metrics={},
              version=f"bench-{kind}-untrained")
"""


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


def build_fallback(kind: str, out: Path) -> Path:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", _BUILD_FALLBACK, kind, str(out)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"bench_predict: could not build the {kind} stand-in model (see above)")
    return out


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
    parser.add_argument("--fallback", choices=("cnn", "tiny", "none"), default="cnn",
                        help="what to benchmark when --model does not exist")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)

    import psutil

    with tempfile.TemporaryDirectory(prefix="bench_predict-") as tmp:
        tmp = Path(tmp)
        model_dir, note = args.model, ""
        if not (model_dir / "metadata.json").is_file():
            if args.fallback == "none":
                print(f"bench_predict: no model at {model_dir}. Train one (genre-model train ...) or pass --model DIR.",
                      file=sys.stderr)
                return 2
            note = (f"no model at {model_dir}; benchmarking a throwaway UNTRAINED {args.fallback} model "
                    f"(built with TensorFlow in a subprocess)")
            print(f"bench_predict: {note}", file=sys.stderr)
            model_dir = build_fallback(args.fallback, tmp / f"fallback-{args.fallback}")

        clips = args.file or [write_mp3(tmp / "clip-30s.mp3", 30.0, seed=1),
                              write_mp3(tmp / "song-3min.mp3", 180.0, seed=2)]
        from genre_model.predict import Classifier

        process = psutil.Process()
        rss_before = process.memory_info().rss
        clf = Classifier(model_dir, num_threads=args.threads)
        rss_loaded = process.memory_info().rss
        results = [bench_clip(clf, Path(c), args.runs, args.max_windows) for c in clips]
        report = {
            "model": str(model_dir), "model_version": clf.version, "arch": clf.info.arch, "note": note,
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
    if note:
        print(f"NOTE: {note}")
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
