"""SQLite storage for genrebot: predictions, feedback votes, models.

Discord-free and fully testable. One ``Storage`` owns one aiosqlite
connection; every write runs in its own ``BEGIN IMMEDIATE`` transaction and
is committed before the method returns. Feature windows live next to the
database as ``<data_dir>/windows/<prediction id>.npz``; raw audio is never
stored.

Schema changes are numbered SQL files (``NNN_name.sql``) applied in order,
each in one transaction, with the number recorded in ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Sequence

import aiosqlite
import numpy as np

from genrebot.errors import StorageError

__all__ = [
    "Correction",
    "ModelRow",
    "Prediction",
    "Stats",
    "Storage",
    "StorageError",
    "VOTES",
    "default_migrations_dir",
    "load_migrations",
    "load_windows",
]

log = logging.getLogger(__name__)

VOTES = frozenset({"right", "wrong"})
WINDOWS_DIR = "windows"
AUDIO_DIR = "audio"
MANIFEST_NAME = "MANIFEST.csv"
MANIFEST_HEADER = ("path", "genre", "group", "source")


# ---------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class Prediction:
    """One classified upload. ``windows_path`` is absolute, or None if not kept."""

    id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    interaction_id: int | None
    created_at: str
    file_name: str
    file_sha256: str
    duration_s: float
    model_version: str
    genre: str
    confidence: float
    top_k: tuple[tuple[str, float], ...]
    windows_path: Path | None


@dataclass(frozen=True)
class ModelRow:
    """A trained model known to the bot."""

    version: str
    created_at: str
    path: str
    metrics: dict[str, Any]
    is_live: bool
    note: str


@dataclass(frozen=True)
class Stats:
    """Counts for ``/stats``; ``feedback_accuracy`` is None without feedback."""

    n_predictions: int
    n_votes_right: int
    n_votes_wrong: int
    n_corrections: int
    n_predictions_with_feedback: int
    feedback_accuracy: float | None
    live_model_version: str | None


@dataclass(frozen=True)
class Correction:
    """One labelled example for retraining; ``source`` is 'corrected' or 'confirmed'."""

    prediction_id: int
    label: str
    windows_path: Path
    source: str


# ---------------------------------------------------------------------------
# Migrations


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file, already split into statements."""

    number: int
    name: str
    statements: tuple[str, ...]


_MIGRATION_FILE = re.compile(r"^(\d+)_[^/\\]+\.sql$")
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_TRANSACTION_WORDS = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def default_migrations_dir() -> Path:
    """The SQLite migrations shipped inside the package."""
    return Path(__file__).resolve().parent / "migrations" / "sqlite"


def split_statements(script: str) -> list[str]:
    """Split an SQL script into single statements (trigger bodies stay whole)."""
    pieces, start = [], 0
    for i, ch in enumerate(script):
        if ch == ";" and sqlite3.complete_statement(script[start : i + 1]):
            pieces.append(script[start : i + 1])
            start = i + 1
    pieces.append(script[start:])
    statements = []
    for piece in pieces:
        body = _LEADING_COMMENTS.sub("", piece).strip()
        if body.strip(";").strip():
            statements.append(body)
    return statements


def load_migrations(directory: Path) -> list[Migration]:
    """Read ``NNN_name.sql`` files from ``directory``, numbered 1..N without gaps."""
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
        statements = split_statements(path.read_text(encoding="utf-8"))
        for statement in statements:
            first_word = statement.split(None, 1)[0].rstrip(";").upper()
            if first_word in _TRANSACTION_WORDS:
                raise StorageError(f"{path.name}: no {first_word} in migrations; each file runs in one transaction")
        migrations.append(Migration(number, path.stem, tuple(statements)))
    return migrations


# ---------------------------------------------------------------------------
# Files


def _utcnow() -> str:
    """ISO-8601 UTC with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_windows_tmp(directory: Path, windows: np.ndarray, feature_config: dict | None) -> Path:
    """Write windows + feature config to a fsynced temp .npz in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pending-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(
                f,
                windows=np.asarray(windows).astype(np.float32),
                feature_config=np.array(json.dumps(feature_config)),
            )
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def _publish(tmp: Path, final: Path) -> None:
    """Atomically move a finished temp file into place."""
    os.replace(tmp, final)
    _fsync_dir(final.parent)


def _unlink_all(paths: Iterable[Path]) -> None:
    for path in paths:
        with suppress(FileNotFoundError):
            path.unlink()


def load_windows(path: Path) -> tuple[np.ndarray, dict | None]:
    """Read a windows file written by ``record_prediction``: (windows, feature_config)."""
    with np.load(path) as npz:
        return npz["windows"], json.loads(str(npz["feature_config"]))


