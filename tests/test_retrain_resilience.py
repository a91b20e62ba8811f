"""/retrain that survives kills, races between bot processes, forgotten members, disk errors and
database outages (issue 16: the retrain half; issue 15: one retrain and one cooldown across processes).

The bot runs as deployed (``python -m bot``, :class:`testkit.botharness.BotProcess`) where a process
is killed, in-process (``running_bot``) otherwise; both against the fake Discord server, on SQLite and
PostgreSQL. Training is the real ``genre_model.retrain`` on tiny data (``styled_dataset``).
Assertions are on what members see, the rows stored, the files on disk and the processes running.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from pathlib import Path

import psutil
import pytest
import pytest_asyncio

from conftest import encode, styled_dataset, synth_music
from testkit.botharness import ADMIN_ID, OTHER_ID, USER_ID, BotProcess, make_settings, poll, running_bot

from bot.discord_adapter import replies

pytestmark = pytest.mark.slow

SR = 22050
GEAR = "\N{GEAR} Retraining: "
FINAL = ("\N{WHITE HEAVY CHECK MARK}", "\N{NO ENTRY}", "\N{CROSS MARK}")


@pytest.fixture(scope="module")
def base_data(tmp_path_factory) -> Path:
    return styled_dataset(tmp_path_factory.mktemp("base"), per_genre=4, seconds=4.0)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("song")
    return encode(synth_music(6.0, SR, seed=8), folder / "song.mp3", SR, "mp3").read_bytes()


def trainers(root_pid: int) -> list[psutil.Process]:
    """``genre_model.retrain`` processes under ``root_pid`` (still running, zombies aside)."""
    try:
        children = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if _is_trainer(p)]


def _is_trainer(proc: psutil.Process) -> bool:
    try:
        return "genre_model.retrain" in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def alive_in_group(pgid: int) -> list[psutil.Process]:
    """Processes (not zombies) still in process group ``pgid``: the trainer and anything it started."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os_getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def os_getpgid(pid: int) -> int:
    import os

    return os.getpgid(pid)


