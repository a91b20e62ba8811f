"""Would a quantised LiteRT embedder do? Accuracy by artist, agreement, speed and size.

Needs the training extra (TensorFlow converts the artifact's ``embedder.keras``) and
scikit-learn (a test dependency, through librosa). For each variant of the embedder

* ``float``   -- the artifact's own ``embedder.tflite`` (float32);
* ``float16`` -- weights stored as float16 (``Optimize.DEFAULT`` + ``supported_types``);
* ``dynamic-int8`` -- dynamic-range quantisation (int8 weights, float activations);

it embeds the same windows of every track (all non-overlapping windows, as served),
then scores a standardised logistic-regression head on each track's mean window
embedding with genre_model's artist-grouped, genre-balanced 5-fold cross-validation
folds (``genre-model cv --group-by artist``; the same folds for every variant, several
fold seeds), and prints accuracy, balanced accuracy,
the rate at which the variant's predictions agree with float's, the largest embedding
difference, the median time of 8 windows through LiteRT (2 threads, one window per call,
and for float also all 8 in one call), the RSS the interpreter adds, and file size.

The acceptance rule (issue 8): a quantised embedder ships only if artist-grouped
accuracy drops by at most 0.5 point.

    .venv/bin/python benchmarks/bench_quantised.py --data ../shared/data/gtzan-trainval --cache /tmp/quant-cache
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


from genre_model.config import DEFAULT_MODEL_DIR  # noqa: E402

VARIANTS = ("float", "float16", "dynamic-int8")


def convert(model_dir: Path, out: Path) -> dict[str, Path]:
    """The embedder in each variant (float is the artifact's own file)."""
    import keras
    import tensorflow as tf

    import genre_model.model  # noqa: F401  (registers the custom layers)

    paths = {"float": model_dir / "embedder.tflite"}
    embedder = keras.models.load_model(model_dir / "embedder.keras")
    with tempfile.TemporaryDirectory() as tmp:
        embedder.export(tmp, format="tf_saved_model", verbose=False)
        for name in VARIANTS[1:]:
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if name == "float16":
                converter.target_spec.supported_types = [tf.float16]
            paths[name] = out / f"embedder-{name}.tflite"
            paths[name].write_bytes(converter.convert())
    return paths


def tracks(data: Path) -> list[dict[str, str]]:
    with (data / "MANIFEST.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "artist" not in rows[0]:
        raise SystemExit(f"{data}/MANIFEST.csv needs file, genre and artist columns")
    return rows


def window_sets(data: Path, rows: list[dict[str, str]], cache: Path) -> list[np.ndarray]:
    """Every track's non-overlapping windows (cached: decoding is the slow part)."""
    from genre_model.audio import load_audio
    from genre_model.features import MUSICNN_FEATURES, extract_windows

    out = []
    for i, row in enumerate(rows):
        path = cache / f"windows-{i:04d}.npy"
        if not path.is_file():
            samples = load_audio(data / row["file"], MUSICNN_FEATURES.sample_rate)
            np.save(path, extract_windows(samples, MUSICNN_FEATURES)[0])
        out.append(np.load(path))
    return out


def embed_all(model: Path, windows: list[np.ndarray], cache: Path, name: str) -> list[np.ndarray]:
    path = cache / f"embeddings-{name}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return [stored[f"t{i}"] for i in range(len(windows))]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model), num_threads=2)
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    embeddings = []
    for w in windows:
        rows = []
        for x in w:
            interp.set_tensor(inp["index"], x[None].astype(np.float32))
            interp.invoke()
            rows.append(interp.get_tensor(outp["index"])[0].copy())
        embeddings.append(np.stack(rows))
    np.savez(path, **{f"t{i}": e for i, e in enumerate(embeddings)})
    return embeddings


def artist_folds(data: Path, rows: list[dict[str, str]], seeds: list[int]) -> list[list[np.ndarray]]:
    """genre_model's artist-grouped, genre-balanced folds (``cv --group-by artist``), as row indices."""
    from genre_model.dataset import group_folds, load_dataset, regroup

    tracks = regroup(load_dataset(data), "artist")
    row_of = {(data / r["file"]).resolve(): i for i, r in enumerate(rows)}
    group_rows: dict[str, list[int]] = {}
    for t in tracks:
        group_rows.setdefault(t.group, []).append(row_of[Path(t.path).resolve()])
    return [[np.array(sorted(i for g in fold for i in group_rows[g])) for fold in group_folds(tracks, 5, seed)]
            for seed in seeds]


def cross_validate(x: np.ndarray, y: np.ndarray, folds_by_seed: list[list[np.ndarray]]) -> tuple[dict, np.ndarray]:
    """5-fold CV of a standardised logistic regression on the given folds; predictions per seed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    acc, bal, preds = [], [], []
    for folds in folds_by_seed:
        pred = np.full_like(y, -1)
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))
            pred[test] = clf.fit(x[train], y[train]).predict(x[test])
        assert (pred >= 0).all(), "every track is scored once"
        acc.append(accuracy_score(y, pred))
        bal.append(balanced_accuracy_score(y, pred))
        preds.append(pred)
    return {"accuracy": float(np.mean(acc)), "balanced_accuracy": float(np.mean(bal)),
            "accuracy_per_seed": [round(a, 4) for a in acc]}, np.stack(preds)


SPEED_CHILD = r"""
import json, statistics, sys, time, numpy as np, psutil
from ai_edge_litert.interpreter import Interpreter
path, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
proc = psutil.Process(); before = proc.memory_info().rss
interp = Interpreter(model_path=path, num_threads=2)
inp = interp.get_input_details()[0]
interp.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]]); interp.allocate_tensors()
x = np.random.default_rng(0).random((8, *inp["shape"][1:]), dtype=np.float32) * 3
def run():
    for i in range(0, 8, batch):
        interp.set_tensor(inp["index"], x[i:i + batch]); interp.invoke()
