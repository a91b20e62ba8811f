"""The bot's answers to interactions: the callback, follow-up messages, and getting, editing and
deleting the original response or a follow-up through the interaction's token."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Dict, List, Optional

from aiohttp import web

from . import rules
from .interactions import InteractionHandle
from .rest import _REC, RecordedRequest, UploadedFile, _empty_response, _json_response


class InteractionResponsesMixin:
    """The ``/interactions/{id}/{token}/callback`` and ``/webhooks/{app_id}/{token}`` routes."""

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

    def _webhook_message(self, request: web.Request) -> web.Response | tuple[InteractionHandle, str, dict]:
        """The interaction's message a webhook request names, or Discord's refusal."""
        handle = self._handle_for_token(request)
        target = request.match_info["message_id"]
        refused = self._refuse_webhook(request, handle)
        if refused is not None:
            return refused
        msg = self._webhook_target(handle, target) if handle else None
        if handle is None or msg is None:
            return _json_response({"message": "Unknown Message", "code": 10008}, 404)
        return handle, target, msg

    async def _h_edit_webhook_message(self, request: web.Request) -> web.Response:
        rec: RecordedRequest = request[_REC]
        found = self._webhook_message(request)
        if isinstance(found, web.Response):
            return found
        handle, target, msg = found
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
        found = self._webhook_message(request)
        if isinstance(found, web.Response):
            return found
        handle, target, msg = found
        self._forget_message(msg)
        handle.deleted.append(target)
        if target == "@original":
            handle.original = None
        await self._notify()
        return _empty_response()
