"""The bot: a ``commands.Bot`` subclass that owns storage, the inference pool and the cogs."""

from __future__ import annotations

import asyncio
import logging
import time

import discord
import yarl
from discord.ext import commands

from bot import replies
from bot.pool import InferencePool
from genre_model.artifact import load_info
from genre_model.errors import ArtifactError
from bot.settings import Settings
from bot.storage import Storage

log = logging.getLogger(__name__)

COGS = ("bot.cogs.genre", "bot.cogs.feedback", "bot.cogs.admin")
#: How long shutdown waits for requests already being classified.
DRAIN_SECONDS = 20.0


def point_discord_at(api_base: str | None, gateway_url: str | None) -> None:
    """Send discord.py's REST calls and gateway connection to a self-hosted compatible server."""
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class LoopLagMonitor:
    """Measures how late the event loop wakes up; the worst stall is what users feel."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.max_lag = 0.0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")

    def reset(self) -> float:
        worst, self.max_lag = self.max_lag, 0.0
        return worst

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = time.perf_counter() - before - self.interval
            if lag > self.max_lag:
                self.max_lag = lag
            if lag > 0.1:
                log.warning("event loop stalled for %.0f ms", lag * 1000)

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


class GenreBot(commands.Bot):
    """genrebot: classify uploads, collect feedback, retrain on request."""

    def __init__(self, settings: Settings, **options) -> None:
        intents = discord.Intents.default()  # slash commands + reactions need no privileged intents
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())  # file names may say "@everyone"
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options)
        self.settings = settings
        self.storage: Storage | None = None
        self.pool: InferencePool | None = None
        self.lag = LoopLagMonitor()
        self.accepting = True
        #: /genre requests being handled now; shutdown waits (a while) for them to finish.
        self.inflight = 0
        self._close_lock = asyncio.Lock()

    async def setup_hook(self) -> None:
        s = self.settings
        self.storage = await Storage.open(s.db_path, s.data_dir)
        model_dir = s.model_dir
        live = await self.storage.live_model()
        if live is not None:
            try:
                load_info(s.data_dir / live.path)
                model_dir = s.data_dir / live.path
            except ArtifactError as exc:
                log.error("live model %s is unusable (%s); serving %s instead", live.version, exc, model_dir)
        self.pool = InferencePool(model_dir, s.workers, s.queue_limit, s.inference_timeout, s.data_dir / "tmp")
        await self.pool.start()
        log.info("serving model %s from %s with %d workers", self.pool.model_version, model_dir, s.workers)
        self.tree.on_error = self.on_app_command_error
        for cog in COGS:
            await self.load_extension(cog)
        for guild_id in s.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        await self.tree.sync()
        self.lag.start()

    async def on_ready(self) -> None:
        log.info("logged in as %s (%s)", self.user, getattr(self.user, "id", "?"))

    async def on_app_command_error(self, interaction: discord.Interaction, error: Exception) -> None:
        """Any unexpected failure: log it, and tell the user instead of leaving them waiting."""
        log.error("command %r failed", getattr(interaction.command, "name", "?"), exc_info=error)
        await replies.send_ephemeral(interaction, replies.SORRY)

    def is_admin(self, user: discord.abc.User) -> bool:
        """Configured admin ids or roles; with none configured, the application owner."""
        s = self.settings
        if user.id in s.admin_ids:
            return True
        roles = {r.id for r in getattr(user, "roles", [])}
        if roles & s.admin_role_ids:
            return True
        if not s.admin_ids and not s.admin_role_ids:
            return self.owner_id == user.id or user.id in (self.owner_ids or set())
        return False

    async def close(self) -> None:
        """Stop taking work, then close the gateway, the pool and the database (idempotent)."""
        if self.accepting:
            self.accepting = False
            log.info("shutting down; worst event-loop stall %.0f ms", self.lag.max_lag * 1000)
            deadline = time.monotonic() + DRAIN_SECONDS
            while self.inflight and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if self.inflight:
                log.warning("%d requests still running at shutdown are cancelled", self.inflight)
        self.lag.stop()
        ready_task = getattr(self._connection, "_ready_task", None)
        if ready_task is not None:  # discord.py's delayed READY dispatch fails noisily if we close under it
            ready_task.cancel()
        await super().close()
        async with self._close_lock:
            pool, self.pool = self.pool, None
            storage, self.storage = self.storage, None
            if pool is not None:
                await pool.close()
            if storage is not None:
                await storage.close()
