"""/genre: classify an uploaded song and reply with the genre and its spectrogram.

Also the message context-menu command "Classify genre" and /genre-forget.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_adapter import replies, respond
from bot.discord_adapter.cogs.feedback import correction_menu
from bot.errors import InferenceFailed, QueueFull
from bot.ratelimit import SharedCooldowns
from bot.retraining import forget_member
from bot.storage.base import Upload
from bot.uploads import classify_and_store, refusal
from genre_model.errors import AudioError

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)


class GenreCog(commands.Cog):
    """Song classification."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot
        self.cooldowns = SharedCooldowns(bot.storage, bot.settings.cooldown_seconds)
        self.menu = app_commands.ContextMenu(name="Classify genre", callback=self.classify_message)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="genre", description="Tell which genre a song is")
    @app_commands.describe(file="An audio file (mp3, wav, ogg, opus, flac, m4a, ...)")
    async def genre(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        await self.classify(interaction, file)

    async def classify_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        audio = next((a for a in message.attachments if refusal(a.filename, a.size, a.content_type, 1 << 62) is None),
                     None)
        if audio is None:
            await interaction.response.send_message(replies.NO_AUDIO_ATTACHMENT, ephemeral=True)
            return
        await self.classify(interaction, audio)

    async def classify(self, interaction: discord.Interaction, attachment: discord.Attachment) -> None:
        """The whole /genre story: check, defer, download, classify, store, reply."""
        self.bot.inflight += 1
        try:
            await self._classify(interaction, attachment)
        finally:
            self.bot.inflight -= 1

    async def _classify(self, interaction: discord.Interaction, attachment: discord.Attachment) -> None:
        """Refusals known before download are answered privately at once. Otherwise the bot defers
        publicly ("thinking...", as the result will be public); the result then replaces the thinking
        message, and a failure deletes it and goes to the requester alone (see :mod:`bot.discord_adapter.respond`)."""
        settings = self.bot.settings
        if not self.bot.accepting:
            await interaction.response.send_message(replies.RESTARTING, ephemeral=True)
            return
        name = replies.safe_filename(attachment.filename)
        problem = refusal(name, attachment.size, attachment.content_type, settings.max_attachment_bytes)
        if problem:
            await interaction.response.send_message(replies.refusal_text(name, problem, settings.max_attachment_bytes),
                                                    ephemeral=True)
            return
        if self.bot.inference.full:
            await interaction.response.send_message(replies.BUSY, ephemeral=True)
            return
        wait = await self.cooldowns.retry_after(interaction.user.id)
        if wait:
            await interaction.response.send_message(replies.cooldown(wait), ephemeral=True)
            return
        # The thinking message becomes the reply: its id, known now, links the prediction before anyone sees it.
        deferred = await interaction.response.defer(thinking=True)
        reply_id = getattr(deferred, "message_id", None)
        try:
            data = await asyncio.wait_for(attachment.read(), settings.download_timeout)
            upload = Upload(interaction.user.id, interaction.guild_id, interaction.channel_id, interaction.id, name, data)
            prediction_id, classified = await classify_and_store(
                upload, self.bot.inference, self.bot.storage, max_bytes=settings.max_attachment_bytes,
                max_seconds=settings.max_audio_seconds, keep_audio=settings.keep_audio,
                reply_message_id=reply_id)
        except (asyncio.TimeoutError, aiohttp.ClientError, discord.HTTPException, OSError) as exc:
            log.info("download of %s failed: %r", name, exc)
            await self.cooldowns.forget(interaction.user.id)  # no work was done: "try again" must mean now
            await self._fail(interaction, replies.download_failed(name, getattr(exc, "status", None)))
            return
        except QueueFull:  # filled up while this file downloaded
            await self.cooldowns.forget(interaction.user.id)
            await respond.privately(interaction, replies.BUSY)
            return
        except (AudioError, InferenceFailed) as exc:
            await self._fail(interaction, replies.error_text(str(exc)))
            return
        prediction = classified.prediction
        image = discord.File(io.BytesIO(classified.image_png), filename=replies.IMAGE_NAME)
        # Edit Original Interaction Response, the documented way to resolve a defer (a first follow-up
        # does the same only for backwards compatibility, and is deprecated for it).
        message = await interaction.edit_original_response(
            embed=replies.reply_embed(prediction, name), attachments=[image],
            view=correction_menu() if prediction.music else None)
        if message.id != reply_id:  # Discord did not say which message the defer made: link it now
            await self.bot.storage.attach_message(prediction_id, message.id)
        if not prediction.music:  # answered in words, with nothing to vote on
            return
        for emoji in (replies.RIGHT, replies.WRONG):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:  # missing permission must not break the reply
                log.info("could not add reaction: %s", exc)

    async def _fail(self, interaction: discord.Interaction, text: str) -> None:
        await respond.privately(interaction, text)

    @app_commands.command(name="genre-forget", description="Delete everything this bot stored about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        # Storage first, then any retrain export still on disk (bot.retraining.forget_member).
        predictions, votes = await forget_member(self.bot.settings, self.bot.storage, interaction.user.id)
        await interaction.response.send_message(replies.forgotten(predictions, votes), ephemeral=True)


async def setup(bot: "GenreBot") -> None:
    await bot.add_cog(GenreCog(bot))
