"""PostgreSQL storage (asyncpg): one database shared by several bot processes on several machines.

Selected by ``GENREBOT_DATABASE_URL=postgresql://user@host:port/db``. A connection pool serves
concurrent requests; each write is one statement or one explicit transaction, committed with
``synchronous_commit=on`` before the method returns (so an acknowledged write survives the bot
process *and* the database server crashing). Feature windows and kept uploads are rows of
``prediction_files``: they commit and are forgotten in the same transaction as their prediction,
and any bot process on any machine can export them. The schema version is the one row of
``genrebot_schema``; migrations run under an advisory lock, so bot processes starting together
migrate once.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.parse
from pathlib import Path

import asyncpg
import numpy as np

from genre_model.features import save_windows
from genre_model.predict import Prediction
from bot import feedback
from bot.errors import StorageError
from bot.storage import base
from bot.storage.base import (
    ModelRow, RetrainRow, Stats, StorageBase, StoredPrediction, Upload, Vote, audio_suffix, check_retrain_state,
    check_vote, iso,
)
from bot.storage.migrate import Migration, load_migrations, migrate, migrations_dir, split_postgres

log = logging.getLogger(__name__)

#: Key of the advisory lock that serialises migrations across processes ("genrebot").
MIGRATION_LOCK = 7450482596160630644
SCHEMA_TABLE = "genrebot_schema"

_PREDICTION_COLUMNS = (
    "p.id, p.user_id, p.guild_id, p.channel_id, p.message_id, p.interaction_id, p.created_at, p.file_name,"
    " p.file_sha256, p.duration_s, p.model_version, p.genre, p.confidence, p.top_k, p.sound,"
    " EXISTS (SELECT 1 FROM prediction_files f WHERE f.prediction_id = p.id AND f.kind = 'windows') AS has_windows,"
    " EXISTS (SELECT 1 FROM prediction_files f WHERE f.prediction_id = p.id AND f.kind = 'audio') AS has_audio"
)


def redact(url: str) -> str:
    """The URL without its password, fit for a log line or an error message."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _count(status: str) -> int:
    """Rows affected, from a command status such as ``"DELETE 3"``."""
    return int(status.rsplit(" ", 1)[-1])


def _npz(windows: np.ndarray, feature_config: dict) -> bytes:
    buffer = io.BytesIO()
    save_windows(buffer, windows, feature_config)
    return buffer.getvalue()


