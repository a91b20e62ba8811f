"""Answering an interaction so that exactly the right people see the answer.

The Discord rules this module exists for (Receiving and Responding, Create Followup Message):

* the ephemeral flag is honoured on an interaction's first response and on later follow-ups, but
* the first follow-up after a deferred response ("genrebot is thinking...") is not a new message: it
  edits the thinking message and keeps *its* visibility; the follow-up's ephemeral flag is ignored.

So an answer meant for the requester alone, after a public defer, first deletes the thinking
message; the follow-up is then a new message, and its ephemeral flag counts.
"""

from __future__ import annotations

import logging

import discord

log = logging.getLogger(__name__)


async def privately(interaction: discord.Interaction, text: str) -> bool:
    """Tell ``text`` to the member who used the interaction and to nobody else; never raises.

    Returns whether it was delivered. If the public thinking message cannot be deleted,
    nothing is sent (a follow-up would then be shown to the whole channel)."""
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return True
        if await _public_thinking(interaction):
            await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True)
        return True
    except discord.DiscordException as exc:
        log.warning("could not answer interaction %s privately: %s", interaction.id, exc)
        return False


async def _public_thinking(interaction: discord.Interaction) -> bool:
    """Whether the response is a public "thinking..." message that nothing has resolved yet.

    Asks Discord (one GET of the original response) rather than guessing, so a result that was
    already shown is never deleted. The bot never calls ``original_response()`` elsewhere, so
    discord.py's cached copy cannot be stale here."""
    if interaction.response.type is not discord.InteractionResponseType.deferred_channel_message:
        return False
    try:
        original = await interaction.original_response()
    except discord.NotFound:  # already deleted: a follow-up is a new message
        return False
    return original.flags.loading and not original.flags.ephemeral
