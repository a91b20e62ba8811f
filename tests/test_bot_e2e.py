"""End to end: the real GenreBot (discord.py, SQLite, an inference backend) against a fake Discord server.

Each test drives a user story through the gateway and REST exactly as Discord would,
and checks what reached the "channel" and what landed in SQLite. The main stories run on
both inference backends (``backend``: the local process pool, and Ray Serve on the
session's real local Ray instance).
"""

from __future__ import annotations

import asyncio
import sqlite3

import numpy as np
import pytest
from botharness import ADMIN_ID, OTHER_ID, USER_ID, busy_worker, make_settings, running_bot
from conftest import encode, synth_music

from bot import replies

pytestmark = pytest.mark.slow

SR = 22050


def song_bytes(tmp_path, seconds=8.0, fmt="mp3", seed=0) -> bytes:
    path = encode(synth_music(seconds, SR, seed=seed), tmp_path / f"song{seed}.{fmt}", SR, fmt)
    return path.read_bytes()


def db_rows(settings, sql, *args):
    with sqlite3.connect(settings.db_path) as conn:
        return conn.execute(sql, args).fetchall()


async def ask_genre(server, data: bytes, filename="song.mp3", content_type="audio/mpeg", user_id=USER_ID, **kw):
    att = server.add_attachment(filename, data, content_type, **kw)
    handle = await server.send_slash_command("genre", {"file": att}, user_id=user_id)
    message = await handle.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=60)
    return handle, message


async def test_genre_replies_with_embed_image_and_reactions(server, tmp_path, backend):
    settings = make_settings(tmp_path, server, **backend)
    async with running_bot(server, settings) as run:
        handle, message = await ask_genre(server, song_bytes(tmp_path))
        assert handle.callback["type"] == 5  # deferred at once
        embed = message["embeds"][0]
        assert "%" in embed["title"]
        top = embed["fields"][0]["value"].splitlines()
        assert len(top) == 3 and all("%" in line for line in top)
        assert embed["image"]["url"] == f"attachment://{replies.IMAGE_NAME}"
        assert embed["footer"]["text"] == f"model {run.bot.inference.model_version}"
        upload = [f for r in server.requests_matching("POST", r"^/webhooks/") for f in r.files]
        assert upload and upload[0].filename == replies.IMAGE_NAME and upload[0].data[:8] == b"\x89PNG\r\n\x1a\n"
        assert message["components"], "the correction menu is attached"
        message_id = int(message["id"])
        await server.wait_for(lambda: len(server.bot_reactions_on(message_id)) == 2, timeout=10)
        assert set(server.bot_reactions_on(message_id)) == {replies.RIGHT, replies.WRONG}
        rows = db_rows(settings, "SELECT user_id, message_id, genre, windows_path FROM predictions")
        assert rows[0][0] == USER_ID and rows[0][1] == message_id
        windows = np.load(settings.data_dir / rows[0][3])["windows"]
        assert windows.ndim == 4 and windows.shape[0] >= 2
        assert not list(settings.data_dir.rglob("*.mp3")), "raw audio is not stored by default"
        assert "test-token-do-not-log" not in str(server.requests_matching("POST", r"^/webhooks/")[0].json)


async def test_bad_files_get_friendly_replies_and_bot_keeps_serving(server, tmp_path, backend):
    settings = make_settings(tmp_path, server, max_attachment_bytes=200_000, **backend)
    async with running_bot(server, settings):
        _, msg = await ask_genre(server, b"this is not audio at all\n" * 40, "notes.mp3")
        assert "not audio I can read" in msg["content"] and "Traceback" not in msg["content"]

        big = server.add_attachment("huge.wav", b"\0" * 10, "audio/wav", size=300_000)
        handle = await server.send_slash_command("genre", {"file": big})
        refused = await handle.wait_message(lambda m: m.get("content"), timeout=10)
        assert "limit" in refused["content"]
        assert not server.requests_matching("GET", r"/attachments/.*huge\.wav"), "refused before download"

        short = encode(synth_music(0.5, SR), tmp_path / "short.wav", SR, "wav").read_bytes()
        _, msg = await ask_genre(server, short, "short.wav", "audio/wav")
        assert "0.5 s" in msg["content"] and "3 s" in msg["content"]

        _, msg = await ask_genre(server, song_bytes(tmp_path, 4), "gone.mp3", status=404)
        assert "couldn't download" in msg["content"]

        _, msg = await ask_genre(server, b"GIF89a....", "cat.gif", "image/gif")
        assert "doesn't look like an audio file" in msg["content"]

        _, ok = await ask_genre(server, song_bytes(tmp_path, 5, seed=3))
        assert ok["embeds"], "still serving after the bad inputs"


