"""Feedback: ✅/❌ reactions and the "pick the right genre" menu become votes in storage.

Raw reaction events are used so votes count on messages that are no longer cached
and after a restart; the menu is a persistent view (fixed custom id, registered at
start-up) so it keeps working on old replies too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.discord_adapter import replies, respond
from bot.storage import StorageError
from genre_model.config import GENRES, display_name

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)

CORRECTION_ID = "genrebot:correct"


class CorrectionSelect(discord.ui.Select):
    """Ten genres, shown as people write them ("Hip-hop") with the labels ("hiphop") as values;
    choosing one marks the prediction wrong and names the right genre."""

    def __init__(self) -> None:
        super().__init__(custom_id=CORRECTION_ID, placeholder="Wrong? Pick the right genre",
                         options=[discord.SelectOption(label=display_name(g), value=g) for g in GENRES])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: GenreBot = interaction.client  # type: ignore[assignment]
        genre = self.values[0]
        prediction = await bot.storage.prediction_by_message(interaction.message.id) if interaction.message else None
        if prediction is None:
            await interaction.response.send_message(replies.NOT_TRACKED, ephemeral=True)
            return
        if genre == prediction.genre:
            await bot.storage.set_vote(prediction.id, interaction.user.id, "right")
            text = replies.vote_thanks(genre)
        else:
            await bot.storage.set_correction(prediction.id, interaction.user.id, genre)
            text = replies.correction_thanks(genre, prediction.genre)
        await interaction.response.send_message(text, ephemeral=True)


class CorrectionView(discord.ui.View):
    """The persistent view attached to every prediction reply."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.add_item(CorrectionSelect())

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item) -> None:
        log.error("correction menu failed", exc_info=error)
        await respond.privately(interaction, replies.SORRY)


class FeedbackCog(commands.Cog):
    """Turns reactions on prediction replies into votes."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot

    async def _vote_target(self, payload: discord.RawReactionActionEvent):
        emoji = str(payload.emoji)
        if emoji not in replies.FEEDBACK_EMOJI or self.bot.user is None or payload.user_id == self.bot.user.id:
            return None, None
        prediction = await self.bot.storage.prediction_by_message(payload.message_id)
        if prediction is None or not prediction.music:  # a "not music" reply offers nothing to vote on
            return None, None
        return prediction, replies.FEEDBACK_EMOJI[emoji]

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.member is not None and payload.member.bot:
            return
        prediction, vote = await self._vote_target(payload)
        if prediction is None:
            return
        try:
            await self.bot.storage.set_vote(prediction.id, payload.user_id, vote)
        except StorageError as exc:  # e.g. the prediction was just forgotten
            log.info("vote not recorded: %s", exc)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        prediction, vote = await self._vote_target(payload)
        if prediction is not None:
            await self.bot.storage.retract_vote(prediction.id, payload.user_id, vote)


async def setup(bot: "GenreBot") -> None:
    bot.add_view(CorrectionView())
    await bot.add_cog(FeedbackCog(bot))
