"""The storage test-suite: every test that uses ``store`` or ``storage_backend`` runs against both backends,
SQLite files and a real PostgreSQL server started for the session (no Discord, no model)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
import pytest_asyncio

from genre_model.features import read_windows
from bot.errors import StorageError
from bot.storage import Stats, Storage, Upload, Vote, base
from genre_model.features import FeatureConfig
from genre_model.predict import Prediction
from bot.storage.migrate import load_migrations, migrations_dir, split_postgres, split_sqlite

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parent.parent
#: The feature settings stored with the test windows (storage keeps them with the windows, as a dict).
FEATURES = FeatureConfig(n_mels=128, window_frames=128, deltas=False)
_seeds = itertools.count(1)


@pytest_asyncio.fixture
async def store(storage_backend):
    s = await storage_backend.open()
    yield s
    await s.close()


def predicted(top: Sequence[tuple[str, float]] = (("rock", 0.7), ("pop", 0.2), ("jazz", 0.1)), *,
              windows: np.ndarray | None = None, features: FeatureConfig | None = FEATURES, sound: str = "music",
              duration_s: float = 31.5, model_version: str = "v1") -> Prediction:
    """A library prediction as a worker sends it back (no picture data: storage never keeps it)."""
    probabilities = dict(top)
    return Prediction(genre=max(probabilities, key=probabilities.get) if sound == "music" else None,
                      probabilities=probabilities, timeline=[], duration_s=duration_s, analysed_s=duration_s,
                      model_version=model_version,
                      windows=np.zeros((0, 128, 128, 2)) if windows is None else windows,
                      spectrogram=np.zeros((0, 0)), sound=sound, features=features)


def uploaded(user_id: int = 1, *, data: bytes = b"song", file_name: str = "song.mp3", guild_id: int | None = 10,
             channel_id: int | None = 20, interaction_id: int | None = 30) -> Upload:
    return Upload(user_id, guild_id, channel_id, interaction_id, file_name, data)


async def add_prediction(store: Storage, user_id: int = 1, *, windows=True, top=("rock", 0.7),
                         data: bytes | None = None, audio: bool = False, file_name: str = "song.mp3",
                         sound: str = "music") -> int:
    """A prediction of its own file (unless ``data`` says otherwise) with its own windows."""
    rest = [("pop", 0.2), ("jazz", 0.1)]
    seed = next(_seeds)
    # every prediction gets its own windows: identical files would be one recording to the trainer
    prediction = predicted([top, *rest], windows=np.random.default_rng(seed).random((3, 128, 128, 2)), sound=sound)
    return await store.record_prediction(uploaded(user_id, data=data or f"file {seed}".encode(), file_name=file_name),
                                         prediction, keep_windows=windows, keep_audio=audio)


def newest(storage_backend) -> int:
    split = split_sqlite if storage_backend.name == "sqlite" else split_postgres
    return load_migrations(migrations_dir(storage_backend.name), split)[-1].number


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --- migrations --------------------------------------------------------------


async def test_fresh_db_migrates_and_reopen_is_noop(storage_backend):
    async with await storage_backend.open() as s:
        assert isinstance(s, Storage)
        assert await s.schema_version() == newest(storage_backend)
        await add_prediction(s)
    assert {"predictions", "feedback", "models"} <= await storage_backend.tables()
    async with await storage_backend.open() as s:
        assert await s.schema_version() == newest(storage_backend)
        assert (await s.stats()).n_predictions == 1


async def test_newer_database_is_refused(storage_backend):
    async with await storage_backend.open():
        pass
    await storage_backend.set_schema_version(newest(storage_backend) + 4)
    with pytest.raises(StorageError) as info:
        await storage_backend.open()
    assert str(info.value) == (
        f"database schema version {newest(storage_backend) + 4} is newer than this bot knows ({newest(storage_backend)}); "
        "upgrade the bot"
    )


async def test_failing_migration_rolls_back(storage_backend, tmp_path):
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_first.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (mig / "002_broken.sql").write_text(
        "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (1);\nTHIS IS NOT SQL;\n"
    )
    with pytest.raises(StorageError, match="002_broken.*left at version 1"):
        await storage_backend.open(mig)
    tables = await storage_backend.tables()
    assert "a" in tables and "b" not in tables
    assert await storage_backend.raw("SELECT count(*) FROM a") == [(0,)]
    # Fixing the file lets the next open finish the job.
    (mig / "002_broken.sql").write_text("CREATE TABLE b (y INTEGER);\n")
    async with await storage_backend.open(mig) as s:
        assert await s.schema_version() == 2


async def test_processes_starting_together_migrate_once(storage_backend):
    stores = await asyncio.gather(*(storage_backend.open() for _ in range(3)))
    try:
        assert [await s.schema_version() for s in stores] == [newest(storage_backend)] * 3
        await add_prediction(stores[0])
        assert (await stores[2].stats()).n_predictions == 1
    finally:
        for s in stores:
            await s.close()


async def test_predictions_from_before_the_sound_migration_are_music(storage_backend, tmp_path):
    """A database made before predictions had a sound: migrated, its predictions are music."""
    older = tmp_path / "older"
    older.mkdir()
    for path in sorted(migrations_dir(storage_backend.name).glob("*.sql")):
        if "_sound" in path.name:
            break
        (older / path.name).write_text(path.read_text())
    async with await storage_backend.open(older):
        pass
    await storage_backend.raw(
        "INSERT INTO predictions (user_id, created_at, file_name, file_sha256, duration_s, model_version, genre,"
        " confidence, top_k) VALUES (7, '2026-01-01T00:00:00+00:00', 'old.mp3', 'ab', 30.0, 'v0', 'rock', 0.9,"
        " '[[\"rock\", 0.9]]')")
    async with await storage_backend.open() as s:
        assert await s.schema_version() == newest(storage_backend)
        old = await s.get_prediction(1)
        assert old.sound == "music" and old.music and (old.user_id, old.genre) == (7, "rock")


async def test_postgres_database_from_the_old_numbering_migrates_in_step(pg_cluster, tmp_path):
    """Before the two histories were put in step, PostgreSQL's 002 was the sound column. Such a
    database is at version 2 with the column; opened now, it runs 003_sound as a no-op."""
    from storage_backends import PostgresBackend

    old = tmp_path / "old"
    old.mkdir()
    (old / "001_initial.sql").write_text((migrations_dir("postgres") / "001_initial.sql").read_text())
    (old / "002_sound.sql").write_text((migrations_dir("postgres") / "003_sound.sql").read_text())
    backend = PostgresBackend(tmp_path, await pg_cluster.create_database())
    try:
        async with await backend.open(old) as s:
            assert await s.schema_version() == 2
        async with await backend.open() as s:
            assert await s.schema_version() == newest(backend)
            pid = await add_prediction(s)
            assert (await s.get_prediction(pid)).sound == "music"
    finally:
        await pg_cluster.drop_database(backend.url)


async def test_migration_files_are_validated(tmp_path):
    mig = tmp_path / "m"
    mig.mkdir()
    (mig / "001_a.sql").write_text("CREATE TABLE a (x);")
    (mig / "003_c.sql").write_text("CREATE TABLE c (x);")
    with pytest.raises(StorageError, match="without gaps"):
        load_migrations(mig)
    (mig / "003_c.sql").unlink()
    (mig / "002_b.sql").write_text("BEGIN;\nCREATE TABLE b (x);\nCOMMIT;")
    with pytest.raises(StorageError, match="BEGIN"):
        load_migrations(mig)
    (mig / "002_b.sql").write_text("CREATE TABLE b (x);\n-- done\ncommit;")
    with pytest.raises(StorageError, match="COMMIT"):
        load_migrations(mig, split_postgres)


async def test_split_sqlite_keeps_triggers_and_strings():
    sql = textwrap.dedent(
        """
        -- header; with a semicolon
        CREATE TABLE t (x TEXT DEFAULT 'a;b');
        /* block; comment */
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN
            UPDATE t SET x = 'y;' WHERE rowid = new.rowid;
        END;
        -- trailing comment
        """
    )
    statements = split_sqlite(sql)
    assert len(statements) == 2
    assert statements[0].startswith("CREATE TABLE") and statements[1].endswith("END;")


async def test_split_postgres_keeps_function_bodies_strings_and_comments():
    sql = textwrap.dedent(
        """
        -- header; with a semicolon
        CREATE TABLE "odd;name" (x TEXT DEFAULT 'it''s; fine', y TEXT DEFAULT E'back\\'slash;');
        /* outer /* nested; */ still comment; */
        CREATE FUNCTION f() RETURNS trigger AS $body$
        BEGIN
            NEW.x := 'y;';
            RETURN NEW;
        END;
        $body$ LANGUAGE plpgsql;
        SELECT $$a;b$$, price$1 FROM "odd;name";
        """
    )
    statements = split_postgres(sql)
    assert [s.split()[0] for s in statements] == ["CREATE", "CREATE", "SELECT"]
    assert statements[1].endswith("LANGUAGE plpgsql;") and "RETURN NEW;" in statements[1]


async def test_packaged_migrations_are_the_top_level_folder_kept_in_step():
    """The top-level migrations/ folder is what the package ships (as bot.migrations), and both
    dialects' histories have the same numbers and names: NNN_name means one change everywhere."""
    histories = {}
    for name, split in (("sqlite", split_sqlite), ("postgres", split_postgres)):
        assert migrations_dir(name) == REPO / "migrations" / name
        histories[name] = [(m.number, m.name) for m in load_migrations(migrations_dir(name), split)]
    assert histories["sqlite"] == histories["postgres"]
    assert histories["sqlite"][0] == (1, "001_initial")


async def test_sqlite_pragmas(tmp_path):
    from bot.storage.sqlite import SqliteStorage

    async with await SqliteStorage.open(tmp_path / "bot.sqlite3", tmp_path / "data") as s:
        assert (await s._fetchone("PRAGMA journal_mode"))[0] == "wal"
        assert (await s._fetchone("PRAGMA foreign_keys"))[0] == 1
        assert (await s._fetchone("PRAGMA busy_timeout"))[0] == 5000
        assert (await s._fetchone("PRAGMA synchronous"))[0] == 1  # NORMAL


async def test_postgres_commits_synchronously_whatever_the_server_default(pg_cluster, tmp_path):
    from storage_backends import PostgresBackend

    storage_backend = PostgresBackend(tmp_path, await pg_cluster.create_database())
    database = storage_backend.url.rsplit("/", 1)[1]
    await storage_backend.raw(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    try:
        assert await storage_backend.raw("SHOW synchronous_commit") == [("off",)]  # what others would get
        async with await storage_backend.open() as s:
            async with s._pool.acquire() as conn:
                assert await conn.fetchval("SHOW synchronous_commit") == "on"
                assert await conn.fetchval("SHOW fsync") == "on"
    finally:
        await pg_cluster.drop_database(storage_backend.url)


async def test_postgres_url_password_never_shown(pg_cluster):
    from bot.storage.postgres import PostgresStorage, redact

    assert redact("postgresql://bot:s3cret@db.example:5432/genrebot") == "postgresql://bot:***@db.example:5432/genrebot"
    url = pg_cluster.url("no_such_database").replace("genrebot@", "genrebot:s3cret@")
    with pytest.raises(StorageError) as info:
        await PostgresStorage.open(url)
    assert "s3cret" not in str(info.value) and "no_such_database" in str(info.value)


# --- predictions -------------------------------------------------------------


async def test_prediction_round_trip_with_windows(storage_backend, store):
    windows = np.random.default_rng(0).random((4, 128, 128, 2))  # float64 in, float32 stored
    upload = uploaded(111, guild_id=None, channel_id=222, interaction_id=333, file_name="a b.flac", data=b"flac")
    pid = await store.record_prediction(
        upload, predicted([("jazz", 0.25), ("blues", 0.6), ("rock", 0.15)], windows=windows, duration_s=12.25,
                          model_version="v7"), keep_windows=True, keep_audio=False)
    p = await store.get_prediction(pid)
    assert p is not None and p.id == pid
    assert (p.user_id, p.guild_id, p.channel_id, p.interaction_id, p.message_id) == (111, None, 222, 333, None)
    assert (p.file_name, p.duration_s, p.model_version) == ("a b.flac", 12.25, "v7")
    assert p.file_sha256 == hashlib.sha256(b"flac").hexdigest() == upload.file_sha256
    assert (p.genre, p.confidence) == ("blues", 0.6)
    assert p.top_k == (("blues", 0.6), ("jazz", 0.25), ("rock", 0.15))
    assert p.created_at.endswith("+00:00")
    assert abs(dt.datetime.fromisoformat(p.created_at) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)
    assert p.has_windows and not p.has_audio
    loaded, config = await store.windows(pid)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, windows.astype(np.float32))
    assert FeatureConfig.from_dict(config) == FEATURES
    if storage_backend.name == "sqlite":  # a file named by the window store, recorded in the row
        path = storage_backend.data_dir / "windows" / f"{pid}.npz"
        assert await storage_backend.raw(f"SELECT windows_path FROM predictions WHERE id = {pid}") == [(f"windows/{pid}.npz",)]
        with np.load(path) as npz:  # the plain numpy view, no pickle needed
            assert set(npz.files) == {"windows", "feature_config"}
        assert files_under(storage_backend.data_dir) == [path], "no stray temp files"
    else:  # in the database, next to its row; nothing in the data folder
        assert await storage_backend.raw(f"SELECT kind, suffix FROM prediction_files WHERE prediction_id = {pid}") == [
            ("windows", ".npz")]
        assert files_under(storage_backend.data_dir) == []


async def test_prediction_without_windows(store):
    pid = await add_prediction(store, windows=False)
    p = await store.get_prediction(pid)
    assert not p.has_windows and await store.windows(pid) is None
    assert await store.get_prediction(pid + 100) is None


async def test_kept_audio_is_stored_with_the_prediction(storage_backend, store):
    pid = await add_prediction(store, data=b"ID3 fake mp3 bytes", audio=True, file_name="My Song.MP3")
    odd = await add_prediction(store, data=b"\x00\x01", audio=True, file_name="x.mp3;rm -rf ~")
    assert (await store.get_prediction(pid)).has_audio
    assert await store.audio(pid) == (b"ID3 fake mp3 bytes", ".mp3")
    assert await store.audio(odd) == (b"\x00\x01", ".bin")
    assert await store.audio(await add_prediction(store)) is None
    if storage_backend.name == "sqlite":  # named by the audio store: audio/<id><suffix>
        assert (storage_backend.data_dir / "audio" / f"{pid}.mp3").read_bytes() == b"ID3 fake mp3 bytes"
        assert (storage_backend.data_dir / "audio" / f"{odd}.bin").is_file()


async def test_a_failed_write_leaves_no_row_and_no_file(storage_backend, store):
    with pytest.raises(Exception):  # the row cannot be inserted (file_name NOT NULL): nothing is kept
        await store.record_prediction(uploaded(file_name=None, data=b"audio"),
                                      predicted([("rock", 1.0)], windows=np.zeros((1, 8, 8, 1))),
                                      keep_windows=True, keep_audio=True)
    assert (await store.stats()).n_predictions == 0
    assert files_under(storage_backend.data_dir) == []
    if storage_backend.name == "postgres":
        assert await storage_backend.raw("SELECT count(*) FROM prediction_files") == [(0,)]


async def test_windows_need_feature_config(store):
    with pytest.raises(ValueError, match="feature settings"):
        await store.record_prediction(uploaded(), predicted(windows=np.zeros((1, 128, 128, 2)), features=None),
                                      keep_windows=True, keep_audio=False)
    assert (await store.stats()).n_predictions == 0
    with pytest.raises(ValueError, match="empty"):
        await store.record_prediction(uploaded(), predicted([]), keep_windows=False, keep_audio=False)


async def test_attach_message_and_lookup(store):
    a = await add_prediction(store)
    b = await add_prediction(store)
    assert await store.prediction_by_message(999) is None
    await store.attach_message(a, 999)
    found = await store.prediction_by_message(999)
    assert found is not None and found.id == a and found.message_id == 999
    with pytest.raises(StorageError):
        await store.attach_message(b, 999)  # one prediction per message
    with pytest.raises(StorageError):
        await store.attach_message(12345, 1000)  # no such prediction
    big = 1_300_000_000_000_000_000  # snowflakes are 64-bit
    await store.attach_message(b, big)
    assert (await store.prediction_by_message(big)).id == b


# --- feedback ----------------------------------------------------------------


def voted(votes: list[Vote]) -> list[tuple]:
    return sorted((v.user_id, v.vote, v.corrected_genre) for v in votes)


async def test_one_vote_per_user(store):
    pid = await add_prediction(store)
    await store.set_vote(pid, 5, "right")
    await store.set_vote(pid, 5, "wrong")
    await store.set_vote(pid, 6, "right")
    assert voted(await store.votes(pid)) == [(5, "wrong", None), (6, "right", None)]
    await store.set_correction(pid, 6, "jazz")
    await store.set_vote(pid, 6, "wrong")  # a bare 'wrong' keeps the correction
    assert voted(await store.votes(pid)) == [(5, "wrong", None), (6, "wrong", "jazz")]
    await store.set_vote(pid, 6, "right")  # 'right' clears it
    assert voted(await store.votes(pid)) == [(5, "wrong", None), (6, "right", None)]
    with pytest.raises(ValueError):
        await store.set_vote(pid, 5, "maybe")
    with pytest.raises(ValueError):
        await store.set_correction(pid, 5, "../etc")
    with pytest.raises(StorageError):
        await store.set_vote(pid + 100, 5, "right")  # no such prediction


async def test_one_vote_per_user_under_concurrency(store):
    pid = await add_prediction(store)
    await asyncio.gather(*(store.set_vote(pid, 5, "right" if i % 2 else "wrong") for i in range(40)),
                         *(store.set_correction(pid, 6, "jazz") for _ in range(10)))
    assert [v.user_id for v in await store.votes(pid)].count(5) == 1
    assert len(await store.votes(pid)) == 2


async def test_retract_only_matching_vote(store):
    pid = await add_prediction(store)
    await store.set_vote(pid, 5, "right")
    await store.set_vote(pid, 5, "wrong")  # reacted ❌ after ✅
    assert await store.retract_vote(pid, 5, "right") is False  # stale ✅ removal
    assert voted(await store.votes(pid)) == [(5, "wrong", None)]
    assert await store.retract_vote(pid, 5, "wrong") is True
    assert await store.votes(pid) == []
    assert await store.retract_vote(pid, 5, "wrong") is False


# --- corrections and export --------------------------------------------------


@pytest.fixture
def ticking_clock(monkeypatch):
    """Distinct, increasing Python timestamps (SQLite's clock; PostgreSQL uses the server's)."""
    ticks = itertools.count()
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(base, "utcnow", lambda: start + dt.timedelta(microseconds=next(ticks)))


async def build_corrections(store: Storage) -> dict[str, int]:
    p = {name: await add_prediction(store) for name in
         ("corrected", "tie_genres", "confirmed", "tie_votes", "wrong_no_genre", "no_windows", "no_feedback")}
    p["no_windows"] = await add_prediction(store, windows=False)
    # 2 wrong (jazz, pop) + 1 more jazz vs 1 right -> jazz
    await store.set_correction(p["corrected"], 1, "pop")
    await store.set_correction(p["corrected"], 2, "jazz")
    await store.set_correction(p["corrected"], 3, "jazz")
    await store.set_vote(p["corrected"], 4, "right")
    # genres tied 1-1: the earliest named wins (metal before blues)
    await store.set_correction(p["tie_genres"], 1, "metal")
    await store.set_correction(p["tie_genres"], 2, "blues")
    # right outnumbers wrong -> predicted genre, confirmed
    await store.set_vote(p["confirmed"], 1, "right")
    await store.set_vote(p["confirmed"], 2, "right")
    await store.set_correction(p["confirmed"], 3, "pop")
    # 1 right vs 1 wrong -> skipped
    await store.set_vote(p["tie_votes"], 1, "right")
    await store.set_correction(p["tie_votes"], 2, "pop")
    # wrong, but nobody named a genre -> skipped
    await store.set_vote(p["wrong_no_genre"], 1, "wrong")
    # feedback but no windows -> skipped
    await store.set_vote(p["no_windows"], 1, "right")
    return p


async def test_corrections_majority_logic(store, ticking_clock):
    p = await build_corrections(store)
    got = {c.prediction_id: (c.label, c.source) for c in await store.corrections()}
    assert got == {
        p["corrected"]: ("jazz", "corrected"),
        p["tie_genres"]: ("metal", "corrected"),
        p["confirmed"]: ("rock", "confirmed"),
    }


async def test_correction_tie_follows_time_of_naming(store, ticking_clock):
    pid = await add_prediction(store)
    await store.set_correction(pid, 1, "metal")
    await store.set_correction(pid, 2, "blues")
    await store.set_correction(pid, 1, "country")  # user 1 changes their mind later
    await store.set_correction(pid, 3, "country")
    [c] = await store.corrections()
    assert c.label == "country"  # 2 votes beat blues' 1
    await store.retract_vote(pid, 3, "wrong")
    [c] = await store.corrections()
    assert c.label == "blues"  # 1-1 tie: blues was named before user 1's later 'country'


async def test_corrections_are_grouped_by_uploader_and_by_file(store):
    alice_x = await add_prediction(store, user_id=1001, data=b"a")
    alice_y = await add_prediction(store, user_id=1001, data=b"b")
    bob_y = await add_prediction(store, user_id=1002, data=b"b")  # alice's file, uploaded by bob
    bob_z = await add_prediction(store, user_id=1002, data=b"c")
    carol = await add_prediction(store, user_id=1003, data=b"d")
    dave_x = await add_prediction(store, user_id=1004, data=b"a", windows=False)  # not exportable
    dave_w = await add_prediction(store, user_id=1004, data=b"e")
    erin_t = await add_prediction(store, user_id=1005, data=b"f")
    fred_t = await add_prediction(store, user_id=1006, data=b"f")  # erin's file, labelled otherwise
    for pid in (alice_x, alice_y, bob_y, bob_z, carol, dave_x, dave_w, erin_t):
        await store.set_correction(pid, 7, "jazz")
    await store.set_correction(fred_t, 7, "metal")
    groups = {c.prediction_id: c.group for c in await store.corrections()}
    # bob_y is alice_y's file with the same label: one example, but it still links bob to alice
    assert groups == {alice_x: f"corr-{alice_x}", alice_y: f"corr-{alice_x}", bob_z: f"corr-{alice_x}",
                      carol: f"corr-{carol}", dave_w: f"corr-{dave_w}"}


async def test_export_layout_and_manifest(store, tmp_path, ticking_clock):
    p = await build_corrections(store)
    out = tmp_path / "export"
    assert await store.export_corrections(out) == 3
    expected = {
        f"jazz/pred-{p['corrected']}.npz": ("jazz", "corrected"),
        f"metal/pred-{p['tie_genres']}.npz": ("metal", "corrected"),
        f"rock/pred-{p['confirmed']}.npz": ("rock", "confirmed"),
    }
    with open(out / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "genre", "group", "artist", "split", "source"]
    assert {r["path"]: (r["genre"], r["source"]) for r in rows} == expected
    first = min(p["corrected"], p["tie_genres"], p["confirmed"])
    assert {r["group"] for r in rows} == {f"corr-{first}"}, "one uploader: one group"
    for r in rows:
        windows, config = read_windows(out / r["path"])
        assert windows.shape == (3, 128, 128, 2) and FeatureConfig.from_dict(config) == FEATURES
        pid = int(Path(r["path"]).stem.split("-")[1])
        stored, _ = await store.windows(pid)
        np.testing.assert_array_equal(windows, stored)
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    assert files == sorted([*expected, "MANIFEST.csv"])
    with pytest.raises(StorageError, match="not empty"):
        await store.export_corrections(out)


async def test_not_music_is_stored_as_such_and_never_exported(store, tmp_path):
    song = await add_prediction(store)
    talk = await add_prediction(store, sound="speech")  # with windows and votes, still never exported
    assert (await store.get_prediction(song)).sound == "music" and (await store.get_prediction(song)).music
    stored = await store.get_prediction(talk)
    assert stored.sound == "speech" and not stored.music
    for pid in (song, talk):
        await store.set_correction(pid, 3, "jazz")
    assert [c.prediction_id for c in await store.corrections()] == [song]
    assert await store.export_corrections(tmp_path / "export") == 1
    stats = await store.stats()
    assert (stats.n_predictions, stats.n_not_music) == (2, 1)
    with pytest.raises(ValueError, match="sound"):
        await add_prediction(store, sound="")


async def test_export_carries_no_discord_ids(store, tmp_path):
    uploader, voter = 222222222222222222, 333333333333333333
    pid = await add_prediction(store, user_id=uploader)
    await store.attach_message(pid, 444444444444444444)
    await store.set_correction(pid, voter, "jazz")
    out = tmp_path / "export"
    assert await store.export_corrections(out) == 1
    text = (out / "MANIFEST.csv").read_text()
    for snowflake in (uploader, voter, 444444444444444444, 10, 20, 30):
        assert str(snowflake) not in text.replace(f"corr-{pid}", "").replace(f"pred-{pid}", "")


async def test_export_is_readable_by_the_trainer(store, tmp_path, ticking_clock):
    from genre_model import dataset

    p = await build_corrections(store)
    other = await add_prediction(store, user_id=99, data=b"9" * 64)
    await store.set_correction(other, 5, "blues")
    out = tmp_path / "export"
    await store.export_corrections(out)
    want = {("jazz", p["corrected"]), ("metal", p["tie_genres"]), ("rock", p["confirmed"]), ("blues", other)}
    for source in (out, out / "MANIFEST.csv"):
        tracks = dataset.load_dataset(source)
        assert {(t.label, int(t.path.stem.split("-")[1])) for t in tracks} == want
        assert all(t.is_windows for t in tracks)
        assert {t.path.stem: t.group for t in tracks}[f"pred-{other}"] == f"corr-{other}"
        assert len({t.group for t in tracks}) == 2


async def test_export_empty(store, tmp_path):
    assert await store.export_corrections(tmp_path / "empty") == 0
    assert (tmp_path / "empty" / "MANIFEST.csv").read_text().strip() == "path,genre,group,artist,split,source"


# --- privacy -----------------------------------------------------------------


async def test_forget_user_deletes_everything(storage_backend, store):
    mine = [await add_prediction(store, user_id=7, data=b"my upload", audio=True), await add_prediction(store, user_id=7, windows=False)]
    other = await add_prediction(store, user_id=8, data=b"their upload", audio=True)
    await store.set_vote(mine[0], 8, "wrong")  # someone else's vote on my prediction
    await store.set_vote(mine[0], 7, "right")
    await store.set_vote(other, 7, "right")  # my vote elsewhere
    await store.set_vote(other, 9, "right")
    files_before = files_under(storage_backend.data_dir)

    assert await store.forget_user(7) == (2, 3)
    assert await store.get_prediction(mine[0]) is None and await store.get_prediction(mine[1]) is None
    assert await store.windows(mine[0]) is None and await store.audio(mine[0]) is None
    assert voted(await store.votes(other)) == [(9, "right", None)]
    assert await store.votes(mine[0]) == []
    assert (await store.windows(other)) is not None and await store.audio(other) == (b"their upload", ".mp3")
    if storage_backend.name == "sqlite":
        gone = {storage_backend.data_dir / "windows" / f"{mine[0]}.npz", storage_backend.data_dir / "audio" / f"{mine[0]}.mp3"}
        assert gone <= set(files_before)
        assert set(files_under(storage_backend.data_dir)) == set(files_before) - gone
    else:
        assert await storage_backend.raw("SELECT DISTINCT prediction_id FROM prediction_files") == [(other,)]
        assert files_under(storage_backend.data_dir) == []
    assert await storage_backend.raw("SELECT count(*) FROM feedback WHERE user_id = 7") == [(0,)]
    assert await store.forget_user(7) == (0, 0)


# --- stats and models --------------------------------------------------------


async def test_stats(store):
    assert await store.stats() == Stats(0, 0, 0, 0, 0, None, None)
    a = await add_prediction(store)
    b = await add_prediction(store)
    await add_prediction(store)  # no feedback
    await store.set_vote(a, 1, "right")
    await store.set_vote(a, 2, "right")
    await store.set_correction(a, 3, "pop")
    await store.set_vote(b, 1, "right")
    await store.set_correction(b, 2, "jazz")  # tie: not a 'right' majority
    await store.record_model("v1", "models/v1", {"acc": 0.8})
    await store.set_live_model("v1")
    assert await store.stats() == Stats(3, 3, 2, 2, 2, 0.5, "v1", 0)


async def test_models_keep_exactly_one_live(storage_backend, store):
    assert await store.live_model() is None
    await store.record_model("v1", "models/v1", {"val_acc": 0.71}, note="first")
    await store.record_model("v2", "models/v2", {"val_acc": 0.75})
    with pytest.raises(StorageError):
        await store.record_model("v1", "elsewhere", {})
    await store.set_live_model("v1")
    await store.set_live_model("v2")
    await store.set_live_model("v2")  # idempotent
    live = await store.live_model()
    assert live.version == "v2" and live.is_live and live.metrics == {"val_acc": 0.75}
    assert live.created_at.endswith("+00:00")
    models = await store.list_models()
    assert [(m.version, m.is_live, m.note) for m in models] == [("v1", False, "first"), ("v2", True, "")]
    with pytest.raises(StorageError):
        await store.set_live_model("nope")
    assert (await store.live_model()).version == "v2"
    with pytest.raises(Exception, match="(?i)unique"):  # the partial unique index itself
        await storage_backend.raw("UPDATE models SET is_live = " + ("1" if storage_backend.name == "sqlite" else "true"))


async def test_concurrent_promotions_leave_one_live_model(store):
    for v in range(6):
        await store.record_model(f"v{v}", f"models/v{v}", {})
    await asyncio.gather(*(store.set_live_model(f"v{v}") for v in range(6) for _ in range(3)))
    assert sum(m.is_live for m in await store.list_models()) == 1


# --- durability --------------------------------------------------------------


async def test_concurrent_writes_are_serialised(store):
    pid = await add_prediction(store)
    await asyncio.gather(*(store.set_vote(pid, u, "right" if u % 2 else "wrong") for u in range(50)),
                         *(add_prediction(store) for _ in range(5)))
    s = await store.stats()
    assert (s.n_votes_right, s.n_votes_wrong, s.n_predictions) == (25, 25, 6)


VOTER = textwrap.dedent(
    """
    import asyncio, json, sys
    from bot.backends import open_storage
    from bot.settings import load_settings

    async def main():
        env, pid = json.loads(sys.argv[1]), int(sys.argv[2])
        store = await open_storage(load_settings(env, dotenv=False, require_token=False))
        for user in range(1000, 3000):
            if user % 3:
                await store.set_vote(pid, user, "wrong" if user % 2 else "right")
            else:
                await store.set_correction(pid, user, "jazz")
            print(user, flush=True)  # acknowledged: the method has returned
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def start_voter(storage_backend, pid: int) -> subprocess.Popen:
    import json

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    settings_env = {"GENREBOT_DATA_DIR": str(storage_backend.data_dir), **storage_backend.env}
    return subprocess.Popen([sys.executable, "-c", VOTER, json.dumps(settings_env), str(pid)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def stop_voter(proc: subprocess.Popen) -> None:
    """Kill the voter if it still runs and close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()


async def read_acks(proc: subprocess.Popen, at_least: int) -> list[int]:
    acked = []
    while len(acked) < at_least:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=60)
        assert line, f"voter died: {proc.stderr.read()}"
        acked.append(int(line))
    return acked


def expected_vote(user: int) -> tuple:
    return (user, "wrong", "jazz") if user % 3 == 0 else (user, "wrong" if user % 2 else "right", None)


async def test_vote_burst_survives_sigkill_and_old_predictions_still_take_votes(storage_backend):
    async with await storage_backend.open() as s:
        pid = await add_prediction(s)
        await s.attach_message(pid, 5555)
    proc = start_voter(storage_backend, pid)
    try:
        acked = await read_acks(proc, 40)
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: more votes are in flight
        assert proc.wait(timeout=10) == -signal.SIGKILL
        acked += [int(line) for line in proc.stdout.read().split()]  # acknowledged before the kill
    finally:
        stop_voter(proc)
    if storage_backend.name == "sqlite":
        assert await storage_backend.raw("PRAGMA integrity_check") == [("ok",)]
    async with await storage_backend.open() as s:
        kept = {v.user_id: (v.user_id, v.vote, v.corrected_genre) for v in await s.votes(pid)}
        assert all(kept.get(user) == expected_vote(user) for user in acked), "an acknowledged vote was lost"
        assert set(kept) <= set(range(1000, 3000))
        print(f"\n{storage_backend.name}: {len(acked)} votes acknowledged before SIGKILL, {len(kept)} stored")
        old = await s.prediction_by_message(5555)
        await s.set_vote(old.id, 42, "right")
        assert (42, "right", None) in voted(await s.votes(old.id))


async def test_postgres_acknowledged_votes_survive_a_server_crash(tmp_path):
    """The database server itself dies mid-burst (immediate shutdown: no checkpoint, WAL replay on
    start): every vote it acknowledged is there afterwards."""
    from testkit.pgcluster import PostgresCluster
    from storage_backends import PostgresBackend

    cluster = PostgresCluster().start()
    try:
        storage_backend = PostgresBackend(tmp_path, await cluster.create_database())
        async with await storage_backend.open() as s:
            pid = await add_prediction(s)
        proc = start_voter(storage_backend, pid)
        try:
            acked = await read_acks(proc, 40)
            cluster.crash()
            proc.wait(timeout=30)  # the voter fails: its connection is gone
            acked += [int(line) for line in proc.stdout.read().split()]
        finally:
            stop_voter(proc)
        cluster.restart()
        async with await storage_backend.open() as s:
            kept = {v.user_id: (v.user_id, v.vote, v.corrected_genre) for v in await s.votes(pid)}
        assert all(kept.get(user) == expected_vote(user) for user in acked), "an acknowledged vote was lost"
        print(f"\npostgres crash: {len(acked)} votes acknowledged, {len(kept)} stored after recovery")
    finally:
        cluster.stop()


# --- retrains (one at a time across processes) and shared cooldowns ------------------------------


async def test_one_running_retrain_across_processes_and_its_end(storage_backend):
    """Two storage connections stand for two bot processes: of concurrent claims one wins; the row
    keeps its reply's ids and heartbeat; once it ends, a new claim succeeds."""
    a, b = await storage_backend.open(), await storage_backend.open()
    try:
        claims = await asyncio.gather(*(s.claim_retrain(f"host:{i}:t", 7, 99) for i, s in
                                        enumerate([a, b, a, b])))
        won = [c for c in claims if c is not None]
        assert len(won) == 1, claims
        rid = won[0]
        await a.attach_retrain_message(rid, 1234)
        row = await b.running_retrain()
        assert (row.id, row.state, row.channel_id, row.message_id, row.requested_by) == (rid, "running", 99, 1234, 7)
        assert 0 <= row.heartbeat_age_s < 30
        assert await b.retrain_heartbeat(rid)
        with pytest.raises(ValueError):
            await a.finish_retrain(rid, "running")
        assert await b.finish_retrain(rid, "interrupted", "owner gone")
        assert not await a.finish_retrain(rid, "failed"), "only a running retrain ends"
        assert not await a.retrain_heartbeat(rid)
        assert await a.running_retrain() is None
        assert await storage_backend.raw(f"SELECT state, detail FROM retrains WHERE id = {rid:d}") == [
            ("interrupted", "owner gone")]
        assert (await b.claim_retrain("host:9:t", None, None)) not in (None, rid)
    finally:
        await a.close()
        await b.close()


async def test_cooldown_is_one_pause_shared_by_processes_and_forgotten_with_the_user(storage_backend):
    a, b = await storage_backend.open(), await storage_backend.open()
    try:
        waits = await asyncio.gather(a.take_cooldown(5, 30.0), b.take_cooldown(5, 30.0), b.take_cooldown(5, 30.0))
        assert sorted(w == 0 for w in waits) == [False, False, True], waits
        assert 25 < max(waits) <= 30.0
        assert await a.take_cooldown(6, 30.0) == 0  # another user
        await b.release_cooldown(5)
        assert await a.take_cooldown(5, 0.2) == 0
        await asyncio.sleep(0.3)
        assert await b.take_cooldown(5, 30.0) == 0, "a pause that is over lets the next request through"
        await a.forget_user(5)
        assert await storage_backend.raw("SELECT user_id FROM cooldowns ORDER BY user_id") == [(6,)]
    finally:
        await a.close()
        await b.close()
