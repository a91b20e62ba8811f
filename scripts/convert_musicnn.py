#!/usr/bin/env python
"""Convert musicnn 0.1.0's pretrained ``MSD_musicnn`` / ``MSD_vgg`` TF1 checkpoints to Keras 3 weights.

Usage::

    python scripts/convert_musicnn.py [--model MSD_musicnn|MSD_vgg] /path/to/musicnn_package_dir [OUT_FILE]

e.g.::

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn   # ISC licence, ~50 MB
    unzip -q /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl -d /tmp/musicnn/wheel
    python scripts/convert_musicnn.py /tmp/musicnn/wheel/musicnn \\
        genre_model/pretrained/msd_musicnn.weights.h5
    python scripts/convert_musicnn.py --model MSD_vgg /tmp/musicnn/wheel/musicnn \\
        research/musicnn_vgg/msd_vgg.weights.h5

``musicnn_package_dir`` is the unpacked ``musicnn`` package (the directory that
contains ``models.py`` and ``MSD_musicnn/`` / ``MSD_vgg/``); the checkpoint
directory itself is also accepted.  OUT_FILE defaults to the shipped weights file
of the chosen model.  The musicnn package does not need to be importable:
only TensorFlow is used, to read the checkpoint.

The checkpoint's ``checkpoint`` index file holds an absolute path from the
author's machine, so ``tf.train.load_checkpoint`` fails on it; reading the
checkpoint prefix ``MSD_musicnn/`` (files ``.index`` / ``.data-00000-of-00001``)
directly with ``tf.compat.v1.train.NewCheckpointReader`` works.

The TF1 variable scopes (``conv2d_N``, ``batch_normalization_N``, ``dense``,
``dense_1``; vgg's convs are named ``1CNN`` ... ``5CNN``) are auto-numbered in
graph-construction order of ``musicnn.models.build_musicnn`` / ``vgg``; each
model's ``variable_map`` in :data:`MODELS` spells out which Keras layer of
:func:`genre_model.musicnn.build_msd_musicnn` / :func:`musicnn_vgg.build_msd_vgg` (research/musicnn_vgg)
each one becomes.  Every
model variable of the checkpoint must be used exactly once (the Adam slots and
``beta1_power``/``beta2_power`` optimizer state are ignored) and every Keras
weight must be assigned, with matching shapes, otherwise the script fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import keras
import tensorflow as tf

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "research" / "musicnn_vgg")]  # MSD_vgg: research only

import musicnn_vgg  # noqa: E402
from genre_model import musicnn  # noqa: E402

# TF1 variable scope -> Keras layer name, in musicnn's graph-construction order.
MUSICNN_VARIABLE_MAP = {
    # front-end
    "batch_normalization": "input_bn",
    "conv2d": "timbral_74_conv",  # [7, 38, 1, 204]
    "batch_normalization_1": "timbral_74_bn",
    "conv2d_1": "timbral_77_conv",  # [7, 67, 1, 204]
    "batch_normalization_2": "timbral_77_bn",
    "conv2d_2": "temporal_128_conv",  # [128, 1, 1, 51]
    "batch_normalization_3": "temporal_128_bn",
    "conv2d_3": "temporal_64_conv",  # [64, 1, 1, 51]
    "batch_normalization_4": "temporal_64_bn",
    "conv2d_4": "temporal_32_conv",  # [32, 1, 1, 51]
    "batch_normalization_5": "temporal_32_bn",
    # mid-end: conv2d [7, C, 1, 64] over (time, C, 1) == Conv1D kernel [7, C, 64]
    "conv2d_5": "midend_1_conv",  # [7, 561, 1, 64]
    "batch_normalization_6": "midend_1_bn",
    "conv2d_6": "midend_2_conv",  # [7, 64, 1, 64]
    "batch_normalization_7": "midend_2_bn",
    "conv2d_7": "midend_3_conv",  # [7, 64, 1, 64]
    "batch_normalization_8": "midend_3_bn",
    # back-end
    "batch_normalization_9": "pool_bn",  # [1506]
    "dense": "dense",  # [1506, 200]
    "batch_normalization_10": "penultimate",  # [200]
    "dense_1": "logits",  # [200, 50]
}

# MSD_vgg: kernels [3, 3, C_in, 128] and the dense [256, 50] fit Keras as they are.
VGG_VARIABLE_MAP = {
    "batch_normalization": "input_bn",  # [1]
    **{
        scope: layer
        for i in range(1, 6)
        for scope, layer in ((f"{i}CNN", f"conv{i}"), (f"batch_normalization_{i}", f"bn{i}"))
    },
    "dense": "logits",  # [256, 50]
}


@dataclass(frozen=True)
class ModelSpec:
    """How one musicnn checkpoint maps onto its Keras port."""

    build: Callable[[], keras.Model]
    variable_map: dict[str, str]
    n_variables: int
    default_out: Path
    #: Keras layers whose TF1 conv2d kernel [7, C, 1, F] becomes a Conv1D kernel [7, C, F].
    conv1d_prefix: str | None = None


MODELS = {
    "MSD_musicnn": ModelSpec(musicnn.build_msd_musicnn, MUSICNN_VARIABLE_MAP, 64,
                             musicnn.DEFAULT_WEIGHTS_PATH, conv1d_prefix="midend_"),
    "MSD_vgg": ModelSpec(musicnn_vgg.build_msd_vgg, VGG_VARIABLE_MAP, 36, musicnn_vgg.DEFAULT_WEIGHTS_PATH),
}

# Order of each Keras layer's weights, as TF1 variable names.
CONV_DENSE_VARS = ("kernel", "bias")
BN_VARS = ("gamma", "beta", "moving_mean", "moving_variance")

OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_VARS = ("beta1_power", "beta2_power")


def find_checkpoint_prefix(path: Path, model_name: str = "MSD_musicnn") -> str:
    """Return the checkpoint prefix accepted by NewCheckpointReader."""
    for candidate in (path / model_name, path):
        if (candidate / ".index").is_file():
            # The checkpoint files are literally named ".index" / ".data-...",
            # i.e. the prefix is the directory itself followed by a slash.
            return str(candidate) + "/"
    raise FileNotFoundError(f"no {model_name} checkpoint (.index file) found in {path} or {path / model_name}")


def read_model_variables(prefix: str) -> dict[str, np.ndarray]:
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    model_vars = {
        n: reader.get_tensor(n)
        for n in names
        if not n.endswith(OPTIMIZER_SUFFIXES) and n not in OPTIMIZER_VARS
    }
    return model_vars


def convert(prefix: str, out_file: Path, spec: ModelSpec = MODELS["MSD_musicnn"]) -> None:
    ckpt = read_model_variables(prefix)
    n_params = sum(v.size for v in ckpt.values())
    print(f"checkpoint {prefix}: {len(ckpt)} model variables, {n_params:,} parameters")

    model = spec.build()
    used: set[str] = set()
    assigned_layers: set[str] = set()
    for scope, layer_name in spec.variable_map.items():
        layer = model.get_layer(layer_name)
        var_names = BN_VARS if isinstance(layer, keras.layers.BatchNormalization) else CONV_DENSE_VARS
        current = layer.get_weights()
        assert len(current) == len(var_names), (layer_name, len(current))
        new_weights = []
        for var_name, cur in zip(var_names, current):
            full = f"{scope}/{var_name}"
            if full not in ckpt:
                raise KeyError(f"checkpoint lacks {full} (for Keras layer {layer_name})")
            value = ckpt[full].astype(np.float32)
            if value.shape != cur.shape:
                # Only legitimate reshape: musicnn's mid-end conv2d [7, C, 1, F] -> Conv1D [7, C, F]
                if not (spec.conv1d_prefix and layer_name.startswith(spec.conv1d_prefix)
                        and value.ndim == 4 and value.shape[2] == 1):
                    raise ValueError(f"{full} {value.shape} does not fit {layer_name} {cur.shape}")
                value = value.reshape(cur.shape)
                assert value.shape == cur.shape, (full, value.shape, cur.shape)
            if full in used:
                raise ValueError(f"{full} used twice")
            used.add(full)
            new_weights.append(value)
        layer.set_weights(new_weights)
        assigned_layers.add(layer_name)
        print(f"  {scope:24s} -> {layer_name:18s} {[w.shape for w in new_weights]}")

    unused = sorted(set(ckpt) - used)
    if unused:
        raise ValueError(f"unused checkpoint variables: {unused}")
    unassigned = [l.name for l in model.layers if l.weights and l.name not in assigned_layers]
    if unassigned:
        raise ValueError(f"Keras layers without converted weights: {unassigned}")
    assert len(used) == len(ckpt) == spec.n_variables, len(used)
    assert model.count_params() == n_params, (model.count_params(), n_params)

    out_file.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(out_file))
    print(f"all {len(used)} variables ({n_params:,} parameters) converted -> {out_file} "
          f"({out_file.stat().st_size / 1e6:.2f} MB)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="MSD_musicnn",
                        help="which checkpoint to convert (default: MSD_musicnn)")
    parser.add_argument("musicnn_dir", type=Path,
                        help="unpacked musicnn package directory (contains MSD_musicnn/ and MSD_vgg/)")
    parser.add_argument("out_file", type=Path, nargs="?",
                        help="output Keras weights file (must end in .weights.h5; "
                             "default: the shipped file in genre_model/pretrained/)")
    args = parser.parse_args(argv)
    spec = MODELS[args.model]
    out_file = args.out_file or spec.default_out
    if not str(out_file).endswith(".weights.h5"):
        parser.error("out_file must end in .weights.h5 (Keras 3 requirement)")
    convert(find_checkpoint_prefix(args.musicnn_dir, args.model), out_file, spec)


if __name__ == "__main__":
    main()
