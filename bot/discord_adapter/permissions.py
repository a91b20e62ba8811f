"""The channel permissions the bot really uses, and the invite URL that asks for exactly them.

Each permission is there for a call the adapter makes:

* view_channel: see the channel it answers in (every other permission needs it);
* send_messages: ``channel.send`` (the follow-up after feedback);
* embed_links / attach_files: the answer's embed and its spectrogram PNG;
* add_reactions: ``message.add_reaction`` (the ✅/❌ it puts under an answer);
* read_message_history: Discord requires it to react to a message and to fetch one.

Slash-command answers are interaction responses (webhooks), so they need no more.
"""

from __future__ import annotations

import base64
import discord

SCOPES = ("bot", "applications.commands")


def required_permissions() -> discord.Permissions:
    return discord.Permissions(view_channel=True, send_messages=True, embed_links=True, attach_files=True,
                               add_reactions=True, read_message_history=True)


def application_id_from_token(token: str) -> int:
    """A bot token's first part is the application (bot user) id in base64."""
    first = token.strip().split(".")[0]
    try:
        return int(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValueError("cannot read the application id from DISCORD_TOKEN; pass it: genre-bot invite-url ID") from None


def invite_url(application_id: int) -> str:
    return (f"https://discord.com/oauth2/authorize?client_id={application_id}"
            f"&scope={'+'.join(SCOPES)}&permissions={required_permissions().value}")