async def until_gone(pgid: int, timeout: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := alive_in_group(pgid)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return left


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def classify_and_correct(server, song: bytes, uploader: int = USER_ID, voter: int = OTHER_ID) -> int:
    """/genre by ``uploader``, then ``voter`` picks another genre in the menu; returns the reply's id."""
    att = server.add_attachment("song.mp3", song, "audio/mpeg")
    handle = await server.send_slash_command("genre", {"file": att}, user_id=uploader)
    message = await handle.wait_message(lambda m: m.get("embeds"), timeout=90)
    mid = int(message["id"])
    await server.wait_for(lambda: len(server.bot_reactions_on(mid)) == 2, timeout=30)
    shown = message["embeds"][0]["title"].lower()
    right = "jazz" if "jazz" not in shown else "rock"
    comp = await server.send_component_interaction(mid, "genrebot:correct", [right], user_id=voter)
    await comp.wait_message(timeout=30)
    return mid


async def start_retrain(server):
    handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
    first = await handle.wait_edit(1, timeout=60)
    return handle, first


async def retrain_rows(backend) -> list[tuple]:
    return await backend.raw("SELECT id, state, channel_id, message_id FROM retrains ORDER BY id")


# ------------------------------------------------------------------------------------------- kills


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_kill_during_retrain_leaves_no_trainer_no_export_and_a_settled_reply(
        server, tmp_path, storage_backend, base_data, song, sig):
    data_dir = storage_backend.data_dir
    env = {"GENREBOT_DATA_DIR": str(data_dir), "GENREBOT_BASE_DATA": str(base_data), "GENREBOT_RETRAIN_EPOCHS": "5",
           "GENREBOT_WORKERS": "1", **storage_backend.env}
    workdir = tmp_path / "run"
    bot = await BotProcess(server, workdir, **env).start()
    try:
        await classify_and_correct(server, song)
        handle, first = await start_retrain(server)
        assert first["content"] == GEAR + "Retraining with 1 corrections\N{HORIZONTAL ELLIPSIS}"
        (trainer,) = await poll(lambda: _async(trainers(bot.pid)), timeout=30)
        exported = files_under(data_dir / "retrain")
        assert any(p.name.startswith("pred-") for p in exported) and any(p.name == "MANIFEST.csv" for p in exported)
        (rid, state, channel_id, message_id), = await retrain_rows(storage_backend)
        assert state == "running" and message_id == handle.original_message_id
        code = await bot.stop(sig)
    except BaseException:
        if bot.process and bot.process.returncode is None:
            await bot.stop(signal.SIGKILL)
        raise
    # the trainer and everything in its process group die with the bot, whatever the signal
    left = await until_gone(trainer.pid)
    assert not left, f"left running after {sig.name}: {[p.cmdline() for p in left]}"
    if sig == signal.SIGTERM:
        assert code == 0, bot.log()[-3000:]
        assert server.messages[message_id]["content"] == replies.RETRAIN_INTERRUPTED  # said by the stopping bot
        assert not files_under(data_dir / "retrain"), "a graceful stop removes the export"
        assert (await retrain_rows(storage_backend))[0][1] == "interrupted"
    else:
        assert server.messages[message_id]["content"].startswith(GEAR), "stuck until a bot process settles it"
        assert (await retrain_rows(storage_backend))[0][1] == "running"

    # restart (after the interaction's token expired): the stuck reply is settled through the channel,
    # the export swept, and a new /retrain runs
    handle.age(15 * 60 + 1)
    bot = await BotProcess(server, workdir, **env).start()
    try:
        await server.wait_for(lambda: server.messages[message_id]["content"] == replies.RETRAIN_INTERRUPTED,
                              timeout=20)
        if sig == signal.SIGKILL:
            assert server.requests_matching("PATCH", rf"/channels/{channel_id}/messages/{message_id}$")
        assert not files_under(data_dir / "retrain"), "the start-up sweep removes a dead run's export"
        assert [r[1] for r in await retrain_rows(storage_backend)] == ["interrupted"]
        again, first = await start_retrain(server)
        assert first["content"].startswith(GEAR)
        (trainer,) = await poll(lambda: _async(trainers(bot.pid)), timeout=30)
        assert [r[1] for r in await retrain_rows(storage_backend)] == ["interrupted", "running"]
    finally:
        code = await bot.stop(signal.SIGTERM)
    assert code == 0
    assert not await until_gone(trainer.pid)
    assert not files_under(data_dir / "retrain")
    assert [r[1] for r in await retrain_rows(storage_backend)] == ["interrupted", "interrupted"]
    assert server.messages[again.original_message_id]["content"] == replies.RETRAIN_INTERRUPTED
    assert "Traceback" not in bot.log(), bot.log()[-3000:]


async def _async(value):
    return value


# ------------------------------------------------------------------------------------------- forget


async def test_forget_during_a_retrain_scrubs_its_export_and_discards_its_candidate(
        server, tmp_path, storage_backend, base_data, song, monkeypatch):
    """The uploader runs /genre-forget while the trainer runs: their windows and manifest row leave the
    export at once, and the candidate trained meanwhile is discarded (never stored, never served)."""
    from bot import retraining

    monkeypatch.setattr(retraining, "HEARTBEAT_SECONDS", 0.5)
    settings = make_settings(tmp_path, server, data_dir=storage_backend.data_dir, base_data=base_data,
                             retrain_epochs=5, **_storage(storage_backend))
    async with running_bot(server, settings) as run:
        await classify_and_correct(server, song)
        handle, _ = await start_retrain(server)
        export = await poll(lambda: _async(next((storage_backend.data_dir / "retrain").glob("*/corrections"), None)))
        (npz,) = [p for p in files_under(export) if p.suffix == ".npz"]
        assert len((export / "MANIFEST.csv").read_text().splitlines()) == 2
        forget = await server.send_slash_command("genre-forget", {}, user_id=USER_ID)
        assert "deleted 1 of your predictions" in (await forget.wait_message(timeout=20))["content"]
        assert not npz.exists(), "the forgotten member's windows left the running export"
        assert (export / "MANIFEST.csv").read_text().splitlines()[1:] == []
        final = await handle.wait_message(lambda m: (m.get("content") or "").startswith(FINAL), timeout=300)
        assert final["content"].startswith("\N{CROSS MARK} Retrain discarded"), final["content"]
        assert await run.bot.storage.list_models() == []
        assert not files_under(storage_backend.data_dir / "retrain")
        assert [r[1] for r in await retrain_rows(storage_backend)] == ["failed"]


async def test_forget_after_an_interrupted_retrain_leaves_nothing(server, tmp_path, base_data, song):
    """SIGKILL mid-retrain left the export on disk; once the bot is back, nothing of the member
    is anywhere in the data folder after /genre-forget (the sweep took the export, forget the rest)."""
    from storage_backends import SqliteBackend

    backend = SqliteBackend(tmp_path)
    env = {"GENREBOT_DATA_DIR": str(backend.data_dir), "GENREBOT_BASE_DATA": str(base_data),
           "GENREBOT_RETRAIN_EPOCHS": "5", "GENREBOT_WORKERS": "1", **backend.env}
    bot = await BotProcess(server, tmp_path / "run", **env).start()
    try:
        await classify_and_correct(server, song)
        await start_retrain(server)
        await poll(lambda: _async(trainers(bot.pid)), timeout=30)
        (pid,), = await backend.raw("SELECT id FROM predictions")
        assert any(p.name == f"pred-{pid}.npz" for p in files_under(backend.data_dir / "retrain"))
    finally:
        await bot.stop(signal.SIGKILL)
    bot = await BotProcess(server, tmp_path / "run", **env).start()
    try:
        forget = await server.send_slash_command("genre-forget", {}, user_id=USER_ID)
        assert "deleted 1 of your predictions" in (await forget.wait_message(timeout=20))["content"]
        left = [p for p in files_under(backend.data_dir) if p.name.startswith((f"pred-{pid}", f"{pid}."))]
        assert not left, left
        assert await backend.raw("SELECT count(*) FROM predictions") == [(0,)]
        assert await backend.raw("SELECT count(*) FROM feedback") == [(0,)]
    finally:
        assert await bot.stop() == 0


def _storage(backend) -> dict:
    return {"database_url": backend.url} if backend.name == "postgres" else {"db_path": backend.db_path}


# ------------------------------------------------------------------------------------------- errors


async def test_a_failing_retrain_says_an_error_id_never_the_exception(server, tmp_path, base_data, caplog):
    """A disk error in the trainer (its cache folder is a file: FileExistsError, errno 17, a path) is
    told in public as an error id only; the log holds the detail under that id."""
    settings = make_settings(tmp_path, server, base_data=base_data, retrain_epochs=5)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "cache").write_text("not a folder")
    with caplog.at_level(logging.INFO):
        async with running_bot(server, settings) as run:
            handle, _ = await start_retrain(server)
            final = await handle.wait_message(lambda m: (m.get("content") or "").startswith(FINAL), timeout=300)
            text = final["content"]
            assert server.visible_to_channel(final)
            for leak in ("Errno", "FileExists", "Error:", str(tmp_path), "/cache", "Traceback", "exit code"):
                assert leak not in text, text
            found = re.fullmatch(r"\N{CROSS MARK} Retrain failed \(error ([0-9a-f]{6}), see the bot's log\); "
                                 rf"model {re.escape(run.bot.inference.model_version)} keeps serving\.", text)
            assert found, text
            logged = [r.getMessage() for r in caplog.records if found.group(1) in r.getMessage()]
            assert logged and any("FileExistsError" in m for m in logged), logged
            assert not files_under(settings.data_dir / "retrain")
            assert await run.bot.storage.list_models() == []
            assert await run.bot.storage.running_retrain() is None


