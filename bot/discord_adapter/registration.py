"""Where the bot's application commands are registered: in exactly one scope.

Discord lists a guild's commands *and* the global ones side by side, so a command registered
in both scopes shows up twice for members of that guild. The bot therefore registers

* in each guild of ``GENREBOT_GUILD_IDS`` when it is set (instant; the global list is emptied), or
* globally otherwise,

and empties leftover registrations in every other guild the bot is in (one GET per guild at
start-up; a PUT only where something is left over), e.g. from an earlier guild-scoped deployment.
"""

from __future__ import annotations

import logging
from typing import Sequence

import discord
from discord import app_commands

log = logging.getLogger(__name__)


async def register_commands(client: discord.Client, tree: app_commands.CommandTree,
                            guild_ids: Sequence[int]) -> None:
    """Sync ``tree`` to the guilds ``guild_ids`` (or globally when empty); clear the other scope."""
    for guild_id in guild_ids:
        guild = discord.Object(guild_id)
        tree.copy_global_to(guild=guild)
        try:
            await tree.sync(guild=guild)
        except discord.Forbidden:
            log.error("cannot register commands in guild %s: the bot is not in it, or was invited without "
                      "the applications.commands scope", guild_id)
    if guild_ids:
        tree.clear_commands(guild=None)  # the guild copies stay; the global list becomes empty
    await tree.sync()
    await _clear_other_guilds(client, tree, keep=set(guild_ids))


async def _clear_other_guilds(client: discord.Client, tree: app_commands.CommandTree, keep: set[int]) -> None:
    """Best effort: a failure here is logged, never stops the bot."""
    try:
        guilds = [guild async for guild in client.fetch_guilds(limit=None) if guild.id not in keep]
    except discord.HTTPException as exc:
        log.warning("could not list the bot's guilds to look for leftover commands: %s", exc)
        return
    for guild in guilds:
        try:
            if await tree.fetch_commands(guild=guild):
                await tree.sync(guild=guild)  # the tree has nothing for this guild: an empty overwrite
                log.info("removed leftover command registrations in guild %s", guild.id)
        except discord.Forbidden:  # invited without applications.commands: nothing of ours is there
            continue
        except discord.HTTPException as exc:
            log.warning("could not check guild %s for leftover commands: %s", guild.id, exc)
