"""Votes: a member's menu choice or reaction on a prediction reply, checked, then stored; no Discord.

The Discord adapter parses an event, calls ONE function here and renders the :class:`VoteOutcome`
it returns (``bot.discord_adapter.replies.vote_outcome``):

* :func:`check_menu_choice` -- what a component interaction must be to count: the correction
  menu's custom id, a string select, exactly one value, and that value one of the menu's labels.
  Anything else is refused before storage is touched (any client can send any interaction).
* :func:`record_menu_choice` / :func:`record_reaction` / :func:`retract_reaction` -- the message
  must be a tracked prediction of music. A reply is linked to its prediction before it becomes
  visible (see ``cogs/genre.py``), but a vote may still reach another bot process first, or race
  a slow link: an unknown message is looked up again for a short while (``Timing.link_wait``)
  before the vote is called untracked.
* A storage outage (PostgreSQL restarting, SQLite locked) is retried with back-off for
  ``Timing.outage`` seconds; then the outcome is ``failed`` and the voter is told. No vote is
  dropped silently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Awaitable, Callable, Collection, Sequence, TypeVar

from bot.errors import StorageError
from bot.feedback import VOTES
from bot.storage.base import Storage, StoredPrediction

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The custom id of the correction menu: the only component the bot offers.
CORRECTION_ID = "genrebot:correct"
#: Discord's component type of a string select menu.
STRING_SELECT = 3


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long a vote waits: for a reply's link to its prediction, and through a storage outage."""

    #: An unknown message is looked up again for this long (a reply being linked, another process).
    link_wait: float = 3.0
    #: A storage outage is retried (with back-off) for this long before the vote is reported failed.
    outage: float = 30.0
    first_backoff: float = 0.2
    max_backoff: float = 3.0


@dataclasses.dataclass(frozen=True)
class VoteOutcome:
    """What became of a vote.

    ``status``: ``right`` (stored: agrees with the prediction), ``corrected`` (stored: names
    ``genre`` instead of ``predicted``), ``wrong`` (a bare ❌, stored), ``retracted``, ``refused``
    (a malformed or forged interaction: nothing stored; ``problem`` says why, for the log),
    ``not_tracked`` (not a prediction reply), ``not_music`` (a reply that offers no vote),
    ``ignored`` (not a vote at all: another emoji, the bot itself), ``failed`` (storage stayed
    unavailable; nothing stored, the voter must be told)."""

    status: str
    genre: str | None = None
    predicted: str | None = None
    problem: str = ""

    @property
    def stored(self) -> bool:
        return self.status in ("right", "corrected", "wrong", "retracted")


def check_menu_choice(custom_id: object, component_type: object, values: object,
                      labels: Collection[str]) -> str | None:
    """Why a component interaction is not a choice the correction menu offered, or None when it is."""
    if custom_id != CORRECTION_ID:
        return f"unknown custom id {str(custom_id)[:100]!r}"
    if component_type != STRING_SELECT:
        return f"component type {component_type!r} is not the menu's"
    if not isinstance(values, (list, tuple)) or len(values) != 1:
        return "not exactly one value"
    if not isinstance(values[0], str) or values[0] not in labels:
        return f"value {str(values[0])[:100]!r} is not one of the menu's labels"
    return None


class Unavailable(Exception):
    """Storage stayed unavailable for the whole retry budget."""


async def _patiently(storage: Storage, call: Callable[[], Awaitable[T]], timing: Timing, what: str) -> T:
    """``call()``, retried with back-off while storage is unavailable, for at most ``timing.outage`` s."""
    transient = tuple(getattr(storage, "unavailable", ())) or (OSError,)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timing.outage
    backoff = timing.first_backoff
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except transient as exc:
            left = deadline - loop.time()
            if left <= 0:
                log.error("%s: storage unavailable for %.0f s (%d attempts), giving up: %r",
                          what, timing.outage, attempt, exc)
                raise Unavailable(what) from exc
            log.warning("%s: storage unavailable (%r); retrying in %.1f s", what, exc, min(backoff, left))
            await asyncio.sleep(min(backoff, left))
            backoff = min(backoff * 2, timing.max_backoff)


