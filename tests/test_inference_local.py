"""The local pool as an InferenceBackend: versions from the model store, pids reported by the
workers, and following a promotion made by another bot process (real workers, on SQLite and on
PostgreSQL)."""

from __future__ import annotations

import os

import pytest
from conftest import encode, store_with_v2, synth_music

from bot.inference.base import InferenceBackend
from bot.inference.local import InferencePool
from bot.retraining import LiveModelFollower

pytestmark = pytest.mark.slow


async def test_pool_serves_versions_and_follows_another_process(tmp_path, storage_backend):
    store = store_with_v2(tmp_path)
    seed = store.seed_version()
    pool = InferencePool(store, workers=2, max_queue=4, timeout=60.0, tmp_dir=tmp_path / "tmp")
    assert isinstance(pool, InferenceBackend)
    await pool.start(seed)
    storage = await storage_backend.open()
    other = await storage_backend.open()  # another bot process on the same database
    try:
        first = await pool.worker_pids()
        assert len(set(first)) == 2 and os.getpid() not in first  # each worker answered one warm-up ping
        follower = LiveModelFollower(storage, pool)
        assert await follower.check() is None  # nothing promoted yet

        await other.record_model("test-v2", "models/test-v2", {})
        await other.set_live_model("test-v2")
        assert await follower.check() == "test-v2"
        assert pool.model_version == "test-v2" and set(await pool.worker_pids()).isdisjoint(first)
        song = encode(synth_music(5.0, 22050), tmp_path / "s.mp3", 22050, "mp3").read_bytes()
        assert (await pool.classify(song, "s.mp3", 600)).prediction.model_version == "test-v2"
        assert await follower.check() is None  # unchanged since the last look

        # this process's own promotion serves first and records after: the follower never undoes it
        await pool.serve_version(seed)
        assert await follower.check() is None and pool.model_version == seed
        await storage.record_model(seed, "seed", {})
        await storage.set_live_model(seed)
        assert await follower.check() == seed and pool.model_version == seed
    finally:
        await pool.close()
        await storage.close()
        await other.close()


def test_queue_bound_refuses_when_full_and_gives_places_back_however_requests_end() -> None:
    from bot.errors import QueueFull
    from bot.inference.base import QueueBound

    bound = QueueBound(max_queue=2)
    with bound.slot():
        with pytest.raises(RuntimeError):
            with bound.slot():
                assert bound.pending == 2 and bound.full
                with pytest.raises(QueueFull, match="busy"):
                    with bound.slot():
                        pass
                raise RuntimeError("the request failed")  # e.g. Ray refusing it as it was sent
        assert bound.pending == 1 and not bound.full
    assert bound.pending == 0


def test_model_store_keeps_the_live_model_and_the_newest_others(tmp_path) -> None:
    """Months of /retrain must not fill the disk: older candidates go, the live one never does."""
    import json
    import shutil

    from genre_model.config import DEFAULT_MODEL_DIR
    from bot.model_store import ModelStore

    store = ModelStore(tmp_path / "models", DEFAULT_MODEL_DIR)
    for i in range(1, 9):  # v1 (oldest) ... v8 (newest)
        folder = store.root / f"v{i}"
        shutil.copytree(DEFAULT_MODEL_DIR, folder)
        meta = json.loads((folder / "metadata.json").read_text())
        (folder / "metadata.json").write_text(json.dumps({**meta, "version": f"v{i}"}))
        os.utime(folder / "metadata.json", (1_800_000_000 + i, 1_800_000_000 + i))
    (store.root / "not-a-model").mkdir()
    assert sorted(store.prune({"v1"}, newest=3)) == ["v2", "v3", "v4", "v5"]
    assert sorted(p.name for p in store.root.iterdir()) == ["not-a-model", "v1", "v6", "v7", "v8"]
    assert store.info("v1").version == "v1" and store.info(store.seed_version()).directory == DEFAULT_MODEL_DIR
    assert store.prune({"v1"}, newest=3) == []
