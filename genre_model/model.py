"""Keras architectures. Every model is an *embedder* (windows -> vectors) plus a *head*.

* ``cnn``: the original study's custom CNN trained from scratch on 128x128 log-mel
  windows with delta channels: four conv blocks (conv, batch norm, ReLU, max-pool,
  dropout), global average pooling and a dense layer; the head is one softmax layer.
* ``musicnn``: the pretrained MSD musicnn network (frozen) whose mean- and max-pooled
  mid-level features are the embedding; the head is a small regularised classifier
  trained on track-level (window-averaged) embeddings.

Imports Keras: used for training and export only, never on the serving path.
"""

from __future__ import annotations

import keras
from keras import layers

from genre_model.config import MUSICNN_WEIGHTS
from genre_model.features import FeatureConfig

ARCHS = ("musicnn", "cnn")


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


def split_cnn(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Split a trained :func:`build_cnn` model into (embedder, linear head)."""
    embedder = keras.Model(model.input, model.get_layer("embedding").output, name="cnn_embedder")
    dense = model.get_layer("logits")
    head_in = keras.Input(shape=(dense.kernel.shape[0],), name="embedding")
    head_out = layers.Dense(dense.units, name="logits")(head_in)
    head = keras.Model(head_in, head_out, name="cnn_head")
    head.get_layer("logits").set_weights(dense.get_weights())
    return embedder, head


@keras.saving.register_keras_serializable(package="genre_model")
class SignedSqrt(layers.Layer):
    """``sign(x) * sqrt(|x|)`` element-wise: compresses the heavy-tailed pooled musicnn features."""

    def call(self, x):
        return keras.ops.sign(x) * keras.ops.sqrt(keras.ops.abs(x))


def build_musicnn_embedder(features: FeatureConfig, pooling: str = "mean_max", transform: str = "none") -> keras.Model:
    """Frozen MSD musicnn: windows ``(96, 187, 1)`` -> pooled mid-level features.

    ``transform="sqrt"`` applies a signed square root per window (before the mean over windows).
    """
    from genre_model.musicnn import build_msd_musicnn, load_msd_musicnn_weights

    backbone = build_msd_musicnn(n_frames=features.window_frames, n_mels=features.n_mels)
    load_msd_musicnn_weights(backbone, MUSICNN_WEIGHTS)
    backbone.trainable = False
    inputs = keras.Input(shape=features.input_shape, name="windows")
    x = layers.Reshape(features.input_shape[:2], name="squeeze_channel")(inputs)
    x = layers.Permute((2, 1), name="time_major")(x)  # musicnn wants (frames, mels)
    outputs = backbone(x)  # a dict: taggram, penultimate, mean_pool, max_pool
    names = {"mean": "mean_pool", "max": "max_pool", "penultimate": "penultimate"}
    try:
        chosen = [outputs[names[p]] for p in pooling.split("_")]
    except KeyError as exc:
        raise ValueError(f"unknown pooling {pooling!r}; use parts of {sorted(names)} joined by '_'") from exc
    embedding = chosen[0] if len(chosen) == 1 else layers.Concatenate(name="embedding")(chosen)
    if transform == "sqrt":
        embedding = SignedSqrt(name="signed_sqrt")(embedding)
    elif transform != "none":
        raise ValueError(f"unknown embedding transform {transform!r}; use 'none' or 'sqrt'")
    return keras.Model(inputs, embedding, name="musicnn_embedder")


def build_head(embedding_dim: int, n_classes: int, *, mean, variance, hidden: int = 0,
               dropout: float = 0.5, l2: float = 1e-3, name: str = "head") -> keras.Model:
    """Classifier on embeddings: standardise, dropout, optional hidden layer, linear logits."""
    inputs = keras.Input(shape=(embedding_dim,), name="embedding")
    x = layers.Normalization(mean=mean, variance=variance, name="standardise")(inputs)
    x = layers.Dropout(dropout, name="drop_in")(x)
    if hidden:
        x = layers.Dense(hidden, activation="relu", kernel_regularizer=keras.regularizers.l2(l2), name="hidden")(x)
        x = layers.Dropout(dropout, name="drop_hidden")(x)
    logits = layers.Dense(n_classes, kernel_regularizer=keras.regularizers.l2(l2), name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def average_heads(heads: list[keras.Model], embedding_dim: int) -> keras.Model:
    """One deployable head whose logits are the mean of several trained heads' logits."""
    if len(heads) == 1:
        return heads[0]
    inputs = keras.Input(shape=(embedding_dim,), name="embedding")
    logits = layers.Average(name="logits")([h(inputs) for h in heads])
    return keras.Model(inputs, logits, name="head")
