"""The bot: a ``commands.AutoShardedBot`` subclass that is given storage and inference, and loads the cogs.

One process runs the gateway shards ``GENREBOT_SHARD_IDS`` of ``GENREBOT_SHARD_COUNT`` (all of
them by default; Discord's recommended count when no count is set), so several bot
processes can share the guilds against one database and one Ray cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time

import discord
import yarl
from discord.ext import commands

from bot.discord_adapter import replies, respond
from bot.discord_adapter.registration import register_commands
from bot.inference.base import InferenceBackend
from bot.model_store import ModelStore
from bot.retraining import LiveModelFollower
from bot.settings import Settings
from bot.storage.base import Storage

log = logging.getLogger(__name__)

COGS = ("bot.discord_adapter.cogs.genre", "bot.discord_adapter.cogs.feedback", "bot.discord_adapter.cogs.admin")
#: How long shutdown waits for requests already being classified.
DRAIN_SECONDS = 20.0
#: How often a bot process checks whether another process promoted a model.
LIVE_MODEL_POLL_SECONDS = 30.0


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


class GenreBot(commands.AutoShardedBot):
    """genrebot: classify uploads, collect feedback, retrain on request."""

    def __init__(self, settings: Settings, storage: Storage, inference: InferenceBackend, store: ModelStore,
                 **options) -> None:
        intents = discord.Intents.default()  # slash commands + reactions need no privileged intents
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())  # file names may say "@everyone"
        options.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids is not None:
            options.setdefault("shard_ids", list(settings.shard_ids))
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options)
        self.settings = settings
        self.storage = storage
        self.inference = inference
        self.store = store
        self.lag = LoopLagMonitor()
        self._follow_task: asyncio.Task | None = None
        self.accepting = True
        #: /genre requests being handled now; shutdown waits (a while) for them to finish.
        self.inflight = 0

    async def setup_hook(self) -> None:
        s = self.settings
        self.tree.on_error = self.on_app_command_error
        for cog in COGS:
            await self.load_extension(cog)
        await register_commands(self, self.tree, s.guild_ids)
        self.lag.start()
        self._follow_task = asyncio.create_task(self._follow_live_model(), name="follow-live-model")

    async def _follow_live_model(self) -> None:
        """Serve what another bot process promoted (this one's own promotions are already served)."""
        follower = LiveModelFollower(self.storage, self.inference)
        while True:
            await asyncio.sleep(LIVE_MODEL_POLL_SECONDS)
            try:
                await follower.check()
            except Exception:  # a database hiccup must not end the loop
                log.exception("checking the live model failed")

    async def on_ready(self) -> None:
        log.info("logged in as %s (%s)", self.user, getattr(self.user, "id", "?"))

    async def on_app_command_error(self, interaction: discord.Interaction, error: Exception) -> None:
        """Any unexpected failure: log it, and tell the user (only them) instead of leaving them waiting."""
        log.error("command %r failed", getattr(interaction.command, "name", "?"), exc_info=error)
        await respond.privately(interaction, replies.SORRY)

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
        """Stop taking work, let running requests finish (a while), then close the gateway (idempotent).

        Storage and inference belong to whoever built them, and are closed there after this."""
        if self.accepting:
            self.accepting = False
            log.info("shutting down; worst event-loop stall %.0f ms", self.lag.max_lag * 1000)
            deadline = time.monotonic() + DRAIN_SECONDS
            while self.inflight and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if self.inflight:
                log.warning("%d requests still running at shutdown are cancelled", self.inflight)
        self.lag.stop()
        if self._follow_task is not None:
            self._follow_task.cancel()
        ready_task = getattr(self._connection, "_ready_task", None)
        if ready_task is not None:  # discord.py's delayed READY dispatch fails noisily if we close under it
            ready_task.cancel()
        await super().close()