run(); times = []
for _ in range(rounds):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
print(json.dumps({"ms_8_windows": statistics.median(times) * 1000, "rss_mb": (proc.memory_info().rss - before) / 2**20}))
"""


def speed(paths: dict[str, tuple[Path, int]], rounds: int) -> dict[str, dict]:
    """Median time of 8 windows (batch of 1 or 8 per call), interleaved: each round runs every case in a
    fresh process; RSS is what the interpreter added (runtime, arena, XNNPACK buffers)."""
    samples: dict[str, list[dict]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, (path, batch) in paths.items():
            out = subprocess.run([sys.executable, "-c", SPEED_CHILD, str(path), "5", str(batch)], capture_output=True,
                                 text=True, check=True)
            samples[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {name: {"ms_8_windows": statistics.median(s["ms_8_windows"] for s in runs),
                   "rss_mb": statistics.median(s["rss_mb"] for s in runs)} for name, runs in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with MANIFEST.csv (file, genre, artist)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--cache", type=Path, required=True, help="folder for windows and embeddings")
    parser.add_argument("--seeds", type=int, default=3, help="fold seeds (the folds are the same for every variant)")
    parser.add_argument("--speed-rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)

    paths = convert(args.model, args.cache)
    rows = tracks(args.data)
    windows = window_sets(args.data, rows, args.cache)
    labels = sorted({r["genre"] for r in rows})
    y = np.array([labels.index(r["genre"]) for r in rows])
    seeds = list(range(args.seeds))
    folds = artist_folds(args.data, rows, seeds)
    report: dict[str, dict] = {}
    embeddings = {name: embed_all(path, windows, args.cache, name) for name, path in paths.items()}
    float_preds = None
    for name in paths:
        x = np.stack([e.mean(axis=0) for e in embeddings[name]])
        scores, preds = cross_validate(x, y, folds)
        if name == "float":
            float_preds = preds
        diff = max(float(np.abs(a - b).max()) for a, b in zip(embeddings[name], embeddings["float"]))
        report[name] = {**scores, "agreement_with_float": float(np.mean(preds == float_preds)),
                        "max_embedding_diff": diff, "size_kb": round(paths[name].stat().st_size / 1024)}
    cases = {name: (path, 1) for name, path in paths.items()} | {"float, batch 8": (paths["float"], 8)}
    timing = speed(cases, args.speed_rounds)
    for name in paths:
        report[name].update(timing[name])
    base = report["float"]
    for figures in report.values():
        drop = (base["accuracy"] - figures["accuracy"]) * 100
        figures["accuracy_drop_points"] = round(drop, 2)
        figures["accepted"] = drop <= 0.5
    if args.json:
        report["float, batch 8"] = timing["float, batch 8"]
        print(json.dumps({"tracks": len(rows), "named_artists": len({r["artist"] for r in rows if r["artist"]}), "seeds": seeds,
                          "variants": report}))
        return 0
    named = {r["artist"] for r in rows if r["artist"]}
    print(f"{len(rows)} tracks, {len(named)} named artists ({sum(not r['artist'] for r in rows)} tracks without); "
          f"genre_model's artist-grouped 5-fold CV "
          f"x {len(seeds)} seeds; standardised logistic regression on the mean window embedding")
    print(f"{'variant':<13} {'accuracy':>8} {'balanced':>8} {'drop':>6} {'agree':>6} {'max |d emb|':>11} "
          f"{'8 windows':>10} {'RSS':>7} {'size':>8}  verdict")
    for name, f in report.items():
        print(f"{name:<13} {f['accuracy']:>8.3f} {f['balanced_accuracy']:>8.3f} {f['accuracy_drop_points']:>5.2f}p "
              f"{f['agreement_with_float']:>6.1%} {f['max_embedding_diff']:>11.4f} {f['ms_8_windows']:>8.0f}ms "
              f"{f['rss_mb']:>5.0f}MB {f['size_kb']:>6}KB  {'reference' if name == 'float' else 'ok' if f['accepted'] else 'rejected'}")
    batched = timing["float, batch 8"]
    print(f"float, all 8 windows in one call: {batched['ms_8_windows']:.0f} ms, RSS {batched['rss_mb']:.0f} MB "
          f"(one window per call: {report['float']['ms_8_windows']:.0f} ms, {report['float']['rss_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
