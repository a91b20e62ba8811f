"""Per-user cooldowns: :class:`SharedCooldowns` (in storage, shared by every bot process; what /genre
uses) over :class:`Cooldowns` (one process's memory, the fallback when storage cannot answer)."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Callable

log = logging.getLogger(__name__)

#: How long /genre waits for the shared cooldown before deciding alone (it must answer Discord within 3 s).
STORAGE_TIMEOUT = 1.5


class Cooldowns:
    """One request per user per ``seconds``. Memory stays bounded by the users of the last ``seconds``:
    entries are kept in the order they were granted and dropped once their pause is over.

    Per bot process: :class:`SharedCooldowns` puts the pause in storage, shared by every process, and
    uses this only while storage cannot answer."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._granted: collections.OrderedDict[int, float] = collections.OrderedDict()

    def retry_after(self, user_id: int) -> float:
        """Seconds ``user_id`` must still wait, or 0 when the request may go ahead (and the pause starts)."""
        if self.seconds <= 0:
            return 0.0
        now = self._clock()
        while self._granted:  # forget users whose pause is over (oldest first)
            oldest, granted = next(iter(self._granted.items()))
            if now - granted < self.seconds:
                break
            del self._granted[oldest]
        if user_id in self._granted:
            return self.seconds - (now - self._granted[user_id])
        self._granted[user_id] = now
        return 0.0

    def forget(self, user_id: int) -> None:
        """Give the slot back (the request did no work, so "try again" means now)."""
        self._granted.pop(user_id, None)

    def __len__(self) -> int:
        return len(self._granted)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._granted


class SharedCooldowns:
    """The per-user pause of /genre held in storage (:meth:`Storage.take_cooldown`, one statement), so
    every bot process (shard) enforces the same pause. If storage cannot answer, this process's own
    :class:`Cooldowns` decides (a member is never refused because the database hiccuped)."""

    def __init__(self, storage, seconds: float) -> None:
        self.storage = storage
        self.seconds = seconds
        self.local = Cooldowns(seconds)

    async def retry_after(self, user_id: int) -> float:
        if self.seconds <= 0:
            return 0.0
        try:
            return await asyncio.wait_for(self.storage.take_cooldown(user_id, self.seconds), STORAGE_TIMEOUT)
        except Exception as exc:  # storage outage: fall back to this process's memory
            log.warning("shared cooldown unavailable (%r); using this process's", exc)
            return self.local.retry_after(user_id)

    async def forget(self, user_id: int) -> None:
        self.local.forget(user_id)
        try:
            await self.storage.release_cooldown(user_id)
        except Exception as exc:
            log.warning("could not release the shared cooldown of %s: %r", user_id, exc)
