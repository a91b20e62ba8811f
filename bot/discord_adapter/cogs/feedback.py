"""Feedback: ✅/❌ reactions and the "pick the right genre" menu become votes in storage.

This cog only parses an event, calls one function of :mod:`bot.votes` (which checks the vote
against what the bot offered and stores it) and renders the outcome with :mod:`replies`.

Raw reaction events are used so votes count on messages that are no longer cached and after a
restart. Every component interaction reaches :meth:`FeedbackCog.on_interaction`, whatever its
custom id (discord.py's view store is not used for the menu: a forged custom id or value must
be refused, not ignored), so the menu keeps working on old replies too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot import votes
from bot.discord_adapter import replies, respond
from genre_model.config import GENRES, display_name

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)

CORRECTION_ID = votes.CORRECTION_ID
#: The menu's values: the model's labels ("hiphop"), shown as people write them ("Hip-hop").
LABELS = tuple(GENRES)
#: A menu pick is answered at once when storage answers within this time; otherwise the bot
#: acknowledges the interaction first (Discord's 3-s limit) and answers when the vote is settled.
ANSWER_BUDGET_SECONDS = 2.0


class _Layout(discord.ui.View):
    """Components drawn by discord.py but never dispatched by it (:meth:`FeedbackCog.on_interaction` is)."""

    def is_dispatchable(self) -> bool:
        return False


def correction_menu() -> discord.ui.View:
    """The menu attached to every prediction reply: the model's labels as values."""
    view = _Layout(timeout=None)
    view.add_item(discord.ui.Select(custom_id=CORRECTION_ID, placeholder="Wrong? Pick the right genre",
                                    options=[discord.SelectOption(label=display_name(g), value=g) for g in LABELS]))
    return view


class FeedbackCog(commands.Cog):
    """Turns menu picks and reactions on prediction replies into votes."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot
        #: How long votes wait for a reply's link and through a storage outage (tests shorten it).
        self.timing = votes.Timing()

    def _own_id(self) -> int | None:
        return self.bot.user.id if self.bot.user is not None else None

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        data = interaction.data or {}
        message = interaction.message
        work = asyncio.ensure_future(votes.record_menu_choice(
            self.bot.storage, message_id=message.id if message is not None else None, user_id=interaction.user.id,
            custom_id=data.get("custom_id"), component_type=data.get("component_type"), values=data.get("values"),
            labels=LABELS, timing=self.timing))
        try:
            done, _ = await asyncio.wait({work}, timeout=ANSWER_BUDGET_SECONDS)
            if not done:  # waiting for a link or through an outage: acknowledge now, answer when settled
                try:
                    await interaction.response.defer(ephemeral=True, thinking=True)
                except discord.HTTPException as exc:  # the vote is still settled (and logged) below
                    log.warning("could not acknowledge menu choice %s: %s", interaction.id, exc)
            outcome = await work
        except Exception:
            log.exception("menu choice on message %s failed", getattr(message, "id", None))
            await respond.privately(interaction, replies.SORRY)
            return
        if outcome.status in ("refused", "not_tracked", "not_music", "failed"):
            log.info("menu choice by %s on message %s not stored: %s %s", interaction.user.id,
                     getattr(message, "id", None), outcome.status, outcome.problem)
        await respond.privately(interaction, replies.vote_outcome(outcome))

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        own = self._own_id()
        if (payload.member is not None and payload.member.bot) or own is None or payload.user_id == own:
            return
        author = payload.message_author_id
        outcome = await votes.record_reaction(
            self.bot.storage, message_id=payload.message_id, user_id=payload.user_id,
            vote=replies.FEEDBACK_EMOJI.get(str(payload.emoji)),
            on_own_message=None if author is None else author == own, timing=self.timing)
        if outcome.status == "failed":
            await self._undo_reaction(payload)

    async def _undo_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """A vote that could not be saved: the member's reaction is removed, so they see it did not count."""
        log.error("the %s of user %s on message %s could not be saved; removing the reaction", payload.emoji,
                  payload.user_id, payload.message_id)
        try:
            await self.bot.http.remove_reaction(payload.channel_id, payload.message_id, str(payload.emoji),
                                                payload.user_id)
        except discord.HTTPException as exc:  # needs Manage Messages; without it the log is all there is
            log.error("could not remove the reaction either: %s", exc)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.user_id == self._own_id():
            return
        outcome = await votes.retract_reaction(
            self.bot.storage, message_id=payload.message_id, user_id=payload.user_id,
            vote=replies.FEEDBACK_EMOJI.get(str(payload.emoji)), timing=self.timing)
        if outcome.status == "failed":
            log.error("removing the %s of user %s on message %s could not be saved", payload.emoji,
                      payload.user_id, payload.message_id)


async def setup(bot: "GenreBot") -> None:
    await bot.add_cog(FeedbackCog(bot))
