"""/genre: classify an uploaded song and reply with the genre and its spectrogram.

Also the message context-menu command "Classify genre" and /genre-forget.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import PurePath
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_adapter import replies, respond
from bot.discord_adapter.cogs.feedback import CorrectionView
from bot.errors import InferenceFailed, QueueFull
from bot.ratelimit import Cooldowns
from genre_model.config import AUDIO_EXTENSIONS
from genre_model.errors import AudioError

if TYPE_CHECKING:
    from bot.discord_adapter.client import GenreBot

log = logging.getLogger(__name__)

#: Content types that can carry audio; anything else is refused before download.
_MEDIA_PREFIXES = ("audio/", "video/")
_ALSO_OK = {"application/ogg", "application/octet-stream", "application/x-flac"}
BUSY = "\N{HOURGLASS} I'm busy with other songs right now; please try again in a minute."


def refusal(attachment: discord.Attachment, max_bytes: int) -> str | None:
    """Why an attachment is refused before downloading it, or None when it may be audio."""
    name = replies.safe_filename(attachment.filename)
    if attachment.size > max_bytes:
        return f"**{name}** is {replies.mb(attachment.size)}; the limit is {replies.mb(max_bytes)}"
    if attachment.size == 0:
        return f"**{name}** is empty"
    ctype = (attachment.content_type or "").split(";")[0].strip().lower()
    suffix = PurePath(name).suffix.lower()
    if ctype.startswith(_MEDIA_PREFIXES) or ctype in _ALSO_OK or (not ctype and suffix in AUDIO_EXTENSIONS):
        return None
    if suffix in AUDIO_EXTENSIONS and not ctype.startswith(("text/", "image/")):
        return None
    return f"**{name}** doesn't look like an audio file ({ctype or suffix or 'unknown type'})"


class GenreCog(commands.Cog):
    """Song classification."""

    def __init__(self, bot: "GenreBot") -> None:
        self.bot = bot
        self.cooldowns = Cooldowns(bot.settings.cooldown_seconds)
        self.menu = app_commands.ContextMenu(name="Classify genre", callback=self.classify_message)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="genre", description="Tell which genre a song is")
    @app_commands.describe(file="An audio file (mp3, wav, ogg, opus, flac, m4a, ...)")
    async def genre(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        await self.classify(interaction, file)

    async def classify_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        audio = next((a for a in message.attachments if refusal(a, 1 << 62) is None), None)
        if audio is None:
            await interaction.response.send_message(replies.error_text("that message has no audio attachment"),
                                                    ephemeral=True)
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
            await interaction.response.send_message("I'm restarting; please try again in a minute.", ephemeral=True)
            return
        problem = refusal(attachment, settings.max_attachment_bytes)
        if problem:
            await interaction.response.send_message(replies.error_text(problem), ephemeral=True)
            return
        if self.bot.inference.full:
            await interaction.response.send_message(BUSY, ephemeral=True)
            return
        wait = self.cooldowns.retry_after(interaction.user.id)
        if wait:
            await interaction.response.send_message(
                f"\N{HOURGLASS} One song at a time, please: try again in {wait:.0f} s.", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        name = replies.safe_filename(attachment.filename)
        try:
            data = await asyncio.wait_for(attachment.read(), settings.download_timeout)
            if len(data) > settings.max_attachment_bytes:
                raise AudioError(f"the file is larger than {replies.mb(settings.max_attachment_bytes)}")
            result = await self.bot.inference.classify(data, name, settings.max_audio_seconds)
        except (asyncio.TimeoutError, aiohttp.ClientError, discord.HTTPException, OSError) as exc:
            log.info("download of %s failed: %r", name, exc)
            self.cooldowns.forget(interaction.user.id)  # no work was done: "try again" must mean now
            status = f" (HTTP {exc.status})" if isinstance(exc, discord.HTTPException) else ""
            await self._fail(interaction, f"I couldn't download **{name}**{status}; please try again")
            return
        except QueueFull:  # filled up while this file downloaded
            self.cooldowns.forget(interaction.user.id)
            await respond.privately(interaction, BUSY)
            return
        except (AudioError, InferenceFailed) as exc:
            await self._fail(interaction, str(exc))
            return
        # Not music: stored as such (its windows are not kept: it never becomes training data),
        # answered in words, with nothing to vote on.
        prediction_id = await self.bot.storage.record_prediction(
            user_id=interaction.user.id, guild_id=interaction.guild_id, channel_id=interaction.channel_id,
            interaction_id=interaction.id, file_name=name, file_sha256=result.file_sha256,
            duration_s=result.duration_s, model_version=result.model_version, top_k=result.top_k,
            windows=result.windows if result.music else None,
            feature_config=result.feature_config if result.music else None,
            audio=data if settings.keep_audio else None, sound=result.sound)
        if result.music:
            embed = replies.prediction_embed(
                file_name=name, genre=result.genre, confidence=result.confidence, top_k=result.top_k,
                duration_s=result.duration_s, analysed_s=result.analysed_s, n_windows=result.n_windows,
                model_version=result.model_version, close_call=result.verdict() if result.close_call else None,
                tags=[tag for tag, _ in result.tags])
        else:
            embed = replies.not_music_embed(
                file_name=name, verdict=result.verdict(), duration_s=result.duration_s,
                analysed_s=result.analysed_s, n_windows=result.n_windows, model_version=result.model_version)
        image = discord.File(io.BytesIO(result.image_png), filename=replies.IMAGE_NAME)
        # Edit Original Interaction Response, the documented way to resolve a defer (a first follow-up
        # does the same only for backwards compatibility, and is deprecated for it).
        message = await interaction.edit_original_response(
            embed=embed, attachments=[image], view=CorrectionView() if result.music else None)
        await self.bot.storage.attach_message(prediction_id, message.id)
        if not result.music:
            return
        for emoji in (replies.RIGHT, replies.WRONG):
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:  # missing permission must not break the reply
                log.info("could not add reaction: %s", exc)

    async def _fail(self, interaction: discord.Interaction, problem: str) -> None:
        await respond.privately(interaction, replies.error_text(problem))

    @app_commands.command(name="genre-forget", description="Delete everything this bot stored about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        predictions, votes = await self.bot.storage.forget_user(interaction.user.id)
        await interaction.response.send_message(
            f"Done: I deleted {predictions} of your predictions and {votes} votes.", ephemeral=True)


async def setup(bot: "GenreBot") -> None:
    await bot.add_cog(GenreCog(bot))
