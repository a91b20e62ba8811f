"""Shared fixtures for the genre_model tests.

Everything is synthesised in ``tmp_path``: songs (drums, bass, chords and a melody, which
the shipped model's detector hears as music) encoded with ffmpeg through pydub, and one tiny
untrained model artifact per session. No test reads /work/shared or the network.

Tests that import TensorFlow (directly, or through the ``tiny_model_dir`` fixture,
which builds and exports a Keras model) carry the ``slow`` marker; they still run by
default (deselect them with ``-m "not slow"``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import pytest_asyncio

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genre_model.config import GENRES  # noqa: E402
from genre_model.features import FeatureConfig  # noqa: E402
from testkit.audio import (  # noqa: E402,F401  (re-exported for the tests)
    FORMATS, STYLES, encode, styled_dataset, styled_music, synth_music,
)

#: Features of the tiny test model: small enough that building, exporting and running
#: it takes seconds, but the same code path as the real CNN (dB scale, delta channels,
#: per-channel standardisation).
TINY_FEATURES = FeatureConfig(
    sample_rate=22050, n_fft=1024, hop_length=512, n_mels=32, window_frames=32, log_scale="db", deltas=True,
).with_normalisation(np.array([-30.0, 0.0, 0.0]), np.array([20.0, 1.5, 1.0]))

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: imports TensorFlow / builds a model (runs by default)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tiny_model_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def make_tone(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_tone(seconds=5.0, fmt="wav", sr=22050, name=None, seed=0, channels=1)`` -> path."""
    counter = iter(range(10**6))

    def make(seconds: float = 5.0, fmt: str = "wav", sr: int = 22050, *, name: str | None = None,
             seed: int = 0, channels: int = 1, directory: Path | None = None) -> Path:
        ext = FORMATS[fmt][0]
        name = name or f"tone{next(counter)}-{fmt}.{ext}"
        return encode(synth_music(seconds, sr, seed=seed, channels=channels), (directory or tmp_path) / name, sr, fmt)

    return make


@pytest.fixture
def synth() -> Callable[..., np.ndarray]:
    """The :func:`synth_music` generator, for tests that want samples rather than files."""
    return synth_music


@pytest.fixture
def write_wav() -> Callable[..., Path]:
    """Factory writing float samples to a 16-bit WAV quickly with soundfile (no ffmpeg)."""
    import soundfile as sf

    def write(path: Path, samples: np.ndarray, sr: int = 22050) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), samples, sr, subtype="PCM_16")
        return path

    return write


@pytest.fixture(scope="session")
def tiny_features() -> FeatureConfig:
    return TINY_FEATURES


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained CNN artifact (10 GTZAN labels, LiteRT export), built once per session."""
    import keras

    from genre_model.artifact import save_artifact
    from genre_model.model import build_cnn, split_cnn

    keras.utils.set_random_seed(1234)
    model = build_cnn(TINY_FEATURES, n_classes=len(GENRES), filters=(4, 8), embedding_dim=16)
    # Sharpen the untrained logits so the probabilities are far from uniform and the
    # Keras-vs-LiteRT comparison is meaningful.
    logits = model.get_layer("logits")
    kernel, bias = logits.get_weights()
    rng = np.random.default_rng(7)
    logits.set_weights([rng.normal(0.0, 1.0, kernel.shape).astype(np.float32),
                        rng.normal(0.0, 0.5, bias.shape).astype(np.float32)])
    embedder, head = split_cnn(model)
    out = tmp_path_factory.mktemp("models") / "tiny"
    save_artifact(out, embedder=embedder, head=head, arch="cnn", labels=GENRES, features=TINY_FEATURES,
                  temperature=1.5, training={"epochs": 0, "note": "untrained test model"},
                  metrics={"accuracy": 0.1}, version="test-tiny")
    return out


def store_with_v2(tmp_path: Path, version: str = "test-v2"):
    """A model store holding the shipped model (seed) and a copy of it published as ``version``."""
    import json
    import shutil

    from genre_model.config import DEFAULT_MODEL_DIR
    from bot.model_store import ModelStore

    root = tmp_path / "models"
    copy = root / version
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["version"] = version
    (copy / "metadata.json").write_text(json.dumps(meta))
    return ModelStore(root, DEFAULT_MODEL_DIR)


def run_python(args: list[str], *, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` with this interpreter, the repo importable, in ``cwd``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest_asyncio.fixture
async def server():
    """A fake Discord server on 127.0.0.1 (tests/fakediscord) for the bot tests."""
    from testkit.botharness import fake_discord

    async with fake_discord() as srv:
        yield srv


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for this test session (testkit/pgcluster.py). Fails, never skips,
    when PostgreSQL is not installed."""
    from testkit.pgcluster import PostgresCluster, PostgresMissing

    try:
        cluster = PostgresCluster()
    except PostgresMissing as exc:
        missing = str(exc)
    else:
        missing = None
    if missing:
        pytest.fail(missing, pytrace=False)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def fresh_storage(name: str, request: pytest.FixtureRequest, tmp_path: Path):
    """One fresh, empty database of storage backend ``name`` (tests/storage_backends.py); a PostgreSQL
    database is dropped afterwards, so the throwaway cluster stays small."""
    from storage_backends import PostgresBackend, SqliteBackend

    if name == "sqlite":
        yield SqliteBackend(tmp_path)
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = await cluster.create_database()
    try:
        yield PostgresBackend(tmp_path, url)
    finally:
        await cluster.drop_database(url)


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def storage_backend(request: pytest.FixtureRequest, tmp_path: Path):
    """Each storage backend in turn: one fresh, empty database (SQLite file, or on the session's PostgreSQL)."""
    async with fresh_storage(request.param, request, tmp_path) as backend:
        yield backend


