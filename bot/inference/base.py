"""What every inference backend offers the bot, and the result it sends back.

A backend classifies one upload in a process that holds the model (a local worker or a
Ray Serve replica), serves a model *version* taken from the :class:`~bot.inference.models.ModelStore`
(promotion swaps it without dropping requests), and bounds its queue: ``full`` is what
makes the bot answer "busy" before it downloads anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from typing import Iterator, Protocol, runtime_checkable

import numpy as np

from genre_model.config import TOP_K
from genre_model.predict import Classifier, Prediction, verdict
from bot.errors import QueueFull
from bot.inference.models import ModelStore


@dataclasses.dataclass
class ClassifyResult:
    """What a worker or replica sends back: small, picklable, everything the reply and storage need.

    ``sound`` is "music", or what the upload sounds like instead ("speech", "tone", "noise"); then
    ``genre`` is None (``probabilities`` and ``top_k`` are still what the genre head said).
    """

    genre: str | None
    probabilities: dict[str, float]
    top_k: list[tuple[str, float]]
    duration_s: float
    model_version: str
    file_sha256: str
    #: Seconds of the decoded audio the analysed windows heard, and how many windows.
    analysed_s: float
    n_windows: int
    sound: str
    #: The strongest of musicnn's MSD tags, strongest first: (tag, score). Tags, not genres.
    tags: list[tuple[str, float]]
    #: The top genre and the runners-up close to it, when the call is close; else [].
    close_call: list[str]
    image_png: bytes = dataclasses.field(repr=False)
    windows: np.ndarray = dataclasses.field(repr=False)
    feature_config: dict = dataclasses.field(repr=False)

    @property
    def music(self) -> bool:
        return self.sound == "music"

    @property
    def confidence(self) -> float:
        return self.probabilities[self.genre] if self.genre else 0.0

    def verdict(self) -> str:
        """The answer in words: "Reggae", "could be Reggae or Hip-hop", "this sounds like speech, not music"."""
        return verdict(self.genre, self.probabilities, self.sound)

    @classmethod
    def from_prediction(cls, pred: Prediction, classifier: Classifier, data: bytes, filename: str,
                        top_k: int = TOP_K) -> "ClassifyResult":
        """The one place a library :class:`Prediction` becomes what the bot receives (image drawn here)."""
        return cls(
            genre=pred.genre, probabilities=pred.probabilities, top_k=pred.top_k(top_k),
            duration_s=pred.duration_s, model_version=pred.model_version,
            file_sha256=hashlib.sha256(data).hexdigest(), analysed_s=pred.analysed_s, n_windows=pred.n_windows,
            sound=pred.sound, tags=list(pred.tags), close_call=pred.close_call(),
            image_png=pred.image(classifier.labels, filename),
            windows=pred.windows, feature_config=classifier.info.features.to_dict(),
        )


class QueueBound:
    """The per-process bound both backends share: at most ``max_queue`` requests queued or running."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._pending = 0

    @property
    def pending(self) -> int:
        """Requests queued or running now."""
        return self._pending

    @property
    def full(self) -> bool:
        """True when a new request would be refused with QueueFull."""
        return self._pending >= self.max_queue

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one place for a request: QueueFull when there is none, given back however it ends."""
        if self.full:
            raise QueueFull()
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1


@runtime_checkable
class InferenceBackend(Protocol):
    """Classifies uploads with the live model; implementations: ``local`` (process pool), ``ray_serve``."""

    #: Where model versions come from.
    store: ModelStore

    @property
    def model_version(self) -> str:
        """The version this backend serves now."""

    @property
    def pending(self) -> int:
        """Requests of this bot process queued or running now."""

    @property
    def full(self) -> bool:
        """True when a new request would be refused with QueueFull (the bot says "busy")."""

    async def start(self, version: str) -> None:
        """Bring up warmed workers serving ``version``. Raises ArtifactError for an unusable model."""

    async def classify(self, data: bytes, filename: str, max_seconds: float) -> ClassifyResult:
        """Classify one upload. Raises QueueFull, InferenceFailed or AudioError (bad input)."""

    async def serve_version(self, version: str) -> str:
        """Roll ``version`` out to every worker without dropping requests; returns it once all serve it."""

    async def close(self) -> None:
        """Stop taking work, let running requests end, release the workers."""
