"""Pure Keras 3 port of musicnn's pretrained ``MSD_vgg`` audio-tagging network.

The architecture follows ``vgg(x, is_training, num_classes, num_filters=128)``
in musicnn 0.1.0 (``models.py``), the baseline that musicnn's authors trained
next to ``MSD_musicnn`` on the Million Song Dataset: five 3x3 conv blocks of
128 filters, each conv (ReLU) -> batch norm -> max-pool, then a dense layer to
the 50 MSD tags (:data:`genre_model.musicnn.MSD_TAGS`).  Only inference is
supported: batch norms use their moving statistics (``training=False``) and the
dropout layers are omitted.  Licence and credit: see :mod:`genre_model.musicnn`
and ``genre_model/pretrained/LICENSE-musicnn.md`` (ISC, Pons & Serra, MTG-UPF).

Input
-----
``(batch, 187, 96)`` float32 log-mel patches (3 s at 16 kHz, hop 256, 96 mels,
``log10(10000 * mel + 1)``), exactly as for :mod:`genre_model.musicnn`.  Unlike
musicnn, the dense layer flattens a fixed-size map, so the patch length is fixed
at 187 frames (musicnn's ``extractor`` refuses other lengths for vgg too).

Outputs
-------
``model(x)`` returns a dict with the tensors musicnn's ``extractor`` returns for
the vgg models, under the same names (extractor additionally ``np.squeeze``-s them):

* ``pool1`` (batch, 92, 48, 128)  max-pool 4x1, stride 2x2 (time, mel)
* ``pool2`` (batch, 46, 24, 128)  max-pool 2x2, stride 2x2
* ``pool3`` (batch, 23, 12, 128)  max-pool 2x2, stride 2x2
* ``pool4`` (batch, 11, 6, 128)   max-pool 2x2, stride 2x2
* ``pool5`` (batch, 2, 1, 128)    max-pool 4x4, stride 4x4
* ``taggram`` (batch, 50)         sigmoid of the dense layer on flattened pool5

Keras sorts dict outputs by key, so ``model.outputs`` follow :data:`OUTPUT_NAMES`.

Implementation notes (equivalences with the TF1 graph)
------------------------------------------------------
* Convs are 3x3 with TF 'SAME' padding (symmetric for odd kernels; Keras
  ``padding="same"`` is the same), bias and ReLU, *then* batch norm.
* All max-pools use TF1's default 'valid' padding, so odd sizes are truncated
  (187 -> 92 frames in pool1, 11 -> 2 in pool5, 6 -> 1 mel band in pool5).
* Flatten of the NHWC pool5 map is row-major in both frameworks, so the
  converted ``[256, 50]`` dense kernel is used as is.
* Batch norm epsilon is 1e-3, as in :mod:`genre_model.musicnn`.

Weights
-------
Converted from the wheel's ``MSD_vgg`` checkpoint by
``scripts/convert_musicnn.py --model MSD_vgg`` and shipped in
``genre_model/pretrained/msd_vgg.weights.h5``; ``tests/test_musicnn_vgg.py``
checks the port against stored outputs of the original TF1 graph.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from genre_model.musicnn import BN_EPSILON, MSD_TAGS, N_FRAMES, N_MELS

__all__ = [
    "FILTERS",
    "POOLS",
    "OUTPUT_NAMES",
    "DEFAULT_WEIGHTS_PATH",
    "build_msd_vgg",
    "load_msd_vgg_model",
]

FILTERS = 128
#: (pool_size, strides) of the max-pool after each of the five conv blocks, as (time, mel).
POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

# Order of model.outputs / model.output_names (Keras sorts dict outputs by key).
OUTPUT_NAMES = ("pool1", "pool2", "pool3", "pool4", "pool5", "taggram")

DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "msd_vgg.weights.h5"  # made by convert_musicnn.py; not committed


def build_msd_vgg() -> keras.Model:
    """Build the (uninitialised) MSD_vgg network as a Keras functional model.

    Returns:
        ``keras.Model`` named ``msd_vgg`` mapping ``(batch, 187, 96)`` float32
        log-mel patches to a dict of ``pool1`` ... ``pool5`` feature maps
        ``(batch, time, mel, 128)`` and the 50-tag ``taggram``; layers are named
        ``input_bn``, ``conv{i}``, ``bn{i}``, ``pool{i}`` (i = 1..5) and ``logits``.
    """
    inputs = keras.Input(shape=(N_FRAMES, N_MELS), dtype="float32", name="log_mel")
    x = layers.Reshape((N_FRAMES, N_MELS, 1), name="expand_channels")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="input_bn")(x)
    outputs = {}
    for i, (pool_size, strides) in enumerate(POOLS, start=1):
        x = layers.Conv2D(FILTERS, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"bn{i}")(x)
        x = layers.MaxPooling2D(pool_size, strides, padding="valid", name=f"pool{i}")(x)
        outputs[f"pool{i}"] = x
    x = layers.Flatten(name="flatten")(x)  # (B, 2 * 1 * 128)
    logits = layers.Dense(len(MSD_TAGS), name="logits")(x)
    outputs["taggram"] = layers.Activation("sigmoid", name="taggram")(logits)
    return keras.Model(inputs, outputs, name="msd_vgg")


def load_msd_vgg_model(weights_path: str | Path = DEFAULT_WEIGHTS_PATH) -> keras.Model:
    """Build the network and load converted weights (a ``.weights.h5`` file from
    ``scripts/convert_musicnn.py --model MSD_vgg``; by default the shipped ones)."""
    model = build_msd_vgg()
    model.load_weights(str(weights_path))
    return model
