"""Keras architectures. Every model is an *embedder* (windows -> vectors) plus a linear *head*.

* ``cnn``: the original study's custom CNN trained from scratch on 128x128 log-mel
  windows with delta channels: four conv blocks (conv, batch norm, ReLU, max-pool,
  dropout), global average pooling and a dense layer; the head is its last dense layer.
* ``musicnn``: the pretrained MSD musicnn network (frozen) whose pooled mid-level
  features, penultimate layer and 50 MSD tag probabilities are the embedding; the head is
  a regularised logistic regression on song-level (window-averaged) embeddings.

Imports Keras: used for training and export only, never on the serving path.
"""

from __future__ import annotations

import keras
from keras import layers

import numpy as np

from genre_model.config import MUSICNN_WEIGHTS
from genre_model.features import FeatureConfig
from genre_model.linear import Linear


def build_cnn(features: FeatureConfig, n_classes: int, *, dropout: float = 0.3,
              embedding_dim: int = 128, filters: tuple[int, ...] = (32, 64, 128, 256)) -> keras.Model:
    """The custom CNN, end to end: windows -> class logits. Layer ``embedding`` is the split point."""
    inputs = keras.Input(shape=features.input_shape, name="windows")
    x = inputs
    for i, n in enumerate(filters):
        x = layers.Conv2D(n, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        x = layers.SpatialDropout2D(dropout / 2, name=f"drop{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop_gap")(x)
    x = layers.Dense(embedding_dim, activation="relu", name="embedding")(x)
    x = layers.Dropout(dropout + 0.2, name="drop_embedding")(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="genre_cnn")


def split_cnn(model: keras.Model) -> tuple[keras.Model, Linear]:
    """Split a trained :func:`build_cnn` model into (embedder, linear head)."""
    embedder = keras.Model(model.input, model.get_layer("embedding").output, name="cnn_embedder")
    kernel, bias = model.get_layer("logits").get_weights()
    return embedder, Linear(np.asarray(kernel, np.float64), np.asarray(bias, np.float64))


@keras.saving.register_keras_serializable(package="genre_model")
class SignedSqrt(layers.Layer):
    """``sign(x) * sqrt(|x|)`` element-wise: compresses the heavy-tailed pooled musicnn features."""

    def call(self, x):
        return keras.ops.sign(x) * keras.ops.sqrt(keras.ops.abs(x))


#: musicnn outputs that can make up the embedding, by their short names.
MUSICNN_PARTS = {"mean": "mean_pool", "max": "max_pool", "penultimate": "penultimate"}


def build_musicnn_embedder(features: FeatureConfig, pooling: str = "mean_max_penultimate",
                           transform: str = "sqrt", tags: bool = True) -> keras.Model:
    """Frozen MSD musicnn: windows ``(96, 187, 1)`` -> one embedding per window.

    ``pooling`` names the musicnn outputs joined by ``_`` (of :data:`MUSICNN_PARTS`);
    ``transform="sqrt"`` applies a signed square root to them (before any mean over windows);
    ``tags=True`` appends the 50 MSD tag probabilities as the last columns, untransformed.
    """
    from genre_model.musicnn import build_msd_musicnn, load_msd_musicnn_weights

    backbone = build_msd_musicnn(n_frames=features.window_frames, n_mels=features.n_mels)
    load_msd_musicnn_weights(backbone, MUSICNN_WEIGHTS)
    backbone.trainable = False
    inputs = keras.Input(shape=features.input_shape, name="windows")
    x = layers.Reshape(features.input_shape[:2], name="squeeze_channel")(inputs)
    x = layers.Permute((2, 1), name="time_major")(x)  # musicnn wants (frames, mels)
    outputs = backbone(x)  # a dict: taggram, penultimate, mean_pool, max_pool
    try:
        chosen = [outputs[MUSICNN_PARTS[p]] for p in pooling.split("_")]
    except KeyError as exc:
        raise ValueError(f"unknown pooling {pooling!r}; use parts of {sorted(MUSICNN_PARTS)} joined by '_'") from exc
    embedding = chosen[0] if len(chosen) == 1 else layers.Concatenate(name="features")(chosen)
    if transform == "sqrt":
        embedding = SignedSqrt(name="signed_sqrt")(embedding)
    elif transform != "none":
        raise ValueError(f"unknown embedding transform {transform!r}; use 'none' or 'sqrt'")
    if tags:
        embedding = layers.Concatenate(name="embedding")([embedding, outputs["taggram"]])
    return keras.Model(inputs, embedding, name="musicnn_embedder")
