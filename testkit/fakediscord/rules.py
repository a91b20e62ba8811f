"""Discord's documented rules for request bodies, checked the way Discord checks them.

The fake server answers a body that breaks one of these rules as Discord does: HTTP 400
with ``{"code": 50035, "message": "Invalid Form Body", "errors": {...}}`` (or 50006 for an
empty message), so a bot that would be refused by Discord is refused in the tests too.

Sources (discord/discord-api-docs): Message resource (content, embed limits, message
flags), Receiving and Responding (interaction callback data; only ``EPHEMERAL`` on a
deferred response), Webhook resource (Execute Webhook flags), Components reference (action
rows, buttons, string selects), Application Commands (names, descriptions, counts).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List

SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_VOICE_MESSAGE = 1 << 13
IS_COMPONENTS_V2 = 1 << 15

#: Flags a bot may set, per kind of request.
FLAGS_INTERACTION_MESSAGE = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2
FLAGS_DEFER = EPHEMERAL
FLAGS_FOLLOWUP = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
FLAGS_CHANNEL_MESSAGE = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_VOICE_MESSAGE | IS_COMPONENTS_V2
#: An edit can never change whether a message is ephemeral, nor make it "loading".
FLAGS_FIXED_AT_CREATION = EPHEMERAL | LOADING

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
EMBED_FIELDS_MAX = 25
FIELD_NAME_MAX, FIELD_VALUE_MAX = 256, 1024
FOOTER_TEXT_MAX, AUTHOR_NAME_MAX = 2048, 256
ACTION_ROWS_MAX, ROW_ITEMS_MAX = 5, 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
SELECT_TYPES = {3, 5, 6, 7, 8}
SELECT_OPTIONS_MAX, OPTION_TEXT_MAX, PLACEHOLDER_MAX = 25, 100, 150
CHAT_INPUT_NAME = re.compile(r"^[-_'\w]{1,32}$")
COMMAND_DESCRIPTION_MAX = 100
COMMANDS_MAX = {1: 100, 2: 5, 3: 5}


def _too_long(limit: int) -> str:
    return f"Must be {limit} or fewer in length."


def _length_between(low: int, high: int) -> str:
    return f"Must be between {low} and {high} in length."


def message_problems(body: Dict[str, Any], *, allowed_flags: int, files: int = 0, new: bool = True) -> Dict[str, str]:
    """``{"dotted.path": "problem"}`` for a message create (``new``) or edit body; empty when valid."""
    errors: Dict[str, str] = {}
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_MAX:
        errors["content"] = _too_long(CONTENT_MAX)
    embeds = body.get("embeds") or []
    if len(embeds) > EMBEDS_MAX:
        errors["embeds"] = _too_long(EMBEDS_MAX)
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in EMBED_TEXT_LIMITS.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                errors[f"embeds.{i}.{key}"] = _too_long(limit)
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELDS_MAX:
            errors[f"embeds.{i}.fields"] = _too_long(EMBED_FIELDS_MAX)
        for j, field in enumerate(fields):
            for key, limit in (("name", FIELD_NAME_MAX), ("value", FIELD_VALUE_MAX)):
                text = field.get(key) or ""
                total += len(text)
                if not text.strip():
                    errors[f"embeds.{i}.fields.{j}.{key}"] = "This field is required"
                elif len(text) > limit:
                    errors[f"embeds.{i}.fields.{j}.{key}"] = _too_long(limit)
        for key, sub, limit in (("footer", "text", FOOTER_TEXT_MAX), ("author", "name", AUTHOR_NAME_MAX)):
            text = (embed.get(key) or {}).get(sub) or ""
            total += len(text)
            if len(text) > limit:
                errors[f"embeds.{i}.{key}.{sub}"] = _too_long(limit)
    if total > EMBED_TOTAL_MAX:
        errors.setdefault("embeds", f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}")
    flags = int(body.get("flags") or 0)
    if flags & ~allowed_flags:
        errors["flags"] = f"Invalid flags {flags & ~allowed_flags} for this request"
    if not flags & IS_COMPONENTS_V2:
        errors.update(component_problems(body.get("components") or []))
    if new and not (content or embeds or files or body.get("components") or body.get("poll") or body.get("sticker_ids")):
        errors["_empty"] = "Cannot send an empty message"
    return errors


def component_problems(rows: List[Dict[str, Any]]) -> Dict[str, str]:
    """Problems with legacy (action row) components: counts, lengths, one select per row."""
    errors: Dict[str, str] = {}
    if len(rows) > ACTION_ROWS_MAX:
        errors["components"] = _too_long(ACTION_ROWS_MAX)
    for i, row in enumerate(rows):
        if row.get("type") != 1:
            errors[f"components.{i}.type"] = "Top-level components must be action rows"
            continue
        items = row.get("components") or []
        if not 1 <= len(items) <= ROW_ITEMS_MAX:
            errors[f"components.{i}.components"] = _length_between(1, ROW_ITEMS_MAX)
        if len(items) > 1 and any(c.get("type") in SELECT_TYPES for c in items):
            errors[f"components.{i}.components"] = "A select menu must be alone in its action row"
        for j, item in enumerate(items):
            errors.update(_item_problems(item, f"components.{i}.components.{j}"))
    return errors


def _item_problems(item: Dict[str, Any], path: str) -> Dict[str, str]:
    errors: Dict[str, str] = {}
    kind = item.get("type")
    custom_id = item.get("custom_id")
    if kind == 2 and item.get("style") == 5:
        if not item.get("url") or custom_id:
            errors[path] = "A link button has a url and no custom_id"
    elif kind in SELECT_TYPES or kind == 2:
        if not custom_id or len(custom_id) > CUSTOM_ID_MAX:
            errors[f"{path}.custom_id"] = _length_between(1, CUSTOM_ID_MAX)
    if kind == 2 and len(item.get("label") or "") > BUTTON_LABEL_MAX:
        errors[f"{path}.label"] = _too_long(BUTTON_LABEL_MAX)
    if kind in SELECT_TYPES:
        if len(item.get("placeholder") or "") > PLACEHOLDER_MAX:
            errors[f"{path}.placeholder"] = _too_long(PLACEHOLDER_MAX)
        low, high = item.get("min_values", 1), item.get("max_values", 1)
        if not (0 <= low <= 25 and 1 <= high <= 25 and low <= high):
            errors[f"{path}.max_values"] = "min_values must be 0-25, max_values 1-25, and min <= max"
    if kind == 3:
        options = item.get("options") or []
        if not 1 <= len(options) <= SELECT_OPTIONS_MAX:
            errors[f"{path}.options"] = _length_between(1, SELECT_OPTIONS_MAX)
        if len({o.get("value") for o in options}) != len(options):
            errors[f"{path}.options"] = "Option values must be unique"
        if item.get("max_values", 1) > len(options):
            errors[f"{path}.max_values"] = "max_values is more than the number of options"
        for k, option in enumerate(options):
            for key in ("label", "value"):
                if not 1 <= len(option.get(key) or "") <= OPTION_TEXT_MAX:
                    errors[f"{path}.options.{k}.{key}"] = _length_between(1, OPTION_TEXT_MAX)
            if len(option.get("description") or "") > OPTION_TEXT_MAX:
                errors[f"{path}.options.{k}.description"] = _too_long(OPTION_TEXT_MAX)
    return errors


def command_problems(commands: Iterable[Dict[str, Any]]) -> Dict[str, str]:
    """Problems with a bulk-overwrite list of application commands."""
    errors: Dict[str, str] = {}
    counts: Dict[int, int] = {}
    seen = set()
    for i, cmd in enumerate(commands):
        kind = int(cmd.get("type", 1))
        counts[kind] = counts.get(kind, 0) + 1
        name = cmd.get("name") or ""
        if kind == 1:
            if not CHAT_INPUT_NAME.match(name) or name != name.lower():
                errors[f"{i}.name"] = "Invalid slash command name (1-32 lowercase letters, digits, - or _)"
            if not 1 <= len(cmd.get("description") or "") <= COMMAND_DESCRIPTION_MAX:
                errors[f"{i}.description"] = _length_between(1, COMMAND_DESCRIPTION_MAX)
        elif not 1 <= len(name) <= 32:
            errors[f"{i}.name"] = _length_between(1, 32)
        if (kind, name) in seen:
            errors[f"{i}.name"] = "Application command names must be unique"
        seen.add((kind, name))
    for kind, count in counts.items():
        if count > COMMANDS_MAX.get(kind, 100):
            errors["_count"] = f"Too many commands of type {kind} ({count} > {COMMANDS_MAX[kind]})"
    return errors


def error_body(problems: Dict[str, str]) -> Dict[str, Any]:
    """Discord's error JSON for ``problems`` (nested ``errors`` with ``_errors`` leaves)."""
    if set(problems) == {"_empty"}:
        return {"message": "Cannot send an empty message", "code": 50006}
    tree: Dict[str, Any] = {}
    for path, message in problems.items():
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "INVALID_FORM_BODY", "message": message})
    return {"message": "Invalid Form Body", "code": 50035, "errors": tree}
