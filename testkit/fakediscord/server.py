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

Layout: this module holds the constructor, the lifecycle and the route table; the rest is one
mixin per resource: ``state.py`` (snowflakes, users, roles, channels, the guild), ``rest.py``
(recording requests, Discord-style answers and refusals, waiting), ``guilds.py`` (user, guild
and channel reads), ``commands.py``, ``attachments.py``, ``messages.py`` (and who sees them),
``reactions.py``, ``interactions.py`` (INTERACTION_CREATE, ``InteractionHandle``),
``interaction_responses.py`` (callback, follow-ups, @original) and ``gateway.py``.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any, Dict, List, Optional

from aiohttp import web

from .attachments import AttachmentsMixin, _Attachment
from .commands import CommandsMixin
from .gateway import GatewayMixin
from .guilds import GuildRoutesMixin
from .interaction_responses import InteractionResponsesMixin
from .interactions import InteractionHandle, InteractionsMixin
from .messages import MessagesMixin
from .reactions import ReactionsMixin
from .rest import RecordedRequest, RestMixin, UploadedFile
from .state import StateMixin, snowflake

__all__ = ["FakeDiscordServer", "InteractionHandle", "RecordedRequest", "UploadedFile", "snowflake"]

_log = logging.getLogger("fakediscord")


class FakeDiscordServer(
    StateMixin,
    RestMixin,
    GuildRoutesMixin,
    CommandsMixin,
    AttachmentsMixin,
    MessagesMixin,
    ReactionsMixin,
    InteractionsMixin,
    InteractionResponsesMixin,
    GatewayMixin,
):
    """The fake Discord server: one object holding the state every mixin works on (see the module
    docstring for the driver API); ``start()`` holds the route table."""

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
