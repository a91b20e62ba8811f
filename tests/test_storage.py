"""Tests for genrebot/storage (SQLite) (no Discord, no model)."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from genrebot.storage import sqlite as storage_mod
from genrebot.storage import Storage, StorageError, load_migrations, load_windows, split_statements

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parent.parent
FEATURES = {"sample_rate": 22050, "n_mels": 128, "frames": 128, "deltas": True}


@pytest_asyncio.fixture
async def store(tmp_path):
    s = await Storage.open(tmp_path / "db" / "bot.sqlite3", tmp_path / "data")
    yield s
    await s.close()


async def add_prediction(store: Storage, user_id: int = 1, *, windows=True, top=("rock", 0.7)) -> int:
    rest = [("pop", 0.2), ("jazz", 0.1)]
    return await store.record_prediction(
        user_id=user_id,
        guild_id=10,
        channel_id=20,
        interaction_id=30,
        file_name="song.mp3",
        file_sha256="ab" * 32,
        duration_s=31.5,
        model_version="v1",
        top_k=[top, *rest],
        windows=np.random.default_rng(user_id).random((3, 128, 128, 2)) if windows else None,
        feature_config=FEATURES if windows else None,
    )


def raw(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(db_path)


# --- migrations --------------------------------------------------------------


async def test_fresh_db_migrates_and_reopen_is_noop(tmp_path):
    db = tmp_path / "bot.sqlite3"
    newest = load_migrations(REPO / "genrebot" / "storage" / "migrations" / "sqlite")[-1].number
    async with await Storage.open(db, tmp_path / "data") as s:
        assert await s.schema_version() == newest
        await add_prediction(s)
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == newest
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"predictions", "feedback", "models"} <= tables
    async with await Storage.open(db, tmp_path / "data") as s:
        assert await s.schema_version() == newest
        assert (await s.stats()).n_predictions == 1


async def test_newer_database_is_refused(tmp_path):
    db = tmp_path / "bot.sqlite3"
    newest = load_migrations(REPO / "genrebot" / "storage" / "migrations" / "sqlite")[-1].number
    with raw(db) as c:
        c.execute(f"PRAGMA user_version = {newest + 4}")
    with pytest.raises(StorageError) as info:
        await Storage.open(db, tmp_path / "data")
    assert str(info.value) == (
        f"database schema version {newest + 4} is newer than this bot knows ({newest}); upgrade the bot"
    )


async def test_failing_migration_rolls_back(tmp_path):
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_first.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (mig / "002_broken.sql").write_text(
        "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (1);\nTHIS IS NOT SQL;\n"
    )
    db = tmp_path / "bot.sqlite3"
    with pytest.raises(StorageError, match="002_broken"):
        await Storage.open(db, tmp_path / "data", mig)
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "a" in tables and "b" not in tables
        assert c.execute("SELECT count(*) FROM a").fetchone()[0] == 0
    # Fixing the file lets the next open finish the job.
    (mig / "002_broken.sql").write_text("CREATE TABLE b (y INTEGER);\n")
    async with await Storage.open(db, tmp_path / "data", mig) as s:
        assert await s.schema_version() == 2


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


async def test_split_statements_keeps_triggers_and_strings():
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
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[0].startswith("CREATE TABLE") and statements[1].endswith("END;")


async def test_pragmas(store):
    assert (await store._fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await store._fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await store._fetchone("PRAGMA busy_timeout"))[0] == 5000
    assert (await store._fetchone("PRAGMA synchronous"))[0] == 1  # NORMAL


async def test_default_migrations_dir_is_the_packaged_folder():
    assert storage_mod.default_migrations_dir() == REPO / "genrebot" / "storage" / "migrations" / "sqlite"


# --- predictions -------------------------------------------------------------


async def test_prediction_round_trip_with_windows(store, tmp_path):
    windows = np.random.default_rng(0).random((4, 128, 128, 2))  # float64 in, float32 stored
    pid = await store.record_prediction(
        user_id=111,
        guild_id=None,
        channel_id=222,
        interaction_id=333,
        file_name="a b.flac",
        file_sha256="f" * 64,
        duration_s=12.25,
        model_version="v7",
        top_k=[("jazz", 0.25), ("blues", 0.6), ("rock", 0.15)],
        windows=windows,
        feature_config=FEATURES,
    )
    p = await store.get_prediction(pid)
    assert p is not None and p.id == pid
    assert (p.user_id, p.guild_id, p.channel_id, p.interaction_id, p.message_id) == (111, None, 222, 333, None)
    assert (p.file_name, p.file_sha256, p.duration_s, p.model_version) == ("a b.flac", "f" * 64, 12.25, "v7")
    assert (p.genre, p.confidence) == ("blues", 0.6)
    assert p.top_k == (("blues", 0.6), ("jazz", 0.25), ("rock", 0.15))
    assert p.created_at.endswith("+00:00")
    assert p.windows_path == tmp_path / "data" / "windows" / f"{pid}.npz"
    loaded, config = load_windows(p.windows_path)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, windows.astype(np.float32))
    assert config == FEATURES
    with np.load(p.windows_path) as npz:  # the plain numpy view, no pickle needed
        assert set(npz.files) == {"windows", "feature_config"}
    with raw(store.db_path) as c:
        assert c.execute("SELECT windows_path FROM predictions WHERE id=?", (pid,)).fetchone()[0] == (
            f"windows/{pid}.npz"
        )
    assert not [f for f in (tmp_path / "data" / "windows").iterdir() if f.name.startswith(".")]


async def test_prediction_without_windows(store):
    pid = await add_prediction(store, windows=False)
    p = await store.get_prediction(pid)
    assert p.windows_path is None
    assert await store.get_prediction(pid + 100) is None


async def test_windows_need_feature_config(store):
    with pytest.raises(ValueError, match="feature_config"):
        await store.record_prediction(
            user_id=1, guild_id=None, channel_id=None, interaction_id=None, file_name="x.mp3",
            file_sha256="0" * 64, duration_s=3.0, model_version="v1", top_k=[("rock", 1.0)],
            windows=np.zeros((1, 128, 128, 2)), feature_config=None,
        )
    assert (await store.stats()).n_predictions == 0
    with pytest.raises(ValueError, match="empty"):
        await store.record_prediction(
            user_id=1, guild_id=None, channel_id=None, interaction_id=None, file_name="x.mp3",
            file_sha256="0" * 64, duration_s=3.0, model_version="v1", top_k=[],
            windows=None, feature_config=None,
        )


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


# --- feedback ----------------------------------------------------------------


async def feedback_rows(store: Storage, pid: int):
    return [tuple(r) for r in await store._db.execute_fetchall(
        "SELECT user_id, vote, corrected_genre FROM feedback WHERE prediction_id = ? ORDER BY user_id", (pid,)
    )]


async def test_one_vote_per_user(store):
    pid = await add_prediction(store)
    await store.set_vote(pid, 5, "right")
    await store.set_vote(pid, 5, "wrong")
    await store.set_vote(pid, 6, "right")
    assert await feedback_rows(store, pid) == [(5, "wrong", None), (6, "right", None)]
    await store.set_correction(pid, 6, "jazz")
    await store.set_vote(pid, 6, "wrong")  # a bare 'wrong' keeps the correction
    assert await feedback_rows(store, pid) == [(5, "wrong", None), (6, "wrong", "jazz")]
    await store.set_vote(pid, 6, "right")  # 'right' clears it
    assert await feedback_rows(store, pid) == [(5, "wrong", None), (6, "right", None)]
    with pytest.raises(ValueError):
        await store.set_vote(pid, 5, "maybe")
    with pytest.raises(ValueError):
        await store.set_correction(pid, 5, "../etc")
    with pytest.raises(StorageError):
        await store.set_vote(pid + 100, 5, "right")  # no such prediction


async def test_retract_only_matching_vote(store):
    pid = await add_prediction(store)
    await store.set_vote(pid, 5, "right")
    await store.set_vote(pid, 5, "wrong")  # reacted ❌ after ✅
    assert await store.retract_vote(pid, 5, "right") is False  # stale ✅ removal
    assert await feedback_rows(store, pid) == [(5, "wrong", None)]
    assert await store.retract_vote(pid, 5, "wrong") is True
    assert await feedback_rows(store, pid) == []
    assert await store.retract_vote(pid, 5, "wrong") is False


# --- corrections and export --------------------------------------------------


@pytest.fixture
def ticking_clock(monkeypatch):
    """Distinct, increasing timestamps so 'earliest' is deterministic."""
    ticks = iter(range(10**6))
    monkeypatch.setattr(storage_mod, "_utcnow", lambda: f"2030-01-01T00:00:00.{next(ticks):06d}+00:00")


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
    for c in await store.corrections():
        assert c.windows_path.is_absolute() and c.windows_path.is_file()


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
    assert list(rows[0]) == ["path", "genre", "group", "source"]
    assert {r["path"]: (r["genre"], r["source"]) for r in rows} == expected
    for r in rows:
        assert r["group"] == Path(r["path"]).stem
        windows, config = load_windows(out / r["path"])
        assert windows.shape == (3, 128, 128, 2) and config == FEATURES
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    assert files == sorted([*expected, "MANIFEST.csv"])
    with pytest.raises(StorageError, match="not empty"):
        await store.export_corrections(out)


async def test_export_is_readable_by_the_trainer(store, tmp_path, ticking_clock):
    dataset = pytest.importorskip("genre_model.dataset")
    p = await build_corrections(store)
    out = tmp_path / "export"
    await store.export_corrections(out)
    want = {("jazz", p["corrected"]), ("metal", p["tie_genres"]), ("rock", p["confirmed"])}
    for source in (out, out / "MANIFEST.csv"):  # genre folders, and the manifest
        tracks = dataset.load_dataset(source)
        assert {(t.label, int(t.path.stem.split("-")[1])) for t in tracks} == want
        assert all(t.is_windows for t in tracks)


async def test_export_empty(store, tmp_path):
    assert await store.export_corrections(tmp_path / "empty") == 0
    assert (tmp_path / "empty" / "MANIFEST.csv").read_text().strip() == "path,genre,group,source"


# --- privacy -----------------------------------------------------------------


async def test_forget_user(store):
    mine = [await add_prediction(store, user_id=7), await add_prediction(store, user_id=7, windows=False)]
    other = await add_prediction(store, user_id=8)
    files = [(await store.get_prediction(mine[0])).windows_path, (await store.get_prediction(other)).windows_path]
    assert all(f.is_file() for f in files)
    await store.set_vote(mine[0], 8, "wrong")  # someone else's vote on my prediction
    await store.set_vote(mine[0], 7, "right")
    await store.set_vote(other, 7, "right")  # my vote elsewhere
    await store.set_vote(other, 9, "right")

    assert await store.forget_user(7) == (2, 3)
    assert await store.get_prediction(mine[0]) is None and await store.get_prediction(mine[1]) is None
    assert not files[0].exists() and files[1].is_file()
    assert await feedback_rows(store, other) == [(9, "right", None)]
    assert await feedback_rows(store, mine[0]) == []
    assert await store.forget_user(7) == (0, 0)


# --- stats and models --------------------------------------------------------


async def test_stats(store):
    empty = await store.stats()
    assert empty == storage_mod.Stats(0, 0, 0, 0, 0, None, None)
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
    s = await store.stats()
    assert s.n_predictions == 3
    assert (s.n_votes_right, s.n_votes_wrong, s.n_corrections) == (3, 2, 2)
    assert s.n_predictions_with_feedback == 2
    assert s.feedback_accuracy == 0.5
    assert s.live_model_version == "v1"


async def test_models_keep_exactly_one_live(store):
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
    models = await store.list_models()
    assert [(m.version, m.is_live, m.note) for m in models] == [("v1", False, "first"), ("v2", True, "")]
    with pytest.raises(StorageError):
        await store.set_live_model("nope")
    assert (await store.live_model()).version == "v2"
    with pytest.raises(sqlite3.IntegrityError):  # the partial unique index itself
        await store._db.execute("UPDATE models SET is_live = 1")


# --- durability --------------------------------------------------------------


async def test_concurrent_writes_are_serialised(store):
    pid = await add_prediction(store)
    await asyncio.gather(*(store.set_vote(pid, u, "right" if u % 2 else "wrong") for u in range(50)),
                         *(add_prediction(store) for _ in range(5)))
    s = await store.stats()
    assert (s.n_votes_right, s.n_votes_wrong, s.n_predictions) == (25, 25, 6)


async def test_vote_survives_sigkill(tmp_path):
    db, data = tmp_path / "bot.sqlite3", tmp_path / "data"
    async with await Storage.open(db, data) as s:
        pid = await add_prediction(s)
    child = textwrap.dedent(
        f"""
        import asyncio, sys, time
        from pathlib import Path
        from genrebot.storage import Storage

        async def main():
            s = await Storage.open(Path({str(db)!r}), Path({str(data)!r}))
            await s.set_vote({pid}, 42, "wrong")
            await s.set_correction({pid}, 43, "jazz")
            print("ack", flush=True)
            time.sleep(60)  # killed here, connection still open

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=60)
        assert line.strip() == "ack"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    async with await Storage.open(db, data) as s:
        assert (await s._fetchone("PRAGMA integrity_check"))[0] == "ok"
        assert await feedback_rows(s, pid) == [(42, "wrong", None), (43, "wrong", "jazz")]
