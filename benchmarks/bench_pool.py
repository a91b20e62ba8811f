"""Throughput of the inference pool (clips per second) and its memory, this checkout against a baseline.

Each run starts a fresh Python in a checkout's own venv that brings up that checkout's
``InferencePool`` (``--workers`` spawn workers, as the bot does), warms it up, then hands
it ``--clips`` uploads at once (30 s, 44.1 kHz stereo MP3s, all different) and waits for
every result (decode, features, LiteRT, image: what the bot's worker does). Reported:
sustained clips per second (clips / wall time), and the peak RSS of the whole process tree
(the pool's process + workers + their ffmpeg children; psutil, every 50 ms) with the sum of
the workers' peaks. Runs alternate between the checkouts; figures are medians.

    .venv/bin/python benchmarks/bench_pool.py --baseline /work/wt/lean-baseline

Target (issue 8): at least 8 clips per second on 2 cores with 2 workers.
"""

from __future__ import annotations

import os

ENV = dict(os.environ)  # before anything below can change it

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import REPO, Checkout, write_mp3  # noqa: E402

CHILD = r"""
import asyncio, json, sys, tempfile, threading, time
from pathlib import Path
import psutil
workers, clip_dir = int(sys.argv[1]), Path(sys.argv[2])
try:
    from bot.inference.local import InferencePool
    from bot.model_store import ModelStore
except ImportError:  # the baseline: the pool still lived in the bot, and took a model folder
    from bot.pool import InferencePool
    ModelStore = None
from genre_model.config import DEFAULT_MODEL_DIR
clips = [(p.name, p.read_bytes()) for p in sorted(clip_dir.glob("*.mp3"))]
me = psutil.Process()
peak = {"total": 0, "workers": {}}
stop = threading.Event()
def sample():
    while not stop.is_set():
        try:
            total = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if child.pid in worker_pids:
                    peak["workers"][child.pid] = max(peak["workers"].get(child.pid, 0), rss)
            peak["total"] = max(peak["total"], total)
        except psutil.Error:
            pass
        time.sleep(0.05)
async def main():
    global worker_pids
    with tempfile.TemporaryDirectory() as tmp:
        if ModelStore is None:
            pool = InferencePool(DEFAULT_MODEL_DIR, workers=workers, max_queue=len(clips) + 1, timeout=600,
                                 tmp_dir=Path(tmp) / "scratch")
            await pool.start()
        else:  # models by version, from a store seeded with the shipped one
            store = ModelStore(Path(tmp) / "models", DEFAULT_MODEL_DIR)
            pool = InferencePool(store, workers=workers, max_queue=len(clips) + 1, timeout=600,
                                 tmp_dir=Path(tmp) / "scratch")
            await pool.start(store.seed_version())
        worker_pids = set(await pool.worker_pids())
        for name, data in clips[:workers]:  # warm-up: first request per worker
            await pool.classify(data, name, 600.0)
        idle = me.memory_info().rss + sum(psutil.Process(p).memory_info().rss for p in worker_pids)
        sampler = threading.Thread(target=sample, daemon=True); sampler.start()
        start = time.perf_counter()
        results = await asyncio.gather(*(pool.classify(data, name, 600.0) for name, data in clips))
        elapsed = time.perf_counter() - start
        stop.set(); sampler.join()
        await pool.close()
    assert all(r.image_png for r in results)
    print(json.dumps({"clips": len(clips), "seconds": elapsed, "clips_per_s": len(clips) / elapsed,
                      "idle_rss_mb": idle / 2**20, "peak_tree_rss_mb": peak["total"] / 2**20,
                      "peak_workers_rss_mb": sum(peak["workers"].values()) / 2**20}))
worker_pids = set()
asyncio.run(main())
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3, help="runs per checkout (alternating)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    checkouts = [Checkout("new", REPO)] + ([Checkout("baseline", args.baseline.resolve())] if args.baseline else [])
    runs: dict[str, list[dict]] = {c.name: [] for c in checkouts}
    with tempfile.TemporaryDirectory(prefix="bench_pool-") as tmp:
        for i in range(args.clips):
            write_mp3(Path(tmp) / f"clip{i:03d}.mp3", 30.0, seed=100 + i)
        for r in range(args.runs):
            for checkout in (checkouts if r % 2 == 0 else checkouts[::-1]):
                out = checkout.run(["-c", CHILD, str(args.workers), tmp], capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"{checkout.name}: {out.stderr[-2000:]}")
                runs[checkout.name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"run {r + 1}/{args.runs} done", file=sys.stderr, flush=True)
    keys = ("clips_per_s", "idle_rss_mb", "peak_tree_rss_mb", "peak_workers_rss_mb")
    report = {name: {k: statistics.median(x[k] for x in rs) for k in keys} for name, rs in runs.items()}
    if args.json:
        print(json.dumps({"workers": args.workers, "clips": args.clips, "runs": args.runs,
                          "load_average": os.getloadavg(), "checkouts": report}))
        return 0
    print(f"{args.clips} x 30 s MP3 at once, {args.workers} workers, {os.cpu_count()} CPUs; medians of {args.runs} "
          f"runs each; load average at the end {os.getloadavg()[0]:.1f}")
    print(f"{'checkout':<9} {'clips/s':>8} {'idle RSS':>9} {'peak RSS (tree)':>16} {'peak RSS (workers)':>19}")
    for name, f in report.items():
        print(f"{name:<9} {f['clips_per_s']:>8.2f} {f['idle_rss_mb']:>6.0f} MB {f['peak_tree_rss_mb']:>13.0f} MB "
              f"{f['peak_workers_rss_mb']:>16.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