# ------------------------------------------------------------------------------------------- two processes


@pytest_asyncio.fixture
async def sharded():
    """A fake Discord with two shards: the default guild and a second guild on the other shard."""
    from testkit.fakediscord.sharding import ShardedFakeDiscordServer, shard_of

    srv = ShardedFakeDiscordServer(shard_count=2, default_user_id=USER_ID)
    await srv.start()
    srv.other = srv.add_guild(shard_id=1 - shard_of(srv.guild_id, 2))
    try:
        yield srv
    finally:
        await srv.stop()


async def test_two_processes_over_one_database_run_one_retrain_and_share_cooldowns(
        sharded, tmp_path, pg_cluster, base_data, song):
    """Two bot processes (one shard each) over one PostgreSQL: while one retrains, the other refuses a
    second /retrain; a member's /genre pause holds across both; the lock is released when its holder stops."""
    from storage_backends import PostgresBackend

    from testkit.fakediscord.sharding import shard_of

    database = PostgresBackend(tmp_path, await pg_cluster.create_database())
    guilds = [(sharded.guild_id, sharded.channel_id), (sharded.other.guild_id, sharded.other.channel_id)]
    procs = []
    try:
        for shard in (0, 1):
            procs.append(await BotProcess(
                sharded, tmp_path / f"bot{shard}", GENREBOT_DATA_DIR=str(tmp_path / f"data{shard}"), **database.env,
                GENREBOT_WORKERS="1", GENREBOT_SHARD_COUNT="2", GENREBOT_SHARD_IDS=str(shard),
                GENREBOT_BASE_DATA=str(base_data), GENREBOT_RETRAIN_EPOCHS="5",
                GENREBOT_COOLDOWN_SECONDS="60").start())
        await sharded.wait_shards([0, 1])
        first_owner, second_owner = (procs[shard_of(gid, 2)] for gid, _ in guilds)  # the process serving each guild

        # the member's pause is one, whichever process answers
        first = await _genre(sharded, song, *guilds[0])
        assert first.get("embeds"), first
        second = await _genre(sharded, song, *guilds[1])
        assert "try again in" in (second.get("content") or ""), second
        assert await database.raw("SELECT count(*) FROM predictions") == [(1,)]
        other_member = await _genre(sharded, song, *guilds[1], user_id=OTHER_ID)
        assert other_member.get("embeds"), "another member is not paused"

        # one retrain across both processes
        running = await sharded.send_slash_command("retrain", {}, user_id=ADMIN_ID, guild_id=guilds[0][0],
                                                   channel_id=guilds[0][1])
        await running.wait_edit(1, timeout=60)
        refused = await sharded.send_slash_command("retrain", {}, user_id=ADMIN_ID, guild_id=guilds[1][0],
                                                   channel_id=guilds[1][1])
        msg = await refused.wait_message(timeout=20)
        assert msg["content"] == replies.RETRAIN_RUNNING and not sharded.visible_to_channel(msg)
        assert [r[1] for r in await retrain_rows(database)] == ["running"]
        (owner,), = await database.raw("SELECT owner FROM retrains")
        assert owner.split(":")[1] == str(first_owner.pid)
        assert not files_under(second_owner.workdir.parent / f"data{procs.index(second_owner)}" / "retrain"), \
            "nothing started in the refusing process"
        # the process running it stops: the lock is released with its row settled as interrupted
        assert await first_owner.stop(signal.SIGTERM) == 0
        assert [r[1] for r in await retrain_rows(database)] == ["interrupted"]
        assert sharded.messages[running.original_message_id]["content"] == replies.RETRAIN_INTERRUPTED
        # released: the other process may retrain now
        later = await sharded.send_slash_command("retrain", {}, user_id=ADMIN_ID, guild_id=guilds[1][0],
                                                 channel_id=guilds[1][1])
        assert (await later.wait_edit(1, timeout=60))["content"].startswith(GEAR)
        assert (await database.raw("SELECT owner FROM retrains WHERE state = 'running'"))[0][0].split(":")[1] == \
            str(second_owner.pid)
    finally:
        codes = [await p.stop(signal.SIGTERM) if p.process.returncode is None else p.process.returncode
                 for p in procs]
        await pg_cluster.drop_database(database.url)
    assert codes == [0, 0], [p.log()[-2000:] for p in procs]


