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

from testkit.fakediscord import FakeDiscordServer

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


# ------------------------------------------------------------------ Discord's rules, as the server models them


async def _rest(server: FakeDiscordServer, method: str, path: str, body=None):
    async with aiohttp.ClientSession() as s:
        async with s.request(method, f"{server.api_base}{path}", json=body) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else None)


async def test_first_followup_after_a_defer_keeps_the_defers_visibility(server: FakeDiscordServer) -> None:
    """Create Followup Message: right after a deferred response it edits the thinking message, and its
    ephemeral flag is ignored; later follow-ups (or any after deleting the thinking message) honour it."""
    hooks = f"/webhooks/{server.application_id}"
    public = await server.send_slash_command("echo", {})
    assert (await _rest(server, "POST", f"/interactions/{public.id}/{public.token}/callback", {"type": 5}))[0] == 204
    thinking = public.original
    assert server.visible_to_channel(thinking) and thinking["flags"] & 128
    status, first = await _rest(server, "POST", f"{hooks}/{public.token}", {"content": "oops", "flags": 64})
    assert status == 200 and first["id"] == thinking["id"] and public.followup_resolved_defer
    assert server.visible_to_channel(first), "the ephemeral flag was ignored: the whole channel sees it"
    assert server.ever_shown_to_channel(lambda m: m["content"] == "oops")
    status, second = await _rest(server, "POST", f"{hooks}/{public.token}", {"content": "psst", "flags": 64})
    assert second["id"] != first["id"] and not server.visible_to_channel(second)
    assert server.visible_to(second, public.user_id) and not server.visible_to(second, server.owner_id)

    private = await server.send_slash_command("echo", {})
    await _rest(server, "POST", f"/interactions/{private.id}/{private.token}/callback", {"type": 5})
    assert (await _rest(server, "DELETE", f"{hooks}/{private.token}/messages/@original"))[0] == 204
    status, only_you = await _rest(server, "POST", f"{hooks}/{private.token}", {"content": "only you", "flags": 64})
    assert status == 200 and not server.visible_to_channel(only_you)
    assert not server.ever_shown_to_channel(lambda m: m["content"] == "only you")
    assert [m["content"] for m in server.channel_view()] == ["oops"]
    assert [m["content"] for m in server.channel_view(user_id=private.user_id)] == ["oops", "psst", "only you"]
    # ephemeral messages are not reachable through channel routes
    channel = f"/channels/{server.channel_id}/messages"
    assert (await _rest(server, "GET", f"{channel}/{only_you['id']}"))[0] == 404
    assert (await _rest(server, "PUT", f"{channel}/{only_you['id']}/reactions/%E2%9C%85/@me"))[0] == 404

    ephemeral_defer = await server.send_slash_command("echo", {})
    await _rest(server, "POST", f"/interactions/{ephemeral_defer.id}/{ephemeral_defer.token}/callback",
                {"type": 5, "data": {"flags": 64}})
    _, msg = await _rest(server, "POST", f"{hooks}/{ephemeral_defer.token}", {"content": "public?", "flags": 0})
    assert msg["id"] == ephemeral_defer.original["id"] and not server.visible_to_channel(msg)


async def test_bodies_breaking_discords_limits_are_refused(server: FakeDiscordServer) -> None:
    handle = await server.send_slash_command("echo", {})
    callback = f"/interactions/{handle.id}/{handle.token}/callback"
    status, body = await _rest(server, "POST", callback, {"type": 4, "data": {"content": "x" * 2001}})
    assert status == 400 and body["code"] == 50035 and "content" in body["errors"]
    assert not handle.callbacks, "a refused response does not acknowledge the interaction"
    status, body = await _rest(server, "POST", callback, {"type": 5, "data": {"flags": 4}})
    assert status == 400 and "flags" in body["errors"]["data"]
    embed = {"title": "t" * 257, "fields": [{"name": "n", "value": "v" * 1025}] + [{"name": "n", "value": "v"}] * 25}
    status, body = await _rest(server, "POST", callback, {"type": 4, "data": {"embeds": [embed]}})
    assert status == 400 and set(body["errors"]["embeds"]["0"]) == {"title", "fields"}
    select = {"type": 3, "custom_id": "c", "options": [{"label": "l" * 101, "value": "v"}] * 2}
    status, body = await _rest(server, "POST", callback, {"type": 4, "data": {"components": [
        {"type": 1, "components": [select, {"type": 2, "style": 1, "custom_id": "b", "label": "go"}]}]}})
    assert status == 400 and "components" in body["errors"]
    assert (await _rest(server, "POST", callback, {"type": 4, "data": {}}))[1]["code"] == 50006  # empty
    assert (await _rest(server, "POST", callback, {"type": 7, "data": {"content": "x"}}))[0] == 400  # not a component
    assert len(server.rejected_requests) == 6
    assert (await _rest(server, "POST", callback, {"type": 4, "data": {"content": "x" * 2000}}))[0] == 204
    status, _ = await _rest(server, "POST", f"/channels/{server.channel_id}/messages", {"content": "x", "flags": 64})
    assert status == 400, "ephemeral exists only for interactions"


async def test_interaction_tokens_expire_after_15_minutes(server: FakeDiscordServer) -> None:
    handle = await server.send_slash_command("echo", {})
    await _rest(server, "POST", f"/interactions/{handle.id}/{handle.token}/callback", {"type": 5})
    original = f"/webhooks/{server.application_id}/{handle.token}/messages/@original"
    assert (await _rest(server, "PATCH", original, {"content": "10%"}))[0] == 200
    handle.age(15 * 60 + 1)
    status, body = await _rest(server, "PATCH", original, {"content": "100%"})
    assert (status, body["code"]) == (401, 50027)
    assert (await _rest(server, "POST", f"/webhooks/{server.application_id}/{handle.token}", {"content": "x"}))[0] == 401
    assert server.messages[handle.original_message_id]["content"] == "10%"


async def test_commands_in_both_scopes_are_listed_twice(server: FakeDiscordServer) -> None:
    app = f"/applications/{server.application_id}"
    cmd = {"name": "echo", "type": 1, "description": "Echo"}
    assert (await _rest(server, "PUT", f"{app}/commands", [cmd]))[0] == 200
    assert [c["name"] for c in server.commands_listed_to_member()] == ["echo"]
    assert (await _rest(server, "PUT", f"{app}/guilds/{server.guild_id}/commands", [cmd]))[0] == 200
    assert [c["name"] for c in server.commands_listed_to_member()] == ["echo", "echo"]
    assert (await _rest(server, "PUT", f"{app}/commands", []))[0] == 200
    assert [c.get("guild_id") for c in server.commands_listed_to_member()] == [str(server.guild_id)]
    status, body = await _rest(server, "PUT", f"{app}/guilds/123/commands", [cmd])
    assert (status, body["code"]) == (403, 50001), "not a member of that guild"
    bad = [{"name": "Echo Me", "type": 1, "description": ""}]
    assert (await _rest(server, "PUT", f"{app}/commands", bad))[0] == 400
    _, guilds = await _rest(server, "GET", "/users/@me/guilds")
    assert [g["id"] for g in guilds] == [str(server.guild_id)]
