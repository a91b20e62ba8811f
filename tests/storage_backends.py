"""The storage backends the shared test-suite runs against: SQLite files and a real PostgreSQL.

A :class:`Backend` is one fresh, empty database plus the data folder, with what tests need to reach
it from outside the :class:`~bot.storage.Storage` API (raw SQL, the schema version, the
environment a bot process is started with).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.backends import open_storage
from bot.settings import load_settings
from bot.storage import Storage

BACKENDS = ("sqlite", "postgres")


class Backend:
    name: str

    def __init__(self, tmp: Path) -> None:
        self.data_dir = tmp / "data"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point a bot process (or ``load_settings``) at this database."""
        raise NotImplementedError

    async def open(self, migrations: Path | None = None) -> Storage:
        """Open the storage the way the bot does (``open_storage``), or with other migrations."""
        if migrations is None:
            settings = load_settings({"GENREBOT_DATA_DIR": str(self.data_dir), **self.env}, dotenv=False,
                                     require_token=False)
            return await open_storage(settings)
        return await self._open_with(migrations)

    async def _open_with(self, migrations: Path) -> Storage:
        raise NotImplementedError

    async def raw(self, sql: str) -> list[tuple[Any, ...]]:
        """Run SQL outside the storage layer (its own connection); returns the rows."""
        raise NotImplementedError

    async def set_schema_version(self, number: int) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.db_path = tmp / "db" / "bot.sqlite3"

    @property
    def env(self) -> dict[str, str]:
        return {"GENREBOT_DB": str(self.db_path)}

    async def _open_with(self, migrations: Path) -> Storage:
        from bot.storage.sqlite import SqliteStorage

        return await SqliteStorage.open(self.db_path, self.data_dir, migrations)

    async def raw(self, sql: str) -> list[tuple[Any, ...]]:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.db_path) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]

    async def tables(self) -> set[str]:
        return {r[0] for r in await self.raw("SELECT name FROM sqlite_master WHERE type = 'table'")}

    async def set_schema_version(self, number: int) -> None:
        await self.raw(f"PRAGMA user_version = {number:d}")


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, tmp: Path, url: str) -> None:
        super().__init__(tmp)
        self.url = url

    @property
    def env(self) -> dict[str, str]:
        return {"GENREBOT_DATABASE_URL": self.url}

    async def _open_with(self, migrations: Path) -> Storage:
        from bot.storage.postgres import PostgresStorage

        return await PostgresStorage.open(self.url, migrations)

    async def raw(self, sql: str) -> list[tuple[Any, ...]]:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    async def tables(self) -> set[str]:
        return {r[0] for r in await self.raw("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    async def set_schema_version(self, number: int) -> None:
        await self.raw(f"UPDATE genrebot_schema SET version = {number:d}")