async def _genre(server, song: bytes, guild_id: int, channel_id: int, user_id: int = USER_ID) -> dict:
    att = server.add_attachment("song.mp3", song, "audio/mpeg")
    handle = await server.send_slash_command("genre", {"file": att}, guild_id=guild_id, channel_id=channel_id,
                                             user_id=user_id)
    return await handle.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=90)


# ------------------------------------------------------------------------------------------- outages


async def test_retrain_during_a_database_outage_fails_cleanly_and_writes_nothing(
        server, tmp_path, pg_cluster, base_data, caplog):
    """PostgreSQL is down when an admin asks: a private answer with an error id (no exception text),
    no scratch folder, no row; once the server is back, /retrain works. An outage after the claim (the
    export cannot read) ends the run as failed, its scratch folder removed."""
    from storage_backends import PostgresBackend

    database = PostgresBackend(tmp_path, await pg_cluster.create_database())
    settings = make_settings(tmp_path, server, database_url=database.url, base_data=base_data, retrain_epochs=5)
    try:
        with caplog.at_level(logging.INFO):
            async with running_bot(server, settings) as run:
                pg_cluster.crash()
                try:
                    handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
                    msg = await handle.wait_message(timeout=20)
                finally:
                    pg_cluster.restart()
                found = re.search(r"error ([0-9a-f]{6})", msg["content"])
                assert msg["content"].startswith("\N{WARNING SIGN} I can't reach my database") and found, msg
                assert not server.visible_to_channel(msg)
                for leak in ("Error", "refused", "127.0.0.1", "postgresql://"):
                    assert leak not in msg["content"], msg["content"]
                assert any(found.group(1) in r.getMessage() for r in caplog.records)
                assert not files_under(settings.data_dir / "retrain")
                assert await database.raw("SELECT count(*) FROM retrains") == [(0,)]

                # the database is back; now it fails between the claim and the export
                async def outage(out_dir):
                    raise ConnectionResetError("connection to the database was lost")

                run.bot.storage.export_corrections = outage
                handle = await poll(lambda: _retrain_started(server), timeout=30)
                final = await handle.wait_message(lambda m: (m.get("content") or "").startswith(FINAL), timeout=60)
                assert re.fullmatch(r"\N{CROSS MARK} Retrain failed \(error [0-9a-f]{6}, see the bot's log\); .*",
                                    final["content"]), final["content"]
                assert "connection" not in final["content"]
                assert not files_under(settings.data_dir / "retrain")
                assert await database.raw("SELECT state FROM retrains") == [("failed",)]
                del run.bot.storage.export_corrections
    finally:
        await pg_cluster.drop_database(database.url)


