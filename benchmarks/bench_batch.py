"""One LiteRT call per window, or one call for a song's windows? Interleaved rounds, medians.

    python benchmarks/bench_batch.py [--model DIR] [--windows 10] [--rounds 15] [--threads 2]

Each round embeds the same ``--windows`` windows (random, the model's input shape) once per
strategy, in alternating order; the interpreter of each strategy is kept warm at its batch size.
Prints the median milliseconds per song for each and the largest difference between their
embeddings, and the process's peak RSS after each (LiteRT keeps its working memory at the
largest batch it has seen).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--windows", type=int, default=10, help="windows per song (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT threads (default: %(default)s)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    import numpy as np

    from genre_model.config import DEFAULT_MODEL_DIR
    from genre_model.predict import _Runner
    from genre_model.artifact import load_info

    info = load_info(args.model or DEFAULT_MODEL_DIR)
    path = info.path("embedder.tflite")
    single, batched = _Runner(path, args.threads), _Runner(path, args.threads)
    rng = np.random.default_rng(0)
    windows = rng.uniform(0.0, 3.0, (args.windows, *info.features.input_shape)).astype(np.float32)

    def one_by_one() -> list[np.ndarray]:
        return [np.concatenate([o for o in single(windows[i:i + 1]).values()], axis=-1) for i in range(len(windows))]

    def at_once() -> np.ndarray:
        return np.concatenate(list(batched(windows).values()), axis=-1)

    a, b = np.concatenate(one_by_one()), at_once()  # warm both
    rss = {"one window per call": 0, "one call per song": 0}
    times: dict[str, list[float]] = {name: [] for name in rss}
    for r in range(args.rounds):
        order = [("one window per call", one_by_one), ("one call per song", at_once)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - started))
        rss["one call per song"] = max(rss["one call per song"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(f"{args.windows} windows, {args.rounds} interleaved rounds, {args.threads} threads; "
          f"max |difference| of the embeddings {float(np.abs(a - b).max()):.2e}")
    print("| strategy | median ms per song | min | max |\n|---|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.0f} | {min(ts):.0f} | {max(ts):.0f} |")
    print(f"peak RSS of this process (both interpreters): {rss['one call per song'] / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
