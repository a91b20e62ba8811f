"""The Ray Serve inference backend on a real local Ray instance (no mocks).

One Ray instance serves the whole session (``ray_instance`` in conftest.py); one test
lets the bot start (and stop) a Ray instance of its own, and checks that none of its
processes are left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from testkit.botharness import USER_ID, BotProcess, busy_worker
from conftest import encode, store_with_v2, synth_music

from genre_model.config import DEFAULT_MODEL_DIR
from genre_model.errors import ArtifactError, AudioError
from bot.errors import InferenceFailed, QueueFull
from bot.inference.base import Classified, InferenceBackend
from bot.model_store import ModelStore, unpack

pytestmark = pytest.mark.slow

SR = 22050


def song(tmp_path: Path, seconds: float = 8.0, seed: int = 0) -> bytes:
    return encode(synth_music(seconds, SR, seed=seed), tmp_path / f"song-{seconds}-{seed}.mp3", SR, "mp3").read_bytes()


def backend(store: ModelStore, **overrides):
    from bot.inference.ray_serve import RayServeBackend

    values = dict(address=None, replicas=1, max_replicas=0, replica_cpus=0.5, max_queue=8, timeout=60.0, local_cpus=2)
    values.update(overrides)
    return RayServeBackend(store, **values)


def test_model_store_versions_and_shipping(tmp_path):
    store = store_with_v2(tmp_path)
    seed = store.seed_version()
    assert store.path(seed) == DEFAULT_MODEL_DIR and store.path("test-v2") == tmp_path / "models" / "test-v2"
    with pytest.raises(ArtifactError, match="not in the model store"):
        store.path("nope")
    files = store.files("test-v2")
    assert set(files) == {*store.info("test-v2").files, "metadata.json"}  # with the sound detector, if any
    unpacked = unpack(files, "test-v2", tmp_path / "cache")
    assert unpack(files, "test-v2", tmp_path / "cache") == unpacked  # once per machine and artifact
    assert {p.name for p in unpacked.iterdir()} == set(files)
    bad = dict(files, **{"head.npz": files["head.npz"][:-10]})
    with pytest.raises(ArtifactError, match="corrupt"):
        unpack(bad, "test-v2", tmp_path / "other-cache")
    with pytest.raises(ArtifactError, match="claims version"):
        unpack(files, "test-v3", tmp_path / "cache3")


async def test_bot_starts_its_own_ray_instance_and_stops_it(server, tmp_path):
    """GENREBOT_INFERENCE=ray without an address: the bot starts a local Ray instance, serves, and stops it."""
    import psutil

    bot = await BotProcess(server, tmp_path / "run", GENREBOT_INFERENCE="ray", GENREBOT_WORKERS="1",
                           GENREBOT_RAY_REPLICA_CPUS="1").start(timeout=180)
    own = psutil.Process(bot.pid).children(recursive=True)
    assert any(p.name() in ("raylet", "gcs_server") for p in own), "the bot runs its own Ray instance"
    try:
        att = server.add_attachment("song.mp3", song(tmp_path), "audio/mpeg")
        handle = await server.send_slash_command("genre", {"file": att}, user_id=USER_ID)
        message = await handle.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=120)
        assert message.get("embeds"), message
    finally:
        code = await bot.stop(signal.SIGTERM, timeout=90)
    assert code == 0, bot.log()[-3000:]
    _, alive = psutil.wait_procs(own, timeout=30)
    assert not alive, f"left behind: {[(p.pid, p.name()) for p in alive]}"


async def test_classify_rollout_under_load_and_bad_input(ray_instance, tmp_path):
    store = store_with_v2(tmp_path)
    seed = store.seed_version()
    inference = backend(store, replicas=2)
    assert isinstance(inference, InferenceBackend)
    await inference.start(seed)
    try:
        assert len(await inference.worker_pids()) == 2 and await inference.replica_versions() == {seed}
        data = song(tmp_path)
        result = await inference.classify(data, "song.mp3", 600)
        assert isinstance(result, Classified) and result.prediction.model_version == seed
        assert result.image_png[:8] == b"\x89PNG\r\n\x1a\n" and result.prediction.windows.ndim == 4

        with pytest.raises(AudioError, match="not audio I can read") as bad:
            await inference.classify(b"no audio here\n" * 50, "notes.mp3", 600)
        assert "Traceback" not in str(bad.value)

        # promotion while requests keep coming: none fails, and afterwards every replica serves v2
        seen: list[str] = []
        stop = asyncio.Event()

        async def user() -> None:
            while not stop.is_set():
                seen.append((await inference.classify(data, "song.mp3", 600)).prediction.model_version)

        users = [asyncio.create_task(user()) for _ in range(3)]
        await asyncio.sleep(1.0)
        assert await inference.serve_version("test-v2") == "test-v2"
        assert inference.model_version == "test-v2"
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*users)  # any failed request would raise here
        assert await inference.replica_versions() == {"test-v2"} and len(await inference.worker_pids()) == 2
        assert seen[0] == seed and seen[-1] == "test-v2" and set(seen) == {seed, "test-v2"}
        assert inference.failures == 0
    finally:
        await inference.close()


async def test_replica_killed_mid_request_is_replaced_and_the_request_sent_again(ray_instance, tmp_path):
    """One death under an upload costs it a second try on the replacement, not an error (two deaths
    blame the file: test_bot_e2e.py::test_worker_killed_twice_mid_request_gets_error_then_recovers)."""
    store = store_with_v2(tmp_path)
    inference = backend(store, replicas=1)
    await inference.start(store.seed_version())
    try:
        (pid,) = await inference.worker_pids()
        request = asyncio.create_task(inference.classify(song(tmp_path, 120.0), "long.mp3", 600))
        assert await busy_worker(inference, [pid]) == pid
        os.kill(pid, signal.SIGKILL)
        result = await request  # sent again: it waits for the new replica
        assert result.prediction.genre and inference.failures == 1
        (new_pid,) = await inference.worker_pids()
        assert new_pid != pid
        assert not (Path(os.environ.get("TMPDIR", "/tmp")) / "genrebot-replicas" / str(pid)).exists(), \
            "the killed replica's scratch folder is removed by its successor"
    finally:
        await inference.close()


async def test_queue_bound_and_timeout(ray_instance, tmp_path):
    store = store_with_v2(tmp_path)
    inference = backend(store, replicas=1, max_queue=1, timeout=0.5)
    await inference.start(store.seed_version())
    try:
        first = asyncio.create_task(inference.classify(song(tmp_path, 120.0), "long.mp3", 600))
        await asyncio.sleep(0)
        assert inference.full and inference.pending == 1
        with pytest.raises(QueueFull, match="busy"):
            await inference.classify(b"x", "x.mp3", 600)
        with pytest.raises(InferenceFailed, match="longer than 0 s"):
            await first
        assert inference.pending == 0 and not inference.full
        inference.timeout = 60.0
        assert (await inference.classify(song(tmp_path, 5.0), "ok.mp3", 600)).prediction.genre
    finally:
        await inference.close()
