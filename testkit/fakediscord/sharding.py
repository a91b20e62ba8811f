"""Gateway sharding for the fake Discord server: one gateway connection per shard.

:class:`ShardedFakeDiscordServer` accepts several gateway connections at once, as Discord
does for a sharded bot: each IDENTIFY carries ``shard: [shard_id, shard_count]``; a guild
belongs to shard ``(guild_id >> 22) % shard_count``; every guild event (interactions,
reactions, message echoes) goes out on its guild's shard only, and direct-message events
on shard 0. Each shard has its own session, sequence numbers and queue of events waiting
for it to connect. ``GET /gateway/bot`` recommends ``shard_count``.

It extends :class:`~fakediscord.server.FakeDiscordServer` (REST, interactions and the
recording helpers are unchanged); only the gateway half is replaced.

    server = ShardedFakeDiscordServer(shard_count=2)
    other = server.add_guild(shard_id=1)             # a guild (and a channel in it) on shard 1
    await server.send_slash_command("genre", {...}, guild_id=other.guild_id, channel_id=other.channel_id)
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Dict, List, Optional

from aiohttp import web

from .server import FakeDiscordServer, snowflake


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's rule: which shard receives a guild's events."""
    return (int(guild_id) >> 22) % shard_count


@dataclasses.dataclass
class Guild:
    guild_id: int
    channel_id: int
    name: str


@dataclasses.dataclass(eq=False)
class ShardSession:
    """The gateway state of one shard."""

    shard_id: int
    ws: Optional[web.WebSocketResponse] = None
    ready: bool = False
    session_id: Optional[str] = None
    seq: int = 0
    history: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    pending: List[tuple] = dataclasses.field(default_factory=list)
    identify_count: int = 0
    #: Event types sent on this shard (``INTERACTION_CREATE``, ...), with the guild they were for.
    delivered: List[tuple] = dataclasses.field(default_factory=list)


