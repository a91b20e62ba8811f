"""Shared fixtures for the genre_model tests.

Everything is synthesised in ``tmp_path``: musical-ish signals (a few harmonics, a
kick-like pulse, a little noise) encoded with ffmpeg through pydub, and one tiny
untrained model artifact per session. No test reads /work/shared or the network.

Tests that import TensorFlow (directly, or through the ``tiny_model_dir`` fixture,
which builds and exports a Keras model) carry the ``slow`` marker; they still run by
default (deselect them with ``-m "not slow"``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import pytest_asyncio

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genre_model.config import GENRES  # noqa: E402
from genre_model.features import FeatureConfig  # noqa: E402

#: Features of the tiny test model: small enough that building, exporting and running
#: it takes seconds, but the same code path as the real CNN (dB scale, delta channels,
#: per-channel standardisation).
TINY_FEATURES = FeatureConfig(
    sample_rate=22050, n_fft=1024, hop_length=512, n_mels=32, window_frames=32, log_scale="db", deltas=True,
).with_normalisation(np.array([-30.0, 0.0, 0.0]), np.array([20.0, 1.5, 1.0]))

#: name -> (file extension, pydub/ffmpeg muxer, ffmpeg codec or None)
FORMATS: dict[str, tuple[str, str, str | None]] = {
    "mp3": ("mp3", "mp3", None),
    "wav": ("wav", "wav", None),  # 16-bit PCM, written by pydub itself
    "wav24": ("wav", "wav", "pcm_s24le"),
    "wav_float": ("wav", "wav", "pcm_f32le"),  # ffmpeg writes WAVE_FORMAT_EXTENSIBLE + float subformat
    "ogg": ("ogg", "ogg", "libvorbis"),
    "opus": ("opus", "opus", "libopus"),
    "flac": ("flac", "flac", None),
    "m4a": ("m4a", "ipod", "aac"),
    "au": ("au", "au", None),
    "webm": ("webm", "webm", "libopus"),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: imports TensorFlow / builds a model (runs by default)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tiny_model_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def synth_music(seconds: float, sr: int = 22050, *, seed: int = 0, f0: float | None = None,
                bpm: float | None = None, channels: int = 1) -> np.ndarray:
    """A musical-ish float32 signal in [-1, 1]: a chord of harmonics, a kick on every beat, noise.

    ``seed`` varies the pitch, tempo and noise, so different seeds give different files.
    Returns shape ``(n,)`` for mono, ``(n, channels)`` otherwise.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n, dtype=np.float64) / sr
    f0 = f0 if f0 is not None else float(rng.uniform(110.0, 330.0))
    bpm = bpm if bpm is not None else float(rng.uniform(80.0, 150.0))
    x = np.zeros(n)
    for ratio in (1.0, 1.25, 1.5):  # a major triad
        for k in range(1, 5):
            x += (0.12 / k) * np.sin(2 * np.pi * f0 * ratio * k * t + rng.uniform(0, 2 * np.pi))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t) ** 2  # slow swell
    beat = 60.0 / bpm
    phase = np.mod(t, beat)
    x += 0.5 * np.exp(-phase * 30.0) * np.sin(2 * np.pi * 60.0 * phase)  # kick: decaying low thump
    x += 0.02 * rng.standard_normal(n)
    x = 0.8 * x / max(1e-9, float(np.max(np.abs(x))))
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return x


#: Three audibly different synthetic 'genres' (base pitch, beats per minute) for training tests.
STYLES = {"blues": (110.0, 70.0), "metal": (330.0, 170.0), "classical": (220.0, 0.0)}


def styled_music(genre: str, seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """Three audibly different synthetic 'genres': slow low chords, fast loud buzz with drums, soft arpeggios."""
    rng = np.random.default_rng(seed)
    f0, bpm = STYLES[genre]
    f0 *= rng.uniform(0.9, 1.1)
    t = np.arange(int(seconds * sr)) / sr
    if genre == "metal":
        x = np.sign(np.sin(2 * np.pi * f0 * t)) * 0.4 + 0.3 * rng.standard_normal(len(t)) * (np.mod(t, 60 / bpm) < 0.05)
    elif genre == "classical":
        notes = f0 * 2 ** (np.array([0, 4, 7, 12]) / 12)
        x = np.sin(2 * np.pi * notes[(t * 4).astype(int) % 4] * t) * np.exp(-np.mod(t, 0.25) * 6)
    else:
        x = sum(np.sin(2 * np.pi * f0 * r * t) / (1 + k) for k, r in enumerate((1.0, 1.2, 1.5)))
        x *= 0.6 + 0.4 * (np.mod(t, 60 / bpm) < 0.1)
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def styled_dataset(root: Path, per_genre: int = 4, seconds: float = 7.0, sr: int = 16000) -> Path:
    """``root/<genre>/...wav`` for the three :data:`STYLES`, each genre by two artists, with a MANIFEST.csv
    (path, genre, artist) naming them."""
    import csv

    rows = []
    for genre in STYLES:
        for i in range(per_genre):
            path = encode(styled_music(genre, seconds, seed=100 * len(genre) + i, sr=sr), root / genre / f"{genre}-{i}.wav", sr)
            rows.append([str(path.relative_to(root)), genre, f"{genre}-artist-{i % 2}"])
    with (root / "MANIFEST.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["path", "genre", "artist"], *rows])
    return root


def encode(samples: np.ndarray, path: Path, sr: int, fmt: str = "wav") -> Path:
    """Write float samples (mono or ``(n, ch)``) to ``path`` in one of :data:`FORMATS` via pydub/ffmpeg."""
    from pydub import AudioSegment

    _, muxer, codec = FORMATS[fmt]
    data = np.asarray(samples, dtype=np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    segment = AudioSegment(data=pcm, sample_width=2, frame_rate=sr, channels=channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    segment.export(str(path), format=muxer, codec=codec).close()
    return path


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
    from botharness import fake_discord

    async with fake_discord() as srv:
        yield srv


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for this test session (tests/pgcluster.py). Fails, never skips,
    when PostgreSQL is not installed."""
    from pgcluster import PostgresCluster, PostgresMissing

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


@pytest_asyncio.fixture(params=["sqlite", "postgres"])
async def backend(request, tmp_path):
    """One fresh, empty database of each storage backend (tests/storage_backends.py); a PostgreSQL
    database is dropped after its test, so the throwaway cluster stays small."""
    from storage_backends import PostgresBackend, SqliteBackend

    if request.param == "sqlite":
        yield SqliteBackend(tmp_path)
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = await cluster.create_database()
    yield PostgresBackend(tmp_path, url)
    await cluster.drop_database(url)