async def _prediction(storage: Storage, message_id: int | None, timing: Timing, *,
                      wait: bool) -> StoredPrediction | None:
    """The prediction a reply message is linked to; an unknown message is looked up again for a while."""
    if message_id is None:
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (timing.link_wait if wait else 0.0)
    pause = 0.05
    while True:
        found = await _patiently(storage, lambda: storage.prediction_by_message(message_id), timing,
                                 f"looking up message {message_id}")
        if found is not None or loop.time() >= deadline:
            return found
        await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
        pause = min(pause * 2, 0.5)


async def record_menu_choice(storage: Storage, *, message_id: int | None, user_id: int, custom_id: object,
                             component_type: object, values: Sequence[object] | None, labels: Collection[str],
                             timing: Timing = Timing()) -> VoteOutcome:
    """A pick in the correction menu: checked against what the bot offered, then stored as a
    'right' vote (the predicted genre) or a correction (another genre)."""
    problem = check_menu_choice(custom_id, component_type, values, labels)
    if problem:
        return VoteOutcome("refused", problem=problem)
    genre = str(values[0])  # type: ignore[index]
    try:
        prediction = await _prediction(storage, message_id, timing, wait=True)
        if prediction is None:
            return VoteOutcome("not_tracked", problem=f"message {message_id} is no prediction reply")
        if not prediction.music:
            return VoteOutcome("not_music", problem=f"prediction {prediction.id} is not music")
        if genre == prediction.genre:
            await _patiently(storage, lambda: storage.set_vote(prediction.id, user_id, "right"), timing,
                             f"vote on prediction {prediction.id}")
            return VoteOutcome("right", genre, prediction.genre)
        await _patiently(storage, lambda: storage.set_correction(prediction.id, user_id, genre), timing,
                         f"correction on prediction {prediction.id}")
        return VoteOutcome("corrected", genre, prediction.genre)
    except Unavailable:
        return VoteOutcome("failed", genre)
    except StorageError as exc:  # e.g. the prediction was forgotten meanwhile
        log.info("menu choice not recorded: %s", exc)
        return VoteOutcome("not_tracked", problem=str(exc))


async def record_reaction(storage: Storage, *, message_id: int, user_id: int, vote: str | None,
                          on_own_message: bool | None, timing: Timing = Timing()) -> VoteOutcome:
    """A ✅ (``vote='right'``) or ❌ (``'wrong'``) added on a message. ``on_own_message``: whether
    the bot wrote the message (None: unknown); only the bot's own messages are waited for."""
    if vote not in VOTES:
        return VoteOutcome("ignored")
    try:
        prediction = await _prediction(storage, message_id, timing, wait=on_own_message is not False)
        if prediction is None:
            return VoteOutcome("not_tracked")
        if not prediction.music:  # a "not music" reply offers nothing to vote on
            return VoteOutcome("not_music")
        await _patiently(storage, lambda: storage.set_vote(prediction.id, user_id, vote), timing,
                         f"reaction on prediction {prediction.id}")
        return VoteOutcome(vote, predicted=prediction.genre)
    except Unavailable:
        return VoteOutcome("failed")
    except StorageError as exc:  # e.g. the prediction was just forgotten
        log.info("vote not recorded: %s", exc)
        return VoteOutcome("not_tracked", problem=str(exc))


async def retract_reaction(storage: Storage, *, message_id: int, user_id: int, vote: str | None,
                           timing: Timing = Timing()) -> VoteOutcome:
    """A ✅/❌ removed: the member's vote is deleted if it is still that vote."""
    if vote not in VOTES:
        return VoteOutcome("ignored")
    try:
        prediction = await _prediction(storage, message_id, timing, wait=False)
        if prediction is None or not prediction.music:
            return VoteOutcome("not_tracked")
        await _patiently(storage, lambda: storage.retract_vote(prediction.id, user_id, vote), timing,
                         f"retracting a vote on prediction {prediction.id}")
        return VoteOutcome("retracted")
    except Unavailable:
        return VoteOutcome("failed")
