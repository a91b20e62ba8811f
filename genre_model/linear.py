"""Linear models as plain arrays: the genre head and the sound detector of every artifact.

Both architectures end in a linear map from an embedding to class scores (the custom
CNN's last dense layer; a logistic regression on musicnn embeddings), so serving needs
only ``x @ weights + bias`` in numpy: no interpreter, no framework. Standardisation is
folded into the weights when a model is built from a fitted scaler.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from genre_model.errors import ArtifactError


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class Linear:
    """``scores = x @ weights + bias`` for rows ``x`` of ``weights.shape[0]`` features."""

    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def __post_init__(self) -> None:
        if self.weights.ndim != 2 or self.bias.shape != (self.weights.shape[1],):
            raise ValueError(f"weights {self.weights.shape} and bias {self.bias.shape} do not fit together")

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Scores ``(n, classes)`` of rows ``(n, features)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {x.shape[-1]}")
        return x @ self.weights + self.bias

    @classmethod
    def from_standardised(cls, weights: np.ndarray, bias: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> "Linear":
        """The model ``((x - mean) / scale) @ weights + bias`` with the scaling folded in."""
        w = np.asarray(weights, np.float64) / np.asarray(scale, np.float64)[:, None]
        return cls(w, np.asarray(bias, np.float64) - np.asarray(mean, np.float64) @ w)

    @classmethod
    def average(cls, models: list["Linear"]) -> "Linear":
        """One model whose scores are the mean of several models' scores."""
        return cls(np.mean([m.weights for m in models], axis=0), np.mean([m.bias for m in models], axis=0))

    def to_bytes(self, **extra: Any) -> bytes:
        """An ``.npz`` holding the model (and ``extra`` arrays, e.g. class names)."""
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.weights, bias=self.bias, **{k: np.asarray(v) for k, v in extra.items()})
        return buffer.getvalue()


def save_linear(path: Path, model: Linear, **extra: Any) -> None:
    """Write a linear model (and ``extra`` arrays) to an ``.npz`` file."""
    Path(path).write_bytes(model.to_bytes(**extra))


def load_linear(path: Path) -> tuple[Linear, dict[str, np.ndarray]]:
    """Read a linear model and its extra arrays; :class:`ArtifactError` if the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        model = Linear(arrays.pop("weights").astype(np.float64), arrays.pop("bias").astype(np.float64))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{Path(path).name}: not a linear model file ({exc})") from exc
    return model, arrays
