"""Uploads: what the bot accepts before downloading, and what it does with an accepted one.

The rules of ``/genre`` without Discord: :func:`refusal` (size and type, known before any
download) and :func:`classify_and_store` (classify in a worker, store with the storage policy).
The Discord adapter parses, calls these, and renders their outcome in its own words.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePath

from genre_model.config import AUDIO_EXTENSIONS
from genre_model.errors import AudioError
from bot.inference.base import Classified, InferenceBackend
from bot.storage.base import Storage, Upload

#: Content types that can carry audio; anything else is refused before download.
MEDIA_PREFIXES = ("audio/", "video/")
ALSO_OK = frozenset({"application/ogg", "application/octet-stream", "application/x-flac"})


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an attachment is refused before download: ``too_large``, ``empty`` or ``not_audio``
    (``kind`` is the content type or suffix it had)."""

    reason: str
    size: int = 0
    kind: str = ""


def refusal(file_name: str, size: int, content_type: str | None, max_bytes: int) -> Refusal | None:
    """Why an attachment is refused before downloading it, or None when it may be audio."""
    if size > max_bytes:
        return Refusal("too_large", size)
    if size == 0:
        return Refusal("empty")
    ctype = (content_type or "").split(";")[0].strip().lower()
    suffix = PurePath(file_name).suffix.lower()
    if ctype.startswith(MEDIA_PREFIXES) or ctype in ALSO_OK or (not ctype and suffix in AUDIO_EXTENSIONS):
        return None
    if suffix in AUDIO_EXTENSIONS and not ctype.startswith(("text/", "image/")):
        return None
    return Refusal("not_audio", kind=ctype or suffix or "unknown type")


class TooLarge(AudioError):
    """The downloaded file is larger than the limit (its announced size was smaller)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the file is {size} bytes; the limit is {limit} bytes")
        self.size, self.limit = size, limit


async def classify_and_store(upload: Upload, inference: InferenceBackend, storage: Storage, *, max_bytes: int,
                             max_seconds: float, keep_audio: bool,
                             reply_message_id: int | None = None) -> tuple[int, Classified]:
    """Classify ``upload`` in a worker and store the prediction; returns (its id, the result).

    ``reply_message_id``: the message that will show the result (the deferred "thinking..." message,
    whose id is known before the result is visible). The prediction is linked to it before this
    returns, so a vote made as soon as the reply appears finds its prediction.

    The storage policy: the feature windows are kept only for music (an upload that is not music
    never becomes training data), the file itself only with GENREBOT_KEEP_AUDIO. Raises AudioError
    (bad input), QueueFull or InferenceFailed; nothing is stored then."""
    if len(upload.data) > max_bytes:
        raise TooLarge(len(upload.data), max_bytes)
    classified = await inference.classify(upload.data, upload.file_name, max_seconds)
    prediction = classified.prediction
    prediction_id = await storage.record_prediction(upload, prediction, keep_windows=prediction.music,
                                                    keep_audio=keep_audio)
    if reply_message_id is not None:
        await storage.attach_message(prediction_id, reply_message_id)
    return prediction_id, classified