def _check_label(genre: str) -> str:
    """A genre must be usable as a folder name in an export."""
    label = genre.strip() if isinstance(genre, str) else ""
    if not label or label in (".", "..") or any(c in label for c in "/\\\0") or len(label) > 100:
        raise ValueError(f"not a usable genre label: {genre!r}")
    return label


def _check_vote(vote: str) -> None:
    if vote not in VOTES:
        raise ValueError(f"vote must be 'right' or 'wrong', not {vote!r}")


# ---------------------------------------------------------------------------
# Storage


_PREDICTION_COLUMNS = (
    "id, user_id, guild_id, channel_id, message_id, interaction_id, created_at, file_name,"
    " file_sha256, duration_s, model_version, genre, confidence, top_k, windows_path"
)


class Storage:
    """Async access to the bot's SQLite database and data folder.

    Use ``store = await Storage.open(db, data)`` then ``await store.close()``, or
    ``async with await Storage.open(db, data) as store: ...``.
    """

    def __init__(self, db: aiosqlite.Connection, db_path: Path, data_dir: Path) -> None:
        self._db = db
        self.db_path = db_path
        self.data_dir = data_dir
        # One connection, so writes are serialised here: two coroutines must not
        # interleave statements inside one BEGIN ... COMMIT.
        self._write_lock = asyncio.Lock()

    # -- lifecycle ----------------------------------------------------------

    @classmethod
    async def open(cls, db_path: Path, data_dir: Path, migrations_dir: Path | None = None) -> "Storage":
        """Connect, set pragmas, bring the schema up to date."""
        db_path, data_dir = Path(db_path), Path(data_dir)
        migrations = load_migrations(Path(migrations_dir) if migrations_dir else default_migrations_dir())
        db_path.parent.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit BEGINs; transactions are explicit below.
        db = await aiosqlite.connect(db_path, isolation_level=None)
        store = cls(db, db_path, data_dir)
        try:
            db.row_factory = aiosqlite.Row
            mode = (await store._fetchone("PRAGMA journal_mode=WAL"))[0]
            if mode.lower() != "wal":
                log.warning("journal_mode is %s, not wal", mode)
            await db.execute("PRAGMA busy_timeout=5000")
            # In WAL mode synchronous=NORMAL loses nothing on a process crash
            # (SIGKILL, OOM): a commit is in the WAL file once COMMIT returns.
            # Only a power cut / OS crash may roll back the last few commits.
            await db.execute("PRAGMA synchronous=NORMAL")
            await store._migrate(migrations)
            await db.execute("PRAGMA foreign_keys=ON")
            if (await store._fetchone("PRAGMA foreign_keys"))[0] != 1:
                raise StorageError("this SQLite build cannot enforce foreign keys")
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        """Close the connection (waits for running statements)."""
        await self._db.close()

    async def __aenter__(self) -> "Storage":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def schema_version(self) -> int:
        """The number of the last applied migration."""
        return (await self._fetchone("PRAGMA user_version"))[0]

    async def _migrate(self, migrations: Sequence[Migration]) -> None:
        current = await self.schema_version()
        newest = migrations[-1].number
        if current > newest:
            raise StorageError(
                f"database schema version {current} is newer than this bot knows ({newest}); upgrade the bot"
            )
        pending = [m for m in migrations if m.number > current]
        if not pending:
            return
        # Foreign keys off while migrating (SQLite's recipe for table rebuilds:
        # a DROP TABLE must not cascade); checked before each commit instead.
        await self._db.execute("PRAGMA foreign_keys=OFF")
        for migration in pending:
            try:
                async with self._transaction() as db:
                    # Another process may have migrated while we waited for the lock.
                    if await self.schema_version() >= migration.number:
                        continue
                    for statement in migration.statements:
                        await db.execute(statement)
                    if await db.execute_fetchall("PRAGMA foreign_key_check"):
                        raise StorageError("foreign key violations after migration")
                    await db.execute(f"PRAGMA user_version = {migration.number:d}")
            except (sqlite3.Error, StorageError) as e:
                raise StorageError(f"migration {migration.name} failed, database left at version "
                                   f"{await self.schema_version()}: {e}") from e
            log.info("applied migration %s", migration.name)

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

    def _abs(self, relative: str | None) -> Path | None:
        return self.data_dir / relative if relative else None

    def _prediction(self, row: sqlite3.Row) -> Prediction:
        return Prediction(
            id=row["id"],
            user_id=row["user_id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            message_id=row["message_id"],
            interaction_id=row["interaction_id"],
            created_at=row["created_at"],
            file_name=row["file_name"],
            file_sha256=row["file_sha256"],
            duration_s=row["duration_s"],
            model_version=row["model_version"],
            genre=row["genre"],
            confidence=row["confidence"],
            top_k=tuple((str(label), float(p)) for label, p in json.loads(row["top_k"])),
            windows_path=self._abs(row["windows_path"]),
        )

    # -- predictions --------------------------------------------------------

    async def record_prediction(
        self,
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        interaction_id: int | None,
        file_name: str,
        file_sha256: str,
        duration_s: float,
        model_version: str,
        top_k: list[tuple[str, float]],
        windows: np.ndarray | None,
        feature_config: dict | None,
    ) -> int:
        """Store a prediction (and its feature windows, never audio); return its id."""
        ranked = sorted(((str(label), float(p)) for label, p in top_k), key=lambda lp: -lp[1])
        if not ranked:
            raise ValueError("top_k is empty")
        genre, confidence = ranked[0]
        if windows is not None and feature_config is None:
            raise ValueError("windows need the feature_config they were made with")
        windows_dir = self.data_dir / WINDOWS_DIR
        # Compress outside the write lock; publish under the final name inside it.
        tmp = (
            await asyncio.to_thread(_write_windows_tmp, windows_dir, windows, feature_config)
            if windows is not None
            else None
        )
        final: Path | None = None
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "INSERT INTO predictions (user_id, guild_id, channel_id, interaction_id, created_at,"
                    " file_name, file_sha256, duration_s, model_version, genre, confidence, top_k)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, guild_id, channel_id, interaction_id, _utcnow(), file_name, file_sha256,
                     float(duration_s), model_version, genre, confidence, json.dumps(ranked)),
                )
                prediction_id = cursor.lastrowid
                if tmp is not None:
                    relative = f"{WINDOWS_DIR}/{prediction_id}.npz"
                    final = self.data_dir / relative
                    await asyncio.to_thread(_publish, tmp, final)
                    await db.execute("UPDATE predictions SET windows_path = ? WHERE id = ?", (relative, prediction_id))
        except BaseException:
            _unlink_all(p for p in (tmp, final) if p is not None)
            raise
        return prediction_id

    async def attach_message(self, prediction_id: int, message_id: int) -> None:
        """Remember the bot's reply message, so reactions find the prediction."""
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "UPDATE predictions SET message_id = ? WHERE id = ?", (message_id, prediction_id)
                )
                if cursor.rowcount == 0:
                    raise StorageError(f"no prediction {prediction_id}")
        except sqlite3.IntegrityError as e:
            raise StorageError(f"message {message_id} already belongs to another prediction") from e

    async def get_prediction(self, prediction_id: int) -> Prediction | None:
        row = await self._fetchone(f"SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE id = ?", (prediction_id,))
        return self._prediction(row) if row else None

    async def prediction_by_message(self, message_id: int) -> Prediction | None:
        row = await self._fetchone(
            f"SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE message_id = ?", (message_id,)
        )
        return self._prediction(row) if row else None

    # -- feedback -----------------------------------------------------------

    async def _upsert_feedback(self, prediction_id: int, user_id: int, vote: str, genre: str | None) -> None:
        now = _utcnow()
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

    async def set_vote(self, prediction_id: int, user_id: int, vote: str) -> None:
        """Record ``vote`` ('right'/'wrong'), replacing this user's earlier vote."""
        _check_vote(vote)
        await self._upsert_feedback(prediction_id, user_id, vote, None)

    async def set_correction(self, prediction_id: int, user_id: int, genre: str) -> None:
        """Record a 'wrong' vote naming the right genre (replaces the user's vote)."""
        await self._upsert_feedback(prediction_id, user_id, "wrong", _check_label(genre))

    async def retract_vote(self, prediction_id: int, user_id: int, vote: str) -> bool:
        """Delete the user's vote only if it is still ``vote``; True if deleted.

        A stale reaction removal then cannot erase a newer opposite vote.
        """
        _check_vote(vote)
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM feedback WHERE prediction_id = ? AND user_id = ? AND vote = ?",
                (prediction_id, user_id, vote),
            )
            return cursor.rowcount > 0

    async def stats(self) -> Stats:
        """Counts over all predictions and feedback (one consistent read)."""
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
              (SELECT version FROM models WHERE is_live = 1)
            """
        )
        n_pred, right, wrong, corrections, with_feedback, majority_right, live = tuple(row)
        return Stats(
            n_predictions=n_pred,
            n_votes_right=right,
            n_votes_wrong=wrong,
            n_corrections=corrections,
            n_predictions_with_feedback=with_feedback,
            feedback_accuracy=majority_right / with_feedback if with_feedback else None,
            live_model_version=live,
        )

    # -- models -------------------------------------------------------------

    @staticmethod
    def _model(row: sqlite3.Row) -> ModelRow:
        return ModelRow(
            version=row["version"],
            created_at=row["created_at"],
            path=row["path"],
            metrics=json.loads(row["metrics"]),
            is_live=bool(row["is_live"]),
            note=row["note"],
        )

    async def record_model(self, version: str, path: str, metrics: dict, note: str = "") -> None:
        """Register a trained model (not live yet)."""
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO models (version, created_at, path, metrics, note) VALUES (?, ?, ?, ?, ?)",
                    (version, _utcnow(), str(path), json.dumps(metrics), note),
                )
        except sqlite3.IntegrityError as e:
            raise StorageError(f"model version {version!r} is already recorded") from e

    async def set_live_model(self, version: str) -> None:
        """Make ``version`` the one live model (one transaction)."""
        async with self._transaction() as db:
            if not await db.execute_fetchall("SELECT 1 FROM models WHERE version = ?", (version,)):
                raise StorageError(f"unknown model version {version!r}")
            await db.execute("UPDATE models SET is_live = 0 WHERE is_live = 1 AND version <> ?", (version,))
            await db.execute("UPDATE models SET is_live = 1 WHERE version = ?", (version,))

    async def live_model(self) -> ModelRow | None:
        row = await self._fetchone("SELECT * FROM models WHERE is_live = 1")
        return self._model(row) if row else None

    async def list_models(self) -> list[ModelRow]:
        """All models, oldest first."""
        rows = await self._db.execute_fetchall("SELECT * FROM models ORDER BY created_at, version")
        return [self._model(row) for row in rows]

    # -- privacy ------------------------------------------------------------

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        """Delete a user's predictions (with window files and all votes on them)
        and the user's votes elsewhere.

        Returns (predictions_deleted, votes_deleted); votes_deleted counts every
        feedback row removed, including other users' votes on the deleted predictions.
        """
        async with self._transaction() as db:
            rows = await db.execute_fetchall("SELECT id, windows_path FROM predictions WHERE user_id = ?", (user_id,))
            files = [self.data_dir / path for _, path in rows if path is not None]
            audio = self.data_dir / AUDIO_DIR  # uploads kept with GENREBOT_KEEP_AUDIO=1, named by id
            if audio.is_dir():
                files += [p for pid, _ in rows for p in audio.glob(f"{pid}.*")]
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
        # Files go only after the rows are gone for good.
        await asyncio.to_thread(_unlink_all, files)
        return n_predictions, n_votes

    # -- retraining data ----------------------------------------------------

    async def corrections(self) -> list[Correction]:
        """The correction dataset: one label per prediction with windows and a clear majority.

        'wrong' outnumbers 'right' and someone named a genre -> the most named
        genre ('corrected'; ties go to the genre named earliest). 'right'
        outnumbers 'wrong' -> the predicted genre ('confirmed'). Else skipped.
        """
        rows = await self._db.execute_fetchall(
            "SELECT p.id, p.genre, p.windows_path, f.vote, f.corrected_genre"
            " FROM predictions p JOIN feedback f ON f.prediction_id = p.id"
            " WHERE p.windows_path IS NOT NULL"
            " ORDER BY p.id, f.updated_at, f.rowid"
        )
        grouped: dict[int, list[sqlite3.Row]] = {}
        for row in rows:
            grouped.setdefault(row["id"], []).append(row)
        result = []
        for prediction_id, votes in grouped.items():
            right = sum(v["vote"] == "right" for v in votes)
            wrong = len(votes) - right
            # Counter keeps first-seen order and most_common() is stable: ties -> earliest.
            named = Counter(v["corrected_genre"] for v in votes if v["corrected_genre"])
            if wrong > right and named:
                label, source = named.most_common(1)[0][0], "corrected"
            elif right > wrong:
                label, source = votes[0]["genre"], "confirmed"
            else:
                continue
            result.append(Correction(prediction_id, label, self.data_dir / votes[0]["windows_path"], source))
        return result

    async def export_corrections(self, out_dir: Path) -> int:
        """Copy the correction dataset to ``<out_dir>/<label>/pred-<id>.npz`` + MANIFEST.csv.

        ``out_dir`` must be missing or empty (no stale examples mixed in).
        Returns the number of examples written.
        """
        out_dir = Path(out_dir)
        if out_dir.exists() and any(out_dir.iterdir()):
            raise StorageError(f"{out_dir} is not empty")
        items = await self.corrections()
        return await asyncio.to_thread(_write_export, out_dir, items)


def _write_export(out_dir: Path, items: Sequence[Correction]) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        if not item.windows_path.is_file():
            log.warning("windows file of prediction %d is missing; skipped", item.prediction_id)
            continue
        label = _check_label(item.label)
        group = f"pred-{item.prediction_id}"
        (out_dir / label).mkdir(exist_ok=True)
        shutil.copyfile(item.windows_path, out_dir / label / f"{group}.npz")
        rows.append((f"{label}/{group}.npz", label, group, item.source))
    with open(out_dir / MANIFEST_NAME, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_HEADER)
        writer.writerows(rows)
    return len(rows)
