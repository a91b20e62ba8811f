"""Code that runs inside the inference processes: the local pool's workers and Ray Serve replicas.

Each worker loads the model once (in :func:`init_worker`) with the LiteRT runtime and
then decodes, windows, classifies and draws one upload per call (:func:`classify_with`
is shared with the Ray Serve replicas). Nothing here imports TensorFlow or discord.py.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
import time
from typing import Any

from genre_model.predict import Classifier
from bot.inference.base import Classified

_classifier: Classifier | None = None
_ready: Any = None  # a multiprocessing Barrier: each warm-up ping is answered by a different worker
try:  # glibc only; elsewhere freed memory is simply kept by the allocator
    _libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
    _libc.malloc_trim  # noqa: B018
except (OSError, AttributeError):
    _libc = None


def init_worker(model_dir: str, threads: int, tmp_dir: str, ready: Any = None) -> None:
    """Pool initializer: load the model once per process."""
    global _classifier, _ready
    _ready = ready
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    tempfile.tempdir = tmp_dir  # decoder scratch files go where the pool cleans up after a killed worker
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    _classifier = Classifier(model_dir, num_threads=threads)


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed bot cannot stop its workers; they notice and leave on their own."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def ping(timeout: float = 120.0) -> tuple[int, str]:
    """(process id, loaded model version): the pool's warm-up, one ping per worker (they wait for each other)."""
    assert _classifier is not None, "worker not initialised"
    if _ready is not None:
        _ready.wait(timeout)
    return os.getpid(), _classifier.version


def classify(data: bytes, filename: str, max_seconds: float, job: str | None = None) -> Classified:
    """Decode, window, classify and draw one upload with this worker's model. Raises AudioError.

    ``job`` names a marker file left in the scratch folder while the upload is being worked on: if
    this worker dies, the pool can tell the request that was running on it (the marker is still
    there) from requests that were only waiting (none)."""
    assert _classifier is not None, "worker not initialised"
    marker = os.path.join(tempfile.gettempdir(), f"job-{job}") if job else None
    if marker:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
    try:
        return classify_with(_classifier, data, filename, max_seconds)
    finally:
        if marker:
            try:
                os.remove(marker)
            except OSError:
                pass


def classify_with(classifier: Classifier, data: bytes, filename: str, max_seconds: float) -> Classified:
    """Decode, window, classify and draw one upload. Raises AudioError for unusable input."""
    try:
        pred = classifier.predict(data, max_seconds=max_seconds)
        return Classified.of(pred, classifier, filename)
    finally:
        _release_memory()


def _release_memory() -> None:
    """Hand freed heap back to the OS: decoding a long song briefly needs ~150 MB of copies."""
    if _libc is not None:
        _libc.malloc_trim(0)