async def _retrain_started(server):
    """A /retrain that got past the claim (the pool may need a try to notice the restarted server)."""
    handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
    await handle.wait_callback(timeout=20)
    return handle if handle.callback["type"] == 5 else None


# ------------------------------------------------------------------------------------------- units


def test_owner_liveness_on_this_host():
    import os
    import socket
    import subprocess
    import sys

    from bot import retraining

    me = retraining.process_owner()
    assert not retraining.owner_is_dead(me)
    host = socket.gethostname()
    assert retraining.owner_is_dead(f"{host}:{os.getpid()}:an-earlier-run"), "this pid under another token: a restart"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert retraining.owner_is_dead(f"{host}:{int(gone.stdout)}:x")
    assert not retraining.owner_is_dead(f"{host}:{os.getppid()}:x"), "a live process on this host"
    assert not retraining.owner_is_dead(f"elsewhere.example:{int(gone.stdout)}:x"), "another host: only the lease tells"


def test_scrub_keeps_only_what_storage_still_holds_and_sweep_keeps_the_running_one(tmp_path):
    from bot import retraining
    from bot.feedback import Correction
    from genre_model.dataset import ManifestRow, write_manifest

    export = tmp_path / "retrain" / "7" / "corrections"
    rows = []
    for pid, label in ((1, "rock"), (2, "jazz"), (3, "pop")):
        (export / label).mkdir(parents=True, exist_ok=True)
        (export / label / f"pred-{pid}.npz").write_bytes(b"windows")
        rows.append(ManifestRow(f"{label}/pred-{pid}.npz", label, f"corr-{pid}", source="corrected"))
    write_manifest(export / "MANIFEST.csv", rows)
    still = [Correction(1, "rock", "corrected", "corr-1"), Correction(3, "jazz", "corrected", "corr-3")]
    assert retraining.scrub_exports(tmp_path, still) == 2  # 2 is forgotten; 3's label came from a forgotten voter
    assert sorted(p.name for p in export.rglob("*.npz")) == ["pred-1.npz"]
    assert (export / "MANIFEST.csv").read_text().splitlines()[1:] == ["rock/pred-1.npz,rock,corr-1,,,corrected"]
    assert (export.parent / "FORGOTTEN").exists()
    assert retraining.scrub_exports(tmp_path, still) == 0
    (tmp_path / "retrain" / "20261204-031500").mkdir()  # an old run's stamp folder
    assert sorted(retraining.sweep_scratch(tmp_path, keep=[7])) == ["20261204-031500"]
    assert retraining.sweep_scratch(tmp_path) == ["7"] and not any((tmp_path / "retrain").iterdir())