async def test_feedback_votes_and_correction_land_in_sqlite(server, tmp_path, backend):
    settings = make_settings(tmp_path, server, **backend)
    async with running_bot(server, settings) as run:
        _, message = await ask_genre(server, song_bytes(tmp_path))
        mid = int(message["id"])
        await server.wait_for(lambda: db_rows(settings, "SELECT id FROM predictions WHERE message_id=?", mid))
        (pid, predicted), = db_rows(settings, "SELECT id, genre FROM predictions")

        # the bot's own reactions (echoed by the server) never count
        await asyncio.sleep(0.3)
        assert db_rows(settings, "SELECT count(*) FROM feedback") == [(0,)]

        await server.add_reaction(mid, replies.WRONG, user_id=OTHER_ID)
        await server.wait_for(lambda: db_rows(settings, "SELECT vote FROM feedback WHERE user_id=?", OTHER_ID))
        right = "jazz" if predicted != "jazz" else "rock"
        comp = await server.send_component_interaction(mid, "genrebot:correct", [right], user_id=OTHER_ID)
        ack = await comp.wait_message(timeout=10)
        assert right in ack["content"]
        assert db_rows(settings, "SELECT vote, corrected_genre FROM feedback WHERE user_id=?", OTHER_ID) == [
            ("wrong", right)]

        # ✅ then removing it retracts; one vote per user per prediction
        await server.add_reaction(mid, replies.RIGHT, user_id=USER_ID)
        await server.wait_for(lambda: db_rows(settings, "SELECT vote FROM feedback WHERE user_id=?", USER_ID))
        await server.remove_reaction(mid, replies.RIGHT, user_id=USER_ID)
        await server.wait_for(lambda: not db_rows(settings, "SELECT 1 FROM feedback WHERE user_id=?", USER_ID))

        # a reaction on a message that is not a prediction is ignored
        await server.add_reaction(mid + 999, replies.WRONG, user_id=USER_ID)
        await asyncio.sleep(0.3)
        assert db_rows(settings, "SELECT count(*) FROM feedback") == [(1,)]

        # the correction is exported in the layout `genre-model train` reads
        from genre_model.dataset import load_dataset

        out = tmp_path / "export"
        assert await run.bot.storage.export_corrections(out) == 1
        (track,) = load_dataset(out)
        assert track.label == right and track.is_windows and track.group == f"pred-{pid}"


async def test_admin_commands_refuse_non_admins(server, tmp_path):
    settings = make_settings(tmp_path, server, base_data=tmp_path / "nope")
    async with running_bot(server, settings) as run:
        for name in ("retrain", "genre-stats"):
            handle = await server.send_slash_command(name, {}, user_id=USER_ID)
            msg = await handle.wait_message(timeout=10)
            assert "Only the bot's admins" in msg["content"]
        assert run.bot.inference.model_version == run.bot.inference.model_version
        assert not (settings.data_dir / "retrain").exists(), "nothing started"
        synced = {c["name"]: c for c in server.commands[None]}
        assert str(synced["retrain"]["default_member_permissions"]) == "32"  # manage_guild

        handle = await server.send_slash_command("genre-stats", {}, user_id=ADMIN_ID)
        msg = await handle.wait_message(timeout=10)
        assert msg["embeds"][0]["title"] == "genrebot statistics"


async def test_forget_deletes_users_data(server, tmp_path):
    settings = make_settings(tmp_path, server)
    async with running_bot(server, settings):
        await ask_genre(server, song_bytes(tmp_path))
        await server.wait_for(lambda: db_rows(settings, "SELECT count(*) FROM predictions") == [(1,)])
        handle = await server.send_slash_command("genre-forget", {}, user_id=USER_ID)
        msg = await handle.wait_message(timeout=10)
        assert "deleted 1 of your predictions" in msg["content"]
        assert db_rows(settings, "SELECT count(*) FROM predictions") == [(0,)]
        assert not list((settings.data_dir / "windows").glob("*.npz"))


async def test_worker_killed_mid_request_gets_error_then_recovers(server, tmp_path, backend):
    import os
    import signal

    settings = make_settings(tmp_path, server, **backend)
    async with running_bot(server, settings) as run:
        inference = run.bot.inference
        att = server.add_attachment("slow.mp3", song_bytes(tmp_path, 120), "audio/mpeg", delay=0.0)
        handle = await server.send_slash_command("genre", {"file": att})
        os.kill(await busy_worker(inference), signal.SIGKILL)
        msg = await handle.wait_message(lambda m: m.get("content") or m.get("embeds"), timeout=60)
        assert "crashed" in msg.get("content", "")
        _, ok = await ask_genre(server, song_bytes(tmp_path, 5, seed=2))  # the pool is rebuilt / Serve replaced it
        assert ok["embeds"]
        assert (inference.restarts if backend["inference"] == "local" else inference.failures) == 1


