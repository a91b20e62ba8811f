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

from bot.retraining import run_retrain

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)

REFUSED = "\N{NO ENTRY SIGN} Only the bot's admins can do that; nothing was changed."


class AdminCog(commands.Cog):
    """Retraining and statistics."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot
        self._retrain_lock = asyncio.Lock()

    async def _refuse_non_admin(self, interaction: discord.Interaction) -> bool:
        if self.bot.is_admin(interaction.user):
            return False
        log.info("refused admin command from user %s", interaction.user.id)
        await interaction.response.send_message(REFUSED, ephemeral=True)
        return True

    @app_commands.command(name="genre-stats", description="Prediction and feedback statistics (admins)")
    @app_commands.default_permissions(manage_guild=True)
    async def stats(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        st = await self.bot.storage.stats()
        accuracy = "n/a" if st.feedback_accuracy is None else f"{st.feedback_accuracy:.0%}"
        embed = discord.Embed(title="genrebot statistics", colour=discord.Colour.dark_teal())
        embed.add_field(name="Predictions", value=str(st.n_predictions))
        embed.add_field(name="Not music", value=str(st.n_not_music))
        embed.add_field(name="Votes", value=f"\N{WHITE HEAVY CHECK MARK} {st.n_votes_right} \N{MIDDLE DOT} "
                                            f"\N{CROSS MARK} {st.n_votes_wrong} \N{MIDDLE DOT} {st.n_corrections} corrections")
        embed.add_field(name="Accuracy by feedback", value=f"{accuracy} of {st.n_predictions_with_feedback} rated")
        embed.add_field(name="Live model", value=self.bot.inference.model_version)
        embed.add_field(name="Queue", value=f"{self.bot.inference.pending} running or waiting")
        embed.add_field(name="Worst event-loop stall", value=f"{self.bot.lag.max_lag * 1000:.0f} ms")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="retrain", description="Train a new model from the base data plus corrections (admins)")
    @app_commands.default_permissions(manage_guild=True)
    async def retrain(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        settings = self.bot.settings
        if settings.base_data is None:
            await interaction.response.send_message(
                "Retraining is not configured: set GENREBOT_BASE_DATA to the base training data.", ephemeral=True)
            return
        if self._retrain_lock.locked():
            await interaction.response.send_message("A retrain is already running; wait for it to finish.",
                                                    ephemeral=True)
            return
        async with self._retrain_lock:
            await interaction.response.defer(thinking=True)
            last_edit = 0.0

            async def progress(message: str) -> None:
                nonlocal last_edit
                if time.monotonic() - last_edit > 2.0:
                    last_edit = time.monotonic()
                    await self._say(interaction, f"\N{GEAR} Retraining: {message}")

            outcome = await run_retrain(settings, self.bot.storage, self.bot.inference, progress)
            icon = {"promoted": "\N{WHITE HEAVY CHECK MARK}", "kept": "\N{NO ENTRY}"}.get(outcome.status, "\N{CROSS MARK}")
            await self._say(interaction, f"{icon} {outcome.message}", final=True)

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
