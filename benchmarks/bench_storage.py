"""Storage write costs on SQLite and PostgreSQL: medians of what one request pays.

    .venv/bin/python benchmarks/bench_storage.py [--database-url postgresql://...] [--n 200]

Without --database-url it starts a throwaway PostgreSQL cluster (tests/pgcluster.py; as root it
runs as the ``postgres`` user). Every write is durable when it returns: SQLite in WAL mode with
synchronous=NORMAL (no fsync per commit; the windows file is fsynced), PostgreSQL with
synchronous_commit=on (the WAL is flushed per commit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


from genre_model.features import MUSICNN_FEATURES  # noqa: E402
from bot.storage.postgres import PostgresStorage  # noqa: E402
from bot.storage.base import Upload  # noqa: E402
from bot.storage.sqlite import SqliteStorage  # noqa: E402
from genre_model.predict import Prediction  # noqa: E402

#: What the shipped model stores per prediction: 8 windows of 96 mel bands x 187 frames.
WINDOWS = np.random.default_rng(0).normal(2.0, 1.0, (8, 96, 187, 1)).astype(np.float32)


async def record(store, user_id: int) -> int:
    prediction = Prediction(genre="rock", probabilities={"rock": 0.7, "pop": 0.3}, timeline=[], duration_s=30.0,
                            analysed_s=30.0, model_version="bench", windows=WINDOWS, spectrogram=np.zeros((0, 0)),
                            features=MUSICNN_FEATURES)
    upload = Upload(user_id, 1, 2, 3, "song.mp3", f"file of {user_id}".encode())
    return await store.record_prediction(upload, prediction, keep_windows=True, keep_audio=False)


async def measure(store, n: int) -> dict[str, float]:
    async def timed(coro) -> float:
        start = time.perf_counter()
        await coro
        return (time.perf_counter() - start) * 1000

    figures = {}
    pids = []
    times = []
    for i in range(n // 4):
        start = time.perf_counter()
        pids.append(await record(store, 1000 + i))
        times.append((time.perf_counter() - start) * 1000)
    figures["record_prediction ms"] = statistics.median(times)
    figures["set_vote ms"] = statistics.median([await timed(store.set_vote(pids[0], u, "right")) for u in range(n)])
    start = time.perf_counter()
    await asyncio.gather(*(store.set_vote(pids[1], u, "wrong") for u in range(n)))
    figures["concurrent votes / s"] = n / (time.perf_counter() - start)
    figures["get_prediction ms"] = statistics.median(
        [await timed(store.get_prediction(pid)) for pid in pids])
    figures["forget_user ms"] = statistics.median([await timed(store.forget_user(1000 + i)) for i in range(len(pids))])
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a throwaway cluster)")
    parser.add_argument("--n", type=int, default=200, help="votes per measurement")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        async with await SqliteStorage.open(Path(tmp) / "bench.sqlite3", Path(tmp) / "data") as store:
            results["SQLite"] = await measure(store, args.n)
    cluster = None
    url = args.database_url
    if url is None:
        from testkit.pgcluster import PostgresCluster

        cluster = PostgresCluster().start()
        url = await cluster.create_database()
    try:
        async with await PostgresStorage.open(url) as store:
            results["PostgreSQL"] = await measure(store, args.n)
    finally:
        if cluster is not None:
            cluster.stop()
    names = list(results["SQLite"])
    print(f"{'median':28s}" + "".join(f"{backend:>14s}" for backend in results))
    for name in names:
        print(f"{name:28s}" + "".join(f"{results[b][name]:14.1f}" for b in results))


if __name__ == "__main__":
    asyncio.run(main())
