"""Code that runs inside the inference pool's worker processes.

Each worker loads the model once (in :func:`init_worker`) with the LiteRT runtime and
then decodes, windows, classifies and draws one upload per call. Nothing here imports
TensorFlow or discord.py.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import tempfile
import threading
import time

import numpy as np

from genre_model.predict import Classifier

_classifier: Classifier | None = None
try:  # glibc only; elsewhere freed memory is simply kept by the allocator
    _libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
    _libc.malloc_trim  # noqa: B018
except (OSError, AttributeError):
    _libc = None


@dataclasses.dataclass
class ClassifyResult:
    """What a worker sends back: small, picklable, everything the reply and storage need."""

    genre: str
    probabilities: dict[str, float]
    top_k: list[tuple[str, float]]
    timeline: list[tuple[float, float, str, float]]
    duration_s: float
    model_version: str
    file_sha256: str
    #: Seconds of the decoded audio the analysed windows heard, and how many windows.
    analysed_s: float
    n_windows: int
    image_png: bytes = dataclasses.field(repr=False)
    windows: np.ndarray = dataclasses.field(repr=False)
    feature_config: dict = dataclasses.field(repr=False)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.genre]


def init_worker(model_dir: str, threads: int, tmp_dir: str) -> None:
    """Pool initializer: load the model once per process."""
    global _classifier
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    tempfile.tempdir = tmp_dir  # decoder scratch files go where the pool cleans up after a killed worker
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    _classifier = Classifier(model_dir, num_threads=threads)


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed bot cannot stop its workers; they notice and leave on their own."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def ping() -> str:
    """Returns the loaded model's version (used to warm up and check workers)."""
    assert _classifier is not None, "worker not initialised"
    return _classifier.version


def classify(data: bytes, filename: str, max_seconds: float, top_k: int = 3) -> ClassifyResult:
    """Decode, window, classify and draw one upload. Raises AudioError for unusable input."""
    try:
        return _classify(data, filename, max_seconds, top_k)
    finally:
        _release_memory()


def _release_memory() -> None:
    """Hand freed heap back to the OS: decoding a long song briefly needs ~150 MB of copies."""
    if _libc is not None:
        _libc.malloc_trim(0)


def _classify(data: bytes, filename: str, max_seconds: float, top_k: int) -> ClassifyResult:
    assert _classifier is not None, "worker not initialised"
    pred = _classifier.predict(data, max_seconds=max_seconds)
    return ClassifyResult(
        genre=pred.genre, probabilities=pred.probabilities, top_k=pred.top_k(top_k),
        timeline=[(s.start_s, s.end_s, s.genre, s.p) for s in pred.timeline],
        duration_s=pred.duration_s, model_version=pred.model_version,
        file_sha256=hashlib.sha256(data).hexdigest(), analysed_s=pred.analysed_s, n_windows=pred.n_windows,
        image_png=pred.image(_classifier.labels, filename),
        windows=pred.windows, feature_config=_classifier.info.features.to_dict(),
    )
