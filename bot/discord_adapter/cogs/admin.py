"""Administration: /retrain and /genre-stats, for configured admins only.

Both commands are hidden from non-admins by Discord (default permissions) *and*
checked by the bot against the configured admin ids and roles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_adapter import replies
from bot.retraining import run_retrain

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)

class AdminCog(commands.Cog):
    """Retraining and statistics."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot
        self._retrain_lock = asyncio.Lock()

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
        if self._retrain_lock.locked():
            await interaction.response.send_message(replies.RETRAIN_RUNNING, ephemeral=True)
            return
        async with self._retrain_lock:
            await interaction.response.defer(thinking=True)
            last_edit = 0.0

            async def progress(message: str) -> None:
                nonlocal last_edit
                if time.monotonic() - last_edit > 2.0:
                    last_edit = time.monotonic()
                    await self._say(interaction, replies.retrain_progress(message))

            outcome = await run_retrain(settings, self.bot.storage, self.bot.inference, self.bot.store, progress)
            await self._say(interaction, replies.retrain_outcome(outcome), final=True)

    async def _say(self, interaction: discord.Interaction, text: str, final: bool = False) -> None:
        try:
            await interaction.edit_original_response(content=text[:1900])
        except discord.HTTPException as exc:  # interaction tokens expire after 15 minutes
            log.info("could not edit retrain reply: %s", exc)
            if final and interaction.channel is not None:
                try:
                    await interaction.channel.send(text[:1900])
                except discord.HTTPException:
                    log.warning("could not report the retrain outcome: %s", text)


async def setup(bot: "GenreBot") -> None:
    await bot.add_cog(AdminCog(bot))
