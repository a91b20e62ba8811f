"""The gateway: the websocket (hello, identify, resume, heartbeat, zlib-stream frames), dispatching
events (queued while the bot is not connected), server-side disconnects and the gateway URL routes."""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from typing import Any, Dict

from aiohttp import WSMsgType, web

from .rest import _json_response
from .state import snowflake

_log = logging.getLogger("fakediscord")


class GatewayMixin:
    """One gateway connection at a time (``sharding.py`` replaces it for sharded bots)."""

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._ws_tasks.add(task)
        task.add_done_callback(self._ws_tasks.discard)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the bot has IDENTIFYed (READY + GUILD_CREATE sent)."""
        assert self._ready_event is not None, "server not started"
        try:
            await asyncio.wait_for(self._ready_event.wait(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"bot did not identify within {timeout}s; requests so far: {self.requests!r}; "
                f"unknown routes: {self.unknown_routes!r}"
            ) from None

    async def _h_gateway(self, request: web.Request) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _h_gateway_bot(self, request: web.Request) -> web.Response:
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def _serve_frames(self, ws: web.WebSocketResponse) -> None:
        """Say Hello, then handle every frame the client sends until it closes the socket."""
        await self._send_op(ws, 10, {"heartbeat_interval": self.heartbeat_interval_ms})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                payload = json.loads(msg.data)
            elif msg.type == WSMsgType.BINARY:
                payload = json.loads(msg.data.decode())
            else:
                break
            self.gateway_received.append(payload)
            await self._on_gateway_message(ws, payload)
            await self._notify()

    async def _h_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        old = self._ws
        if old is not None and not old.closed:
            await old.close(code=4000, message=b"superseded")
        self._ws = ws
        self._ws_ready = False
        self.connection_count += 1
        compress = request.query.get("compress")
        self._compressor = zlib.compressobj() if (self.gateway_compression and compress == "zlib-stream") else None
        self.gateway_queries.append(dict(request.query))
        try:
            await self._serve_frames(ws)
        finally:
            self.client_close_codes.append(ws.close_code)
            if self._ws is ws:
                self._ws = None
                self._ws_ready = False
            await self._notify()
        return ws

    def _compressor_of(self, ws: web.WebSocketResponse) -> Any:
        """The zlib-stream compressor of this connection, or None when it asked for plain frames."""
        return self._compressor if ws is self._ws else None

    async def _send_raw(self, ws: web.WebSocketResponse, payload: Dict[str, Any]) -> bool:
        async with self._send_lock:
            if ws.closed:
                return False
            data = json.dumps(payload)
            compressor = self._compressor_of(ws)
            try:
                if compressor is not None:
                    await ws.send_bytes(compressor.compress(data.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
                else:
                    await ws.send_str(data)
            except (ConnectionResetError, RuntimeError) as exc:
                _log.debug("gateway send failed: %r", exc)
                return False
            self.gateway_sent.append(payload)
            return True

    async def _send_op(self, ws: web.WebSocketResponse, op: int, d: Any) -> bool:
        return await self._send_raw(ws, {"op": op, "d": d, "s": None, "t": None})

    async def _send_dispatch(self, ws: web.WebSocketResponse, t: str, d: Any) -> bool:
        self._seq += 1
        frame = {"op": 0, "t": t, "s": self._seq, "d": d}
        self._history.append(frame)
        ok = await self._send_raw(ws, frame)
        if not ok and frame in self._history:
            # never reached the client; the caller may re-queue it. The seq
            # number is skipped, which keeps sequence numbers increasing.
            self._history.remove(frame)
        return ok

    async def _on_gateway_message(self, ws: web.WebSocketResponse, payload: Dict[str, Any]) -> None:
        op = payload.get("op")
        d = payload.get("d")
        if op == 1:  # HEARTBEAT
            self.heartbeat_count += 1
            await self._send_op(ws, 11, None)
        elif op == 2:  # IDENTIFY
            await self._identify(ws, d or {})
        elif op == 6:  # RESUME
            await self._resume(ws, d or {})
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            gids = d.get("guild_id")
            for gid in gids if isinstance(gids, list) else [gids]:
                members = [self.member(self.bot_user_id), self.member(self.owner_id), self.member(self.default_user_id)]
                chunk = {"guild_id": str(gid), "members": members, "chunk_index": 0, "chunk_count": 1}
                if d.get("nonce"):
                    chunk["nonce"] = d["nonce"]
                await self._send_dispatch(ws, "GUILD_MEMBERS_CHUNK", chunk)
        elif op in (3, 4):  # presence / voice state: record only
            pass
        else:
            _log.warning("fakediscord: unhandled gateway op %s", op)

    async def _identify(self, ws: web.WebSocketResponse, d: Dict[str, Any]) -> None:
        if self.expected_token is not None and d.get("token") != self.expected_token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identify_count += 1
        self.identify_payload = d
        self.session_id = f"fake-session-{snowflake()}"
        self._history = []
        await self._send_dispatch(
            ws,
            "READY",
            {
                "v": 10,
                "user": self.bot_user,
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": self.session_id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": 1 << 19},
                **({"shard": d["shard"]} if "shard" in d else {}),  # sharded clients (AutoShardedBot) need it
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "auth": {},
                "user_settings": {},
                "_trace": ["fakediscord"],
            },
        )
        await self._send_dispatch(ws, "GUILD_CREATE", self.guild_obj())
        self._ws_ready = True
        await self._flush_pending(ws)
        assert self._ready_event is not None
        self._ready_event.set()

    async def _resume(self, ws: web.WebSocketResponse, d: Dict[str, Any]) -> None:
        if d.get("session_id") != self.session_id or self.session_id is None:
            await self._send_op(ws, 9, False)
            return
        self.resume_count += 1
        last = d.get("seq") or 0
        for frame in [f for f in self._history if f["s"] > last]:
            await self._send_raw(ws, frame)
        await self._send_dispatch(ws, "RESUMED", {"_trace": ["fakediscord"]})
        self._ws_ready = True
        await self._flush_pending(ws)

    async def _flush_pending(self, ws: web.WebSocketResponse) -> None:
        while self._pending and self._ws is ws and not ws.closed:
            t, d = self._pending.pop(0)
            await self._send_dispatch(ws, t, d)

    async def dispatch(self, t: str, d: Dict[str, Any]) -> None:
        """Send a gateway dispatch now (or queue it until the bot is
        (re)connected and READY/RESUMED)."""
        ws = self._ws
        if ws is None or ws.closed or not self._ws_ready:
            self._pending.append((t, d))
            return
        if not await self._send_dispatch(ws, t, d):
            # socket died under us: deliver after the bot RESUMEs / re-IDENTIFYs
            self._pending.append((t, d))

    async def force_disconnect(self, code: int = 4000, message: bytes = b"fakediscord forced close") -> None:
        """Close the gateway socket from the server side. With a resumable code
        (default 4000) discord.py reconnects and RESUMEs."""
        ws = self._ws
        if ws is not None and not ws.closed:
            self._ws_ready = False
            await ws.close(code=code, message=message)

    async def send_reconnect(self) -> None:
        """op 7 RECONNECT: discord.py closes and RESUMEs."""
        if self._ws is not None:
            await self._send_op(self._ws, 7, None)

    async def invalidate_session(self, resumable: bool = False) -> None:
        """op 9 INVALID_SESSION: with resumable=False discord.py re-IDENTIFYs."""
        if self._ws is not None:
            self._ws_ready = False
            if not resumable:
                self.session_id = None
            await self._send_op(self._ws, 9, resumable)
