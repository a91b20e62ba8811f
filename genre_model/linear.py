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

    def to_bytes(self) -> bytes:
        """The model as an ``.npz`` (the one writer of the format; :func:`load_linear` reads it)."""
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.weights, bias=self.bias)
        return buffer.getvalue()


def song_probabilities(head: Linear, window_embeddings: np.ndarray, temperature: float) -> np.ndarray:
    """The one rule for a song's genre probabilities: the calibrated head on the mean of its window
    embeddings ``(n, d)`` (used by training, evaluation and serving alike)."""
    return softmax(head(np.asarray(window_embeddings).mean(axis=0, keepdims=True)), temperature)[0]


def load_linear(path: Path) -> Linear:
    """Read a linear model; :class:`ArtifactError` if the file is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return Linear(data["weights"].astype(np.float64), data["bias"].astype(np.float64))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{Path(path).name}: not a linear model file ({exc})") from exc
