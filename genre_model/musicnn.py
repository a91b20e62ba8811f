"""Pure Keras 3 port of the pretrained musicnn ``MSD_musicnn`` audio-tagging network.

The architecture follows ``build_musicnn`` in musicnn 0.1.0 (``models.py``):
front-end ``'7774timbraltemporal'``, dense mid-end with 64 filters and a
``globalpool_dense`` back-end with 200 units, predicting the 50 Million Song
Dataset tags in :data:`MSD_TAGS`.  Only inference is supported: every batch
normalisation uses its moving statistics (``training=False`` in the
original graph) and the dropout layers of the original are omitted.

Input
-----
``(batch, n_frames, n_mels)`` float32 log-compressed mel spectrogram patches
(``n_frames=187`` = 3 s, ``n_mels=96``).  To match the original pipeline
(``extractor.py``): load audio at 16 kHz mono, ``librosa.feature.melspectrogram
(n_fft=512, hop_length=256, n_mels=96)``, transpose to (time, mel) and apply
``log10(10000 * mel + 1)``.  Do that in float32: musicnn casts the mel to
float16 first, which overflows (10000 * mel > 65504 becomes inf) and loses
precision; we deliberately do not reproduce that.

Outputs
-------
``model(x)`` / ``model.predict(x)`` return a dict:

* ``taggram``     (batch, 50)  sigmoid tag probabilities, see :data:`MSD_TAGS`
* ``penultimate`` (batch, 200) batch-normalised dense layer (``bn_dense``)
* ``mean_pool``   (batch, 753) temporal mean of the mid-end features
* ``max_pool``    (batch, 753) temporal max of the mid-end features

Keras 3 flattens dict outputs in sorted key order, so ``model.outputs`` /
``model.output_names`` (and the TFLite ``serving_default`` signature outputs)
are ordered as :data:`OUTPUT_NAMES` = ``("max_pool", "mean_pool",
"penultimate", "taggram")``.  Prefer looking outputs up by name.  All outputs
except ``taggram`` are the same features as musicnn's ``extractor`` returns
under those names.

Weights
-------
Weights converted from musicnn 0.1.0's ``MSD_musicnn`` TF1 checkpoint by
``scripts/convert_musicnn.py`` are shipped in
``genre_model/pretrained/msd_musicnn.weights.h5``; use
:func:`load_msd_musicnn_model` or :func:`build_msd_musicnn` +
:func:`load_msd_musicnn_weights`.

Licence / credit
----------------
musicnn and its pretrained models are by Jordi Pons and Xavier Serra,
Music Technology Group, Universitat Pompeu Fabra (https://github.com/jordipons/musicnn),
distributed under the ISC licence:

    Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019.
    Code developed by Jordi Pons (www.jordipons.me).

    Permission to use, copy, modify, and/or distribute this software for any
    purpose with or without fee is hereby granted, provided that the above
    copyright notice and this permission notice appear in all copies.

    THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
    WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
    MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY
    SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
    WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
    ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR
    IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.

See also ``genre_model/pretrained/LICENSE-musicnn.md``.

Implementation notes (equivalences with the TF1 graph)
------------------------------------------------------
* The time axis is zero-padded by 3 on each side before every 7-tap
  'valid' convolution (timbral front-end and the three mid-end layers).
* The temporal front-end convolutions (kernels 128x1, 64x1, 32x1) use TF
  'SAME' padding; for even kernels TF pads one more frame at the end
  (e.g. 63 before / 64 after for 128).  Keras ``padding="same"`` on the
  TensorFlow backend maps to exactly that.
* Each front-end branch is max-pooled over its whole (remaining) frequency
  axis and squeezed, giving (batch, time, filters).
* A mid-end TF1 ``conv2d`` with kernel ``[7, C]`` over a (time, C, 1) map,
  followed by ``transpose([0, 1, 3, 2])``, is a ``Conv1D(kernel_size=7)``
  over (time, C); the converted kernels are reshaped accordingly.
* The back-end concatenates ``[max_pool, mean_pool]`` on a trailing axis of
  size 2 *before* flattening, so the 1506-d vector is interleaved
  ``[max_0, mean_0, max_1, mean_1, ...]``; we reproduce that order.
* Batch norm epsilon is 1e-3 (``tf.compat.v1.layers.batch_normalization``).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

__all__ = [
    "MSD_TAGS",
    "N_MELS",
    "N_FRAMES",
    "SAMPLE_RATE",
    "FFT_SIZE",
    "FFT_HOP",
    "OUTPUT_NAMES",
    "DEFAULT_WEIGHTS_PATH",
    "build_msd_musicnn",
    "load_msd_musicnn_weights",
    "load_msd_musicnn_model",
]

# Signal processing setup of musicnn (configuration.py).
SAMPLE_RATE = 16000
FFT_HOP = 256
FFT_SIZE = 512
N_MELS = 96
N_FRAMES = 187  # 3 s patches: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1

# Output labels of the MSD models (configuration.MSD_LABELS), in taggram order.
MSD_TAGS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
]

# Order of model.outputs / model.output_names (Keras sorts dict outputs by key).
OUTPUT_NAMES = ("max_pool", "mean_pool", "penultimate", "taggram")

DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "pretrained" / "msd_musicnn.weights.h5"

BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization default

# Front-end hyper-parameters for '7774timbraltemporal' with num_filt=1.6.
_TIMBRAL_FILTERS = int(1.6 * 128)  # 204
_TEMPORAL_FILTERS = int(1.6 * 32)  # 51
_MIDEND_FILTERS = 64
_BACKEND_UNITS = 200


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)


def _frontend_branch(x, n_frames, n_mels, name, filters, kernel_size, padding):
    """conv2d(relu) -> batch norm -> max over the whole frequency axis -> squeeze."""
    if padding == "valid":
        # tf.pad([[0,0],[3,3],[0,0],[0,0]]): pad time only, then 'valid' conv
        x = layers.ZeroPadding2D(padding=((3, 3), (0, 0)), name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, kernel_size, padding=padding, activation="relu", name=f"{name}_conv")(x)
    x = _bn(f"{name}_bn")(x)
    freq = n_mels - kernel_size[1] + 1 if padding == "valid" else n_mels
    x = layers.MaxPooling2D(pool_size=(1, freq), strides=(1, freq), name=f"{name}_pool")(x)
    return layers.Reshape((n_frames if n_frames else -1, filters), name=f"{name}_squeeze")(x)


def _midend_layer(x, name):
    """tf.pad(time, 3) -> conv [7, C] 'valid' (relu) -> batch norm -> transpose == Conv1D(7)."""
    x = layers.ZeroPadding1D(padding=(3, 3), name=f"{name}_pad")(x)
    x = layers.Conv1D(_MIDEND_FILTERS, 7, padding="valid", activation="relu", name=f"{name}_conv")(x)
    return _bn(f"{name}_bn")(x)


def build_msd_musicnn(n_frames: int | None = N_FRAMES, n_mels: int = N_MELS) -> keras.Model:
    """Build the (uninitialised) MSD_musicnn network as a Keras functional model.

    Args:
        n_frames: number of spectrogram frames per patch (187 = 3 s, what the
            model was trained on).  The network is fully convolutional in time,
            so other lengths (or ``None`` for variable length) work too.
        n_mels: number of mel bands; must be 96 for the pretrained weights.

    Returns:
        ``keras.Model`` named ``msd_musicnn`` mapping ``(batch, n_frames, n_mels)``
        float32 log-mel patches to a dict with keys ``taggram`` (50),
        ``penultimate`` (200), ``mean_pool`` (753) and ``max_pool`` (753);
        ``model.outputs`` follow :data:`OUTPUT_NAMES` (sorted key order).
    """
    inputs = keras.Input(shape=(n_frames, n_mels), dtype="float32", name="log_mel")

    # ---- front-end: musically motivated CNN -------------------------------------------
    x = layers.Reshape((n_frames if n_frames else -1, n_mels, 1), name="expand_channels")(inputs)
    x = _bn("input_bn")(x)
    timbral_74 = _frontend_branch(x, n_frames, n_mels, "timbral_74", _TIMBRAL_FILTERS,
                                  (7, int(0.4 * n_mels)), "valid")
    timbral_77 = _frontend_branch(x, n_frames, n_mels, "timbral_77", _TIMBRAL_FILTERS,
                                  (7, int(0.7 * n_mels)), "valid")
    temporal_128 = _frontend_branch(x, n_frames, n_mels, "temporal_128", _TEMPORAL_FILTERS, (128, 1), "same")
    temporal_64 = _frontend_branch(x, n_frames, n_mels, "temporal_64", _TEMPORAL_FILTERS, (64, 1), "same")
    temporal_32 = _frontend_branch(x, n_frames, n_mels, "temporal_32", _TEMPORAL_FILTERS, (32, 1), "same")
    frontend = layers.Concatenate(axis=-1, name="frontend_concat")(
        [timbral_74, timbral_77, temporal_128, temporal_64, temporal_32])  # (B, T, 561)

    # ---- mid-end: dense + residual 1-D convs ------------------------------------------
    cnn1 = _midend_layer(frontend, "midend_1")
    cnn2 = layers.Add(name="midend_2_residual")([_midend_layer(cnn1, "midend_2"), cnn1])
    cnn3 = layers.Add(name="midend_3_residual")([_midend_layer(cnn2, "midend_3"), cnn2])
    midend = layers.Concatenate(axis=-1, name="midend_concat")([frontend, cnn1, cnn2, cnn3])  # (B, T, 753)

    # ---- back-end: temporal pooling + dense -------------------------------------------
    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(midend)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(midend)
    n_feat = midend.shape[-1]
    # TF1: concat([max, mean], axis=2) on (B, 753, 1) tensors, then flatten -> interleaved
    pooled = layers.Concatenate(axis=-1, name="pool_stack")([
        layers.Reshape((n_feat, 1), name="max_pool_expand")(max_pool),
        layers.Reshape((n_feat, 1), name="mean_pool_expand")(mean_pool),
    ])
    pooled = layers.Flatten(name="pool_flatten")(pooled)  # (B, 1506)
    pooled = _bn("pool_bn")(pooled)
    dense = layers.Dense(_BACKEND_UNITS, activation="relu", name="dense")(pooled)
    penultimate = _bn("penultimate")(dense)
    logits = layers.Dense(len(MSD_TAGS), name="logits")(penultimate)
    taggram = layers.Activation("sigmoid", name="taggram")(logits)

    outputs = {"taggram": taggram, "penultimate": penultimate, "mean_pool": mean_pool, "max_pool": max_pool}
    return keras.Model(inputs, outputs, name="msd_musicnn")


def load_msd_musicnn_weights(model: keras.Model, weights_path: str | Path = DEFAULT_WEIGHTS_PATH) -> keras.Model:
    """Load the converted MSD_musicnn weights (a ``.weights.h5`` file written by
    ``scripts/convert_musicnn.py``) into a model from :func:`build_msd_musicnn`."""
    model.load_weights(str(weights_path))
    return model


def load_msd_musicnn_model(weights_path: str | Path = DEFAULT_WEIGHTS_PATH,
                           n_frames: int | None = N_FRAMES) -> keras.Model:
    """Convenience: build the network and load the shipped pretrained weights."""
    return load_msd_musicnn_weights(build_msd_musicnn(n_frames=n_frames), weights_path)
