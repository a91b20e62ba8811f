"""Scale benchmark: a burst of /genre through the fake Discord server, on each inference backend.

In one run, the real bot (in this process, as in the end-to-end tests) answers the same
burst of ``--requests`` /genre commands (30 s MP3s, one per user, no cooldown) with:

* the local process pool (``--workers`` workers),
* Ray Serve with 1 replica, and with 2 replicas (``--replica-cpus`` CPUs each), on a local
  Ray instance started here with ``--ray-cpus`` CPUs (the local pool runs before Ray starts).

For each it prints throughput (results per second, first request to last reply), p50 / p95
reply latency, and the CPU time the workers or replicas spent per song (psutil, summed
over their processes). From the CPU cost per song it prints a capacity estimate: songs per
second for N machines of C cores, each core running one worker or replica.

    .venv/bin/python benchmarks/bench_scale.py                 # 24 requests, 2 workers, 1 and 2 replicas
    .venv/bin/python benchmarks/bench_scale.py --requests 40 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


import psutil  # noqa: E402
from testkit.botharness import USER_ID, fake_discord, make_settings, running_bot  # noqa: E402
from testkit.audio import encode, synth_music  # noqa: E402
from testkit.loadgen import fire, summary  # noqa: E402

SR = 22050


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def scenario(name: str, songs, args, tmp: Path, **overrides) -> dict:
    async with fake_discord() as server:
        settings = make_settings(tmp / name, server, queue_limit=max(64, args.requests), cooldown_seconds=0.0,
                                 inference_timeout=args.timeout, **overrides)
        async with running_bot(server, settings) as run:
            inference = run.bot.inference
            await fire(server, songs[:1], requests=1, users=1, spread=0.0, user_base=USER_ID + 99, timeout=120)
            pids = await inference.worker_pids()
            cpu_before = cpu_seconds(pids)
            started = time.monotonic()
            shots = await fire(server, songs, requests=args.requests, users=args.requests, spread=args.spread,
                               user_base=USER_ID + 1000, timeout=args.timeout)
            replied = [s.replied_at for s in shots if s.replied_at is not None]
            elapsed = (max(replied) if replied else time.monotonic()) - started
            cpu = cpu_seconds(pids) - cpu_before
    figures = summary(shots)
    results = figures["result"]
    figures.update(scenario=name, workers=len(pids), elapsed_s=round(elapsed, 2),
                   throughput_per_s=round(results / elapsed, 3) if elapsed else None,
                   cpu_s_per_song=round(cpu / results, 3) if results else None)
    return figures


async def run(args: argparse.Namespace) -> list[dict]:
    logging.getLogger("ray").setLevel(logging.WARNING)
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        songs = []
        for i in range(3):
            path = encode(synth_music(30.0, SR, seed=200 + i), tmp / f"song{i}.mp3", SR, "mp3")
            songs.append((path.name, path.read_bytes()))
        out.append(await scenario("local pool", songs, args, tmp, inference="local", workers=args.workers))
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        ray.init(address="local", num_cpus=args.ray_cpus, include_dashboard=False, namespace="genrebot",
                 object_store_memory=128 * 1024 * 1024, log_to_driver=False)
        try:
            for replicas in (1, 2):
                out.append(await scenario(f"ray serve x{replicas}", songs, args, tmp, inference="ray",
                                          ray_replicas=replicas, ray_replica_cpus=args.replica_cpus))
        finally:
            from ray import serve

            serve.shutdown()
            ray.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--spread", type=float, default=0.5, help="seconds over which the burst is sent")
    parser.add_argument("--workers", type=int, default=2, help="local pool workers")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--replica-cpus", type=float, default=1.0)
    parser.add_argument("--cores", type=int, default=16, help="cores per machine for the capacity estimate")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args))
    if args.json:
        print(json.dumps(rows))
        return 0
    ms = lambda s: "n/a" if s is None else f"{s * 1000:.0f} ms"  # noqa: E731
    print(f"burst of {args.requests} /genre (30 s MP3s, one per user) over {args.spread:g} s; "
          f"{os.cpu_count()} cores on this machine, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'backend':<15} {'procs':>5} {'results':>7} {'errors':>6} {'lost':>4} {'songs/s':>8} {'p50':>9} {'p95':>9} "
          f"{'CPU/song':>9}")
    for r in rows:
        print(f"{r['scenario']:<15} {r['workers']:>5} {r['result']:>7} {r['error']:>6} {r['lost']:>4} "
              f"{r['throughput_per_s']:>8} "
              f"{ms(r['p50_s']):>9} {ms(r['p95_s']):>9} {r['cpu_s_per_song']:>8}s")
    costs = [r["cpu_s_per_song"] for r in rows if r["cpu_s_per_song"]]
    cost = statistics.median(costs)
    per_core = 1.0 / cost
    print(f"\ncapacity estimate from the median CPU cost per song ({cost:.2f} s; one worker or replica per core,"
          f" inference CPU only):")
    for machines in (1, 2, 4, 8, 16):
        cores = machines * args.cores
        print(f"  {machines:>2} machines x {args.cores} cores: ~{cores * per_core:.0f} songs/s "
              f"(~{cores * per_core * 3600:,.0f} songs/hour)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
