"""The storage interface: row types, the :class:`Storage` protocol, and the checks every backend shares.

Two implementations sit side by side: :mod:`bot.storage.sqlite` (one machine, the default)
and :mod:`bot.storage.postgres` (several bot processes sharing one database).
:func:`bot.backends.open_storage` picks one from the settings.

Guarantees every backend keeps (and the shared test-suite checks on both):

* a write is durable when its method returns (a killed bot process loses no acknowledged vote);
* one vote per user per prediction; a reaction removal only retracts the vote it added;
* :meth:`Storage.forget_user` deletes a user's predictions with everything stored for them
  (feature windows, kept audio, every vote on them) and the user's votes elsewhere;
* the schema is versioned; a database newer than the code refuses to open.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import re
from pathlib import Path, PurePath
from typing import Any, Iterable, Protocol, Self, Sequence, runtime_checkable

import numpy as np

from genre_model.features import read_windows
from genre_model.predict import Prediction
from bot.feedback import VOTES, Correction, Rated, Vote, check_label

__all__ = ["Correction", "ModelRow", "RetrainRow", "RETRAIN_STATES", "StoredPrediction", "Stats", "Storage", "StorageBase", "VOTES", "Vote",
           "Row", "Upload", "audio_suffix", "check_label", "check_sound", "check_vote", "prediction_row", "stats_from_row",
           "utcnow"]


@dataclasses.dataclass(frozen=True)
class Upload:
    """Who sent which file, where: what is stored of an upload besides its prediction."""

    user_id: int
    guild_id: int | None
    channel_id: int | None
    interaction_id: int | None
    #: The display-safe file name.
    file_name: str
    data: bytes = dataclasses.field(repr=False)

    @functools.cached_property
    def file_sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclasses.dataclass(frozen=True)
class StoredPrediction:
    """One classified upload. ``created_at`` is ISO-8601 UTC; ``has_windows`` / ``has_audio`` say
    whether its feature windows / the uploaded file are kept. ``sound`` is "music", or what the
    upload sounded like instead ("speech", "tone", "noise"): then the reply named no genre, and
    ``genre``/``top_k`` are only what the genre head said."""

    id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    interaction_id: int | None
    created_at: str
    file_name: str
    file_sha256: str
    duration_s: float
    model_version: str
    genre: str
    confidence: float
    top_k: tuple[tuple[str, float], ...]
    has_windows: bool
    has_audio: bool
    sound: str = "music"

    @property
    def music(self) -> bool:
        return self.sound == "music"


@dataclasses.dataclass(frozen=True)
class ModelRow:
    """A trained model known to the bot; ``path`` is relative to the data folder."""

    version: str
    created_at: str
    path: str
    metrics: dict[str, Any]
    is_live: bool
    note: str


#: How a retrain row can be: one 'running' at most (the cross-process lock), then how it ended.
RETRAIN_STATES = ("running", "promoted", "kept", "failed", "interrupted")


@dataclasses.dataclass(frozen=True)
class RetrainRow:
    """One /retrain, as every bot process sees it: who runs it (``owner``, host:pid:token), where its
    public reply is (``channel_id``/``message_id``), and how long ago the owner last said it was alive
    (``heartbeat_age_s``, by the database's clock)."""

    id: int
    state: str
    owner: str
    requested_by: int | None
    channel_id: int | None
    message_id: int | None
    heartbeat_age_s: float
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class Stats:
    """Counts for ``/genre-stats``; ``feedback_accuracy`` is None without feedback; ``n_not_music``
    of the ``n_predictions`` were answered "not music"."""

    n_predictions: int
    n_votes_right: int
    n_votes_wrong: int
    n_corrections: int
    n_predictions_with_feedback: int
    feedback_accuracy: float | None
    live_model_version: str | None
    n_not_music: int = 0


@runtime_checkable
class Storage(Protocol):
    """Predictions, votes and models, as the bot uses them. Every method is a coroutine safe to call
    concurrently; every write is one transaction, committed (durable) before it returns.

    Only what the product calls is here; the backends offer a few readers more (``get_prediction``,
    ``windows``, ``audio``, ``votes``, ``list_models``, ``corrections``) for tools and tests."""

    #: Exception types that mean "unavailable right now, try again later" (an outage, not a bad request).
    unavailable: tuple[type[BaseException], ...]

    async def close(self) -> None:
        """Release connections; waits for running statements."""

    async def __aenter__(self) -> "Storage": ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    # -- predictions
    async def record_prediction(self, upload: Upload, prediction: Prediction, *, keep_windows: bool,
                                keep_audio: bool) -> int:
        """Store ``prediction`` of ``upload``, with its feature windows if ``keep_windows`` and the
        uploaded file itself if ``keep_audio`` (GENREBOT_KEEP_AUDIO); return its id. Row and files are
        stored together or not at all."""

    async def attach_message(self, prediction_id: int, message_id: int) -> None:
        """Remember the bot's reply message, so reactions find the prediction."""

    async def prediction_by_message(self, message_id: int) -> StoredPrediction | None: ...

    # -- feedback
    async def set_vote(self, prediction_id: int, user_id: int, vote: str) -> None:
        """Record ``vote`` ('right'/'wrong'), replacing this user's earlier vote (a 'right' clears
        a correction, a bare 'wrong' keeps it). Unknown prediction -> StorageError."""

    async def set_correction(self, prediction_id: int, user_id: int, genre: str) -> None:
        """Record a 'wrong' vote naming the right genre (replaces the user's vote)."""

    async def retract_vote(self, prediction_id: int, user_id: int, vote: str) -> bool:
        """Delete the user's vote only if it is still ``vote``; True if deleted."""

    async def stats(self) -> Stats: ...

    # -- models
    async def record_model(self, version: str, path: str, metrics: dict, note: str = "") -> None:
        """Register a trained model (not live yet); a known version -> StorageError."""

    async def set_live_model(self, version: str) -> None:
        """Make ``version`` the one live model; unknown version -> StorageError."""

    async def live_model(self) -> ModelRow | None: ...

    # -- retrains (one at a time across every bot process) and cooldowns
    async def claim_retrain(self, owner: str, requested_by: int | None, channel_id: int | None) -> int | None:
        """Start a retrain row in state 'running' and return its id, or None when one is running
        already (in any process). Atomic: of two processes claiming at once, one gets None."""

    async def running_retrain(self) -> RetrainRow | None:
        """The running retrain, if any."""

    async def retrain_heartbeat(self, retrain_id: int) -> bool:
        """The owner is alive: refresh the row's heartbeat; False if it is no longer running."""

    async def attach_retrain_message(self, retrain_id: int, message_id: int) -> None:
        """Remember the retrain's public reply (settled from the row if the bot restarts)."""

    async def finish_retrain(self, retrain_id: int, state: str, detail: str = "") -> bool:
        """End a running retrain as ``state``; False (and nothing changed) if it was not running."""

    async def take_cooldown(self, user_id: int, seconds: float) -> float:
        """One statement: start the user's pause of ``seconds`` and return 0, or return the seconds
        still to wait (the pause is shared by every bot process)."""

    async def release_cooldown(self, user_id: int) -> None:
        """End the user's pause now (the request did no work)."""

    # -- privacy and retraining data
    async def corrections(self) -> list[Correction]:
        """The correction dataset as it stands (what an export holds; forgotten data is gone)."""

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        """Delete the user's predictions (with windows, audio and every vote on them) and the
        user's votes elsewhere; returns (predictions deleted, feedback rows deleted)."""

    async def export_corrections(self, out_dir: Path) -> int:
        """Write the correction dataset (:func:`bot.feedback.corrections` over every prediction of
        music with windows and votes) as ``<label>/pred-<id>.npz`` + ``MANIFEST.csv`` into an empty
        or missing ``out_dir``; returns the number of examples written."""


class StorageBase(abc.ABC):
    """What every backend shares, on top of its hooks ``close``, ``_windows_file``,
    ``_upsert_feedback`` and ``corrections``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; waits for running statements."""

    @abc.abstractmethod
    async def _windows_file(self, prediction_id: int) -> bytes | None:
        """The stored windows file's bytes, or None."""

    @abc.abstractmethod
    async def _upsert_feedback(self, prediction_id: int, user_id: int, vote: str, genre: str | None) -> None:
        """Insert or replace the user's vote (a 'right' clears a correction); unknown prediction -> StorageError."""

    @abc.abstractmethod
    async def corrections(self) -> list[Correction]: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def windows(self, prediction_id: int) -> tuple[np.ndarray, dict] | None:
        data = await self._windows_file(prediction_id)
        return None if data is None else read_windows(io.BytesIO(data))

    async def set_vote(self, prediction_id: int, user_id: int, vote: str) -> None:
        check_vote(vote)
        await self._upsert_feedback(prediction_id, user_id, vote, None)

    async def set_correction(self, prediction_id: int, user_id: int, genre: str) -> None:
        await self._upsert_feedback(prediction_id, user_id, "wrong", check_label(genre))

    async def export_corrections(self, out_dir: Path) -> int:
        from bot.storage import export

        return await export.export_corrections(Path(out_dir), await self.corrections(), self._windows_file)


# ---------------------------------------------------------------------------------------- shared checks


def utcnow() -> dt.datetime:
    """The current time, UTC (one place, so tests can make it tick deterministically)."""
    return dt.datetime.now(dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    """ISO-8601 UTC with microseconds, as row types carry times (sorts as text)."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def check_retrain_state(state: str) -> str:
    if state not in RETRAIN_STATES or state == "running":
        raise ValueError(f"a retrain ends as one of {RETRAIN_STATES[1:]}, not {state!r}")
    return state


def check_sound(sound: str) -> str:
    """What an upload sounded like: a short plain word ("music", "speech", ...)."""
    if not isinstance(sound, str) or not re.fullmatch(r"[a-z][a-z_-]{0,31}", sound):
        raise ValueError(f"not a usable sound: {sound!r}")
    return sound


def check_vote(vote: str) -> None:
    if vote not in VOTES:
        raise ValueError(f"vote must be 'right' or 'wrong', not {vote!r}")


def ranked_top_k(top_k: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """``top_k`` best first, as plain ``(str, float)`` pairs; empty -> ValueError."""
    ranked = sorted(((str(label), float(p)) for label, p in top_k), key=lambda lp: -lp[1])
    if not ranked:
        raise ValueError("top_k is empty")
    return ranked


@dataclasses.dataclass(frozen=True)
class Row:
    """The values a prediction's row is made of, checked (every backend stores these)."""

    genre: str
    confidence: float
    top_k: list[tuple[str, float]]
    sound: str
    duration_s: float
    model_version: str
    windows: np.ndarray | None
    feature_config: dict | None


def prediction_row(prediction: Prediction, keep_windows: bool) -> Row:
    """The checks before storing a prediction, and what its row holds: the genre head's ranking
    (also for an upload that was not music: then nobody was shown it as the answer)."""
    ranked = ranked_top_k(prediction.top_k())
    check_sound(prediction.sound)
    windows = prediction.windows if keep_windows else None
    if windows is not None and prediction.features is None:
        raise ValueError("windows need the feature settings they were made with")
    return Row(ranked[0][0], ranked[0][1], ranked, prediction.sound, float(prediction.duration_s),
               prediction.model_version, windows, prediction.features.to_dict() if windows is not None else None)


def stats_from_row(row: Sequence[Any]) -> Stats:
    """:class:`Stats` from the stats query's row: predictions, right, wrong, corrections, predictions
    with feedback, predictions voted right by majority, live version, not music."""
    n_pred, right, wrong, corrections, with_feedback, majority_right, live, not_music = tuple(row)
    return Stats(n_pred, right, wrong, corrections, with_feedback,
                 majority_right / with_feedback if with_feedback else None, live, not_music)


_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")


def audio_suffix(file_name: str) -> str:
    """The suffix a kept upload is stored under: the file name's own if it is plain
    (``".mp3"``), else ``".bin"``. Never a path separator or anything a shell would mind."""
    suffix = PurePath(file_name).suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ".bin"


def rated(rows: Iterable[Sequence[Any]]) -> list[Rated]:
    """Rows of ``(prediction id, uploader, file sha256, genre, voter, vote, corrected genre)``,
    sorted by prediction then vote time -> one :class:`bot.feedback.Rated` per prediction."""
    votes: dict[int, list[Vote]] = {}
    first: dict[int, tuple[int, str, str]] = {}
    for pid, uploader, sha, genre, voter, vote, corrected in rows:
        first.setdefault(pid, (uploader, sha, genre))
        votes.setdefault(pid, []).append(Vote(voter, vote, corrected))
    return [Rated(pid, *first[pid], tuple(v)) for pid, v in votes.items()]
