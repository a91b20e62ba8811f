"""Load benchmark: many /genre requests through the fake Discord server to ``python -m bot``.

Starts the fake Discord server in this process and the bot as a subprocess (configured
by environment variables, as deployed), synthesises a few songs (30 s and 3 min MP3s),
fires ``--requests`` /genre commands from ``--users`` users spread over ``--spread``
seconds, and prints:

* requests sent, replies by kind (result / busy / cooldown / error), lost (no reply in time);
* p50 / p95 / max reply latency (first visible reply; for results that is the embed);
* the worst event-loop stall (the bot logs it at SIGTERM);
* peak RSS of the bot process + its workers and their ffmpeg children (psutil, sampled every
  100 ms), the same tree's peak PSS (shared pages -- libraries, the ffmpeg binary -- counted once,
  not once per process), and the bot alone's RSS.

Targets: the event loop never stalls > 100 ms; bot + 2 workers <= 400 MB resident at peak (issue 8).

    .venv/bin/python benchmarks/bench_bot_load.py                       # 100 requests, 20 users, 3 s
    .venv/bin/python benchmarks/bench_bot_load.py --requests 20 --users 20 --cooldown 0 --json
    .venv/bin/python benchmarks/bench_bot_load.py --requests 20 --users 20 --cooldown 0 --baseline DIR --runs 3
"""

from __future__ import annotations

import os

ENV = dict(os.environ)  # before anything below can change it

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


from testkit.botharness import USER_ID, BotProcess  # noqa: E402
from testkit.audio import encode, synth_music  # noqa: E402
from testkit.fakediscord import FakeDiscordServer  # noqa: E402
from testkit.loadgen import RssSampler, fire, summary, worst_stall_ms  # noqa: E402

SR = 22050


def make_songs(directory: Path) -> list[tuple[str, bytes]]:
    """Two 30 s songs and one 3-minute song, as MP3."""
    songs = []
    for i, seconds in enumerate((30.0, 30.0, 180.0)):
        path = encode(synth_music(seconds, SR, seed=100 + i), directory / f"song{i}-{seconds:.0f}s.mp3", SR, "mp3")
        songs.append((path.name, path.read_bytes()))
    return songs