class ShardedFakeDiscordServer(FakeDiscordServer):
    """The fake server for a bot that runs ``shard_count`` gateway shards (in one or several processes)."""

    def __init__(self, *, shard_count: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard_count = shard_count
        self.shards: Dict[int, ShardSession] = {i: ShardSession(i) for i in range(shard_count)}
        self.guilds: Dict[int, Guild] = {self.guild_id: Guild(self.guild_id, self.channel_id, "Test Guild")}
        self._channel_guild: Dict[int, int] = {self.channel_id: self.guild_id}
        self._compressors: Dict[int, Any] = {}  # id(ws) -> zlib stream
        self._session_of: Dict[int, ShardSession] = {}  # id(ws) -> shard

    # ------------------------------------------------------------ guilds
    def add_guild(self, shard_id: int, name: str = "Other Guild") -> Guild:
        """A new guild whose id puts it on ``shard_id``, with one text channel."""
        gid = snowflake()
        while shard_of(gid, self.shard_count) != shard_id:
            gid += 1 << 22  # one millisecond later: the next shard
        ch = self.add_channel(f"{name.lower().replace(' ', '-')}-general")
        ch["guild_id"] = str(gid)
        guild = Guild(gid, int(ch["id"]), name)
        self.guilds[gid] = guild
        self._channel_guild[guild.channel_id] = gid
        return guild

    def shard_for(self, guild_id: Optional[int]) -> int:
        return 0 if guild_id is None else shard_of(guild_id, self.shard_count)

    def _guild_create(self, guild_id: int) -> Dict[str, Any]:
        data = self.guild_obj()
        data["id"] = str(guild_id)
        data["name"] = self.guilds[guild_id].name
        data["channels"] = [{k: v for k, v in c.items() if k != "guild_id"} for cid, c in self.channels.items()
                            if self._channel_guild.get(cid, self.guild_id) == guild_id]
        return data

    # messages and reactions belong to the guild of their channel
    def _new_message(self, channel_id: int, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        msg = super()._new_message(channel_id, *args, **kwargs)
        if "guild_id" in msg:
            msg["guild_id"] = str(self._channel_guild.get(int(channel_id), self.guild_id))
        return msg

    def _reaction_payload(self, message_id: int, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        d = super()._reaction_payload(message_id, *args, **kwargs)
        d["guild_id"] = str(self._channel_guild.get(int(d["channel_id"]), self.guild_id))
        return d

    def _base_interaction(self, itype: int, **kwargs: Any) -> Dict[str, Any]:
        if kwargs.get("guild_id") is None and kwargs.get("channel_id") is not None:
            kwargs["guild_id"] = self._channel_guild.get(int(kwargs["channel_id"]))
        return super()._base_interaction(itype, **kwargs)

    # ------------------------------------------------------------ gateway
    async def _h_gateway_bot(self, request: web.Request) -> web.Response:
        return web.json_response({"url": self.gateway_url, "shards": self.shard_count,
                                  "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                                          "max_concurrency": 1}})

    async def _h_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.connection_count += 1
        if self.gateway_compression and request.query.get("compress") == "zlib-stream":
            self._compressors[id(ws)] = zlib.compressobj()
        self.gateway_queries.append(dict(request.query))
        try:
            await self._serve_frames(ws)
        finally:
            self.client_close_codes.append(ws.close_code)
            shard = self._session_of.pop(id(ws), None)
            if shard is not None and shard.ws is ws:
                shard.ws, shard.ready = None, False
            self._compressors.pop(id(ws), None)
            await self._notify()
        return ws

    def _compressor_of(self, ws: web.WebSocketResponse) -> Any:
        return self._compressors.get(id(ws))

    async def _send_dispatch(self, ws: web.WebSocketResponse, t: str, d: Any) -> bool:
        shard = self._session_of[id(ws)]
        shard.seq += 1
        frame = {"op": 0, "t": t, "s": shard.seq, "d": d}
        shard.history.append(frame)
        ok = await self._send_raw(ws, frame)
        if ok:
            shard.delivered.append((t, d.get("guild_id") if isinstance(d, dict) else None))
        elif frame in shard.history:
            shard.history.remove(frame)
        return ok

    async def _identify(self, ws: web.WebSocketResponse, d: Dict[str, Any]) -> None:
        if self.expected_token is not None and d.get("token") != self.expected_token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, count = d.get("shard") or (0, 1)
        if count != self.shard_count:
            await ws.close(code=4011 if count < self.shard_count else 4010,
                           message=b"Sharding required." if count < self.shard_count else b"Invalid shard.")
            return
        shard = self.shards[int(shard_id)]
        if shard.ws is not None and shard.ws is not ws and not shard.ws.closed:
            await shard.ws.close(code=4000, message=b"superseded")
        shard.ws, shard.ready = ws, False
        self._session_of[id(ws)] = shard
        self.identify_count += 1
        shard.identify_count += 1
        self.identify_payload = d
        shard.session_id = f"fake-session-{shard_id}-{snowflake()}"
        shard.seq, shard.history = 0, []
        mine = [gid for gid in self.guilds if self.shard_for(gid) == shard.shard_id]
        await self._send_dispatch(ws, "READY", {
            "v": 10, "user": self.bot_user, "guilds": [{"id": str(g), "unavailable": True} for g in mine],
            "session_id": shard.session_id, "session_type": "normal", "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 1 << 19}, "shard": [shard_id, count],
            "private_channels": [], "relationships": [], "presences": [], "guild_join_requests": [],
            "geo_ordered_rtc_regions": [], "auth": {}, "user_settings": {}, "_trace": ["fakediscord"],
        })
        for gid in mine:
            await self._send_dispatch(ws, "GUILD_CREATE", self._guild_create(gid))
        shard.ready = True
        self._ws, self._ws_ready = ws, True  # the base class's notion of "a bot is connected"
        await self._flush(shard)
        assert self._ready_event is not None
        if all(s.ready for s in self.shards.values()):
            self._ready_event.set()

    async def _resume(self, ws: web.WebSocketResponse, d: Dict[str, Any]) -> None:
        shard = next((s for s in self.shards.values() if s.session_id and s.session_id == d.get("session_id")), None)
        if shard is None:
            await self._send_op(ws, 9, False)
            return
        shard.ws, self._session_of[id(ws)] = ws, shard
        self.resume_count += 1
        for frame in [f for f in shard.history if f["s"] > (d.get("seq") or 0)]:
            await self._send_raw(ws, frame)
        await self._send_dispatch(ws, "RESUMED", {"_trace": ["fakediscord"]})
        shard.ready = True
        await self._flush(shard)

    async def _flush(self, shard: ShardSession) -> None:
        while shard.pending and shard.ws is not None and not shard.ws.closed:
            t, d = shard.pending.pop(0)
            await self._send_dispatch(shard.ws, t, d)

    async def dispatch(self, t: str, d: Dict[str, Any]) -> None:
        """Send an event on the shard of its guild (shard 0 without a guild), or queue it for that shard."""
        gid = d.get("guild_id") if isinstance(d, dict) else None
        shard = self.shards[self.shard_for(int(gid) if gid else None)]
        if shard.ws is None or shard.ws.closed or not shard.ready or not await self._send_dispatch(shard.ws, t, d):
            shard.pending.append((t, d))

    async def wait_shards(self, shard_ids: List[int], timeout: float = 30.0) -> None:
        """Until each of ``shard_ids`` has identified and received its guilds."""
        await self.wait_for(lambda: all(self.shards[i].ready for i in shard_ids), timeout)

    async def stop(self) -> None:
        for shard in self.shards.values():
            if shard.ws is not None and not shard.ws.closed:
                try:
                    await shard.ws.close(code=1001, message=b"server stopping")
                except Exception:
                    pass
        await super().stop()