def test_retrain_wording_never_carries_error_detail():
    from bot.retraining import RetrainOutcome

    failed = replies.retrain_outcome(RetrainOutcome("failed", "v1", error_id="a1b2c3"))
    assert failed == "\N{CROSS MARK} Retrain failed (error a1b2c3, see the bot's log); model v1 keeps serving."
    rollout = replies.retrain_outcome(RetrainOutcome("failed", "v1", "v2", error_id="d4e5f6"))
    assert rollout.startswith("\N{CROSS MARK} Model v2 was not promoted (error d4e5f6")
    assert "forgotten" in replies.retrain_outcome(RetrainOutcome("discarded", "v1"))
    assert "error" in replies.storage_unavailable("0a0b0c") and "interrupted" in replies.RETRAIN_INTERRUPTED


async def test_fake_discord_edit_message_rule_after_the_token_expired(server):
    """The rule the restart settling relies on, as Discord has it: once an interaction's token has
    expired (15 minutes), its webhook edits get 401 (50027), but the bot may still edit its own
    public response with Edit Message; an ephemeral response is unknown to that route (404), and
    another user's message cannot be edited (403, 50005)."""
    import aiohttp

    api = server.api_base
    async with aiohttp.ClientSession(headers={"Authorization": "Bot test"}) as http:
        async def call(method, path, body=None):
            async with http.request(method, f"{api}{path}", json=body) as r:
                return r.status, (await r.json() if r.content_type == "application/json" else None)

        public = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
        assert (await call("POST", f"/interactions/{public.id}/{public.token}/callback", {"type": 5}))[0] == 204
        status, msg = await call("PATCH", f"/webhooks/{server.application_id}/{public.token}/messages/@original",
                                 {"content": "\N{GEAR} Retraining: training"})
        assert status == 200
        mid, cid = int(msg["id"]), int(msg["channel_id"])
        public.age(15 * 60 + 1)
        assert (await call("PATCH", f"/webhooks/{server.application_id}/{public.token}/messages/@original",
                           {"content": "late"}))[0] == 401
        status, edited = await call("PATCH", f"/channels/{cid}/messages/{mid}", {"content": "settled"})
        assert status == 200 and server.messages[mid]["content"] == "settled" and server.visible_to_channel(edited)

        private = await server.send_slash_command("genre-stats", {}, user_id=ADMIN_ID)
        await call("POST", f"/interactions/{private.id}/{private.token}/callback",
                   {"type": 4, "data": {"content": "only you", "flags": 64}})
        assert (await call("PATCH", f"/channels/{cid}/messages/{private.original_message_id}",
                           {"content": "x"}))[0] == 404
        theirs = await server.send_user_message("hello")
        assert (await call("PATCH", f"/channels/{cid}/messages/{theirs['id']}", {"content": "x"}))[0] == 403
        assert (await call("PATCH", f"/channels/{cid}/messages/{theirs['id']}", {"flags": 4}))[0] == 200


async def test_a_silent_owner_elsewhere_loses_the_lock_after_its_lease(storage_backend, monkeypatch):
    """A retrain whose owner runs on another host cannot be checked for life: it keeps the lock while
    its heartbeat is fresh and loses it once the heartbeat is older than the lease."""
    from bot import retraining

    store = await storage_backend.open()
    try:
        rid = await store.claim_retrain("elsewhere.example:4242:t", 1, 2)
        assert (await retraining.claim(store, 3, 4)).retrain_id is None
        monkeypatch.setattr(retraining, "LEASE_SECONDS", 0.0)
        await asyncio.sleep(0.05)
        got = await retraining.claim(store, 3, 4)
        assert got.retrain_id not in (None, rid) and [r.id for r in got.settled] == [rid]
        assert await storage_backend.raw(f"SELECT state FROM retrains WHERE id = {rid:d}") == [("interrupted",)]
    finally:
        await store.close()


async def test_cooldowns_fall_back_to_the_process_when_storage_cannot_answer():
    from bot.ratelimit import SharedCooldowns

    class Down:
        async def take_cooldown(self, user_id, seconds):
            raise ConnectionRefusedError("database down")

        async def release_cooldown(self, user_id):
            raise ConnectionRefusedError("database down")

    cooldowns = SharedCooldowns(Down(), 30.0)
    assert await cooldowns.retry_after(1) == 0 and await cooldowns.retry_after(1) > 25
    await cooldowns.forget(1)
    assert await cooldowns.retry_after(1) == 0
