"""Tests for the Keras 3 port of musicnn's MSD_vgg (research/musicnn_vgg/musicnn_vgg.py).

The reference values in ``musicnn_vgg_reference.npz`` (beside this file) were computed
with the ORIGINAL musicnn 0.1.0 TF1 graph (``musicnn.models.define_model(x,
is_training, 'MSD_vgg', 50)`` under ``tf.compat.v1`` + tf_keras, restored from
the wheel's ``MSD_vgg`` checkpoint, ``is_training=False``) on the two patches of
:func:`test_musicnn.reference_input`.  They hold (float32, batch of 2): the full
``taggram`` (50) and ``pool5`` (2, 1, 128); per-channel mean and max over
(time, mel) of ``pool1`` ... ``pool4`` (``pool{i}_mean`` / ``pool{i}_max``, 128
each); and strided raw samples ``pool1[:, ::9, ::5, ::16]`` and
``pool3[:, ::2, ::2, ::8]``, which pin down the spatial layout of the maps.
Neither network access nor the musicnn package is needed to run these tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "tests")]

import musicnn_vgg  # noqa: E402
from test_musicnn import reference_input  # noqa: E402

REFERENCE_FILE = HERE / "musicnn_vgg_reference.npz"

POOL_SHAPES = {"pool1": (92, 48, 128), "pool2": (46, 24, 128), "pool3": (23, 12, 128),
               "pool4": (11, 6, 128), "pool5": (2, 1, 128)}


@pytest.fixture(scope="module")
def model():
    return musicnn_vgg.load_msd_vgg_model()


@pytest.fixture(scope="module")
def outputs(model):
    return {k: np.asarray(v) for k, v in model(reference_input(), training=False).items()}


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE_FILE) as data:
        return {k: data[k] for k in data.files}


def test_architecture(model):
    assert list(model.output_names) == list(musicnn_vgg.OUTPUT_NAMES)
    assert [tuple(o.shape[1:]) for o in model.outputs] == [*POOL_SHAPES.values(), (50,)]
    assert tuple(model.input_shape) == (None, 187, 96)
    assert model.count_params() == 607_030
    assert model.get_layer("conv1").kernel.shape == (3, 3, 1, 128)
    assert model.get_layer("conv5").kernel.shape == (3, 3, 128, 128)
    assert model.get_layer("logits").kernel.shape == (256, 50)
    assert model.get_layer("pool1").pool_size == (4, 1) and model.get_layer("pool1").strides == (2, 2)
    assert model.get_layer("pool5").pool_size == (4, 4) and model.get_layer("pool5").strides == (4, 4)
    assert model.get_layer("bn3").epsilon == pytest.approx(1e-3)


def test_output_shapes(outputs):
    assert set(outputs) == set(musicnn_vgg.OUTPUT_NAMES)
    for name, shape in POOL_SHAPES.items():
        assert outputs[name].shape == (2, *shape)
    assert outputs["taggram"].shape == (2, 50)
    for v in outputs.values():
        assert v.dtype == np.float32
        assert np.all(np.isfinite(v))
    assert np.all((outputs["taggram"] > 0) & (outputs["taggram"] < 1))


def test_matches_original_tf1_graph(outputs, reference):
    np.testing.assert_allclose(outputs["taggram"], reference["taggram"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["pool5"], reference["pool5"], rtol=1e-4, atol=1e-4)
    for i in range(1, 5):
        pool = outputs[f"pool{i}"]
        np.testing.assert_allclose(pool.mean(axis=(1, 2)), reference[f"pool{i}_mean"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(pool.max(axis=(1, 2)), reference[f"pool{i}_max"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outputs["pool1"][:, ::9, ::5, ::16], reference["pool1_sample"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(outputs["pool3"][:, ::2, ::2, ::8], reference["pool3_sample"], rtol=1e-4, atol=1e-3)


def test_patches_are_independent(model, outputs):
    """Inference mode: each patch's output does not depend on the rest of the batch."""
    single = model(reference_input()[1:], training=False)
    np.testing.assert_allclose(np.asarray(single["taggram"]), outputs["taggram"][1:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(single["pool4"]), outputs["pool4"][1:], rtol=1e-5, atol=1e-5)