#: A local Ray instance for the tests: small, so that it fits 2 cores next to everything else.
RAY_TEST_CPUS = 2
RAY_TEST_OBJECT_STORE_BYTES = 96 * 1024 * 1024


def ray_processes() -> list:
    """Ray's processes still running on this machine (raylet, gcs_server, Serve actors, workers)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = proc.info["name"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if name in ("raylet", "gcs_server") or name.startswith("ray::") or "site-packages/ray/" in cmdline:
            found.append(proc)
    return found


@pytest.fixture(scope="session")
def ray_instance() -> str:
    """A real local Ray instance with Serve (started once per session, ~15 s); yields its GCS address.

    Stopped at the end of the session, and no Ray process may be left behind."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    ray.init(num_cpus=RAY_TEST_CPUS, include_dashboard=False, object_store_memory=RAY_TEST_OBJECT_STORE_BYTES,
             namespace="genrebot", log_to_driver=False)
    serve.start(proxy_location="Disabled")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        serve.shutdown()
        ray.shutdown()
    import time

    deadline = time.monotonic() + 20
    while ray_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = ray_processes()
    assert not left, f"Ray processes left after the tests: {[p.info for p in left]}"


def inference_settings(name: str, request: pytest.FixtureRequest) -> dict:
    """Settings overrides for inference backend ``name`` (``ray``: one replica on the session's Ray instance)."""
    if name == "ray":
        request.getfixturevalue("ray_instance")
        return {"inference": "ray", "ray_replicas": 1, "ray_replica_cpus": 0.5}
    return {"inference": "local"}


@dataclasses.dataclass
class Stack:
    """A storage backend and an inference backend the bot runs on together."""

    storage: Any  # storage_backends.Backend: a fresh database
    inference: dict  # settings overrides for the inference backend

    @property
    def name(self) -> str:
        return f"{self.storage.name}+{self.inference['inference']}"

    @property
    def settings(self) -> dict:
        """``make_settings`` overrides that put the bot on this stack."""
        storage = ({"database_url": self.storage.url} if self.storage.name == "postgres"
                   else {"db_path": self.storage.db_path})
        return {**storage, **self.inference}


#: The stacks the end-to-end stories run on: the embedded default and the scaled set-up (not all four pairs).
STACKS = {"sqlite+local": ("sqlite", "local"), "postgres+ray": ("postgres", "ray")}


@pytest_asyncio.fixture(params=list(STACKS))
async def stack(request: pytest.FixtureRequest, tmp_path: Path):
    """SQLite + the local pool, then PostgreSQL + Ray Serve: the bot's two deployments, end to end."""
    storage, inference = STACKS[request.param]
    async with fresh_storage(storage, request, tmp_path) as backend:
        yield Stack(backend, inference_settings(inference, request))
