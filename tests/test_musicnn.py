"""Tests for the Keras 3 port of musicnn's MSD_musicnn (genre_model/musicnn.py).

The reference values in ``tests/data/musicnn_msd_reference.npz`` were computed
with the ORIGINAL musicnn 0.1.0 TF1 graph (``musicnn.models.define_model(x,
is_training, 'MSD_musicnn', 50)`` under ``tf.compat.v1`` + tf_keras, restored
from the wheel's ``MSD_musicnn`` checkpoint, ``is_training=False``) on the
input produced by :func:`reference_input` below.  They hold the full taggram
(2 x 50) and penultimate (2 x 200) outputs and every 8th dimension of
mean_pool / max_pool (2 x 95 each), all float32.  Neither network access nor
the musicnn package is needed to run these tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from genre_model import musicnn  # noqa: E402

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "musicnn_msd_reference.npz"
POOL_STRIDE = 8  # mean_pool / max_pool reference keeps dims 0, 8, 16, ...


def reference_input() -> np.ndarray:
    """Two deterministic (187, 96) log-mel-like patches with values in [0, 3].

    Patch 0: smooth synthetic "music" (spectral tilt, harmonic stripes, a
    periodic onset pattern).  Patch 1: uniform noise from an exact integer LCG
    (no dependency on numpy's RNG streams).
    """
    t = np.arange(187, dtype=np.float64)[:, None]
    f = np.arange(96, dtype=np.float64)[None, :]
    tilt = 2.2 * np.exp(-f / 45.0)
    harmonics = 0.5 * (1.0 + np.sin(0.8 * f + 0.03 * t)) * np.exp(-f / 70.0)
    onsets = 0.7 * np.cos(np.pi * t / 21.5) ** 8 * np.exp(-f / 25.0)
    synth = np.clip(tilt + harmonics + onsets, 0.0, 3.0)

    state = np.uint64(12345)
    values = np.empty(187 * 96, dtype=np.uint64)
    a, c = np.uint64(6364136223846793005), np.uint64(1442695040888963407)
    with np.errstate(over="ignore"):
        for i in range(values.size):
            state = a * state + c
            values[i] = state >> np.uint64(40)  # top 24 bits
    noise = 3.0 * values.astype(np.float64).reshape(187, 96) / float(1 << 24)

    return np.stack([synth, noise]).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    return musicnn.load_msd_musicnn_model()


@pytest.fixture(scope="module")
def outputs(model):
    return {k: np.asarray(v) for k, v in model(reference_input(), training=False).items()}


def test_tags():
    assert len(musicnn.MSD_TAGS) == 50
    assert len(set(musicnn.MSD_TAGS)) == 50
    assert musicnn.MSD_TAGS[0] == "rock" and musicnn.MSD_TAGS[-1] == "happy"
    assert musicnn.MSD_TAGS[33] == "Hip-Hop"


def test_architecture(model):
    assert list(model.output_names) == list(musicnn.OUTPUT_NAMES)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 753), (None, 753), (None, 200), (None, 50)]
    assert model.count_params() == 792_079
    assert tuple(model.input_shape) == (None, 187, 96)
    assert model.get_layer("timbral_74_conv").kernel.shape == (7, 38, 1, 204)
    assert model.get_layer("timbral_77_conv").kernel.shape == (7, 67, 1, 204)
    assert model.get_layer("midend_1_conv").kernel.shape == (7, 561, 64)
    assert model.get_layer("pool_bn").epsilon == pytest.approx(1e-3)


def test_output_shapes(outputs):
    assert set(outputs) == set(musicnn.OUTPUT_NAMES)
    assert outputs["taggram"].shape == (2, 50)
    assert outputs["penultimate"].shape == (2, 200)
    assert outputs["mean_pool"].shape == (2, 753)
    assert outputs["max_pool"].shape == (2, 753)
    for v in outputs.values():
        assert v.dtype == np.float32
        assert np.all(np.isfinite(v))
    assert np.all((outputs["taggram"] >= 0) & (outputs["taggram"] <= 1))


def test_matches_original_tf1_graph(outputs):
    ref = np.load(REFERENCE_FILE)
    np.testing.assert_allclose(reference_input(), reference_input())  # input is deterministic
    np.testing.assert_allclose(outputs["taggram"], ref["taggram"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(outputs["penultimate"], ref["penultimate"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(outputs["mean_pool"][:, ::POOL_STRIDE], ref["mean_pool"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(outputs["max_pool"][:, ::POOL_STRIDE], ref["max_pool"], rtol=1e-3, atol=1e-3)


def test_variable_length_model_agrees(outputs):
    """n_frames=None builds a time-agnostic model; on 187 frames it must give the same result."""
    flexible = musicnn.load_msd_musicnn_model(n_frames=None)
    out = flexible(reference_input(), training=False)
    for k in musicnn.OUTPUT_NAMES:
        np.testing.assert_allclose(np.asarray(out[k]), outputs[k], rtol=1e-5, atol=1e-5)
    longer = flexible(np.tile(reference_input(), (1, 2, 1)), training=False)
    assert np.asarray(longer["taggram"]).shape == (2, 50)
