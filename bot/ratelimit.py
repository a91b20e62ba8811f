"""Per-user cooldowns that remember only users who are still pausing."""

from __future__ import annotations

import collections
import time
from typing import Callable


class Cooldowns:
    """One request per user per ``seconds``. Memory stays bounded by the users of the last ``seconds``:
    entries are kept in the order they were granted and dropped once their pause is over.

    Per bot process: with several processes (shards), a user active in guilds served by different
    processes gets one request per process per pause (README, "Scaling out")."""

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
