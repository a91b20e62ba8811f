"""Fake Discord server (REST ``/api/v10`` + gateway websocket) for e2e tests.

Everything runs in the test's own event loop on 127.0.0.1 (random port).
See the package docstring (``tests/fakediscord/__init__.py``) for how to point
discord.py at it.  Example of the snippet a bot owns (example only)::

    import yarl, discord.http, discord.gateway

    def point_discord_py_at(api_base: str, gateway_url: str | None) -> None:
        discord.http.Route.BASE = api_base.rstrip("/")
        if gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

Driver API (all ``async`` unless noted):

* ``FakeDiscordServer(*, bot_user_id=None, bot_name="genrebot", owner_id=None,
  guild_id=None, channel_id=None, heartbeat_interval_ms=41250,
  gateway_compression=True, echo_message_create=True, token=None)``
* ``start()`` / ``stop()``; properties ``api_base``, ``gateway_url``,
  ``base_url``, ``port``.
* ``wait_ready(timeout)`` - until the bot IDENTIFYed and got READY+GUILD_CREATE.
* ``wait_commands(names, guild_id=None, timeout)`` - until those app commands
  were bulk-upserted (global if guild_id is None, else for that guild).
* ``add_attachment(filename, data, content_type, *, status=200, hang=False,
  delay=0.0, gate=None, description=None)`` (sync) -> attachment dict served over HTTP.
* ``add_role(name, permissions="0", role_id=None)`` (sync) -> role dict.
* ``add_channel(name, channel_id=None, type=0)`` (sync) -> channel dict.
* ``send_slash_command(name, options=None, *, user_id=None, guild_id=None,
  channel_id=None, attachments=None, member_roles=None, permissions=None,
  locale="en-US")`` -> ``InteractionHandle``.
* ``send_message_command(name, message, *, user_id=None, member_roles=None,
  permissions=None)`` -> ``InteractionHandle`` (a message context-menu command).
* ``send_component_interaction(message_id, custom_id, values=None, *,
  user_id=None, component_type=3, member_roles=None, permissions=None)``
  -> ``InteractionHandle``.
* ``add_reaction(message_id, emoji, user_id=None, *, channel_id=None)`` /
  ``remove_reaction(...)`` -> MESSAGE_REACTION_ADD / _REMOVE dispatches.
* ``send_user_message(content, *, user_id=None, channel_id=None,
  attachments=None)`` -> MESSAGE_CREATE from a user.
* ``dispatch(event_name, data)`` - push any raw gateway dispatch (queued while
  the bot is disconnected, delivered after READY/RESUMED).
* ``force_disconnect(code=4000)`` - close the gateway socket (bot RESUMEs),
  ``send_reconnect()`` (op 7), ``invalidate_session(resumable=False)`` (op 9).
* ``wait_for(predicate, timeout=10)`` - re-evaluates ``predicate()`` (no args)
  after every recorded request / gateway frame; returns its truthy result.
* ``wait_for_request(method, path_regex, timeout=10, predicate=None)``.
* Records: ``requests`` (``RecordedRequest`` list), ``unknown_routes``,
  ``gateway_received`` / ``gateway_sent`` (payload dicts), ``messages``
  (id -> message dict), ``commands`` ({None|guild_id: [command dicts]}),
  ``bot_reactions`` (list of dicts channel_id/message_id/emoji/action),
  ``interactions`` (id -> InteractionHandle), counters ``identify_count``,
  ``resume_count``, ``connection_count``, ``heartbeat_count``,
  ``identify_payload``, ``gateway_queries``, ``client_close_codes``.
  ``InteractionHandle.followups``/``original`` are the live (mutable) message
  dicts; ``InteractionHandle.messages``/``edits`` hold snapshots.
* Helpers (sync): ``bot_messages(channel_id=None)``, ``find_messages(pred)``,
  ``bot_reactions_on(message_id)``, ``requests_matching(method, path_regex)``,
  ``attachment_bytes(att_or_id)``, ``user(id)``, ``member(id, roles, permissions)``.

What users see (Discord's rules, modelled so tests catch what the bot gets wrong):

* Visibility: ``visible_to_channel(msg)``, ``visible_to(msg, user_id)``,
  ``channel_view(channel_id=None, user_id=None)`` (current messages as a bystander
  or as that member sees them), ``ever_shown_to_channel(pred)`` (every public state
  any message ever had, ``shown_to_channel``). Ephemeral messages are seen only by
  the member who used the interaction, are absent from channel routes (history,
  GET, reactions: 404) and are never echoed over the gateway.
* The first follow-up after a deferred response ("thinking...") does not create a
  message: it edits the deferred one and keeps *its* visibility, ignoring the
  follow-up's ephemeral flag (Create Followup Message). After the deferred message
  is resolved (edited) or deleted, follow-ups are new messages honouring the flag.
  ``InteractionHandle.followup_resolved_defer`` records that it happened.
* Commands: ``commands`` holds each scope; ``commands_listed_to_member(guild_id)``
  is what a member's picker lists there: global *and* guild commands, so one
  registered in both scopes is listed twice. ``register_commands(cmds, guild_id)``
  seeds a scope (e.g. left over from an earlier deployment). Registering in a guild
  the bot is not in (``bot_guild_ids``) is refused (403, Missing Access).
* Request bodies are checked against Discord's documented limits (``rules.py``:
  content 2000, embed limits, action rows and selects, flags allowed per request,
  empty messages, command names); a breach is answered 400 like Discord and kept in
  ``rejected_requests``. Interaction tokens expire after ``interaction_token_ttl``
  (15 min; ``handle.age(seconds)`` ages one): webhook calls then get 401 (50027).
  ``interaction_ack_deadline`` (None; Discord's is 3 s) refuses late first callbacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Union

from aiohttp import WSMsgType, web

from . import rules

_log = logging.getLogger("fakediscord")

DISCORD_EPOCH = 1420070400000
_last_snowflake = 0


def snowflake() -> int:
    """A fresh, strictly increasing Discord snowflake (timestamp based)."""
    global _last_snowflake
    candidate = ((int(time.time() * 1000) - DISCORD_EPOCH) << 22) | (1 << 17)
    if candidate <= _last_snowflake:
        candidate = _last_snowflake + 1
    _last_snowflake = candidate
    return candidate


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _json_response(data: Any, status: int = 200) -> web.Response:
    # discord.py compares the header with == 'application/json': no charset.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **_ratelimit_headers()},
    )


def _empty_response(status: int = 204) -> web.Response:
    return web.Response(status=status, headers=_ratelimit_headers())


def _ratelimit_headers() -> Dict[str, str]:
    return {
        "X-RateLimit-Limit": "10000",
        "X-RateLimit-Remaining": "9999",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
    }


class UploadedFile(NamedTuple):
    filename: str
    data: bytes
    content_type: str


@dataclass
class RecordedRequest:
    method: str
    path: str  # path without the /api/v10 prefix, e.g. "/users/@me"
    query: Dict[str, str]
    headers: Dict[str, str]
    json: Any = None  # JSON body, or the parsed payload_json of a multipart body
    files: List[UploadedFile] = field(default_factory=list)
    multipart: bool = False
    raw_body: bytes = b""
    status: Optional[int] = None
    route: Optional[str] = None  # handler name, None for unknown routes
    error: Any = None  # the error body when the server refused the request as Discord would (400/401/403)
    time: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:  # compact for assertion messages
        return f"<{self.method} {self.path} status={self.status} files={[f.filename for f in self.files]}>"


_REC: Any = web.RequestKey("fakediscord_rec", RecordedRequest) if hasattr(web, "RequestKey") else "fakediscord_rec"


class InteractionHandle:
    """Collects what the bot did in response to one interaction.

    Attributes: ``id``, ``token``, ``payload`` (the INTERACTION_CREATE data),
    ``callbacks`` (list of ``{"type", "data", "files", "multipart"}``),
    ``followups`` (message dicts), ``edits`` (``{"target", "message", "files"}``),
    ``deleted`` (targets deleted), ``original`` (current @original message or None).
    """

    def __init__(self, server: "FakeDiscordServer", payload: Dict[str, Any]):
        self.server = server
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.callbacks: List[Dict[str, Any]] = []
        self.followups: List[Dict[str, Any]] = []
        self.edits: List[Dict[str, Any]] = []
        self.deleted: List[str] = []
        self.original: Optional[Dict[str, Any]] = None
        self.original_message_id: Optional[int] = None
        #: monotonic time the interaction was created; its token expires ``server.interaction_token_ttl`` later
        self.created_at = time.monotonic()
        #: True when the first follow-up after a deferred response resolved ("edited") the thinking message
        self.followup_resolved_defer = False
        # every message snapshot produced (callback message, followups, edits), in order
        self.messages: List[Dict[str, Any]] = []

    # -- convenience -------------------------------------------------------
    @property
    def callback(self) -> Optional[Dict[str, Any]]:
        return self.callbacks[0] if self.callbacks else None

    @property
    def deferred(self) -> bool:
        return any(c["type"] in (5, 6) for c in self.callbacks)

    @property
    def user_id(self) -> int:
        """The member who used the command or component."""
        return int(((self.payload.get("member") or {}).get("user") or self.payload.get("user"))["id"])

    def age(self, seconds: float) -> None:
        """Pretend the interaction was created ``seconds`` earlier (to reach token expiry)."""
        self.created_at -= seconds

    @property
    def token_expired(self) -> bool:
        return time.monotonic() - self.created_at > self.server.interaction_token_ttl

    async def wait_for(self, predicate: Callable[["InteractionHandle"], Any], timeout: float = 10.0) -> Any:
        return await self.server.wait_for(lambda: predicate(self), timeout=timeout)

    async def wait_callback(self, timeout: float = 10.0) -> Dict[str, Any]:
        """The first POST .../callback (``{"type": 5, ...}`` etc.)."""
        return await self.wait_for(lambda h: h.callback, timeout)

    async def wait_followup(self, count: int = 1, timeout: float = 10.0) -> Dict[str, Any]:
        """The ``count``-th followup message (1-based)."""
        return await self.wait_for(lambda h: h.followups[count - 1] if len(h.followups) >= count else None, timeout)

    async def wait_edit(self, count: int = 1, timeout: float = 10.0) -> Dict[str, Any]:
        """The ``count``-th edit (PATCH of @original or a followup); returns the edited message."""
        return await self.wait_for(
            lambda h: h.edits[count - 1]["message"] if len(h.edits) >= count else None, timeout
        )

    async def wait_message(
        self, predicate: Optional[Callable[[Dict[str, Any]], Any]] = None, timeout: float = 10.0
    ) -> Dict[str, Any]:
        """First message snapshot (type-4/7 callback message, followup, or edit)
        matching ``predicate`` (default: any). Handy for "defer + followup" and
        "defer + edit original" alike."""
        pred = predicate or (lambda m: True)

        def check(h: "InteractionHandle"):
            for m in h.messages:
                if pred(m):
                    return m
            return None

        return await self.wait_for(check, timeout)

    def __repr__(self) -> str:
        return (
            f"<InteractionHandle id={self.id} callbacks={[c['type'] for c in self.callbacks]} "
            f"followups={len(self.followups)} edits={len(self.edits)}>"
        )


class _Attachment:
    def __init__(self, data: Dict[str, Any], content: bytes, status: int = 200, hang: bool = False, delay: float = 0.0,
                 gate: Optional[asyncio.Event] = None):
        self.data = data
        self.content = content
        self.status = status
        self.hang = hang
        self.delay = delay
        self.gate = gate


class FakeDiscordServer:
    API_PREFIX = "/api/v10"

    def __init__(
        self,
        *,
        bot_user_id: Optional[int] = None,
        bot_name: str = "genrebot",
        owner_id: Optional[int] = None,
        guild_id: Optional[int] = None,
        channel_id: Optional[int] = None,
        default_user_id: Optional[int] = None,
        heartbeat_interval_ms: int = 41250,
        gateway_compression: bool = True,
        echo_message_create: bool = True,
        token: Optional[str] = None,
        attachment_size_limit: int = 25 * 1024 * 1024,
    ) -> None:
        self.bot_user_id = bot_user_id or snowflake()
        self.application_id = self.bot_user_id
        self.owner_id = owner_id or snowflake()
        self.guild_id = guild_id or snowflake()
        self.channel_id = channel_id or snowflake()
        self.default_user_id = default_user_id or snowflake()
        self.everyone_role_id = self.guild_id  # @everyone role id == guild id
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.gateway_compression = gateway_compression
        self.echo_message_create = echo_message_create
        self.expected_token = token
        self.attachment_size_limit = attachment_size_limit
        #: Interaction tokens (follow-ups, edits of @original) stop working this long after the interaction.
        self.interaction_token_ttl = 15 * 60.0
        #: Discord's 3 s limit for the first callback; None = not enforced (CI machines stall).
        self.interaction_ack_deadline: Optional[float] = None
        #: "Discord is slow to answer the edit": an edit of an interaction's message (PATCH of @original or
        #: of a follow-up) is applied, and shown to the channel, at once, but answered this many seconds later.
        self.webhook_edit_delay = 0.0
        #: Guilds the bot is a member of (GET /users/@me/guilds; command registration needs membership).
        self.bot_guild_ids = {self.guild_id}

        self.bot_user: Dict[str, Any] = self._user_obj(self.bot_user_id, bot_name, bot=True)
        self.users: Dict[int, Dict[str, Any]] = {
            self.bot_user_id: self.bot_user,
            self.owner_id: self._user_obj(self.owner_id, "owner"),
            self.default_user_id: self._user_obj(self.default_user_id, "tester"),
        }
        self.roles: Dict[int, Dict[str, Any]] = {
            self.everyone_role_id: self._role_obj(self.everyone_role_id, "@everyone", "1071698660929", position=0)
        }
        self.channels: Dict[int, Dict[str, Any]] = {}
        self._ws: Optional[web.WebSocketResponse] = None
        self._ws_ready = False  # READY/RESUMED sent on the current socket
        self.add_channel("general", channel_id=self.channel_id)

        # recorded state
        self.requests: List[RecordedRequest] = []
        self.unknown_routes: List[RecordedRequest] = []
        self.gateway_received: List[Dict[str, Any]] = []
        self.gateway_sent: List[Dict[str, Any]] = []
        self.messages: Dict[int, Dict[str, Any]] = {}
        self.deleted_messages: Dict[int, Dict[str, Any]] = {}
        #: snapshot of every state of every message the whole channel could see (created or edited)
        self.shown_to_channel: List[Dict[str, Any]] = []
        #: requests refused because the body broke one of Discord's rules (see rules.py)
        self.rejected_requests: List[RecordedRequest] = []
        self.commands: Dict[Optional[int], List[Dict[str, Any]]] = {}
        self._command_ids: Dict[tuple, int] = {}
        self.bot_reactions: List[Dict[str, Any]] = []
        self.interactions: Dict[int, InteractionHandle] = {}
        self._interactions_by_token: Dict[str, InteractionHandle] = {}
        self._attachments: Dict[int, _Attachment] = {}
        self.identify_count = 0
        self.resume_count = 0
        self.connection_count = 0
        self.heartbeat_count = 0
        self.client_close_codes: List[Optional[int]] = []
        self.gateway_queries: List[Dict[str, str]] = []  # query string of each gateway connect

        # gateway state
        self._compressor: Optional["zlib._Compress"] = None
        self._send_lock = asyncio.Lock()
        self._seq = 0
        self.session_id: Optional[str] = None
        self._history: List[Dict[str, Any]] = []  # dispatches sent in this session
        self._pending: List[tuple] = []  # (t, d) queued while no ready socket
        self._ws_tasks: set = set()

        self._changed: Optional[asyncio.Condition] = None
        self._ready_event: Optional[asyncio.Event] = None
        self._stopping: Optional[asyncio.Event] = None
        self._runner: Optional[web.AppRunner] = None
        self._site: Optional[web.TCPSite] = None
        self.port: Optional[int] = None

    # ------------------------------------------------------------------ objects
    @staticmethod
    def _user_obj(user_id: int, name: str, bot: bool = False) -> Dict[str, Any]:
        d = {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }
        if bot:
            d.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return d

    @staticmethod
    def _role_obj(role_id: int, name: str, permissions: str = "0", position: int = 1) -> Dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def user(self, user_id: int) -> Dict[str, Any]:
        """User object for ``user_id`` (created on demand as ``user<id>``)."""
        user_id = int(user_id)
        if user_id not in self.users:
            self.users[user_id] = self._user_obj(user_id, f"user{user_id}")
        return self.users[user_id]

    def member(self, user_id: int, roles: Optional[Sequence[int]] = None, permissions: Optional[str] = None) -> Dict[str, Any]:
        d = {
            "user": self.user(user_id),
            "nick": None,
            "avatar": None,
            "roles": [str(r) for r in (roles or [])],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            d["permissions"] = str(permissions)
        return d

    def add_role(self, name: str, permissions: Union[str, int] = "0", role_id: Optional[int] = None) -> Dict[str, Any]:
        role_id = role_id or snowflake()
        role = self._role_obj(role_id, name, str(permissions), position=len(self.roles))
        self.roles[role_id] = role
        if self._ws_ready:
            self._spawn(self.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": role}))
        return role

    def add_channel(self, name: str, channel_id: Optional[int] = None, type: int = 0) -> Dict[str, Any]:
        channel_id = channel_id or snowflake()
        ch = {
            "id": str(channel_id),
            "type": type,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        self.channels[channel_id] = ch
        if self._ws_ready:
            self._spawn(self.dispatch("CHANNEL_CREATE", ch))
        return ch

    def guild_obj(self) -> Dict[str, Any]:
        members = [self.member(self.bot_user_id), self.member(self.owner_id), self.member(self.default_user_id)]
        return {
            "id": str(self.guild_id),
            "name": "Test Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "application_id": None,
            "widget_enabled": False,
            "widget_channel_id": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "member_count": len(members),
            "voice_states": [],
            "members": members,
            "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _channel_obj(self, channel_id: int) -> Dict[str, Any]:
        ch = self.channels.get(int(channel_id))
        if ch is None:
            ch = self.add_channel(f"channel-{channel_id}", channel_id=int(channel_id))
        return ch

    # ------------------------------------------------------------ lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}{self.API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        self._ready_event = asyncio.Event()
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._record_middleware], client_max_size=512 * 1024 * 1024)
        p = self.API_PREFIX
        r = app.router
        r.add_get(f"{p}/users/@me", self._h_users_me)
        r.add_get(f"{p}/users/@me/guilds", self._h_my_guilds)
        r.add_get(f"{p}/users/{{user_id:\\d+}}", self._h_get_user)
        r.add_get(f"{p}/oauth2/applications/@me", self._h_app_info)
        r.add_get(f"{p}/applications/@me", self._h_app_info)
        r.add_get(f"{p}/gateway", self._h_gateway)
        r.add_get(f"{p}/gateway/bot", self._h_gateway_bot)
        r.add_put(f"{p}/applications/{{app_id}}/commands", self._h_put_commands)
        r.add_get(f"{p}/applications/{{app_id}}/commands", self._h_get_commands)
        r.add_put(f"{p}/applications/{{app_id}}/guilds/{{guild_id}}/commands", self._h_put_commands)
        r.add_get(f"{p}/applications/{{app_id}}/guilds/{{guild_id}}/commands", self._h_get_commands)
        r.add_post(f"{p}/interactions/{{interaction_id}}/{{token}}/callback", self._h_callback)
        r.add_post(f"{p}/webhooks/{{app_id}}/{{token}}", self._h_followup)
        r.add_get(f"{p}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}", self._h_get_webhook_message)
        r.add_patch(f"{p}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}", self._h_edit_webhook_message)
        r.add_delete(f"{p}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}", self._h_delete_webhook_message)
        r.add_put(f"{p}/channels/{{channel_id}}/messages/{{message_id}}/reactions/{{emoji}}/@me", self._h_add_own_reaction)
        r.add_delete(f"{p}/channels/{{channel_id}}/messages/{{message_id}}/reactions/{{emoji}}/@me", self._h_remove_own_reaction)
        r.add_delete(f"{p}/channels/{{channel_id}}/messages/{{message_id}}/reactions/{{emoji}}/{{user_id:\\d+}}", self._h_remove_user_reaction)
        r.add_delete(f"{p}/channels/{{channel_id}}/messages/{{message_id}}/reactions", self._h_clear_reactions)
        r.add_post(f"{p}/channels/{{channel_id}}/messages", self._h_send_message)
        r.add_get(f"{p}/channels/{{channel_id}}/messages", self._h_history)
        r.add_get(f"{p}/channels/{{channel_id}}", self._h_get_channel)
        r.add_get(f"{p}/channels/{{channel_id}}/messages/{{message_id}}", self._h_get_message)
        r.add_patch(f"{p}/channels/{{channel_id}}/messages/{{message_id}}", self._h_edit_message)
        r.add_delete(f"{p}/channels/{{channel_id}}/messages/{{message_id}}", self._h_delete_message)
        r.add_post(f"{p}/channels/{{channel_id}}/typing", self._h_typing)
        r.add_get(f"{p}/guilds/{{guild_id}}", self._h_get_guild)
        r.add_get(f"{p}/guilds/{{guild_id}}/members/{{user_id}}", self._h_get_member)
        r.add_get(f"{p}/guilds/{{guild_id}}/channels", self._h_get_guild_channels)
        r.add_get("/gateway", self._h_ws)
        r.add_get("/attachments/{attachment_id}/{filename}", self._h_attachment)
        r.add_route("*", "/{tail:.*}", self._h_unknown)

        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        sock = self._site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        _log.info("fake discord listening on %s", self.base_url)

    async def stop(self) -> None:
        """Close the gateway socket and the HTTP server. Close the bot first
        (``await bot.close()``), or it will keep trying to reconnect."""
        if self._stopping is not None:
            self._stopping.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                await ws.close(code=1001, message=b"server stopping")
            except Exception:
                pass
        for t in list(self._ws_tasks):
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeDiscordServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._ws_tasks.add(task)
        task.add_done_callback(self._ws_tasks.discard)

    # ------------------------------------------------------------ waiting
    async def _notify(self) -> None:
        if self._changed is None:
            return
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` (no arguments) returns something truthy;
        it is re-checked after every request and gateway frame."""
        assert self._changed is not None, "server not started"

        async def _wait():
            async with self._changed:
                while True:
                    result = predicate()
                    if result:
                        return result
                    # also poll: predicates may look at bot-side state too
                    try:
                        await asyncio.wait_for(self._changed.wait(), 0.05)
                    except asyncio.TimeoutError:
                        pass

        try:
            return await asyncio.wait_for(_wait(), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(
                f"fakediscord.wait_for timed out after {timeout}s; last requests: {self.requests[-8:]!r}; "
                f"unknown routes: {self.unknown_routes!r}"
            ) from None

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

    async def wait_commands(self, names: Sequence[str], guild_id: Optional[int] = None, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """Wait until app commands ``names`` were registered (global or guild scope)."""
        key = int(guild_id) if guild_id is not None else None

        def check():
            cmds = {c["name"]: c for c in self.commands.get(key, [])}
            if all(n in cmds for n in names):
                return [cmds[n] for n in names]
            return None

        return await self.wait_for(check, timeout)

    async def wait_for_request(
        self, method: str, path_regex: str, timeout: float = 10.0, predicate: Optional[Callable[[RecordedRequest], bool]] = None
    ) -> RecordedRequest:
        def check():
            for req in self.requests_matching(method, path_regex):
                if req.status is not None and (predicate is None or predicate(req)):
                    return req
            return None

        return await self.wait_for(check, timeout)

    # ------------------------------------------------------------ record queries
    def requests_matching(self, method: Optional[str], path_regex: str) -> List[RecordedRequest]:
        rx = re.compile(path_regex)
        return [r for r in self.requests if (method is None or r.method == method.upper()) and rx.search(r.path)]

    def bot_messages(self, channel_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """Messages authored by the bot (channel sends, interaction responses, followups), oldest first."""
        out = [m for m in self.messages.values() if int(m["author"]["id"]) == self.bot_user_id]
        if channel_id is not None:
            out = [m for m in out if int(m["channel_id"]) == int(channel_id)]
        return sorted(out, key=lambda m: int(m["id"]))

    def find_messages(self, predicate: Callable[[Dict[str, Any]], Any]) -> List[Dict[str, Any]]:
        return [m for m in sorted(self.messages.values(), key=lambda m: int(m["id"])) if predicate(m)]

    def bot_reactions_on(self, message_id: int) -> List[str]:
        """Emojis currently added by the bot on ``message_id`` (add minus remove)."""
        current: List[str] = []
        for r in self.bot_reactions:
            if int(r["message_id"]) != int(message_id):
                continue
            if r["action"] == "add" and r["emoji"] not in current:
                current.append(r["emoji"])
            elif r["action"] == "remove" and r["emoji"] in current:
                current.remove(r["emoji"])
        return current

    # ------------------------------------------------------------ what people see
    def _message_state(self, message: Union[Dict[str, Any], int]) -> Optional[Dict[str, Any]]:
        """The current state of a message (by dict or id), None once deleted."""
        mid = int(message["id"]) if isinstance(message, dict) else int(message)
        return self.messages.get(mid)

    def visible_to(self, message: Union[Dict[str, Any], int], user_id: int) -> bool:
        """Whether member ``user_id`` sees ``message`` now: it exists and is public or their own ephemeral."""
        msg = self._message_state(message)
        if msg is None:
            return False
        if not int(msg.get("flags", 0)) & rules.EPHEMERAL:
            return True
        owner = (msg.get("interaction_metadata") or {}).get("user") or {}
        return str(owner.get("id")) == str(user_id)

    def visible_to_channel(self, message: Union[Dict[str, Any], int]) -> bool:
        """Whether everyone in the channel sees ``message`` now (it exists and is not ephemeral)."""
        msg = self._message_state(message)
        return msg is not None and not int(msg.get("flags", 0)) & rules.EPHEMERAL

    def channel_view(self, channel_id: Optional[int] = None, user_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """The messages in a channel as a bystander (``user_id=None``) or that member sees them, oldest first."""
        channel_id = int(channel_id or self.channel_id)
        msgs = [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]
        seen = [m for m in msgs if (self.visible_to(m, user_id) if user_id is not None else self.visible_to_channel(m))]
        return sorted(seen, key=lambda m: int(m["id"]))

    def ever_shown_to_channel(self, predicate: Callable[[Dict[str, Any]], Any]) -> List[Dict[str, Any]]:
        """Every public state (snapshot) of any message that matched ``predicate``, even if since edited or deleted."""
        return [m for m in self.shown_to_channel if predicate(m)]

    def _record_shown(self, msg: Dict[str, Any]) -> None:
        if not int(msg.get("flags", 0)) & rules.EPHEMERAL:
            self.shown_to_channel.append(json.loads(json.dumps(msg)))

    def commands_listed_to_member(self, guild_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """What a member's command picker lists in a guild: the global commands *and* that guild's,
        so a command registered in both scopes is listed twice (as in Discord)."""
        gid = int(guild_id or self.guild_id)
        return [dict(c) for c in self.commands.get(None, [])] + [dict(c) for c in self.commands.get(gid, [])]

    def register_commands(self, commands: Sequence[Dict[str, Any]], guild_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """Store ``commands`` in a scope as a bulk overwrite would (e.g. left over from an earlier deployment)."""
        return self._store_commands(int(guild_id) if guild_id is not None else None, commands)

    # ------------------------------------------------------------ attachments
    def add_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: Optional[str] = None,
        *,
        status: int = 200,
        hang: bool = False,
        delay: float = 0.0,
        description: Optional[str] = None,
        size: Optional[int] = None,
        gate: Optional[asyncio.Event] = None,
    ) -> Dict[str, Any]:
        """Register a file served at ``{base_url}/attachments/{id}/{filename}`` and
        return a Discord attachment object for it. ``status`` != 200 makes the
        download fail with that status; ``hang=True`` never answers (until stop);
        ``delay`` sleeps before answering; ``gate`` holds the answer until the test
        sets that event; ``size`` overrides the advertised size."""
        att_id = snowflake()
        obj = self._attachment_obj(att_id, filename, data, content_type, description=description)
        if size is not None:
            obj["size"] = size
        self._attachments[att_id] = _Attachment(obj, data, status=status, hang=hang, delay=delay, gate=gate)
        return dict(obj)

    def _attachment_obj(
        self, att_id: int, filename: str, data: bytes, content_type: Optional[str], description: Optional[str] = None
    ) -> Dict[str, Any]:
        ct = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        url = f"{self.base_url}/attachments/{att_id}/{filename}"
        obj = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": ct,
        }
        if description is not None:
            obj["description"] = description
        return obj

    def attachment_bytes(self, attachment: Union[Dict[str, Any], int]) -> bytes:
        att_id = int(attachment["id"]) if isinstance(attachment, dict) else int(attachment)
        return self._attachments[att_id].content

    # ------------------------------------------------------------ middleware
    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path == "/gateway" or request.path.startswith("/attachments/"):
            return await handler(request)
        path = request.path
        if path.startswith(self.API_PREFIX):
            path = path[len(self.API_PREFIX):]
        rec = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            rec.multipart = True
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                body = await part.read(decode=False)  # type: ignore[union-attr]
                name = part.name  # type: ignore[union-attr]
                if name == "payload_json":
                    rec.json = json.loads(body.decode())
                elif part.filename:  # type: ignore[union-attr]
                    rec.files.append(
                        UploadedFile(
                            part.filename,  # type: ignore[union-attr]
                            bytes(body),
                            part.headers.get("Content-Type", "application/octet-stream"),  # type: ignore[union-attr]
                        )
                    )
        else:
            rec.raw_body = await request.read()
            if rec.raw_body:
                try:
                    rec.json = json.loads(rec.raw_body)
                except ValueError:
                    rec.json = None
        request[_REC] = rec
        self.requests.append(rec)
        if self.expected_token is not None and request.headers.get("Authorization") not in (
            None,
            f"Bot {self.expected_token}",
        ):
            rec.status = 401
            await self._notify()
            return _json_response({"message": "401: Unauthorized", "code": 0}, 401)
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            rec.status = exc.status
            await self._notify()
            raise
        except Exception:
            _log.exception("fakediscord handler crashed for %s %s", request.method, request.path)
            rec.status = 500
            await self._notify()
            # 400, not 500: discord.py retries 500s with sleeps, which hides bugs
            return _json_response({"message": "fakediscord internal error", "code": 0}, 400)
        rec.status = resp.status
        await self._notify()
        return resp

    # ------------------------------------------------------------ REST handlers
    async def _h_unknown(self, request: web.Request) -> web.Response:
        rec: Optional[RecordedRequest] = request.get(_REC)
        if rec is not None:
            self.unknown_routes.append(rec)
        _log.warning("fakediscord: unknown route %s %s", request.method, request.path)
        return _json_response({"message": "Unknown", "code": 0}, 404)

    async def _h_users_me(self, request: web.Request) -> web.Response:
        return _json_response(self.bot_user)

    async def _h_get_user(self, request: web.Request) -> web.Response:
        return _json_response(self.user(int(request.match_info["user_id"])))

    async def _h_app_info(self, request: web.Request) -> web.Response:
        return _json_response(
            {
                "id": str(self.application_id),
                "name": self.bot_user["username"],
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "hook": True,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 1 << 19,  # GATEWAY_MESSAGE_CONTENT_LIMITED
                "owner": self.users[self.owner_id],
                "team": None,
                "bot": self.bot_user,
                "rpc_origins": [],
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

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

    def _command_scope(self, request: web.Request) -> Optional[int]:
        g = request.match_info.get("guild_id")
        return int(g) if g is not None else None

    def _refuse(self, request: web.Request, body: Dict[str, Any], status: int = 400) -> web.Response:
        """Answer as Discord does when it refuses a request, and remember it."""
        rec: RecordedRequest = request[_REC]
        rec.error = body
        if status == 400:
            self.rejected_requests.append(rec)
        _log.warning("fakediscord refused %s %s: %s", request.method, request.path, body)
        return _json_response(body, status)

    def _refuse_message(self, request: web.Request, body: Dict[str, Any], *, allowed_flags: int,
                        new: bool = True) -> Optional[web.Response]:
        """A 400 response when a message body breaks Discord's rules, else None."""
        problems = rules.message_problems(body, allowed_flags=allowed_flags, files=len(request[_REC].files), new=new)
        return self._refuse(request, rules.error_body(problems)) if problems else None

    async def _h_my_guilds(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0") or 0)
        ids = sorted(g for g in self.bot_guild_ids if g > after)[: int(request.query.get("limit", "200"))]
        return _json_response([{"id": str(g), "name": "Test Guild" if g == self.guild_id else f"guild-{g}",
                                "icon": None, "owner": False, "permissions": "0", "features": []} for g in ids])

    async def _h_put_commands(self, request: web.Request) -> web.Response:
        rec: RecordedRequest = request[_REC]
        scope = self._command_scope(request)
        if scope is not None and scope not in self.bot_guild_ids:
            return self._refuse(request, {"message": "Missing Access", "code": 50001}, 403)
        problems = rules.command_problems(rec.json or [])
        if problems:
            return self._refuse(request, rules.error_body(problems))
        return _json_response(self._store_commands(scope, rec.json or []))

    def _store_commands(self, scope: Optional[int], commands: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        out = []
        for cmd in commands:
            ctype = cmd.get("type", 1)
            key = (scope, cmd["name"], ctype)
            if key not in self._command_ids:
                self._command_ids[key] = snowflake()
            full = {
                "id": str(self._command_ids[key]),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
                "type": ctype,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                **cmd,
            }
            if scope is not None:
                full["guild_id"] = str(scope)
            out.append(full)
        self.commands[scope] = out
        return out

    async def _h_get_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        if scope is not None and scope not in self.bot_guild_ids:
            return self._refuse(request, {"message": "Missing Access", "code": 50001}, 403)
        return _json_response(self.commands.get(scope, []))

    # -- message building ---------------------------------------------------
    def _build_attachments(
        self, payload: Dict[str, Any], files: List[UploadedFile], existing: Optional[List[Dict[str, Any]]] = None
    ) -> Optional[List[Dict[str, Any]]]:
        """New attachment list, or None when the payload does not touch attachments."""
        existing_by_id = {str(a["id"]): a for a in (existing or [])}
        if "attachments" not in payload:
            if not files:
                return None
            refs = [{"id": i, "filename": f.filename} for i, f in enumerate(files)]
            keep: List[Dict[str, Any]] = list(existing or [])
        else:
            refs = payload.get("attachments") or []
            keep = []
        result = list(keep)
        for ref in refs:
            rid = str(ref.get("id"))
            if rid in existing_by_id and (not rid.isdigit() or int(rid) >= len(files) or len(rid) > 6):
                result.append(existing_by_id[rid])
                continue
            try:
                f = files[int(rid)]
            except (ValueError, IndexError):
                # reference to an attachment we do not know: keep it verbatim
                if rid in existing_by_id:
                    result.append(existing_by_id[rid])
                continue
            att_id = snowflake()
            obj = self._attachment_obj(att_id, ref.get("filename") or f.filename, f.data, None, ref.get("description"))
            self._attachments[att_id] = _Attachment(obj, f.data)
            result.append(obj)
        return result

    def _new_message(
        self,
        channel_id: int,
        payload: Dict[str, Any],
        files: List[UploadedFile],
        *,
        interaction: Optional[InteractionHandle] = None,
        msg_type: int = 0,
        flags: Optional[int] = None,
    ) -> Dict[str, Any]:
        mid = snowflake()
        ch = self.channels.get(int(channel_id))
        msg: Dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self.bot_user,
            "content": payload.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._build_attachments(payload, files) or [],
            "embeds": payload.get("embeds") or [],
            "reactions": [],
            "pinned": False,
            "type": msg_type,
            "flags": payload.get("flags", 0) if flags is None else flags,
            "components": payload.get("components") or [],
        }
        if payload.get("nonce") is not None:
            msg["nonce"] = payload["nonce"]
        if payload.get("message_reference"):
            msg["message_reference"] = payload["message_reference"]
        if payload.get("poll"):
            msg["poll"] = payload["poll"]
        if ch is not None:
            msg["guild_id"] = str(self.guild_id)
        if interaction is not None:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
            ip = interaction.payload
            iuser = (ip.get("member") or {}).get("user") or ip.get("user") or {}
            msg["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": ip["type"],
                "user": iuser,
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
            if ip["type"] == 2:
                msg["interaction_metadata"]["name"] = ip["data"]["name"]
                msg["interaction_metadata"]["command_type"] = ip["data"].get("type", 1)
        self.messages[mid] = msg
        if ch is not None:
            ch["last_message_id"] = str(mid)
        self._record_shown(msg)
        return msg

    def _edit_message(self, msg: Dict[str, Any], payload: Dict[str, Any], files: List[UploadedFile]) -> Dict[str, Any]:
        if "content" in payload:
            msg["content"] = payload["content"] or ""
        if "embeds" in payload:
            msg["embeds"] = payload["embeds"] or []
        if "components" in payload:
            msg["components"] = payload["components"] or []
        if "flags" in payload and payload["flags"] is not None:  # ephemeral is fixed when a message is created
            fixed = rules.FLAGS_FIXED_AT_CREATION
            msg["flags"] = (msg.get("flags", 0) & fixed) | (int(payload["flags"]) & ~fixed)
        atts = self._build_attachments(payload, files, msg.get("attachments"))
        if atts is not None:
            msg["attachments"] = atts
        msg["flags"] = msg.get("flags", 0) & ~rules.LOADING  # no longer "thinking"
        msg["edited_timestamp"] = _now_iso()
        self._record_shown(msg)
        return msg

    def _echo(self, event: str, msg: Dict[str, Any]) -> None:
        if not self.echo_message_create or int(msg.get("flags", 0)) & 64:
            return
        data = dict(msg)
        if "guild_id" in data:
            data["member"] = {k: v for k, v in self.member(self.bot_user_id).items() if k != "user"}
        self._spawn(self.dispatch(event, data))

    # -- interactions ---------------------------------------------------------
    async def _h_callback(self, request: web.Request) -> web.Response:
        rec: RecordedRequest = request[_REC]
        handle = self.interactions.get(int(request.match_info["interaction_id"]))
        if handle is None or handle.token != request.match_info["token"]:
            return _json_response({"message": "Unknown interaction", "code": 10062}, 404)
        waited = time.monotonic() - handle.created_at
        deadline = self.interaction_ack_deadline
        if waited > self.interaction_token_ttl or (deadline is not None and not handle.callbacks and waited > deadline):
            return self._refuse(request, {"message": "Unknown interaction", "code": 10062}, 404)
        if handle.callbacks:
            return _json_response({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
        body = rec.json or {}
        ctype = body.get("type")
        data = body.get("data") or {}
        refused = self._refuse_callback(request, handle, ctype, data)
        if refused is not None:
            return refused
        handle.callbacks.append({"type": ctype, "data": data, "files": list(rec.files), "multipart": rec.multipart})
        channel_id = int(handle.payload.get("channel_id") or self.channel_id)
        resp_msg = None
        if ctype == 4:  # CHANNEL_MESSAGE_WITH_SOURCE
            resp_msg = self._new_message(channel_id, data, rec.files, interaction=handle, msg_type=20 if handle.payload["type"] == 2 else 19)
            handle.original = resp_msg
            handle.original_message_id = int(resp_msg["id"])
            handle.messages.append(json.loads(json.dumps(resp_msg)))
            self._echo("MESSAGE_CREATE", resp_msg)
        elif ctype == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE ("thinking")
            flags = rules.LOADING | (int(data.get("flags", 0)) & rules.EPHEMERAL)
            resp_msg = self._new_message(channel_id, {}, [], interaction=handle, msg_type=20 if handle.payload["type"] == 2 else 19, flags=flags)
            handle.original = resp_msg
            handle.original_message_id = int(resp_msg["id"])
        elif ctype in (6, 7):  # DEFERRED_UPDATE_MESSAGE / UPDATE_MESSAGE
            target = handle.payload.get("message")
            if target is not None:
                stored = self.messages.get(int(target["id"]))
                if stored is not None:
                    handle.original = stored
                    handle.original_message_id = int(stored["id"])
                    if ctype == 7:
                        self._edit_message(stored, data, rec.files)
                        resp_msg = stored
                        handle.messages.append(json.loads(json.dumps(stored)))
                        self._echo("MESSAGE_UPDATE", stored)
        await self._notify()
        result: Dict[str, Any] = {
            "interaction": {
                "id": str(handle.id),
                "type": handle.payload["type"],
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": bool(int(data.get("flags", 0) or 0) & 64),
            }
        }
        if resp_msg is not None:
            result["interaction"]["response_message_id"] = resp_msg["id"]
            result["resource"] = {"type": ctype, "message": resp_msg}
        elif ctype is not None:
            result["resource"] = {"type": ctype}
        if "with_response" in rec.query and rec.query["with_response"] not in ("0", "false"):
            return _json_response(result)
        return _empty_response(204)

    def _refuse_callback(self, request: web.Request, handle: InteractionHandle, ctype: Any,
                         data: Dict[str, Any]) -> Optional[web.Response]:
        """Discord's rules for an interaction response body, or None when it is valid."""
        if ctype in (6, 7) and handle.payload["type"] not in (3, 5):
            return self._refuse(request, rules.error_body({"type": "This response type is only valid for components"}))
        if ctype == 4:
            return self._refuse_message(request, data, allowed_flags=rules.FLAGS_INTERACTION_MESSAGE)
        if ctype == 5 and int(data.get("flags") or 0) & ~rules.FLAGS_DEFER:
            return self._refuse(request, rules.error_body({"data.flags": "Only EPHEMERAL may be set on a deferred response"}))
        if ctype == 7:
            return self._refuse_message(request, data, allowed_flags=rules.FLAGS_INTERACTION_MESSAGE, new=False)
        return None

    def _handle_for_token(self, request: web.Request) -> Optional[InteractionHandle]:
        return self._interactions_by_token.get(request.match_info["token"])

    def _refuse_webhook(self, request: web.Request, handle: Optional[InteractionHandle]) -> Optional[web.Response]:
        """Unknown or expired interaction token (tokens last 15 minutes)."""
        if handle is None:
            return _json_response({"message": "Unknown Webhook", "code": 10015}, 404)
        if handle.token_expired:
            return self._refuse(request, {"message": "Invalid Webhook Token", "code": 50027}, 401)
        return None

    def _awaiting_first_followup(self, handle: InteractionHandle) -> bool:
        """A deferred ("thinking") response not yet resolved: the next follow-up edits it instead."""
        original = handle.original
        return (handle.callback is not None and handle.callback["type"] == 5 and original is not None
                and int(original["id"]) in self.messages and bool(int(original.get("flags", 0)) & rules.LOADING))

    async def _h_followup(self, request: web.Request) -> web.Response:
        rec: RecordedRequest = request[_REC]
        handle = self._handle_for_token(request)
        refused = self._refuse_webhook(request, handle) or self._refuse_message(
            request, rec.json or {}, allowed_flags=rules.FLAGS_FOLLOWUP)
        if refused is not None:
            return refused
        assert handle is not None
        body = rec.json or {}
        if self._awaiting_first_followup(handle):
            # Create Followup Message: "When using this endpoint directly after responding to an interaction
            # with DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, this endpoint will function as Edit Original
            # Interaction Response [...] The ephemeral flag will be ignored, and the value you provided in
            # the initial defer response will be preserved."
            handle.followup_resolved_defer = True
            msg = self._apply_webhook_edit(handle, "@original", handle.original, body, rec.files)
            handle.followups.append(msg)
            await self._notify()
            return _json_response(msg)
        channel_id = int(handle.payload.get("channel_id") or self.channel_id)
        msg = self._new_message(channel_id, body, rec.files, interaction=handle, msg_type=20 if handle.payload["type"] == 2 else 19)
        handle.followups.append(msg)
        handle.messages.append(json.loads(json.dumps(msg)))
        self._echo("MESSAGE_CREATE", msg)
        await self._notify()
        return _json_response(msg)

    def _webhook_target(self, handle: InteractionHandle, message_id: str) -> Optional[Dict[str, Any]]:
        if message_id == "@original":
            return handle.original
        return self.messages.get(int(message_id)) if message_id.isdigit() else None

    async def _h_get_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._handle_for_token(request)
        refused = self._refuse_webhook(request, handle)
        if refused is not None:
            return refused
        msg = self._webhook_target(handle, request.match_info["message_id"]) if handle else None
        if msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        return _json_response(msg)

    def _apply_webhook_edit(self, handle: InteractionHandle, target: str, msg: Dict[str, Any],
                            body: Dict[str, Any], files: List[UploadedFile]) -> Dict[str, Any]:
        was_loading = bool(int(msg.get("flags", 0)) & rules.LOADING)
        self._edit_message(msg, body, files)
        snapshot = json.loads(json.dumps(msg))
        handle.edits.append({"target": target, "message": snapshot, "files": list(files)})
        handle.messages.append(snapshot)
        self._echo("MESSAGE_CREATE" if was_loading else "MESSAGE_UPDATE", msg)
        return msg

    async def _h_edit_webhook_message(self, request: web.Request) -> web.Response:
        rec: RecordedRequest = request[_REC]
        handle = self._handle_for_token(request)
        target = request.match_info["message_id"]
        refused = self._refuse_webhook(request, handle)
        if refused is not None:
            return refused
        msg = self._webhook_target(handle, target) if handle else None
        if handle is None or msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        refused = self._refuse_message(request, rec.json or {}, allowed_flags=~0, new=False)
        if refused is not None:
            return refused
        self._apply_webhook_edit(handle, target, msg, rec.json or {}, rec.files)
        await self._notify()
        answer = json.loads(json.dumps(msg))
        if self.webhook_edit_delay:
            await asyncio.sleep(self.webhook_edit_delay)
        return _json_response(answer)

    async def _h_delete_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._handle_for_token(request)
        target = request.match_info["message_id"]
        refused = self._refuse_webhook(request, handle)
        if refused is not None:
            return refused
        msg = self._webhook_target(handle, target) if handle else None
        if handle is None or msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        self._forget_message(msg)
        handle.deleted.append(target)
        if target == "@original":
            handle.original = None
        await self._notify()
        return _empty_response()

    def _forget_message(self, msg: Dict[str, Any]) -> None:
        """Delete a message: gone for everyone; MESSAGE_DELETE for a public one."""
        mid = int(msg["id"])
        self.deleted_messages[mid] = self.messages.pop(mid, msg)
        if not int(msg.get("flags", 0)) & rules.EPHEMERAL:
            self._spawn(self.dispatch(
                "MESSAGE_DELETE", {"id": str(mid), "channel_id": msg["channel_id"], "guild_id": str(self.guild_id)}))

    # -- channels / messages ------------------------------------------------------
    async def _h_send_message(self, request: web.Request) -> web.Response:
        rec: RecordedRequest = request[_REC]
        channel_id = int(request.match_info["channel_id"])
        if channel_id not in self.channels:
            return _json_response({"message": "Unknown Channel", "code": 10003}, 404)
        refused = self._refuse_message(request, rec.json or {}, allowed_flags=rules.FLAGS_CHANNEL_MESSAGE)
        if refused is not None:
            return refused
        msg = self._new_message(channel_id, rec.json or {}, rec.files)
        self._echo("MESSAGE_CREATE", msg)
        return _json_response(msg)

    async def _h_history(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        limit = int(request.query.get("limit", "50"))
        msgs = self.channel_view(channel_id)  # ephemeral messages are not in a channel's history
        msgs.sort(key=lambda m: int(m["id"]), reverse=True)
        return _json_response(msgs[:limit])

    async def _h_get_channel(self, request: web.Request) -> web.Response:
        ch = self.channels.get(int(request.match_info["channel_id"]))
        if ch is None:
            return _json_response({"message": "Unknown Channel", "code": 10003}, 404)
        return _json_response(ch)

    def _channel_message(self, request: web.Request) -> Optional[Dict[str, Any]]:
        """The message a /channels/... route names; ephemeral messages exist only for their interaction's token."""
        msg = self.messages.get(int(request.match_info["message_id"]))
        if msg is None or msg["channel_id"] != request.match_info["channel_id"] or not self.visible_to_channel(msg):
            return None
        return msg

    async def _h_get_message(self, request: web.Request) -> web.Response:
        msg = self._channel_message(request)
        if msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        return _json_response(msg)

    async def _h_edit_message(self, request: web.Request) -> web.Response:
        """Edit Message: the author edits its own message at any time, an interaction's (non-ephemeral)
        response included, long after the interaction's token expired; an ephemeral one is unknown here
        (discord-api-docs#3090); another user's message can have only its flags changed (50005)."""
        rec: RecordedRequest = request[_REC]
        msg = self._channel_message(request)
        if msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        if int(msg["author"]["id"]) != self.bot_user_id and set(rec.json or {}) - {"flags"}:
            return self._refuse(request, {"message": "Cannot edit a message authored by another user",
                                          "code": 50005}, 403)
        refused = self._refuse_message(request, rec.json or {}, allowed_flags=~0, new=False)
        if refused is not None:
            return refused
        self._edit_message(msg, rec.json or {}, rec.files)
        self._echo("MESSAGE_UPDATE", msg)
        return _json_response(msg)

    async def _h_delete_message(self, request: web.Request) -> web.Response:
        msg = self._channel_message(request)
        if msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        self._forget_message(msg)
        return _empty_response()

    async def _h_typing(self, request: web.Request) -> web.Response:
        return _empty_response()

    async def _h_get_guild(self, request: web.Request) -> web.Response:
        if int(request.match_info["guild_id"]) != self.guild_id:
            return _json_response({"message": "Unknown Guild", "code": 10004}, 404)
        g = self.guild_obj()
        for k in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large", "member_count"):
            g.pop(k, None)
        return _json_response(g)

    async def _h_get_member(self, request: web.Request) -> web.Response:
        return _json_response(self.member(int(request.match_info["user_id"])))

    async def _h_get_guild_channels(self, request: web.Request) -> web.Response:
        return _json_response(list(self.channels.values()))

    # -- reactions -----------------------------------------------------------
    async def _h_add_own_reaction(self, request: web.Request) -> web.Response:
        mi = request.match_info
        mid = int(mi["message_id"])
        if self._channel_message(request) is None:  # no reactions on ephemeral messages
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        emoji = mi["emoji"]
        self.bot_reactions.append({"channel_id": int(mi["channel_id"]), "message_id": mid, "emoji": emoji, "action": "add"})
        self._bump_reaction(self.messages[mid], emoji, +1, me=True)
        self._spawn(self.dispatch("MESSAGE_REACTION_ADD", self._reaction_payload(mid, emoji, self.bot_user_id, add=True)))
        await self._notify()
        return _empty_response()

    async def _h_remove_own_reaction(self, request: web.Request) -> web.Response:
        mi = request.match_info
        mid = int(mi["message_id"])
        emoji = mi["emoji"]
        self.bot_reactions.append({"channel_id": int(mi["channel_id"]), "message_id": mid, "emoji": emoji, "action": "remove"})
        if mid in self.messages:
            self._bump_reaction(self.messages[mid], emoji, -1, me=True)
        self._spawn(self.dispatch("MESSAGE_REACTION_REMOVE", self._reaction_payload(mid, emoji, self.bot_user_id, add=False)))
        await self._notify()
        return _empty_response()

    async def _h_remove_user_reaction(self, request: web.Request) -> web.Response:
        mi = request.match_info
        mid = int(mi["message_id"])
        if mid in self.messages:
            self._bump_reaction(self.messages[mid], mi["emoji"], -1, me=False)
        await self._notify()
        return _empty_response()

    async def _h_clear_reactions(self, request: web.Request) -> web.Response:
        mid = int(request.match_info["message_id"])
        if mid in self.messages:
            self.messages[mid]["reactions"] = []
        return _empty_response()

    @staticmethod
    def _emoji_obj(emoji: str) -> Dict[str, Any]:
        # "name:id" (custom, as discord.py encodes it in URLs) or a unicode emoji
        m = re.fullmatch(r"<?a?:?([A-Za-z0-9_~]+):(\d+)>?", emoji)
        if m:
            return {"id": m.group(2), "name": m.group(1), "animated": emoji.startswith("<a:")}
        return {"id": None, "name": emoji}

    def _bump_reaction(self, msg: Dict[str, Any], emoji: str, delta: int, me: bool) -> None:
        eo = self._emoji_obj(emoji)
        reactions = msg.setdefault("reactions", [])
        for r in reactions:
            if r["emoji"].get("name") == eo["name"] and r["emoji"].get("id") == eo["id"]:
                r["count"] = max(0, r["count"] + delta)
                if me:
                    r["me"] = delta > 0
                if r["count"] == 0:
                    reactions.remove(r)
                return
        if delta > 0:
            reactions.append(
                {
                    "emoji": eo,
                    "count": 1,
                    "count_details": {"burst": 0, "normal": 1},
                    "me": me,
                    "me_burst": False,
                    "burst_colors": [],
                }
            )

    def _reaction_payload(self, message_id: int, emoji: str, user_id: int, add: bool, channel_id: Optional[int] = None) -> Dict[str, Any]:
        msg = self.messages.get(int(message_id))
        if channel_id is None:
            channel_id = int(msg["channel_id"]) if msg else self.channel_id
        d: Dict[str, Any] = {
            "user_id": str(user_id),
            "channel_id": str(channel_id),
            "message_id": str(message_id),
            "guild_id": str(self.guild_id),
            "emoji": self._emoji_obj(emoji),
            "burst": False,
            "type": 0,
        }
        if add:
            d["member"] = self.member(user_id)
            d["burst_colors"] = []
            if msg is not None:
                d["message_author_id"] = msg["author"]["id"]
        return d

    async def _h_attachment(self, request: web.Request) -> web.StreamResponse:
        try:
            att = self._attachments[int(request.match_info["attachment_id"])]
        except (KeyError, ValueError):
            return web.Response(status=404, text="not found")
        if att.hang:
            assert self._stopping is not None
            await self._stopping.wait()
            return web.Response(status=503)
        if att.delay:
            await asyncio.sleep(att.delay)
        if att.gate is not None:
            await att.gate.wait()
        if att.status != 200:
            return web.Response(status=att.status, text=f"fake error {att.status}")
        return web.Response(body=att.content, headers={"Content-Type": att.data.get("content_type") or "application/octet-stream"})

    # ------------------------------------------------------------ gateway
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
        await self._send_op(ws, 10, {"heartbeat_interval": self.heartbeat_interval_ms})
        try:
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
        finally:
            self.client_close_codes.append(ws.close_code)
            if self._ws is ws:
                self._ws = None
                self._ws_ready = False
            await self._notify()
        return ws

    async def _send_raw(self, ws: web.WebSocketResponse, payload: Dict[str, Any]) -> bool:
        async with self._send_lock:
            if ws.closed:
                return False
            data = json.dumps(payload)
            try:
                if self._compressor is not None and ws is self._ws:
                    out = self._compressor.compress(data.encode()) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await ws.send_bytes(out)
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

    # ------------------------------------------------------------ driver: interactions
    def _find_command(self, name: str, guild_id: int, ctype: int = 1) -> Optional[Dict[str, Any]]:
        for scope in (guild_id, None):
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == ctype:
                    return cmd
        return None

    def _build_options(
        self,
        schema: List[Dict[str, Any]],
        values: Dict[str, Any],
        resolved: Dict[str, Dict[str, Any]],
    ) -> List[Dict[str, Any]]:
        by_name = {o["name"]: o for o in schema or []}
        out = []
        for name, value in values.items():
            opt_schema = by_name.get(name, {})
            otype = opt_schema.get("type")
            if otype is None:
                if isinstance(value, dict) and "filename" in value:
                    otype = 11
                elif isinstance(value, bool):
                    otype = 5
                elif isinstance(value, int):
                    otype = 4
                elif isinstance(value, float):
                    otype = 10
                else:
                    otype = 3
            if otype == 11:
                att = value if isinstance(value, dict) else self._attachments[int(value)].data
                resolved.setdefault("attachments", {})[str(att["id"])] = dict(att)
                out.append({"name": name, "type": 11, "value": str(att["id"])})
            elif otype == 6:
                uid = int(value["id"]) if isinstance(value, dict) else int(value)
                resolved.setdefault("users", {})[str(uid)] = self.user(uid)
                m = {k: v for k, v in self.member(uid).items() if k != "user"}
                m["permissions"] = "0"
                resolved.setdefault("members", {})[str(uid)] = m
                out.append({"name": name, "type": 6, "value": str(uid)})
            elif otype == 7:
                cid = int(value["id"]) if isinstance(value, dict) else int(value)
                ch = self._channel_obj(cid)
                resolved.setdefault("channels", {})[str(cid)] = {
                    "id": str(cid), "name": ch["name"], "type": ch["type"], "permissions": "0", "parent_id": None,
                }
                out.append({"name": name, "type": 7, "value": str(cid)})
            elif otype == 8:
                rid = int(value["id"]) if isinstance(value, dict) else int(value)
                resolved.setdefault("roles", {})[str(rid)] = self.roles[rid]
                out.append({"name": name, "type": 8, "value": str(rid)})
            elif otype in (1, 2):  # subcommand / group: value is a dict of its options
                out.append(
                    {"name": name, "type": otype, "options": self._build_options(opt_schema.get("options", []), value or {}, resolved)}
                )
            else:
                out.append({"name": name, "type": otype, "value": value})
        return out

    def _base_interaction(
        self,
        itype: int,
        *,
        user_id: Optional[int],
        guild_id: Optional[int],
        channel_id: Optional[int],
        member_roles: Optional[Sequence[int]],
        permissions: Optional[str],
        locale: str = "en-US",
    ) -> Dict[str, Any]:
        user_id = int(user_id or self.default_user_id)
        guild_id = int(guild_id or self.guild_id)
        channel_id = int(channel_id or self.channel_id)
        ch = self._channel_obj(channel_id)
        perms = str(permissions) if permissions is not None else "2248473465835073"
        iid = snowflake()
        token = f"fake-interaction-token-{iid}"
        member = self.member(user_id, roles=member_roles, permissions=perms)
        return {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": dict(ch),
            "member": member,
            "app_permissions": "2248473465835073",
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }

    async def _push_interaction(self, payload: Dict[str, Any]) -> InteractionHandle:
        handle = InteractionHandle(self, payload)
        self.interactions[handle.id] = handle
        self._interactions_by_token[handle.token] = handle
        await self.dispatch("INTERACTION_CREATE", payload)
        return handle

    async def send_slash_command(
        self,
        name: str,
        options: Optional[Dict[str, Any]] = None,
        *,
        user_id: Optional[int] = None,
        guild_id: Optional[int] = None,
        channel_id: Optional[int] = None,
        attachments: Optional[Sequence[Dict[str, Any]]] = None,
        member_roles: Optional[Sequence[int]] = None,
        permissions: Optional[str] = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Push INTERACTION_CREATE (type 2). ``options`` maps option name ->
        value; attachment options take a dict from ``add_attachment`` (or its
        id), user/channel/role options an id; for a subcommand use
        ``name="group sub"`` or nested dicts. The registered command schema
        (from the bot's sync) decides option types when available. Extra
        ``attachments`` are added to ``data.resolved.attachments``."""
        payload = self._base_interaction(
            2, user_id=user_id, guild_id=guild_id, channel_id=channel_id,
            member_roles=member_roles, permissions=permissions, locale=locale,
        )
        parts = name.split()
        gid = int(payload["guild_id"])
        cmd = self._find_command(parts[0], gid)
        if cmd is None:
            _log.warning("fakediscord: /%s was not registered by the bot (sync missing?)", parts[0])
        resolved: Dict[str, Dict[str, Any]] = {}
        # descend into subcommand groups/subcommands
        schema = (cmd or {}).get("options", [])
        chain: List[tuple] = []
        for sub in parts[1:]:
            sub_schema = next((o for o in schema if o["name"] == sub), {"type": 1, "options": []})
            chain.append((sub, sub_schema.get("type", 1)))
            schema = sub_schema.get("options", [])
        opts = self._build_options(schema, options or {}, resolved)
        for sub, stype in reversed(chain):
            opts = [{"name": sub, "type": stype, "options": opts}]
        for att in attachments or []:
            resolved.setdefault("attachments", {})[str(att["id"])] = dict(att)
        data: Dict[str, Any] = {
            "id": (cmd or {}).get("id") or str(snowflake()),
            "name": parts[0],
            "type": 1,
            "options": opts,
        }
        if cmd is not None and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        return await self._push_interaction(payload)

    async def send_message_command(
        self,
        name: str,
        message: Union[Dict[str, Any], int],
        *,
        user_id: Optional[int] = None,
        member_roles: Optional[Sequence[int]] = None,
        permissions: Optional[str] = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Push INTERACTION_CREATE for a message command (Apps > ``name`` on ``message``): type 2 with
        ``data.type`` 3, ``data.target_id`` and the message in ``data.resolved.messages``."""
        msg = self.messages.get(int(message["id"]) if isinstance(message, dict) else int(message))
        if msg is None:
            raise KeyError(f"fakediscord does not know message {message}")
        payload = self._base_interaction(
            2, user_id=user_id, guild_id=None, channel_id=int(msg["channel_id"]),
            member_roles=member_roles, permissions=permissions, locale=locale,
        )
        cmd = self._find_command(name, int(payload["guild_id"]), ctype=3)
        if cmd is None:
            _log.warning("fakediscord: message command %r was not registered by the bot (sync missing?)", name)
        data: Dict[str, Any] = {
            "id": (cmd or {}).get("id") or str(snowflake()),
            "name": name,
            "type": 3,
            "target_id": msg["id"],
            "resolved": {"messages": {msg["id"]: json.loads(json.dumps(msg))}},
        }
        if cmd is not None and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        payload["data"] = data
        return await self._push_interaction(payload)

    async def send_component_interaction(
        self,
        message_id: int,
        custom_id: str,
        values: Optional[Sequence[str]] = None,
        *,
        user_id: Optional[int] = None,
        component_type: int = 3,
        member_roles: Optional[Sequence[int]] = None,
        permissions: Optional[str] = None,
    ) -> InteractionHandle:
        """Push INTERACTION_CREATE type 3 (MESSAGE_COMPONENT) on a message the
        bot sent. ``component_type`` 3 = string select (``values`` = chosen
        option values), 2 = button (``values`` ignored)."""
        msg = self.messages.get(int(message_id))
        if msg is None:
            raise KeyError(f"fakediscord does not know message {message_id}")
        payload = self._base_interaction(
            3, user_id=user_id, guild_id=None, channel_id=int(msg["channel_id"]),
            member_roles=member_roles, permissions=permissions,
        )
        data: Dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values or [])
        payload["data"] = data
        payload["message"] = json.loads(json.dumps(msg))
        return await self._push_interaction(payload)

    async def add_reaction(self, message_id: int, emoji: str, user_id: Optional[int] = None, *, channel_id: Optional[int] = None) -> None:
        """A user adds ``emoji`` (unicode, or ``name:id`` for custom) to a message."""
        user_id = int(user_id or self.default_user_id)
        if int(message_id) in self.messages:
            self._bump_reaction(self.messages[int(message_id)], emoji, +1, me=False)
        await self.dispatch("MESSAGE_REACTION_ADD", self._reaction_payload(int(message_id), emoji, user_id, True, channel_id))

    async def remove_reaction(self, message_id: int, emoji: str, user_id: Optional[int] = None, *, channel_id: Optional[int] = None) -> None:
        user_id = int(user_id or self.default_user_id)
        if int(message_id) in self.messages:
            self._bump_reaction(self.messages[int(message_id)], emoji, -1, me=False)
        await self.dispatch("MESSAGE_REACTION_REMOVE", self._reaction_payload(int(message_id), emoji, user_id, False, channel_id))

    async def send_user_message(
        self, content: str, *, user_id: Optional[int] = None, channel_id: Optional[int] = None,
        attachments: Optional[Sequence[Dict[str, Any]]] = None,
    ) -> Dict[str, Any]:
        """A user posts a message (MESSAGE_CREATE). Content is only visible to
        the bot with the message_content intent (not enforced here)."""
        user_id = int(user_id or self.default_user_id)
        channel_id = int(channel_id or self.channel_id)
        mid = snowflake()
        msg = {
            "id": str(mid), "channel_id": str(channel_id), "guild_id": str(self.guild_id),
            "author": self.user(user_id), "content": content, "timestamp": _now_iso(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
            "mention_roles": [], "attachments": [dict(a) for a in (attachments or [])], "embeds": [],
            "pinned": False, "type": 0, "flags": 0, "components": [],
        }
        self.messages[mid] = msg
        data = dict(msg, member={k: v for k, v in self.member(user_id).items() if k != "user"})
        await self.dispatch("MESSAGE_CREATE", data)
        return msg
