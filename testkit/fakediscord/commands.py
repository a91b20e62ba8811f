"""Application commands: bulk registration and listing (global and per guild), and what a member's
command picker lists."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from aiohttp import web

from . import rules
from .rest import _REC, RecordedRequest, _json_response
from .state import snowflake


class CommandsMixin:
    """The ``/applications/{id}[/guilds/{id}]/commands`` routes and the registered commands."""

    async def wait_commands(self, names: Sequence[str], guild_id: Optional[int] = None, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """Wait until app commands ``names`` were registered (global or guild scope)."""
        key = int(guild_id) if guild_id is not None else None

        def check():
            cmds = {c["name"]: c for c in self.commands.get(key, [])}
            if all(n in cmds for n in names):
                return [cmds[n] for n in names]
            return None

        return await self.wait_for(check, timeout)

    def commands_listed_to_member(self, guild_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """What a member's command picker lists in a guild: the global commands *and* that guild's,
        so a command registered in both scopes is listed twice (as in Discord)."""
        gid = int(guild_id or self.guild_id)
        return [dict(c) for c in self.commands.get(None, [])] + [dict(c) for c in self.commands.get(gid, [])]

    def register_commands(self, commands: Sequence[Dict[str, Any]], guild_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """Store ``commands`` in a scope as a bulk overwrite would (e.g. left over from an earlier deployment)."""
        return self._store_commands(int(guild_id) if guild_id is not None else None, commands)

    def _command_scope(self, request: web.Request) -> Optional[int]:
        g = request.match_info.get("guild_id")
        return int(g) if g is not None else None

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

    def _find_command(self, name: str, guild_id: int, ctype: int = 1) -> Optional[Dict[str, Any]]:
        for scope in (guild_id, None):
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == ctype:
                    return cmd
        return None
