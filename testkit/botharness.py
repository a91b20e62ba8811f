"""Runs the real GenreBot against the fake Discord server, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import AsyncIterator

import discord
import discord.gateway
import discord.http

from bot.discord_adapter.client import GenreBot, point_discord_at
from bot.backends import model_store, open_storage, start_inference
from bot.settings import Settings
from testkit.fakediscord import FakeDiscordServer
from genre_model.config import DEFAULT_MODEL_DIR

ADMIN_ID = 111111111111111111
USER_ID = 222222222222222222
OTHER_ID = 333333333333333333
#: Every command the bot registers (slash commands and the message command).
COMMANDS = ("genre", "genre-forget", "genre-stats", "retrain", "Classify genre")


def make_settings(tmp: Path, server: FakeDiscordServer, **overrides) -> Settings:
    values = dict(
        token="test-token-do-not-log", db_path=tmp / "data" / "bot.sqlite3", data_dir=tmp / "data",
        model_dir=DEFAULT_MODEL_DIR, workers=1, cooldown_seconds=0.0, admin_ids=frozenset({ADMIN_ID}),
        api_base=server.api_base, gateway_url=server.gateway_url, download_timeout=5.0, inference_timeout=60.0,
    )
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def fake_discord() -> AsyncIterator[FakeDiscordServer]:
    """A started fake Discord server whose default user is USER_ID."""
    srv = FakeDiscordServer(default_user_id=USER_ID)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@dataclasses.dataclass
class Running:
    bot: GenreBot
    server: FakeDiscordServer
    task: asyncio.Task


@contextlib.asynccontextmanager
async def running_bot(server: FakeDiscordServer, settings: Settings) -> AsyncIterator[Running]:
    """Start GenreBot, wait for READY and command sync, and close it afterwards.

    Afterwards (when the test passed) nothing the bot sent may have been refused by Discord's rules."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    point_discord_at(settings.api_base, settings.gateway_url)
    storage = await open_storage(settings)
    store = model_store(settings)
    inference = await start_inference(settings, storage, store)
    bot = GenreBot(settings, storage, inference, store, guild_ready_timeout=0.1)
    task = asyncio.create_task(bot.start(settings.token))
    ready = asyncio.create_task(server.wait_ready(60))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if task in done:
            ready.cancel()
            task.result()
            raise AssertionError("bot.start() returned before READY")
        ready.result()
        scope = settings.guild_ids[0] if settings.guild_ids else None
        await server.wait_commands(list(COMMANDS), guild_id=scope, timeout=20)
        yield Running(bot, server, task)
        assert not server.rejected_requests, f"Discord would refuse: {[(r, r.error) for r in server.rejected_requests]}"
    finally:
        if not bot.is_closed():
            await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 20)
        await inference.close()
        await storage.close()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


async def busy_worker(inference, pids: list[int], timeout: float = 30.0) -> int:
    """Process id of the worker or replica that is handling a request now (one request in flight).

    ``pids`` are the workers' ids, asked before the request was sent: a Ray Serve replica takes one
    request at a time, so it would answer a ping only once the request is over."""
    import tempfile

    if getattr(inference, "workers", None) is not None:  # the local pool: its single worker has the request
        await asyncio.wait_for(_until(lambda: inference.pending == 1), timeout)
        return pids[0]

    def decoding() -> int | None:  # a Ray Serve replica decoding the upload in its scratch folder
        for pid in pids:
            scratch = Path(tempfile.gettempdir()) / "genrebot-replicas" / str(pid)
            if scratch.is_dir() and any(scratch.iterdir()):
                return pid
        return None

    return await asyncio.wait_for(_until(decoding), timeout)


async def _until(predicate):
    while not (found := predicate()):
        await asyncio.sleep(0.01)
    return found


class BotProcess:
    """``python -m bot`` in its own process, configured by environment variables, as deployed."""

    #: The interpreter to run (default: this one); the benchmarks point it at a baseline checkout's venv.
    python: str | None = None

    def __init__(self, server: FakeDiscordServer, workdir: Path, **env: str) -> None:
        import os

        self.server = server
        self.workdir = workdir
        self.log_path = workdir / "bot.log"
        self.env = {**os.environ, "DISCORD_TOKEN": "test-token-do-not-log", "DISCORD_API_BASE": server.api_base,
                    "DISCORD_GATEWAY_URL": server.gateway_url, "GENREBOT_DATA_DIR": str(workdir / "data"),
                    "GENREBOT_WORKERS": "2", "GENREBOT_COOLDOWN_SECONDS": "0", "GENREBOT_ADMIN_IDS": str(ADMIN_ID),
                    "GENREBOT_LOG_LEVEL": "INFO", **env}
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 90.0) -> "BotProcess":
        import sys

        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            self.python or sys.executable, "-m", "bot", cwd=self.workdir, env=self.env, stdout=self._log,
            stderr=self._log)
        before = self.server.identify_count
        waiter = asyncio.create_task(self.server.wait_for(lambda: self.server.identify_count > before, timeout))
        exited = asyncio.create_task(self.process.wait())
        done, _ = await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            waiter.cancel()
            raise AssertionError(f"bot exited early: {self.log()}")
        exited.cancel()
        waiter.result()
        await self.server.wait_commands(["genre", "retrain"], timeout=timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop(self, sig: int | None = None, timeout: float = 30.0) -> int:
        import signal

        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig or signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        self._log.close()
        return code


async def poll(check, timeout: float = 20.0):
    """Await ``check()`` (a coroutine function) until it returns something truthy; returns that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


class RecordingServer(FakeDiscordServer):
    """The fake server, also recording attachment downloads (its request log skips ``/attachments/``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.downloads: list[int] = []

    async def _h_attachment(self, request):  # type: ignore[override]
        with contextlib.suppress(ValueError):
            self.downloads.append(int(request.match_info["attachment_id"]))
        return await super()._h_attachment(request)
