"""The fake server's in-memory world: snowflake ids and the users, roles, channels and guild it
serves, with the Discord objects (user, member, role, channel, guild) built from them."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Sequence, Union


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


class StateMixin:
    """Users, roles, channels and the guild, and the Discord objects that describe them."""

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
