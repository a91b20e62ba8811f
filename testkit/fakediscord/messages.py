"""Channel messages: creating, editing and deleting them (over the channel routes and for
interactions), echoing them over the gateway, users' messages, and who sees which message."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

from aiohttp import web

from . import rules
from .rest import _REC, RecordedRequest, UploadedFile, _empty_response, _json_response
from .state import _now_iso, snowflake

if TYPE_CHECKING:
    from .interactions import InteractionHandle


class MessagesMixin:
    """The ``/channels/{id}/messages`` routes, the stored messages and their visibility."""

    def bot_messages(self, channel_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """Messages authored by the bot (channel sends, interaction responses, followups), oldest first."""
        out = [m for m in self.messages.values() if int(m["author"]["id"]) == self.bot_user_id]
        if channel_id is not None:
            out = [m for m in out if int(m["channel_id"]) == int(channel_id)]
        return sorted(out, key=lambda m: int(m["id"]))

    def find_messages(self, predicate: Callable[[Dict[str, Any]], Any]) -> List[Dict[str, Any]]:
        return [m for m in sorted(self.messages.values(), key=lambda m: int(m["id"])) if predicate(m)]

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

    def _forget_message(self, msg: Dict[str, Any]) -> None:
        """Delete a message: gone for everyone; MESSAGE_DELETE for a public one."""
        mid = int(msg["id"])
        self.deleted_messages[mid] = self.messages.pop(mid, msg)
        if not int(msg.get("flags", 0)) & rules.EPHEMERAL:
            self._spawn(self.dispatch(
                "MESSAGE_DELETE", {"id": str(mid), "channel_id": msg["channel_id"], "guild_id": str(self.guild_id)}))

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
