"""The training recipe: every hyper-parameter of ``genre-model train`` in one object.

Kept apart from :mod:`genre_model.train` so the command line can show the defaults
without importing the training stack.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from genre_model.config import LOUDNESS_TARGET, MAX_AUDIO_SECONDS

ARCHS = ("musicnn", "cnn")
WEIGHTINGS = ("class", "artist+class", "none")


@dataclasses.dataclass
class TrainOptions:
    """Hyper-parameters; every one is a ``genre-model train`` flag."""

    arch: str = "musicnn"
    seed: int = 1234
    max_seconds: float = MAX_AUDIO_SECONDS
    cache_dir: Path | None = None
    #: Integrated loudness (LUFS) every song is scaled to before its features (the feature config's
    #: ``loudness_target``, saved in the model); None = the raw level, as models before it.
    loudness_target: float | None = LOUDNESS_TARGET
    # musicnn: logistic-regression head on song embeddings
    c: float = 0.001  # inverse L2 strength of the logistic regression
    weighting: str = "class"  # sample weights: every genre equal ("class"), and every artist within it too
    pooling: str = "mean_max_penultimate"
    transform: str = "sqrt"  # per-window transform of the pooled features: "none" or "sqrt" (signed square root)
    calibration_folds: int = 5  # folds (grouped by artist) whose held-out predictions fit the temperature
    detector_clips: int = 20  # generated non-music clips of each kind the sound detector learns from
    #: Field copies of every audio track trained on beside it (names in ``genre_model.augment.FIELD_COPIES``).
    field_copies: tuple[str, ...] = ("room", "phone")
    # cnn: trained end to end
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 10
    dropout: float = 0.4
    mixup: float = 0.2
    val_fraction: float = 0.2  # share of the track (or artist) groups kept for early stopping and calibration

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; choose from {list(ARCHS)}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {self.weighting!r}; choose from {list(WEIGHTINGS)}")
        if self.c <= 0 or self.calibration_folds < 2 or self.detector_clips < 1:
            raise ValueError("c must be positive, calibration_folds at least 2 and detector_clips at least 1")
        from genre_model.augment import check_names

        self.field_copies = check_names(self.field_copies)  # a list read back from metadata becomes a tuple
