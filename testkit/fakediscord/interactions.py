"""Interactions the test starts (slash commands, message commands, components): the
INTERACTION_CREATE payloads, and ``InteractionHandle``, which collects what the bot answered."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

from .state import snowflake

if TYPE_CHECKING:
    from .server import FakeDiscordServer

_log = logging.getLogger("fakediscord")


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


class InteractionsMixin:
    """Pushes INTERACTION_CREATE events as a member using the bot's commands and components would."""

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
