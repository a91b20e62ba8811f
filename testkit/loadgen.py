"""Load generation and measurement against a bot talking to the fake Discord server.

Shared by ``tests/test_hardening.py`` and ``benchmarks/bench_bot_load.py``: fire many
/genre requests, classify every reply (result / busy / cooldown / error), sample the
resident memory of the bot and its workers, read the worst event-loop stall from the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time
from typing import Sequence

import psutil

from testkit.fakediscord import FakeDiscordServer, InteractionHandle

KINDS = ("result", "busy", "cooldown", "error")


def reply_of(handle: InteractionHandle) -> list[dict]:
    """Every user-visible reply (a message with text or an embed) the interaction produced."""
    return [m for m in handle.messages if m.get("content") or m.get("embeds")]


def reply_kind(message: dict) -> str:
    """result (an embed), busy, cooldown, or error (any other text)."""
    if message.get("embeds"):
        return "result"
    text = message.get("content") or ""
    if "busy" in text:
        return "busy"
    if "try again in" in text:
        return "cooldown"
    return "error"


@dataclasses.dataclass
class Shot:
    """One /genre request and what came back."""

    index: int
    user_id: int
    sent_at: float
    handle: InteractionHandle | None = None
    replied_at: float | None = None
    kind: str = "lost"
    text: str = ""

    @property
    def latency(self) -> float | None:
        return None if self.replied_at is None else self.replied_at - self.sent_at


async def fire(server: FakeDiscordServer, songs: Sequence[tuple[str, bytes]], *, requests: int, users: int,
               spread: float, user_base: int, timeout: float = 120.0) -> list[Shot]:
    """Send ``requests`` /genre commands from ``users`` users, evenly over ``spread`` seconds.

    Returns when every request has a reply or ``timeout`` passed (then its kind stays "lost").
    """
    shots: list[Shot] = []
    start = time.monotonic()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i * spread / max(1, requests) - time.monotonic()))
        name, data = songs[i % len(songs)]
        shot = Shot(i, user_base + i % users, time.monotonic())
        shots.append(shot)
        att = server.add_attachment(name, data, "audio/mpeg")
        shot.handle = await server.send_slash_command("genre", {"file": att}, user_id=shot.user_id)
        try:
            await shot.handle.wait_for(lambda h: reply_of(h), timeout=max(1.0, start + timeout - time.monotonic()))
        except (asyncio.TimeoutError, TimeoutError):
            return
        shot.replied_at = time.monotonic()
        first = reply_of(shot.handle)[0]
        shot.kind, shot.text = reply_kind(first), (first.get("content") or "")

    await asyncio.gather(*(one(i) for i in range(requests)))
    return sorted(shots, key=lambda s: s.index)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100, nearest rank) or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def tree_rss(pid: int) -> tuple[int, int, dict[int, int]]:
    """(total RSS of the process and all its descendants, RSS of the process, {child pid: RSS})."""
    try:
        main = psutil.Process(pid)
        own = main.memory_info().rss
        children = main.children(recursive=True)
    except psutil.Error:
        return 0, 0, {}
    per_child: dict[int, int] = {}
    for child in children:
        try:
            per_child[child.pid] = child.memory_info().rss
        except psutil.Error:
            pass
    return own + sum(per_child.values()), own, per_child


def worker_pids(pid: int) -> list[int]:
    """The bot's inference workers (multiprocessing spawn children), not ffmpeg or the resource tracker."""
    out = []
    try:
        for child in psutil.Process(pid).children(recursive=False):
            try:
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "spawn_main" in cmd:
                out.append(child.pid)
    except psutil.Error:
        pass
    return out


def tree_pss(pid: int) -> int:
    """Proportional set size of the process and its descendants: each shared page (libraries, the
    ffmpeg binary) counted once across them, not once per process as RSS counts it."""
    try:
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().pss
        except (psutil.Error, AttributeError):
            pass
    return total


class RssSampler:
    """Samples the RSS (and PSS) of a process tree every ``interval`` seconds while running."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_total = 0
        self.peak_pss = 0
        self.peak_main = 0
        self.peak_child: dict[int, int] = {}
        self.samples = 0
        self._task: asyncio.Task | None = None

    def sample(self) -> None:
        total, own, children = tree_rss(self.pid)
        self.samples += 1
        self.peak_total = max(self.peak_total, total)
        self.peak_pss = max(self.peak_pss, tree_pss(self.pid))
        self.peak_main = max(self.peak_main, own)
        for pid, rss in children.items():
            self.peak_child[pid] = max(self.peak_child.get(pid, 0), rss)

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> "RssSampler":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self.sample()


async def poll_queue(server: FakeDiscordServer, admin_id: int, stop: asyncio.Event, every: float = 0.25) -> list[int]:
    """Ask /genre-stats as an admin until ``stop`` is set; the queue lengths it reported."""
    seen: list[int] = []
    while not stop.is_set():
        handle = await server.send_slash_command("genre-stats", {}, user_id=admin_id)
        try:
            msg = await handle.wait_message(lambda m: m.get("embeds"), timeout=10)
        except (asyncio.TimeoutError, TimeoutError):
            continue
        for field in msg["embeds"][0].get("fields", []):
            if field["name"] == "Queue":
                match = re.match(r"(\d+)", field["value"])
                if match:
                    seen.append(int(match.group(1)))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except (asyncio.TimeoutError, TimeoutError):
            pass
    return seen


def worst_stall_ms(log: str) -> int | None:
    """The "worst event-loop stall N ms" the bot logs at shutdown."""
    match = re.search(r"worst event-loop stall (\d+) ms", log)
    return int(match.group(1)) if match else None


def summary(shots: Sequence[Shot]) -> dict:
    """Counts by kind and latency figures (seconds) for a list of shots."""
    latencies = [s.latency for s in shots if s.latency is not None]
    counts = {kind: sum(1 for s in shots if s.kind == kind) for kind in (*KINDS, "lost")}
    return {
        "requests": len(shots), **counts,
        "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
        "max_s": max(latencies) if latencies else None,
        "result_p50_s": percentile([s.latency for s in shots if s.kind == "result" and s.latency], 50),
    }