class PostgresStorage(StorageBase):
    """Async access to the bot's PostgreSQL database (implements :class:`Storage`).

    ``store = await PostgresStorage.open(url)`` ... ``await store.close()``.
    """

    errors = (asyncpg.PostgresError,)
    #: Errors that mean "the server cannot be reached right now" (restarting, shutting down, a dropped
    #: connection, a refused or timed-out connect): worth retrying, unlike a constraint violation.
    unavailable = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                   asyncpg.exceptions.OperatorInterventionError)

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = redact(url)

    # -- lifecycle ----------------------------------------------------------

    @classmethod
    async def open(cls, url: str, migrations: Path | None = None, *, max_connections: int = 10) -> "PostgresStorage":
        """Connect a pool and bring the schema up to date (``migrations``: another folder, for tests)."""
        steps = load_migrations(Path(migrations) if migrations else migrations_dir("postgres"), split_postgres)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=max_connections, timeout=30,
                # Acknowledged means flushed to the WAL on disk, whatever the server's default.
                server_settings={"synchronous_commit": "on", "application_name": "genrebot"})
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
        store = cls(pool, url)
        try:
            await migrate(store, steps)
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        """Close the pool (waits for running statements)."""
        await self._pool.close()

    async def schema_version(self) -> int:
        async with self._pool.acquire() as conn:
            return await self._version(conn)

    @staticmethod
    async def _version(conn: asyncpg.Connection) -> int:
        if await conn.fetchval("SELECT to_regclass($1)", SCHEMA_TABLE) is None:
            return 0
        return await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}")

    async def apply_migration(self, migration: Migration) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            # Other bot processes wait here; the one that gets the lock first migrates.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),"
                " version INTEGER NOT NULL)")
            if await self._version(conn) >= migration.number:
                return False
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES ($1)"
                               " ON CONFLICT (one) DO UPDATE SET version = excluded.version", migration.number)
        return True

    # -- helpers ------------------------------------------------------------

    @staticmethod
    def _prediction(row: asyncpg.Record) -> StoredPrediction:
        return StoredPrediction(
            id=row["id"], user_id=row["user_id"], guild_id=row["guild_id"], channel_id=row["channel_id"],
            message_id=row["message_id"], interaction_id=row["interaction_id"], created_at=iso(row["created_at"]),
            file_name=row["file_name"], file_sha256=row["file_sha256"], duration_s=row["duration_s"],
            model_version=row["model_version"], genre=row["genre"], confidence=row["confidence"],
            top_k=tuple((str(label), float(p)) for label, p in json.loads(row["top_k"])),
            has_windows=row["has_windows"], has_audio=row["has_audio"], sound=row["sound"],
        )

    async def _file(self, prediction_id: int, kind: str) -> asyncpg.Record | None:
        return await self._pool.fetchrow(
            "SELECT suffix, data FROM prediction_files WHERE prediction_id = $1 AND kind = $2", prediction_id, kind)

    # -- predictions --------------------------------------------------------

    async def record_prediction(self, upload: Upload, prediction: Prediction, *, keep_windows: bool,
                                keep_audio: bool) -> int:
        """Store a prediction, its feature windows and (if asked) the upload in one transaction."""
        row = base.prediction_row(prediction, keep_windows)
        files: list[tuple[str, str, bytes]] = []
        if row.windows is not None:  # compress before taking a connection
            files.append(("windows", ".npz", await asyncio.to_thread(_npz, row.windows, row.feature_config)))
        if keep_audio:
            files.append(("audio", audio_suffix(upload.file_name), bytes(upload.data)))
        async with self._pool.acquire() as conn, conn.transaction():
            prediction_id = await conn.fetchval(
                "INSERT INTO predictions (user_id, guild_id, channel_id, interaction_id, file_name, file_sha256,"
                " duration_s, model_version, genre, confidence, top_k, sound)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12) RETURNING id",
                upload.user_id, upload.guild_id, upload.channel_id, upload.interaction_id, upload.file_name,
                upload.file_sha256, row.duration_s, row.model_version, row.genre, row.confidence,
                json.dumps(row.top_k), row.sound)
            if files:
                await conn.executemany(
                    "INSERT INTO prediction_files (prediction_id, kind, suffix, data) VALUES ($1, $2, $3, $4)",
                    [(prediction_id, kind, suffix, data) for kind, suffix, data in files])
        return prediction_id

    async def attach_message(self, prediction_id: int, message_id: int) -> None:
        try:
            status = await self._pool.execute(
                "UPDATE predictions SET message_id = $1 WHERE id = $2", message_id, prediction_id)
        except asyncpg.UniqueViolationError as e:
            raise StorageError(f"message {message_id} already belongs to another prediction") from e
        if _count(status) == 0:
            raise StorageError(f"no prediction {prediction_id}")

    async def get_prediction(self, prediction_id: int) -> StoredPrediction | None:
        row = await self._pool.fetchrow(f"SELECT {_PREDICTION_COLUMNS} FROM predictions p WHERE p.id = $1",
                                        prediction_id)
        return self._prediction(row) if row else None

    async def prediction_by_message(self, message_id: int) -> StoredPrediction | None:
        row = await self._pool.fetchrow(f"SELECT {_PREDICTION_COLUMNS} FROM predictions p WHERE p.message_id = $1",
                                        message_id)
        return self._prediction(row) if row else None

    async def _windows_file(self, prediction_id: int) -> bytes | None:
        row = await self._file(prediction_id, "windows")
        return None if row is None else row["data"]

    async def audio(self, prediction_id: int) -> tuple[bytes, str] | None:
        row = await self._file(prediction_id, "audio")
        return None if row is None else (row["data"], row["suffix"])

    # -- feedback -----------------------------------------------------------

    async def _upsert_feedback(self, prediction_id: int, user_id: int, vote: str, genre: str | None) -> None:
        # A 'right' vote clears a correction; a bare 'wrong' vote keeps one. One statement, so one
        # transaction: concurrent votes of one user on one prediction end as one row.
        sql = (
            "INSERT INTO feedback (prediction_id, user_id, vote, corrected_genre, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp())"
            " ON CONFLICT (prediction_id, user_id) DO UPDATE SET"
            "   vote = excluded.vote,"
            "   corrected_genre = CASE WHEN excluded.vote = 'right' THEN NULL"
            "                          ELSE coalesce(excluded.corrected_genre, feedback.corrected_genre) END,"
            "   updated_at = excluded.updated_at"
        )
        try:
            await self._pool.execute(sql, prediction_id, user_id, vote, genre)
        except (asyncpg.ForeignKeyViolationError, asyncpg.CheckViolationError) as e:
            raise StorageError(f"cannot vote on prediction {prediction_id}: {e}") from e

    async def retract_vote(self, prediction_id: int, user_id: int, vote: str) -> bool:
        check_vote(vote)
        status = await self._pool.execute(
            "DELETE FROM feedback WHERE prediction_id = $1 AND user_id = $2 AND vote = $3",
            prediction_id, user_id, vote)
        return _count(status) > 0

    async def votes(self, prediction_id: int) -> list[Vote]:
        rows = await self._pool.fetch(
            "SELECT user_id, vote, corrected_genre FROM feedback WHERE prediction_id = $1 ORDER BY updated_at, seq",
            prediction_id)
        return [Vote(*row) for row in rows]

    async def stats(self) -> Stats:
        row = await self._pool.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM predictions),
              (SELECT count(*) FROM feedback WHERE vote = 'right'),
              (SELECT count(*) FROM feedback WHERE vote = 'wrong'),
              (SELECT count(*) FROM feedback WHERE corrected_genre IS NOT NULL),
              (SELECT count(DISTINCT prediction_id) FROM feedback),
              (SELECT count(*) FROM (SELECT 1 FROM feedback GROUP BY prediction_id
                                     HAVING count(*) FILTER (WHERE vote = 'right')
                                          > count(*) FILTER (WHERE vote = 'wrong')) AS majority),
              (SELECT version FROM models WHERE is_live),
              (SELECT count(*) FROM predictions WHERE sound <> 'music')
            """
        )
        return base.stats_from_row(row)

    # -- models -------------------------------------------------------------

    @staticmethod
    def _model(row: asyncpg.Record) -> ModelRow:
        return ModelRow(version=row["version"], created_at=iso(row["created_at"]), path=row["path"],
                        metrics=json.loads(row["metrics"]), is_live=row["is_live"], note=row["note"])

    async def record_model(self, version: str, path: str, metrics: dict, note: str = "") -> None:
        try:
            await self._pool.execute(
                "INSERT INTO models (version, path, metrics, note) VALUES ($1, $2, $3::jsonb, $4)",
                version, str(path), json.dumps(metrics), note)
        except asyncpg.UniqueViolationError as e:
            raise StorageError(f"model version {version!r} is already recorded") from e

    async def set_live_model(self, version: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Self-conflicting lock: two promotions (from two bot processes) take turns.
            await conn.execute("LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE")
            if await conn.fetchval("SELECT 1 FROM models WHERE version = $1", version) is None:
                raise StorageError(f"unknown model version {version!r}")
            await conn.execute("UPDATE models SET is_live = false WHERE is_live AND version <> $1", version)
            await conn.execute("UPDATE models SET is_live = true WHERE version = $1", version)

    async def live_model(self) -> ModelRow | None:
        row = await self._pool.fetchrow("SELECT * FROM models WHERE is_live")
        return self._model(row) if row else None

    async def list_models(self) -> list[ModelRow]:
        return [self._model(row) for row in await self._pool.fetch("SELECT * FROM models ORDER BY created_at, version")]

    # -- retrains and cooldowns -------------------------------------------

    async def claim_retrain(self, owner: str, requested_by: int | None, channel_id: int | None) -> int | None:
        try:
            return await self._pool.fetchval(
                "INSERT INTO retrains (state, owner, requested_by, channel_id) VALUES ('running', $1, $2, $3)"
                " RETURNING id", owner, requested_by, channel_id)
        except asyncpg.UniqueViolationError:  # retrains_one_running: another retrain holds the lock
            return None

    async def running_retrain(self) -> RetrainRow | None:
        row = await self._pool.fetchrow(
            "SELECT *, extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS age"
            " FROM retrains WHERE state = 'running'")
        if row is None:
            return None
        return RetrainRow(row["id"], row["state"], row["owner"], row["requested_by"], row["channel_id"],
                          row["message_id"], row["age"], row["detail"])

    async def retrain_heartbeat(self, retrain_id: int) -> bool:
        status = await self._pool.execute(
            "UPDATE retrains SET heartbeat_at = clock_timestamp() WHERE id = $1 AND state = 'running'", retrain_id)
        return _count(status) > 0

    async def attach_retrain_message(self, retrain_id: int, message_id: int) -> None:
        await self._pool.execute("UPDATE retrains SET message_id = $1 WHERE id = $2", message_id, retrain_id)

    async def finish_retrain(self, retrain_id: int, state: str, detail: str = "") -> bool:
        check_retrain_state(state)
        status = await self._pool.execute(
            "UPDATE retrains SET state = $1, detail = $2, finished_at = clock_timestamp()"
            " WHERE id = $3 AND state = 'running'", state, detail, retrain_id)
        return _count(status) > 0

    async def take_cooldown(self, user_id: int, seconds: float) -> float:
        # One statement: the upsert starts a pause only when none is running; otherwise the outer
        # SELECT (the statement's snapshot, before the upsert) says how long the running one lasts.
        wait = await self._pool.fetchval(
            "WITH granted AS ("
            "  INSERT INTO cooldowns (user_id, until) VALUES ($1, clock_timestamp() + make_interval(secs => $2))"
            "  ON CONFLICT (user_id) DO UPDATE SET until = excluded.until"
            "  WHERE cooldowns.until <= clock_timestamp() RETURNING 1)"
            " SELECT CASE WHEN EXISTS (SELECT 1 FROM granted) THEN 0.0 ELSE coalesce("
            "  (SELECT extract(epoch FROM until - clock_timestamp())::float8 FROM cooldowns WHERE user_id = $1),"
            "  $2) END", user_id, float(seconds))
        return min(float(seconds), max(0.0, float(wait)))

    async def release_cooldown(self, user_id: int) -> None:
        await self._pool.execute("DELETE FROM cooldowns WHERE user_id = $1", user_id)

    # -- privacy ------------------------------------------------------------

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM cooldowns WHERE user_id = $1", user_id)
            n_votes = await conn.fetchval(
                "SELECT count(*) FROM feedback WHERE user_id = $1"
                " OR prediction_id IN (SELECT id FROM predictions WHERE user_id = $1)", user_id)
            await conn.execute("DELETE FROM feedback WHERE user_id = $1", user_id)
            # Cascades to every vote on them and to their windows and audio, in this transaction.
            n_predictions = _count(await conn.execute("DELETE FROM predictions WHERE user_id = $1", user_id))
        return n_predictions, n_votes

    # -- retraining data ----------------------------------------------------

    async def corrections(self) -> list[feedback.Correction]:
        rows = await self._pool.fetch(
            "SELECT p.id, p.user_id, p.file_sha256, p.genre, f.user_id, f.vote, f.corrected_genre"
            " FROM predictions p JOIN feedback f ON f.prediction_id = p.id"
            " WHERE p.sound = 'music'"
            " AND EXISTS (SELECT 1 FROM prediction_files w WHERE w.prediction_id = p.id AND w.kind = 'windows')"
            " ORDER BY p.id, f.updated_at, f.seq"
        )
        return feedback.corrections(base.rated(rows))

