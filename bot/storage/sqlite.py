"""SQLite storage (aiosqlite): the embedded default, for one bot process on one machine.

One :class:`SqliteStorage` owns one connection; every write runs in its own ``BEGIN IMMEDIATE``
transaction and is committed before the method returns (WAL mode, ``synchronous=NORMAL``: a
killed process loses nothing acknowledged; only a power cut may roll back the last commits).
Feature windows and kept uploads are files in the data folder (:mod:`bot.storage.files`),
recorded in the prediction's row. The schema version is ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiosqlite

from genre_model.features import save_windows
from genre_model.predict import Prediction
from bot import feedback
from bot.errors import StorageError
from bot.storage import base
from bot.storage.base import (
    ModelRow, RetrainRow, Stats, StorageBase, StoredPrediction, Upload, Vote, audio_suffix, check_retrain_state,
    check_vote, iso,
)
from bot.storage.files import AUDIO_FOLDER, WINDOWS_FOLDER, FolderStore, discard
from bot.storage.migrate import Migration, load_migrations, migrate, migrations_dir, split_sqlite

log = logging.getLogger(__name__)

_PREDICTION_COLUMNS = (
    "id, user_id, guild_id, channel_id, message_id, interaction_id, created_at, file_name,"
    " file_sha256, duration_s, model_version, genre, confidence, top_k, windows_path, audio_path, sound"
)


def _now() -> str:
    return iso(base.utcnow())


class SqliteStorage(StorageBase):
    """Async access to the bot's SQLite database and data folder (implements :class:`Storage`).

    ``store = await SqliteStorage.open(db, data)`` ... ``await store.close()``, or
    ``async with await SqliteStorage.open(db, data) as store: ...``.
    """

    errors = (sqlite3.Error,)
    #: Errors that mean "the database cannot be used right now" (locked past busy_timeout, unopenable,
    #: disk I/O): worth retrying, unlike a constraint violation.
    unavailable = (sqlite3.OperationalError,)

    def __init__(self, db: aiosqlite.Connection, db_path: Path, data_dir: Path) -> None:
        self._db = db
        self.db_path = db_path
        self.data_dir = data_dir
        self.window_files = FolderStore(data_dir, WINDOWS_FOLDER)
        self.audio_files = FolderStore(data_dir, AUDIO_FOLDER)
        # One connection, so writes are serialised here: two coroutines must not
        # interleave statements inside one BEGIN ... COMMIT.
        self._write_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------

    @classmethod
    async def open(cls, db_path: Path, data_dir: Path, migrations: Path | None = None) -> "SqliteStorage":
        """Connect, set pragmas, bring the schema up to date (``migrations``: another folder, for tests)."""
        db_path, data_dir = Path(db_path), Path(data_dir)
        steps = load_migrations(Path(migrations) if migrations else migrations_dir("sqlite"), split_sqlite)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit BEGINs; transactions are explicit below.
        db = await aiosqlite.connect(db_path, isolation_level=None)
        store = cls(db, db_path, data_dir)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA busy_timeout=5000")
            mode = await store._switch_to_wal()
            if mode.lower() != "wal":
                log.warning("journal_mode is %s, not wal", mode)
            # In WAL mode synchronous=NORMAL loses nothing on a process crash
            # (SIGKILL, OOM): a commit is in the WAL file once COMMIT returns.
            # Only a power cut / OS crash may roll back the last few commits.
            await db.execute("PRAGMA synchronous=NORMAL")
            # Foreign keys off while migrating (SQLite's recipe for table rebuilds:
            # a DROP TABLE must not cascade); checked before each commit instead.
            await db.execute("PRAGMA foreign_keys=OFF")
            await migrate(store, steps)
            await db.execute("PRAGMA foreign_keys=ON")
            if (await store._fetchone("PRAGMA foreign_keys"))[0] != 1:
                raise StorageError("this SQLite build cannot enforce foreign keys")
        except BaseException:
            await db.close()
            raise
        return store

    async def _switch_to_wal(self, attempts: int = 100) -> str:
        """``PRAGMA journal_mode=WAL``, retried: on a new database, processes opening it together
        race to switch it, and SQLite answers "database is locked" at once (without waiting out
        busy_timeout: waiting could deadlock) to one that holds a read lock while another migrates."""
        for attempt in range(attempts):
            try:
                return (await self._fetchone("PRAGMA journal_mode=WAL"))[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        """Close the connection (waits for running statements)."""
        await self._db.close()

    async def schema_version(self) -> int:
        return (await self._fetchone("PRAGMA user_version"))[0]

    async def apply_migration(self, migration: Migration) -> bool:
        async with self._transaction() as db:
            # Another process may have migrated while we waited for the lock.
            if await self.schema_version() >= migration.number:
                return False
            for statement in migration.statements:
                await db.execute(statement)
            if await db.execute_fetchall("PRAGMA foreign_key_check"):
                raise StorageError("foreign key violations after migration")
            await db.execute(f"PRAGMA user_version = {migration.number:d}")
        return True

    # -- helpers ------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        async with self._write_lock:
            db = self._db
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    try:
                        await db.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("rollback failed")
                raise

    async def _fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    @staticmethod
    def _prediction(row: sqlite3.Row) -> StoredPrediction:
        return StoredPrediction(
            id=row["id"], user_id=row["user_id"], guild_id=row["guild_id"], channel_id=row["channel_id"],
            message_id=row["message_id"], interaction_id=row["interaction_id"], created_at=row["created_at"],
            file_name=row["file_name"], file_sha256=row["file_sha256"], duration_s=row["duration_s"],
            model_version=row["model_version"], genre=row["genre"], confidence=row["confidence"],
            top_k=tuple((str(label), float(p)) for label, p in json.loads(row["top_k"])),
            has_windows=row["windows_path"] is not None, has_audio=row["audio_path"] is not None,
            sound=row["sound"],
        )

    # -- predictions --------------------------------------------------------

    async def record_prediction(self, upload: Upload, prediction: Prediction, *, keep_windows: bool,
                                keep_audio: bool) -> int:
        """Store a prediction, its feature windows and (if asked) the upload; return its id."""
        row = base.prediction_row(prediction, keep_windows)
        # Compress and write outside the write lock; publish under the final names inside it.
        staged: dict[str, Path] = {}
        published: list[Path] = []
        try:
            if row.windows is not None:
                staged["windows"] = await asyncio.to_thread(
                    self.window_files.stage, lambda f: save_windows(f, row.windows, row.feature_config))
            if keep_audio:
                staged["audio"] = await asyncio.to_thread(self.audio_files.stage, lambda f: f.write(upload.data))
            async with self._transaction() as db:
                cursor = await db.execute(
                    "INSERT INTO predictions (user_id, guild_id, channel_id, interaction_id, created_at,"
                    " file_name, file_sha256, duration_s, model_version, genre, confidence, top_k, sound)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (upload.user_id, upload.guild_id, upload.channel_id, upload.interaction_id, _now(),
                     upload.file_name, upload.file_sha256, row.duration_s, row.model_version, row.genre,
                     row.confidence, json.dumps(row.top_k), row.sound),
                )
                prediction_id = cursor.lastrowid
                for column, store, suffix in (("windows", self.window_files, ".npz"),
                                              ("audio", self.audio_files, audio_suffix(upload.file_name))):
                    if column in staged:
                        name = await asyncio.to_thread(store.publish, staged.pop(column), prediction_id, suffix)
                        published.append(store.path(name))
                        await db.execute(f"UPDATE predictions SET {column}_path = ? WHERE id = ?",
                                         (name, prediction_id))
        except BaseException:
            discard([*staged.values(), *published])
            raise
        return prediction_id

    async def attach_message(self, prediction_id: int, message_id: int) -> None:
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "UPDATE predictions SET message_id = ? WHERE id = ?", (message_id, prediction_id)
                )
                if cursor.rowcount == 0:
                    raise StorageError(f"no prediction {prediction_id}")
        except sqlite3.IntegrityError as e:
            raise StorageError(f"message {message_id} already belongs to another prediction") from e

    async def get_prediction(self, prediction_id: int) -> StoredPrediction | None:
        row = await self._fetchone(f"SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE id = ?", (prediction_id,))
        return self._prediction(row) if row else None

    async def prediction_by_message(self, message_id: int) -> StoredPrediction | None:
        row = await self._fetchone(
            f"SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE message_id = ?", (message_id,)
        )
        return self._prediction(row) if row else None

    async def _windows_file(self, prediction_id: int) -> bytes | None:
        row = await self._fetchone("SELECT windows_path FROM predictions WHERE id = ?", (prediction_id,))
        if row is None or row[0] is None:
            return None
        try:
            return await asyncio.to_thread(self.window_files.read, row[0])
        except FileNotFoundError:
            return None

    async def audio(self, prediction_id: int) -> tuple[bytes, str] | None:
        row = await self._fetchone("SELECT audio_path FROM predictions WHERE id = ?", (prediction_id,))
        if row is None or row[0] is None:
            return None
        return await asyncio.to_thread(self.audio_files.read, row[0]), Path(row[0]).suffix

    # -- feedback -----------------------------------------------------------

    async def _upsert_feedback(self, prediction_id: int, user_id: int, vote: str, genre: str | None) -> None:
        now = _now()
        # A 'right' vote clears a correction; a bare 'wrong' vote keeps one.
        sql = (
            "INSERT INTO feedback (prediction_id, user_id, vote, corrected_genre, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (prediction_id, user_id) DO UPDATE SET"
            "   vote = excluded.vote,"
            "   corrected_genre = CASE WHEN excluded.vote = 'right' THEN NULL"
            "                          ELSE coalesce(excluded.corrected_genre, feedback.corrected_genre) END,"
            "   updated_at = excluded.updated_at"
        )
        try:
            async with self._transaction() as db:
                await db.execute(sql, (prediction_id, user_id, vote, genre, now, now))
        except sqlite3.IntegrityError as e:
            raise StorageError(f"cannot vote on prediction {prediction_id}: {e}") from e

    async def retract_vote(self, prediction_id: int, user_id: int, vote: str) -> bool:
        check_vote(vote)
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM feedback WHERE prediction_id = ? AND user_id = ? AND vote = ?",
                (prediction_id, user_id, vote),
            )
            return cursor.rowcount > 0

    async def votes(self, prediction_id: int) -> list[Vote]:
        rows = await self._db.execute_fetchall(
            "SELECT user_id, vote, corrected_genre FROM feedback WHERE prediction_id = ?"
            " ORDER BY updated_at, rowid", (prediction_id,))
        return [Vote(*row) for row in rows]

    async def stats(self) -> Stats:
        row = await self._fetchone(
            """
            SELECT
              (SELECT count(*) FROM predictions),
              (SELECT count(*) FROM feedback WHERE vote = 'right'),
              (SELECT count(*) FROM feedback WHERE vote = 'wrong'),
              (SELECT count(*) FROM feedback WHERE corrected_genre IS NOT NULL),
              (SELECT count(DISTINCT prediction_id) FROM feedback),
              (SELECT count(*) FROM (SELECT 1 FROM feedback GROUP BY prediction_id
                                     HAVING sum(vote = 'right') > sum(vote = 'wrong'))),
              (SELECT version FROM models WHERE is_live = 1),
              (SELECT count(*) FROM predictions WHERE sound <> 'music')
            """
        )
        return base.stats_from_row(row)

    # -- models -------------------------------------------------------------

    @staticmethod
    def _model(row: sqlite3.Row) -> ModelRow:
        return ModelRow(version=row["version"], created_at=row["created_at"], path=row["path"],
                        metrics=json.loads(row["metrics"]), is_live=bool(row["is_live"]), note=row["note"])

    async def record_model(self, version: str, path: str, metrics: dict, note: str = "") -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO models (version, created_at, path, metrics, note) VALUES (?, ?, ?, ?, ?)",
                    (version, _now(), str(path), json.dumps(metrics), note),
                )
        except sqlite3.IntegrityError as e:
            raise StorageError(f"model version {version!r} is already recorded") from e

    async def set_live_model(self, version: str) -> None:
        async with self._transaction() as db:
            if not await db.execute_fetchall("SELECT 1 FROM models WHERE version = ?", (version,)):
                raise StorageError(f"unknown model version {version!r}")
            await db.execute("UPDATE models SET is_live = 0 WHERE is_live = 1 AND version <> ?", (version,))
            await db.execute("UPDATE models SET is_live = 1 WHERE version = ?", (version,))

    async def live_model(self) -> ModelRow | None:
        row = await self._fetchone("SELECT * FROM models WHERE is_live = 1")
        return self._model(row) if row else None

    async def list_models(self) -> list[ModelRow]:
        rows = await self._db.execute_fetchall("SELECT * FROM models ORDER BY created_at, version")
        return [self._model(row) for row in rows]

    # -- retrains and cooldowns -------------------------------------------

    async def claim_retrain(self, owner: str, requested_by: int | None, channel_id: int | None) -> int | None:
        now = _now()
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "INSERT INTO retrains (state, owner, requested_by, channel_id, started_at, heartbeat_at)"
                    " VALUES ('running', ?, ?, ?, ?, ?)", (owner, requested_by, channel_id, now, now))
                return cursor.lastrowid
        except sqlite3.IntegrityError:  # retrains_one_running: another retrain holds the lock
            return None

    async def running_retrain(self) -> RetrainRow | None:
        row = await self._fetchone("SELECT * FROM retrains WHERE state = 'running'")
        if row is None:
            return None
        age = (base.utcnow() - dt.datetime.fromisoformat(row["heartbeat_at"])).total_seconds()
        return RetrainRow(row["id"], row["state"], row["owner"], row["requested_by"], row["channel_id"],
                          row["message_id"], age, row["detail"])

    async def retrain_heartbeat(self, retrain_id: int) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute("UPDATE retrains SET heartbeat_at = ? WHERE id = ? AND state = 'running'",
                                      (_now(), retrain_id))
            return cursor.rowcount > 0

    async def attach_retrain_message(self, retrain_id: int, message_id: int) -> None:
        async with self._transaction() as db:
            await db.execute("UPDATE retrains SET message_id = ? WHERE id = ?", (message_id, retrain_id))

    async def finish_retrain(self, retrain_id: int, state: str, detail: str = "") -> bool:
        check_retrain_state(state)
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE retrains SET state = ?, detail = ?, finished_at = ? WHERE id = ? AND state = 'running'",
                (state, detail, _now(), retrain_id))
            return cursor.rowcount > 0

    async def take_cooldown(self, user_id: int, seconds: float) -> float:
        async with self._transaction() as db:
            # The clock is read once the write lock is held, so a caller queued behind the one that
            # started the pause never computes a wait longer than the pause itself.
            now = time.time()
            async with db.execute(
                "INSERT INTO cooldowns (user_id, until) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE"
                " SET until = excluded.until WHERE cooldowns.until <= ?"
                " RETURNING until",
                (user_id, now + seconds, now)) as cursor:
                granted = await cursor.fetchall()
            if granted:
                return 0.0
            row = await db.execute_fetchall("SELECT until FROM cooldowns WHERE user_id = ?", (user_id,))
        return min(seconds, max(0.0, row[0][0] - now)) if row else 0.0

    async def release_cooldown(self, user_id: int) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM cooldowns WHERE user_id = ?", (user_id,))

    # -- privacy ------------------------------------------------------------

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        async with self._transaction() as db:
            await db.execute("DELETE FROM cooldowns WHERE user_id = ?", (user_id,))
            rows = await db.execute_fetchall(
                "SELECT windows_path, audio_path FROM predictions WHERE user_id = ?", (user_id,))
            (n_votes,) = (
                await db.execute_fetchall(
                    "SELECT count(*) FROM feedback WHERE user_id = ?"
                    " OR prediction_id IN (SELECT id FROM predictions WHERE user_id = ?)",
                    (user_id, user_id),
                )
            )[0]
            await db.execute("DELETE FROM feedback WHERE user_id = ?", (user_id,))
            cursor = await db.execute("DELETE FROM predictions WHERE user_id = ?", (user_id,))  # cascades
            n_predictions = cursor.rowcount
        # Files go only after the rows are gone for good (a crash in between leaves unreferenced
        # files named by ids that are never reused, not rows pointing at missing files).
        await asyncio.to_thread(self.window_files.delete, [w for w, _ in rows if w])
        await asyncio.to_thread(self.audio_files.delete, [a for _, a in rows if a])
        return n_predictions, n_votes

    # -- retraining data ----------------------------------------------------

    async def corrections(self) -> list[feedback.Correction]:
        rows = await self._db.execute_fetchall(
            "SELECT p.id, p.user_id, p.file_sha256, p.genre, f.user_id, f.vote, f.corrected_genre"
            " FROM predictions p JOIN feedback f ON f.prediction_id = p.id"
            " WHERE p.windows_path IS NOT NULL AND p.sound = 'music'"
            " ORDER BY p.id, f.updated_at, f.rowid"
        )
        return feedback.corrections(base.rated(rows))

