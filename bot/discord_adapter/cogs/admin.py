"""Administration: /retrain and /genre-stats, for configured admins only.

Both commands are hidden from non-admins by Discord (default permissions) *and*
checked by the bot against the configured admin ids and roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import retraining
from bot.discord_adapter import replies
from bot.retraining import run_retrain
from bot.storage.base import RetrainRow

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)

#: How long /retrain waits for storage before answering Discord (which wants an answer within 3 s).
CLAIM_TIMEOUT = 2.0
#: How long shutting down waits for a cancelled retrain to clean up and settle its reply.
STOP_TIMEOUT = 15.0


class AdminCog(commands.Cog):
    """Retraining and statistics.

    One retrain at a time across every bot process: the lock is the retrain's row in storage
    (:func:`bot.retraining.claim`). A retrain interrupted by the death of its bot process is settled
    at the next start (or the next /retrain): its public reply is edited through the channel (the
    interaction's token lasts 15 minutes; a bot can edit its own non-ephemeral message, an
    interaction's response included, with Edit Message at any time)."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot
        self._running: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    async def cog_load(self) -> None:
        try:
            settled = await retraining.startup(self.bot.settings, self.bot.storage)
        except Exception:  # storage down at start-up: the next /retrain settles it
            log.exception("could not check for interrupted retrains at start-up")
            return
        self._settle_later(settled)

    async def cog_unload(self) -> None:
        """Shutting down: a running retrain is cancelled (its trainer killed, its scratch removed, its
        reply settled) before the gateway closes."""
        task = self._running
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT)
        for pending in list(self._background):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(pending, 5)

    def _settle_later(self, rows) -> None:
        for row in rows:
            task = asyncio.create_task(self._settle_reply(row), name=f"settle-retrain-{row.id}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _settle_reply(self, row: RetrainRow) -> None:
        """Say in a retrain's public reply that a restart interrupted it (a new message if it is gone)."""
        if row.channel_id is None:
            return
        channel = self.bot.get_partial_messageable(row.channel_id)
        try:
            if row.message_id is not None:
                try:
                    await channel.get_partial_message(row.message_id).edit(content=replies.RETRAIN_INTERRUPTED)
                    log.info("settled the reply of interrupted retrain %d", row.id)
                    return
                except discord.NotFound:
                    pass
            await channel.send(replies.RETRAIN_INTERRUPTED)
        except discord.HTTPException as exc:
            log.warning("could not settle the reply of interrupted retrain %d: %s", row.id, exc)

    async def _refuse_non_admin(self, interaction: discord.Interaction) -> bool:
        if self.bot.is_admin(interaction.user):
            return False
        log.info("refused admin command from user %s", interaction.user.id)
        await interaction.response.send_message(replies.ADMINS_ONLY, ephemeral=True)
        return True

    @app_commands.command(name="genre-stats", description="Prediction and feedback statistics (admins)")
    @app_commands.default_permissions(manage_guild=True)
    async def stats(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        embed = replies.stats_embed(await self.bot.storage.stats(), live=self.bot.inference.model_version,
                                    pending=self.bot.inference.pending, worst_stall_s=self.bot.lag.max_lag)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="retrain", description="Train a new model from the base data plus corrections (admins)")
    @app_commands.default_permissions(manage_guild=True)
    async def retrain(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        settings = self.bot.settings
        if settings.base_data is None:
            await interaction.response.send_message(replies.RETRAIN_NOT_CONFIGURED, ephemeral=True)
            return
        storage = self.bot.storage
        try:
            claim = await asyncio.wait_for(retraining.claim(storage, interaction.user.id, interaction.channel_id),
                                           CLAIM_TIMEOUT)
        except Exception as exc:  # storage outage: nothing was started, nothing written
            eid = retraining.error_id()
            log.error("/retrain could not claim the retrain slot [error %s]: %r", eid, exc)
            await interaction.response.send_message(replies.storage_unavailable(eid), ephemeral=True)
            return
        self._settle_later(claim.settled)
        if claim.retrain_id is None:
            await interaction.response.send_message(replies.RETRAIN_RUNNING, ephemeral=True)
            return
        retrain_id = claim.retrain_id
        try:
            await interaction.response.defer(thinking=True)
        except BaseException:
            with contextlib.suppress(Exception):
                await storage.finish_retrain(retrain_id, "failed", "could not answer the interaction")
            raise
        self._running = asyncio.current_task()
        last_edit = 0.0
        recorded = False

        async def progress(message: str) -> None:
            nonlocal last_edit, recorded
            if time.monotonic() - last_edit > 2.0:
                last_edit = time.monotonic()
                sent = await self._say(interaction, replies.retrain_progress(message))
                if sent is not None and not recorded:  # so that a restart can settle the reply
                    recorded = True
                    try:
                        await storage.attach_retrain_message(retrain_id, sent.id)
                    except Exception as exc:
                        log.warning("could not record retrain %d's reply: %r", retrain_id, exc)

        try:
            outcome = await run_retrain(settings, storage, self.bot.inference, self.bot.store, progress, retrain_id)
        except asyncio.CancelledError:  # the bot is stopping: the run is cleaned up; say so before going
            await self._say(interaction, replies.RETRAIN_INTERRUPTED, final=True)
            raise
        finally:
            self._running = None
        await self._say(interaction, replies.retrain_outcome(outcome), final=True)

    async def _say(self, interaction: discord.Interaction, text: str, final: bool = False) -> discord.Message | None:
        try:
            return await interaction.edit_original_response(content=text[:1900])
        except discord.HTTPException as exc:  # interaction tokens expire after 15 minutes
            log.info("could not edit retrain reply: %s", exc)
            if final and interaction.channel is not None:
                try:
                    await interaction.channel.send(text[:1900])
                except discord.HTTPException:
                    log.warning("could not report the retrain outcome: %s", text)
        return None


async def setup(bot: "GenreBot") -> None:
    await bot.add_cog(AdminCog(bot))
