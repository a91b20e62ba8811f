"""What every inference backend offers the bot, and the result it sends back.

A backend classifies one upload in a process that holds the model (a local worker or a
Ray Serve replica), serves a model *version* taken from the :class:`~bot.model_store.ModelStore`
(promotion swaps it without dropping requests), and bounds its queue: ``full`` is what
makes the bot answer "busy" before it downloads anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, Protocol, runtime_checkable

from genre_model.predict import Classifier, Prediction
from bot.errors import QueueFull


@dataclasses.dataclass
class Classified:
    """What a worker or replica sends back: the library's :class:`~genre_model.predict.Prediction`
    (the one prediction type from model to storage; its spectrogram dropped once drawn) and the
    picture drawn from it."""

    prediction: Prediction
    image_png: bytes = dataclasses.field(repr=False)

    @classmethod
    def of(cls, prediction: Prediction, classifier: Classifier, filename: str) -> "Classified":
        """Draw the picture (in the worker, where the CPU work belongs) and keep what the bot needs."""
        return cls(prediction.without_spectrogram(), prediction.image(classifier.labels, filename))


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
    """Classifies uploads with the live model; implementations: ``local`` (process pool), ``ray_serve``.
    Each is built with the :class:`~bot.model_store.ModelStore` its versions come from."""

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

    async def classify(self, data: bytes, filename: str, max_seconds: float) -> Classified:
        """Classify one upload. Raises QueueFull, InferenceFailed or AudioError (bad input)."""

    async def serve_version(self, version: str) -> str:
        """Roll ``version`` out to every worker without dropping requests; returns it once all serve it."""

    async def close(self) -> None:
        """Stop taking work, let running requests end, release the workers."""