async def test_cooldown_limits_one_user(server, tmp_path):
    settings = make_settings(tmp_path, server, cooldown_seconds=30.0)
    async with running_bot(server, settings):
        data = song_bytes(tmp_path)
        _, first = await ask_genre(server, data)
        _, second = await ask_genre(server, data)
        _, other = await ask_genre(server, data, user_id=OTHER_ID)
        assert first["embeds"] and other["embeds"]
        assert "try again in" in second["content"]


def genre_folders(root, per_genre: int, seconds: float, seed0: int):
    """Ten synthetic 'genres' that differ in pitch and tempo, as genre sub-folders."""
    from genre_model.config import GENRES

    for i, genre in enumerate(GENRES):
        for j in range(per_genre):
            samples = synth_music(seconds, SR, seed=seed0 + 100 * i + j, f0=110.0 * 1.25 ** i, bpm=70 + 9 * i)
            encode(samples, root / genre / f"{genre}.{seed0 + j:05d}.wav", SR, "wav")
    return root


async def test_admin_retrain_promotes_or_refuses_and_pool_follows(server, tmp_path, backend):
    base = genre_folders(tmp_path / "base", 3, 4.0, 0)
    holdout = genre_folders(tmp_path / "holdout", 1, 4.0, 50)
    settings = make_settings(tmp_path, server, base_data=base, holdout_data=holdout, retrain_epochs=15, **backend)
    async with running_bot(server, settings) as run:
        live_before = run.bot.inference.model_version
        handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
        final = await handle.wait_message(lambda m: (m.get("content") or "").startswith(("\N{WHITE HEAVY CHECK MARK}",
                                          "\N{NO ENTRY}", "\N{CROSS MARK}")), timeout=400)
        text = final["content"]
        print("\n/retrain said:", text)
        assert any("Retraining" in (e["message"].get("content") or "") for e in handle.edits), "progress was shown"
        models = db_rows(settings, "SELECT version, is_live, metrics FROM models")
        assert len(models) == 1, text
        version, is_live, _ = models[0]
        if text.startswith("\N{WHITE HEAVY CHECK MARK}"):
            assert is_live == 1 and run.bot.inference.model_version == version != live_before
            _, reply = await ask_genre(server, song_bytes(tmp_path, 5))
            assert reply["embeds"][0]["footer"]["text"] == f"model {version}"
            if backend["inference"] == "ray":
                assert await run.bot.inference.replica_versions() == {version}
            assert (settings.data_dir / "models" / version / "metadata.json").is_file(), "kept in the model store"
        else:
            assert text.startswith("\N{NO ENTRY}") and "worse" in text
            assert is_live == 0 and run.bot.inference.model_version == live_before


async def test_failed_retrain_leaves_live_model_serving(server, tmp_path):
    broken = tmp_path / "broken"
    (broken / "rock").mkdir(parents=True)
    (broken / "rock" / "rock.00000.wav").write_bytes(b"RIFF....not really")
    settings = make_settings(tmp_path, server, base_data=broken)
    async with running_bot(server, settings) as run:
        live_before = run.bot.inference.model_version
        handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
        final = await handle.wait_message(lambda m: (m.get("content") or "").startswith("\N{CROSS MARK}"), timeout=300)
        assert "Retrain failed" in final["content"] and live_before in final["content"]
        assert run.bot.inference.model_version == live_before
        assert db_rows(settings, "SELECT count(*) FROM models") == [(0,)]
        _, ok = await ask_genre(server, song_bytes(tmp_path, 5))
        assert ok["embeds"]


async def test_unexpected_failure_still_gets_a_reply(server, tmp_path):
    settings = make_settings(tmp_path, server)
    async with running_bot(server, settings) as run:
        async def disk_full(**kwargs):
            raise OSError(28, "No space left on device")

        run.bot.storage.record_prediction = disk_full  # inject a fault below the command
        _, msg = await ask_genre(server, song_bytes(tmp_path))
        assert msg["content"] == replies.SORRY
        del run.bot.storage.record_prediction
        _, ok = await ask_genre(server, song_bytes(tmp_path, seed=4))
        assert ok["embeds"], "still serving"
