"""Numbered schema migrations, and the runner every storage backend uses.

Each backend ships its own SQL in ``migrations/<backend>/NNN_name.sql``, numbered 1..N without
gaps. Rules for those files:

* no BEGIN/COMMIT/ROLLBACK (or anything else that ends a transaction): the runner applies each
  file in one transaction and records its number in the same transaction;
* nothing that cannot run inside a transaction (VACUUM, CREATE INDEX CONCURRENTLY, ...);
* never edit a file once it has shipped; add a new one instead.

A database whose recorded number is higher than the newest file refuses to open.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
import re
import sqlite3
from pathlib import Path
from typing import Callable, Protocol, Sequence

from bot.errors import StorageError

log = logging.getLogger(__name__)

_MIGRATION_FILE = re.compile(r"^(\d+)_[^/\\]+\.sql$")
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_TRANSACTION_WORDS = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"}


@dataclasses.dataclass(frozen=True)
class Migration:
    """One numbered SQL file, already split into statements."""

    number: int
    name: str
    statements: tuple[str, ...]


def migrations_dir(backend: str) -> Path:
    """The migrations shipped inside the package for ``backend`` ("sqlite" or "postgres"): the
    repository's top-level ``migrations/`` folder, installed as the package ``bot.migrations``."""
    return Path(str(importlib.resources.files("bot.migrations"))) / backend


def _clean(pieces: Sequence[str], skip: Callable[[str, int], int] | None = None) -> list[str]:
    """Drop leading comments and empty pieces."""
    statements = []
    for piece in pieces:
        body = (piece[skip(piece, 0):] if skip else _LEADING_COMMENTS.sub("", piece)).strip()
        if body.strip(";").strip():
            statements.append(body)
    return statements


def _skip_comment(script: str, i: int) -> int:
    """The index after a PostgreSQL comment starting at ``i`` (block comments nest), or ``i``."""
    if script.startswith("--", i):
        end = script.find("\n", i)
        return len(script) if end < 0 else end + 1
    if script.startswith("/*", i):
        depth, i = 1, i + 2
        while i < len(script) and depth:
            if script.startswith("/*", i):
                depth, i = depth + 1, i + 2
            elif script.startswith("*/", i):
                depth, i = depth - 1, i + 2
            else:
                i += 1
    return i


def _skip_leading(script: str, i: int) -> int:
    """Skip whitespace and comments from ``i``."""
    while True:
        while i < len(script) and script[i].isspace():
            i += 1
        after = _skip_comment(script, i)
        if after == i:
            return i
        i = after


def split_sqlite(script: str) -> list[str]:
    """Split an SQLite script into single statements (trigger bodies stay whole)."""
    pieces, start = [], 0
    for i, ch in enumerate(script):
        if ch == ";" and sqlite3.complete_statement(script[start : i + 1]):
            pieces.append(script[start : i + 1])
            start = i + 1
    pieces.append(script[start:])
    return _clean(pieces)


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def split_postgres(script: str) -> list[str]:
    """Split a PostgreSQL script into single statements: semicolons inside quotes, quoted
    identifiers, comments (nested block comments too) and dollar-quoted bodies do not count."""
    pieces, start, i, n = [], 0, 0, len(script)
    while i < n:
        ch = script[i]
        after = _skip_comment(script, i)
        if after != i:
            i = after
            continue
        if ch in "'\"":
            backslashes = ch == "'" and i > 0 and script[i - 1] in "eE" and (i < 2 or not script[i - 2].isalnum())
            i += 1
            while i < n:
                if backslashes and script[i] == "\\":
                    i += 2
                    continue
                if script[i] == ch:
                    if script.startswith(ch * 2, i):  # '' or "" inside
                        i += 2
                        continue
                    break
                i += 1
            i += 1
            continue
        if ch == "$" and (i == 0 or not (script[i - 1].isalnum() or script[i - 1] == "_")):
            tag = _DOLLAR_TAG.match(script, i)
            if tag:
                end = script.find(tag.group(), tag.end())
                i = n if end < 0 else end + len(tag.group())
                continue
        if ch == ";":
            pieces.append(script[start : i + 1])
            start = i + 1
        i += 1
    pieces.append(script[start:])
    return _clean(pieces, _skip_leading)


def load_migrations(directory: Path, split: Callable[[str], list[str]] = split_sqlite) -> list[Migration]:
    """Read ``NNN_name.sql`` files from ``directory``, numbered 1..N without gaps, split by ``split``."""
    if not directory.is_dir():
        raise StorageError(f"migrations folder {directory} does not exist")
    found: dict[int, Path] = {}
    for path in directory.iterdir():
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            continue
        number = int(match.group(1))
        if number in found:
            raise StorageError(f"two migrations numbered {number}: {found[number].name}, {path.name}")
        found[number] = path
    numbers = sorted(found)
    if not numbers:
        raise StorageError(f"no migrations (NNN_name.sql) in {directory}")
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations must be numbered 1..N without gaps, found {numbers}")
    migrations = []
    for number in numbers:
        path = found[number]
        statements = split(path.read_text(encoding="utf-8"))
        for statement in statements:
            first_word = statement.split(None, 1)[0].rstrip(";").upper()
            if first_word in _TRANSACTION_WORDS:
                raise StorageError(f"{path.name}: no {first_word} in migrations; each file runs in one transaction")
        migrations.append(Migration(number, path.stem, tuple(statements)))
    return migrations


class MigrationTarget(Protocol):
    """What a backend offers the runner."""

    #: The backend's own database errors, reported as a failed migration.
    errors: tuple[type[BaseException], ...]

    async def schema_version(self) -> int:
        """The number of the last applied migration (0 for an empty database)."""

    async def apply_migration(self, migration: Migration) -> bool:
        """In one transaction, serialised against other processes: unless the database already
        is at ``migration.number`` or later, run its statements and record the number.
        Returns True if it ran."""


async def migrate(target: MigrationTarget, migrations: Sequence[Migration]) -> None:
    """Bring the database up to the newest migration; refuse a database newer than the code."""
    current = await target.schema_version()
    newest = migrations[-1].number
    if current > newest:
        raise StorageError(f"database schema version {current} is newer than this bot knows ({newest}); "
                           "upgrade the bot")
    for migration in migrations:
        if migration.number <= current:
            continue
        try:
            applied = await target.apply_migration(migration)
        except (*target.errors, StorageError) as exc:
            raise StorageError(f"migration {migration.name} failed, database left at version "
                               f"{await target.schema_version()}: {exc}") from exc
        if applied:
            log.info("applied migration %s", migration.name)
