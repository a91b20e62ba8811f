"""Self-test: a real discord.py commands.Bot logs into FakeDiscordServer and is
driven end to end (sync, slash command with attachment, followup with file,
reactions, select-menu component, gateway reconnect, clean close)."""

from __future__ import annotations

import asyncio
import io
from typing import List, Optional

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands

from .server import FakeDiscordServer

pytestmark = pytest.mark.asyncio

PNG_IN = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64 + b"\x00\x00\xff\xff tail"


# This is the documented snippet (see tests/fakediscord/__init__.py); the bot
# owns the real one.
def point_discord_py_at(api_base: str, gateway_url: Optional[str]) -> None:
    discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class PickView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.select(
        custom_id="genre-pick",
        options=[discord.SelectOption(label="Rock", value="rock"), discord.SelectOption(label="Jazz", value="jazz")],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.edit_message(content=f"picked {','.join(select.values)}", view=None)


class EchoCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.raw_reactions: List[discord.RawReactionActionEvent] = []

    @app_commands.command(name="echo", description="Echo an uploaded file back")
    async def echo(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True)
        try:
            data = await file.read()
        except discord.HTTPException as exc:
            await interaction.followup.send(content=f"download failed: {exc.status}")
            return
        embed = discord.Embed(title=f"echo: {file.filename}", description=f"{len(data)} bytes")
        msg = await interaction.followup.send(
            embed=embed, file=discord.File(io.BytesIO(data), filename="result.png"), wait=True
        )
        await msg.add_reaction("\N{MUSICAL NOTE}")

    @app_commands.command(name="edit", description="Defer, then edit the original response")
    async def edit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(
            content="done", attachments=[discord.File(io.BytesIO(b"chart-bytes"), filename="chart.png")]
        )
        original = await interaction.original_response()
        await interaction.channel.send(f"original was {original.id}", file=discord.File(io.BytesIO(b"ch"), filename="c.txt"))

    @app_commands.command(name="pick", description="Pick a genre")
    async def pick(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("choose one", view=PickView())

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.raw_reactions.append(payload)


class EchoBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.1)
        self.test_guild = discord.Object(id=guild_id)

    async def setup_hook(self) -> None:
        await self.add_cog(EchoCog(self))
        await self.tree.sync()  # global
        self.tree.copy_global_to(guild=self.test_guild)
        await self.tree.sync(guild=self.test_guild)  # guild-scoped (instant in real Discord)


@pytest_asyncio.fixture
async def server(monkeypatch: pytest.MonkeyPatch):
    srv = FakeDiscordServer()
    await srv.start()
    # register undo for the process-global attributes, then apply the snippet
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    point_discord_py_at(srv.api_base, srv.gateway_url)
    try:
        yield srv
    finally:
        await srv.stop()


class RunningBot:
    def __init__(self, bot: EchoBot, task: asyncio.Task) -> None:
        self.bot = bot
        self.task = task

    @property
    def cog(self) -> EchoCog:
        return self.bot.get_cog("EchoCog")  # type: ignore[return-value]


@pytest_asyncio.fixture
async def running(server: FakeDiscordServer):
    bot = EchoBot(server.guild_id)
    task = asyncio.create_task(bot.start("fake-token"))
    ready = asyncio.create_task(server.wait_ready(15))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raise the bot's startup error
        raise AssertionError("bot.start() returned before READY")
    ready.result()
    await server.wait_commands(["echo", "pick", "edit"], guild_id=server.guild_id, timeout=10)
    rb = RunningBot(bot, task)
    try:
        yield rb
    finally:
        if not bot.is_closed():
            await bot.close()
        await asyncio.wait_for(task, 10)
    assert not server.unknown_routes, f"discord.py hit routes fakediscord lacks: {server.unknown_routes}"


async def _echo_roundtrip(server: FakeDiscordServer, filename: str = "song.png"):
    att = server.add_attachment(filename, PNG_IN, "image/png")
    handle = await server.send_slash_command("echo", {"file": att})
    followup = await handle.wait_followup(timeout=10)
    return att, handle, followup


async def test_login_sync_and_followup_with_file(server: FakeDiscordServer, running: RunningBot) -> None:
    # login calls
    assert server.requests_matching("GET", r"^/users/@me$")
    assert server.requests_matching("GET", r"^/oauth2/applications/@me$")
    assert server.identify_count == 1
    assert server.identify_payload["token"] == "fake-token"
    # discord.py asks for zlib-stream; the server compresses (Z_SYNC_FLUSH frames)
    assert server.gateway_queries[0] == {"encoding": "json", "v": "10", "compress": "zlib-stream"}
    assert server.gateway_received[0]["op"] in (1, 2)

    # command sync: global + guild bulk upserts, with ids echoed back
    glob = {c["name"]: c for c in server.commands[None]}
    guild = {c["name"]: c for c in server.commands[server.guild_id]}
    assert set(glob) == {"echo", "pick", "edit"} and set(guild) == {"echo", "pick", "edit"}
    assert glob["echo"]["options"][0]["type"] == 11  # attachment option
    assert int(guild["echo"]["id"]) != int(glob["echo"]["id"])

    att, handle, followup = await _echo_roundtrip(server)
    cb = handle.callback
    assert cb is not None and cb["type"] == 5
    # followup went out as multipart with the bytes intact
    req = server.requests_matching("POST", rf"^/webhooks/{server.application_id}/{handle.token}$")[0]
    assert req.multipart
    assert req.query.get("wait") == "1"
    assert [f.filename for f in req.files] == ["result.png"]
    assert req.files[0].data == PNG_IN
    assert followup["embeds"][0]["title"] == "echo: song.png"
    assert followup["attachments"][0]["filename"] == "result.png"
    assert int(followup["author"]["id"]) == server.bot_user_id
    # the uploaded file is downloadable from the returned URL
    async with aiohttp.ClientSession() as s:
        async with s.get(followup["attachments"][0]["url"]) as r:
            assert r.status == 200 and await r.read() == PNG_IN
    # bot added a reaction to its followup (emoji percent-decoded)
    await server.wait_for(lambda: server.bot_reactions_on(int(followup["id"])))
    assert server.bot_reactions_on(int(followup["id"])) == ["\N{MUSICAL NOTE}"]
    assert followup in server.bot_messages()
    assert not server.unknown_routes, server.unknown_routes


async def test_reaction_reaches_listener(server: FakeDiscordServer, running: RunningBot) -> None:
    _, _, followup = await _echo_roundtrip(server)
    user_id = 424242424242424242
    await server.add_reaction(int(followup["id"]), "\N{THUMBS UP SIGN}", user_id=user_id)
    cog = running.cog
    await server.wait_for(lambda: [p for p in cog.raw_reactions if p.user_id == user_id], timeout=5)
    ev = next(p for p in cog.raw_reactions if p.user_id == user_id)
    assert ev.message_id == int(followup["id"])
    assert str(ev.emoji) == "\N{THUMBS UP SIGN}"
    assert ev.guild_id == server.guild_id
    assert ev.member is not None and ev.member.id == user_id


async def _poll(cond, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_select_menu_component(server: FakeDiscordServer, running: RunningBot) -> None:
    handle = await server.send_slash_command("pick", {})
    cb = await handle.wait_callback()
    assert cb["type"] == 4 and cb["data"]["content"] == "choose one"
    msg = handle.original
    assert msg is not None and msg["components"][0]["components"][0]["custom_id"] == "genre-pick"
    h2 = await server.send_component_interaction(int(msg["id"]), "genre-pick", ["jazz"])
    cb2 = await h2.wait_callback()
    assert cb2["type"] == 7
    assert server.messages[int(msg["id"])]["content"] == "picked jazz"


async def test_defer_then_edit_original_and_channel_send(server: FakeDiscordServer, running: RunningBot) -> None:
    handle = await server.send_slash_command("edit", {})
    edited = await handle.wait_edit(timeout=10)
    assert handle.callback["type"] == 5
    assert edited["content"] == "done"
    assert [a["filename"] for a in edited["attachments"]] == ["chart.png"]
    assert handle.edits[0]["target"] == "@original"
    assert handle.edits[0]["files"][0].data == b"chart-bytes"
    req = await server.wait_for_request("POST", rf"^/channels/{server.channel_id}/messages$")
    assert req.multipart and req.files[0] == ("c.txt", b"ch", "application/octet-stream")
    assert req.json["content"] == f"original was {handle.original_message_id}"
    assert server.requests_matching("GET", r"/messages/@original$")
    assert server.bot_messages(server.channel_id)[-1]["content"].startswith("original was")


async def test_attachment_download_failure(server: FakeDiscordServer, running: RunningBot) -> None:
    att = server.add_attachment("missing.mp3", b"x", "audio/mpeg", status=404)
    handle = await server.send_slash_command("echo", {"file": att})
    m = await handle.wait_message(lambda m: "download failed" in m["content"])
    assert m["content"] == "download failed: 404"


async def test_gateway_reconnect_resume_and_identify(server: FakeDiscordServer, running: RunningBot) -> None:
    seqs_before = [f["s"] for f in server.gateway_sent if f.get("op") == 0]
    await server.force_disconnect(code=4000)
    await server.wait_for(lambda: server.resume_count >= 1, timeout=15)
    assert server.connection_count == 2
    _, _, followup = await _echo_roundtrip(server, "after-resume.png")
    assert followup["embeds"][0]["title"] == "echo: after-resume.png"

    # a non-resumable INVALID_SESSION forces a fresh IDENTIFY
    await server.invalidate_session(resumable=False)
    await server.wait_for(lambda: server.identify_count >= 2, timeout=20)
    _, _, followup = await _echo_roundtrip(server, "after-identify.png")
    assert followup["embeds"][0]["title"] == "echo: after-identify.png"

    seqs = [f["s"] for f in server.gateway_sent if f.get("op") == 0]
    assert seqs[: len(seqs_before)] == seqs_before
    assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs


async def test_command_sent_while_disconnected_is_delivered(server: FakeDiscordServer, running: RunningBot) -> None:
    await server.force_disconnect(code=4000)
    att = server.add_attachment("queued.png", PNG_IN, "image/png")
    handle = await server.send_slash_command("echo", {"file": att})  # queued until RESUMED
    followup = await handle.wait_followup(timeout=15)
    assert followup["embeds"][0]["title"] == "echo: queued.png"


async def test_bot_close_is_clean(server: FakeDiscordServer, running: RunningBot) -> None:
    await running.bot.close()
    await asyncio.wait_for(running.task, 10)  # returns without raising
    assert running.task.exception() is None
    await server.wait_for(lambda: server._ws is None, timeout=5)
    # discord.py 2.7.1's Client.close() sends close(1000), but its reader task
    # (blocked in receive()) wins the race and closes with 4000 first.
    assert server.client_close_codes[-1] in (1000, 4000)
    assert server.connection_count == 1 and server.resume_count == 0


async def test_unknown_route_and_content_type(server: FakeDiscordServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{server.api_base}/users/@me") as r:
            assert r.headers["Content-Type"] == "application/json"
        async with s.get(f"{server.api_base}/definitely/not/here") as r:
            assert r.status == 404
            assert r.headers["Content-Type"] == "application/json"
            assert await r.json() == {"message": "Unknown", "code": 0}
        async with s.get(f"{server.api_base}/gateway/bot") as r:
            assert (await r.json())["url"] == server.gateway_url
    assert [u.path for u in server.unknown_routes] == ["/definitely/not/here"]


async def test_attachment_failure_knobs(server: FakeDiscordServer) -> None:
    ok = server.add_attachment("a.mp3", b"abc", "audio/mpeg")
    gone = server.add_attachment("b.mp3", b"abc", "audio/mpeg", status=404)
    boom = server.add_attachment("c.mp3", b"abc", "audio/mpeg", status=500)
    stuck = server.add_attachment("d.mp3", b"abc", "audio/mpeg", hang=True)
    assert ok["url"].startswith(server.base_url) and ok["proxy_url"] == ok["url"]
    assert ok["size"] == 3 and ok["content_type"] == "audio/mpeg"
    async with aiohttp.ClientSession() as s:
        async with s.get(ok["url"]) as r:
            assert r.status == 200 and await r.read() == b"abc"
        async with s.get(gone["url"]) as r:
            assert r.status == 404
        async with s.get(boom["url"]) as r:
            assert r.status == 500
        with pytest.raises(asyncio.TimeoutError):
            async with s.get(stuck["url"], timeout=aiohttp.ClientTimeout(total=0.3)) as r:
                await r.read()
