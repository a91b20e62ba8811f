"""Read-only REST routes about the bot's world: its user and application, other users, its guilds,
members and channels (and the typing indicator)."""

from __future__ import annotations

from aiohttp import web

from .rest import _empty_response, _json_response


class GuildRoutesMixin:
    """``/users``, ``/applications/@me``, ``/guilds`` and ``GET /channels/{id}`` routes."""

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

    async def _h_my_guilds(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0") or 0)
        ids = sorted(g for g in self.bot_guild_ids if g > after)[: int(request.query.get("limit", "200"))]
        return _json_response([{"id": str(g), "name": "Test Guild" if g == self.guild_id else f"guild-{g}",
                                "icon": None, "owner": False, "permissions": "0", "features": []} for g in ids])

    async def _h_get_channel(self, request: web.Request) -> web.Response:
        ch = self.channels.get(int(request.match_info["channel_id"]))
        if ch is None:
            return _json_response({"message": "Unknown Channel", "code": 10003}, 404)
        return _json_response(ch)

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
