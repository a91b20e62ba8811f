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

    # restart: the stuck reply is settled, the export swept, and a new /retrain runs
    bot = await BotProcess(server, workdir, **env).start()
    try:
        await server.wait_for(lambda: server.messages[message_id]["content"] == replies.RETRAIN_INTERRUPTED,
                              timeout=20)
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
    assert "Traceback" not in bot.log() or "CancelledError" not in bot.log()


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