async def run(args: argparse.Namespace, songs: list[tuple[str, bytes]], baseline: Path | None = None) -> dict:
    """One scenario against this checkout's bot, or (``baseline``) a baseline checkout's, with its own venv."""
    with tempfile.TemporaryDirectory(prefix="bench-bot-load-") as tmp:
        workdir = Path(tmp)
        env = {"GENREBOT_WORKERS": str(args.workers), "GENREBOT_COOLDOWN_SECONDS": str(args.cooldown),
               "GENREBOT_LOG_LEVEL": "DEBUG" if args.verbose else "INFO"}  # the stall is logged at INFO
        if args.queue_limit:
            env["GENREBOT_QUEUE_LIMIT"] = str(args.queue_limit)
        async with FakeDiscordServer(default_user_id=USER_ID) as server:
            bot = BotProcess(server, workdir / "run", **env)
            if baseline is not None:
                bot.python = str(baseline / ".venv" / "bin" / "python")
                bot.env["PYTHONPATH"] = str(baseline)
                for name in set(bot.env) - set(ENV) - set(env):  # what importing this checkout set
                    if not name.startswith(("DISCORD_", "GENREBOT_")):
                        bot.env.pop(name)
            await bot.start()
            try:
                async with RssSampler(bot.pid, interval=0.1) as rss:
                    started = time.monotonic()
                    shots = await fire(server, songs, requests=args.requests, users=args.users, spread=args.spread,
                                       user_base=USER_ID + 1000, timeout=args.timeout)
                    elapsed = time.monotonic() - started
            finally:
                code = await bot.stop(signal.SIGTERM)
            log = bot.log()
    figures = summary(shots)
    figures.update(
        workers=args.workers, users=args.users, spread_s=args.spread, cooldown_s=args.cooldown,
        queue_limit=args.queue_limit or "default", elapsed_s=round(elapsed, 2),
        worst_stall_ms=worst_stall_ms(log), peak_rss_mb=round(rss.peak_total / 2**20),
        peak_pss_mb=round(rss.peak_pss / 2**20),
        peak_bot_rss_mb=round(rss.peak_main / 2**20), exit_code=code,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spread", type=float, default=3.0, help="seconds over which requests are sent")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cooldown", type=float, default=10.0, help="GENREBOT_COOLDOWN_SECONDS (bot default 10)")
    parser.add_argument("--queue-limit", type=int, default=0, help="GENREBOT_QUEUE_LIMIT (0: bot default)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every reply")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--verbose", action="store_true", help="DEBUG logging in the bot")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="also run a baseline checkout's bot (its own .venv), alternating with this one")
    parser.add_argument("--runs", type=int, default=1, help="runs per checkout; figures are medians")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-bot-songs-") as tmp:
        songs = make_songs(Path(tmp))
    names = ["new"] + (["baseline"] if args.baseline else [])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.runs):
        for name in (names if r % 2 == 0 else names[::-1]):
            runs[name].append(asyncio.run(run(args, songs, args.baseline.resolve() if name == "baseline" else None)))
    if args.baseline or args.runs > 1:
        numeric = lambda key: all(isinstance(f.get(key), (int, float)) for f in runs["new"])  # noqa: E731
        keys = [k for k in runs["new"][0] if numeric(k)]
        report = {name: {k: statistics.median(f[k] for f in fs if f[k] is not None) for k in keys}
                  for name, fs in runs.items()}
        if args.json:
            print(json.dumps({"load_average": os.getloadavg(), "checkouts": report}))
            return 0
        print(f"{args.requests} requests from {args.users} users over {args.spread:g} s, {args.workers} workers, "
              f"cooldown {args.cooldown:g} s; medians of {args.runs} run(s); load average {os.getloadavg()[0]:.1f}")
        print(f"{'checkout':<9} {'results':>7} {'lost':>4} {'p50':>8} {'p95':>8} {'stall':>7} "
              f"{'peak RSS bot+workers':>21} {'(PSS)':>7} {'bot alone':>9}")
        for name, f in report.items():
            print(f"{name:<9} {f['result']:>7.0f} {f['lost']:>4.0f} {f['p50_s'] * 1000:>6.0f}ms {f['p95_s'] * 1000:>6.0f}ms "
                  f"{f['worst_stall_ms']:>5.0f}ms {f['peak_rss_mb']:>18.0f} MB {f['peak_pss_mb']:>4.0f} MB "
                  f"{f['peak_bot_rss_mb']:>6.0f} MB")
        return 0
    figures = runs["new"][0]
    if args.json:
        print(json.dumps(figures))
        return 0
    ms = lambda s: "n/a" if s is None else f"{s * 1000:.0f} ms"  # noqa: E731
    print(f"requests sent       {figures['requests']} from {args.users} users over {args.spread:g} s "
          f"({args.workers} workers, cooldown {args.cooldown:g} s, queue limit {figures['queue_limit']})")
    print(f"replies             result {figures['result']}, busy {figures['busy']}, cooldown {figures['cooldown']}, "
          f"error {figures['error']}; lost {figures['lost']}")
    print(f"reply latency       p50 {ms(figures['p50_s'])}, p95 {ms(figures['p95_s'])}, max {ms(figures['max_s'])} "
          f"(results p50 {ms(figures['result_p50_s'])}); all answered after {figures['elapsed_s']} s")
    stall = figures["worst_stall_ms"]
    print(f"worst loop stall    {stall} ms (target < 100 ms: {'ok' if stall is not None and stall < 100 else 'MISSED'})")
    peak = figures["peak_rss_mb"]
    print(f"peak RSS            bot + workers {peak} MB (target <= 400 MB with 2 workers: "
          f"{'ok' if peak <= 400 else 'MISSED'}); PSS {figures['peak_pss_mb']} MB (shared pages counted once); "
          f"bot alone {figures['peak_bot_rss_mb']} MB")
    print(f"bot exit code       {figures['exit_code']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
