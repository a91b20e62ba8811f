"""A tiny Discord-compatible REST + gateway server for end-to-end tests.

It lets a *real* ``discord.py`` (2.7.x) ``commands.Bot`` log in, sync app
commands, receive gateway events (INTERACTION_CREATE, MESSAGE_REACTION_ADD,
...) and answer them over REST, all on 127.0.0.1 with no network access.

Import: ``tests/`` has no ``__init__.py``, so with pytest's default
(prepend) import mode ``tests/`` is put on ``sys.path`` and the package is
importable as ``fakediscord`` from any test under ``tests/``
(``tests/fakediscord/test_fakediscord.py`` itself uses a relative import).

Quick start (inside an asyncio test)::

    from testkit.fakediscord import FakeDiscordServer

    server = FakeDiscordServer()
    await server.start()
    point_discord_py_at(server.api_base, server.gateway_url)   # see below
    bot = MyBot(...)
    bot_task = asyncio.create_task(bot.start("any-token"))
    await server.wait_ready(10)
    await server.wait_commands(["echo"], timeout=10)
    att = server.add_attachment("song.mp3", b"...", "audio/mpeg")
    handle = await server.send_slash_command("echo", {"file": att})
    msg = await handle.wait_message(lambda m: m["embeds"], timeout=10)
    ...
    await bot.close(); await bot_task
    await server.stop()

Pointing discord.py at the server
---------------------------------
discord.py 2.7.1 builds every REST URL (including interaction callbacks,
followup/edit webhooks, which go through ``discord.webhook.async_`` but reuse
``discord.http.Route``) from the class attribute ``discord.http.Route.BASE``.

A plain (non-sharded) ``Client``/``Bot`` does **not** call ``GET /gateway`` or
``GET /gateway/bot``: it connects straight to the class attribute
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (a ``yarl.URL``) and, after
READY, to ``resume_gateway_url`` for RESUMEs (this server sends its own URL
there). ``DEFAULT_GATEWAY`` is also what it falls back to after an
INVALID_SESSION, so it must be patched too. (``AutoShardedClient`` does call
``GET /gateway/bot``; the server answers it with its own URL.)

Attachment downloads (``Attachment.read()``/``save()``) fetch ``attachment.url``
(or ``proxy_url``) with the bot's own aiohttp session, an absolute URL, so
nothing needs patching for them: the server hands out attachment URLs that
point back at itself.

The minimal code a bot needs, given ``DISCORD_API_BASE`` and
``DISCORD_GATEWAY_URL``, call it before ``bot.start()``/``bot.run()``::

    import yarl
    import discord.http
    import discord.gateway

    def point_discord_py_at(api_base: str, gateway_url: str | None) -> None:
        # REST, interaction callbacks, followup webhooks, edits of @original
        discord.http.Route.BASE = api_base.rstrip("/")
        if gateway_url:
            # first connect + fallback after INVALID_SESSION
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    # e.g. in the bot's main():
    #   if os.environ.get("DISCORD_API_BASE"):
    #       point_discord_py_at(os.environ["DISCORD_API_BASE"],
    #                           os.environ.get("DISCORD_GATEWAY_URL"))

If only ``DISCORD_API_BASE`` is known, the gateway URL can be discovered from
inside the bot's ``setup_hook`` (runs after login, before the gateway
connect)::

    async def setup_hook(self):
        _, url, _ = await self.http.get_bot_gateway()   # GET /gateway/bot
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

Both attributes are process-global; tests should restore them afterwards
(``monkeypatch.setattr`` does that).

Behaviour notes (discord.py 2.7.1):

* Gateway: discord.py asks for ``compress=zlib-stream``; the server answers
  with zlib-stream binary frames (``gateway_compression=False`` -> plain text
  frames, which discord.py also accepts).
* After a non-resumable INVALID_SESSION discord.py sleeps 5 s before it
  re-IDENTIFYs (``Client.before_identify_hook``); a forced close with a
  resumable code RESUMEs immediately.
* ``Client.close()`` usually closes the socket with code 4000 (its reader task
  wins the race against the 1000 close); both are "clean".
* The bot's own reactions are echoed as MESSAGE_REACTION_ADD (like Discord),
  so ``on_raw_reaction_add`` sees the bot's user id too; filter on user_id.
* Messages the bot creates are echoed as MESSAGE_CREATE / MESSAGE_UPDATE
  (``echo_message_create=False`` to disable; ephemeral ones are never echoed).
* ``server.webhook_edit_delay = 3.0`` models "Discord is slow to answer the
  edit": an edit of an interaction's message is applied and shown to the
  channel at once, but the bot gets its answer that many seconds later.

Tip: pass ``guild_ready_timeout=0.1`` to the Bot so ``on_ready`` fires quickly
(discord.py waits that long after the last GUILD_CREATE).

See ``server.py`` (``FakeDiscordServer``) for the driver API.
"""

from .server import (
    FakeDiscordServer,
    InteractionHandle,
    RecordedRequest,
    UploadedFile,
    snowflake,
)

__all__ = [
    "FakeDiscordServer",
    "InteractionHandle",
    "RecordedRequest",
    "UploadedFile",
    "snowflake",
]
