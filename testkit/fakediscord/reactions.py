"""Reactions: the bot's reaction routes, users' reactions the test adds or removes, and the
MESSAGE_REACTION_ADD / _REMOVE events for both."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from aiohttp import web

from .rest import _empty_response, _json_response


class ReactionsMixin:
    """The ``/channels/{id}/messages/{id}/reactions`` routes and reaction events."""

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
