"""End to end: the real GenreBot (discord.py, storage, an inference backend) against a fake Discord server.

Each test drives a user story through the gateway and REST exactly as Discord would,
and checks what reached the "channel" and what landed in storage.

The main stories (/genre, bad input, feedback with a correction, a killed worker, /retrain
with promotion) run on both of the bot's stacks (``stack`` in conftest.py): SQLite with the
local process pool, and PostgreSQL with Ray Serve (the session's throwaway PostgreSQL server
and real local Ray instance). /genre-forget runs on both storage backends; the rest on the default
stack (SQLite, local pool).
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import subprocess

import numpy as np
import pytest
from testkit.botharness import ADMIN_ID, COMMANDS, OTHER_ID, USER_ID, make_settings, poll, running_bot
from conftest import encode, synth_music

from bot.discord_adapter import replies
from genre_model.artifact import load_info
from genre_model.predict import tags_speak_of
from genre_model.config import DEFAULT_MODEL_DIR, GENRES, display_name
from genre_model.predict import CLOSE_CALL

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


def assert_public(server, handle, message):
    """The whole channel sees the reply, and it is the interaction's response (no stray thinking message)."""
    assert server.visible_to_channel(message), message
    assert int(message["id"]) == handle.original_message_id


def assert_private(server, handle, message):
    """Only the member who used the command sees ``message``; the channel never saw its text, and
    nothing of this interaction (such as a "thinking..." message) is left in the channel."""
    assert server.visible_to(message, handle.user_id), message
    assert not server.visible_to_channel(message), f"shown to the whole channel: {message['content']!r}"
    assert not server.visible_to(message, OTHER_ID if handle.user_id != OTHER_ID else USER_ID)
    assert not server.ever_shown_to_channel(lambda m: (m["content"], m["embeds"]) == (message["content"], message["embeds"]))
    left = [m for m in server.channel_view(int(message["channel_id"]))
            if (m.get("interaction_metadata") or {}).get("id") == str(handle.id)]
    assert not left, f"left in the channel: {left}"


async def test_genre_replies_with_embed_image_and_reactions(server, tmp_path, stack):
    settings = make_settings(tmp_path, server, **stack.settings)
    async with running_bot(server, settings) as run:
        storage = run.bot.storage
        handle, message = await ask_genre(server, song_bytes(tmp_path))
        assert handle.callback["type"] == 5  # deferred at once
        assert_public(server, handle, message)
        embed = message["embeds"][0]
        message_id = int(message["id"])
        prediction = await poll(lambda: storage.prediction_by_message(message_id))
        genre = prediction.genre
        assert prediction.sound == "music", "the synthetic song sounds like music"
        # labels stay labels in the data; people read display names ("Hip-hop"); a close call is said in words
        (_, p1), (_, p2) = prediction.top_k[:2]
        if p1 - p2 < CLOSE_CALL:
            assert embed["title"].startswith(f"Could be {display_name(genre)}") and " or " in embed["title"]
            assert embed["description"].startswith("It's a close call: ")
        else:
            assert genre in GENRES and embed["title"].startswith(f"{display_name(genre)} \N{EM DASH} ")
            assert f"is **{display_name(genre)}**." in embed["description"]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        top = fields["Top genres"].splitlines()
        assert len(top) == 3 and all("%" in line for line in top)
        assert top[0].endswith(f"  {display_name(genre)}")
        tag_names = load_info(DEFAULT_MODEL_DIR).tags
        if tags_speak_of(genre, tag_names):  # musicnn's MSD tags, marked as tags, where they speak of the genre
            tags = fields["Tags (not genres)"].split(", ")
            assert len(tags) == 3 and set(tags) <= set(tag_names)
        else:
            assert "Tags (not genres)" not in fields
        assert embed["image"]["url"] == f"attachment://{replies.IMAGE_NAME}"
        assert embed["footer"]["text"] == f"model {run.bot.inference.model_version}"
        upload = [f for r in server.requests_matching("PATCH", r"^/webhooks/.*/messages/@original$") for f in r.files]
        assert upload and upload[0].filename == replies.IMAGE_NAME and upload[0].data[:8] == b"\x89PNG\r\n\x1a\n"
        menu = message["components"][0]["components"][0]
        assert menu["custom_id"] == "genrebot:correct"
        assert [o["value"] for o in menu["options"]] == list(GENRES), "the menu's values stay labels"
        assert [o["label"] for o in menu["options"]] == [display_name(g) for g in GENRES]
        assert "Hip-hop" in [o["label"] for o in menu["options"]]
        await server.wait_for(lambda: len(server.bot_reactions_on(message_id)) == 2, timeout=10)
        assert set(server.bot_reactions_on(message_id)) == {replies.RIGHT, replies.WRONG}
        assert prediction.user_id == USER_ID and (await storage.stats()).n_predictions == 1
        windows, _ = await storage.windows(prediction.id)
        assert windows.ndim == 4 and windows.shape[0] >= 2
        assert not list(settings.data_dir.rglob("*.mp3")), "raw audio is not stored by default"
        assert "test-token-do-not-log" not in str(server.requests_matching("PATCH", r"^/webhooks/")[0].json)


def spoken_mp3(tmp_path, seconds: float = 20.0) -> bytes:
    """``seconds`` of synthesised speech (espeak-ng, installed by scripts/setup.sh), as an MP3 upload."""
    text = ("Welcome back to the show. Today we talk about the weather, the news from town, and what "
            "happened at the council meeting on Tuesday evening. Thanks for listening, and see you next week. ")
    wav = tmp_path / "talk.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "160", "-w", str(wav), text * 3], check=True, timeout=60)
    from genre_model.audio import load_audio

    speech = load_audio(wav, SR)[: int(seconds * SR)]
    assert speech.size >= seconds * SR * 0.99, "espeak-ng said less than asked"
    return encode(speech, tmp_path / "talk.mp3", SR, "mp3").read_bytes()


def sine_sweep(tmp_path, seconds: float = 12.0) -> bytes:
    """A logarithmic sine sweep from 100 Hz to 8 kHz, as a WAV upload."""
    t = np.arange(int(seconds * SR)) / SR
    f0, f1 = 100.0, 8000.0
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * (np.exp(t / seconds * np.log(f1 / f0)) - 1)
    return encode(0.5 * np.sin(phase), tmp_path / "sweep.wav", SR, "wav").read_bytes()


async def test_not_music_is_said_in_words_without_menu_or_votes_and_stored_as_such(server, tmp_path, stack):
    settings = make_settings(tmp_path, server, **stack.settings)
    async with running_bot(server, settings) as run:
        storage = run.bot.storage
        said = {}
        for name, data, sound in (("talk.mp3", spoken_mp3(tmp_path), "speech"),
                                  ("sweep.wav", sine_sweep(tmp_path), None)):
            handle, message = await ask_genre(server, data, name, "audio/mpeg" if name.endswith("mp3") else "audio/wav")
            assert_public(server, handle, message)  # a result, for the channel, not an error
            embed = message["embeds"][0]
            mid = int(message["id"])
            prediction = await poll(lambda: storage.prediction_by_message(mid))
            assert not prediction.music and (sound is None or prediction.sound == sound), prediction.sound
            if sound == "speech":
                assert embed["title"] == "This sounds like speech, not music."
            assert embed["title"].startswith("This sounds like ") and embed["title"].endswith(", not music.")
            assert "genre" not in {f["name"].lower() for f in embed.get("fields", [])}
            assert embed["image"]["url"] == f"attachment://{replies.IMAGE_NAME}"
            assert not message.get("components"), "no correction menu"
            assert not prediction.has_windows, "not music never becomes training data"
            said[mid] = prediction

        # music still gets a genre (and its reactions), the not-music replies got none
        _, song = await ask_genre(server, song_bytes(tmp_path))
        song_id = int(song["id"])
        assert song["embeds"][0]["title"] and song["components"]
        await server.wait_for(lambda: len(server.bot_reactions_on(song_id)) == 2, timeout=10)
        assert not any(server.bot_reactions_on(mid) for mid in said)

        # a member's reaction on a not-music reply is no vote; on the song it is
        for mid in (*said, song_id):
            await server.add_reaction(mid, replies.WRONG, user_id=OTHER_ID)
        music = await poll(lambda: storage.prediction_by_message(song_id))
        assert music.music and music.genre in GENRES
        await poll(lambda: storage.votes(music.id))
        assert [await storage.votes(p.id) for p in said.values()] == [[], []]
        stats = await storage.stats()
        assert (stats.n_predictions, stats.n_not_music) == (3, 2)
        assert await storage.corrections() == []  # a bare wrong vote on the song names no genre


async def test_bad_files_get_friendly_private_replies_and_bot_keeps_serving(server, tmp_path, stack):
    """Every failure, before the public "thinking..." defer or after it, reaches the requester alone."""
    settings = make_settings(tmp_path, server, max_attachment_bytes=200_000, **stack.settings)
    async with running_bot(server, settings):
        # after the defer: a text file named .mp3 (found out only once downloaded and decoded)
        handle, msg = await ask_genre(server, b"this is not audio at all\n" * 40, "notes.mp3")
        assert "not audio I can read" in msg["content"] and "Traceback" not in msg["content"]
        assert handle.callback["type"] == 5 and "@original" in handle.deleted
        assert_private(server, handle, msg)

        big = server.add_attachment("huge.wav", b"\0" * 10, "audio/wav", size=300_000)
        handle = await server.send_slash_command("genre", {"file": big})
        refused = await handle.wait_message(lambda m: m.get("content"), timeout=10)
        assert "limit" in refused["content"]
        assert not server.requests_matching("GET", r"/attachments/.*huge\.wav"), "refused before download"
        assert handle.callback["type"] == 4, "refused at once, without a defer"
        assert_private(server, handle, refused)

        short = encode(synth_music(0.5, SR), tmp_path / "short.wav", SR, "wav").read_bytes()
        handle, msg = await ask_genre(server, short, "short.wav", "audio/wav")
        assert "0.5 s" in msg["content"] and "3 s" in msg["content"]
        assert_private(server, handle, msg)

        # after the defer: a failed download
        handle, msg = await ask_genre(server, song_bytes(tmp_path, 4), "gone.mp3", status=404)
        assert "couldn't download" in msg["content"]
        assert_private(server, handle, msg)

        handle, msg = await ask_genre(server, b"GIF89a....", "cat.gif", "image/gif")
        assert "doesn't look like an audio file" in msg["content"]
        assert_private(server, handle, msg)

        handle, ok = await ask_genre(server, song_bytes(tmp_path, 5, seed=3))
        assert ok["embeds"], "still serving after the bad inputs"
        assert_public(server, handle, ok)


async def test_queue_filling_during_download_is_told_privately(server, tmp_path):
    """A request passes the "busy?" check, defers, and while its file downloads the queue fills up."""
    settings = make_settings(tmp_path, server, workers=1, queue_limit=1)
    async with running_bot(server, settings) as run:
        (worker,) = await run.bot.inference.worker_pids()
        gate = asyncio.Event()
        slow = server.add_attachment("slow.mp3", song_bytes(tmp_path, 5, seed=5), "audio/mpeg", gate=gate)
        late = await server.send_slash_command("genre", {"file": slow}, user_id=USER_ID)
        await late.wait_callback(timeout=10)  # deferred; its download is held at the gate
        os.kill(worker, signal.SIGSTOP)  # the next request stays in the pool (queued or running) ...
        try:
            first = server.add_attachment("first.mp3", song_bytes(tmp_path, 5, seed=6), "audio/mpeg")
            early = await server.send_slash_command("genre", {"file": first}, user_id=OTHER_ID)
            await server.wait_for(lambda: run.bot.inference.full, timeout=20)
            gate.set()  # ... while the held download finishes and finds the queue full
            busy = await late.wait_message(lambda m: m.get("content") or m.get("embeds"), timeout=20)
        finally:
            os.kill(worker, signal.SIGCONT)
        assert "busy" in busy["content"]
        assert_private(server, late, busy)
        result = await early.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=60)
        assert result.get("embeds"), result
        assert_public(server, early, result)


def storage_settings(backend) -> dict:
    """make_settings overrides that put the bot on storage ``backend`` (tests/storage_backends.py)."""
    return {"database_url": backend.url} if backend.name == "postgres" else {"db_path": backend.db_path}


async def test_feedback_votes_and_correction_land_in_storage(server, tmp_path, stack):
    settings = make_settings(tmp_path, server, **stack.settings)
    async with running_bot(server, settings) as run:
        storage = run.bot.storage
        _, message = await ask_genre(server, song_bytes(tmp_path))
        mid = int(message["id"])
        prediction = await poll(lambda: storage.prediction_by_message(mid))
        pid, predicted = prediction.id, prediction.genre
        votes = lambda: storage.votes(pid)  # noqa: E731

        async def vote_of(user_id):
            return [(v.vote, v.corrected_genre) for v in await votes() if v.user_id == user_id]

        # the bot's own reactions (echoed by the server) never count
        await asyncio.sleep(0.3)
        assert await votes() == []

        await server.add_reaction(mid, replies.WRONG, user_id=OTHER_ID)
        await poll(lambda: vote_of(OTHER_ID))
        right = "jazz" if predicted != "jazz" else "rock"
        comp = await server.send_component_interaction(mid, "genrebot:correct", [right], user_id=OTHER_ID)
        ack = await comp.wait_message(timeout=10)
        assert f"this is **{display_name(right)}**, not {display_name(predicted)}" in ack["content"]
        assert_private(server, comp, ack)
        assert await vote_of(OTHER_ID) == [("wrong", right)]

        # ✅ then removing it retracts; one vote per user per prediction
        await server.add_reaction(mid, replies.RIGHT, user_id=USER_ID)
        await poll(lambda: vote_of(USER_ID))
        await server.remove_reaction(mid, replies.RIGHT, user_id=USER_ID)

        async def retracted():
            return not await vote_of(USER_ID)
        await poll(retracted)

        # a reaction on a message that is not a prediction is ignored
        await server.add_reaction(mid + 999, replies.WRONG, user_id=USER_ID)
        await asyncio.sleep(0.3)
        assert len(await votes()) == 1 and (await storage.stats()).n_votes_wrong == 1

        # the correction is exported in the layout `genre-model train` reads
        from genre_model.dataset import load_dataset

        out = tmp_path / "export"
        assert await storage.export_corrections(out) == 1
        (track,) = load_dataset(out)
        assert track.label == right and track.is_windows and track.group == f"corr-{pid}"


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


async def test_genre_stats_shows_the_figures_to_the_admin_only(server, tmp_path):
    settings = make_settings(tmp_path, server)
    async with running_bot(server, settings) as run:
        _, first = await ask_genre(server, song_bytes(tmp_path, seed=1))
        await ask_genre(server, song_bytes(tmp_path, seed=2), user_id=OTHER_ID)
        await server.add_reaction(int(first["id"]), replies.RIGHT, user_id=OTHER_ID)
        await server.wait_for(lambda: db_rows(settings, "SELECT count(*) FROM feedback") == [(1,)])
        handle = await server.send_slash_command("genre-stats", {}, user_id=ADMIN_ID)
        msg = await handle.wait_message(timeout=10)
        assert_private(server, handle, msg)
        embed = msg["embeds"][0]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert embed["title"] == "genrebot statistics"
        assert fields["Predictions"] == "2"
        assert fields["Votes"].startswith(f"{replies.RIGHT} 1 ")
        assert fields["Accuracy by feedback"] == "100% of 1 rated"
        assert fields["Live model"] == run.bot.inference.model_version
        assert fields["Queue"] == "0 running or waiting"


async def test_forget_deletes_users_data(server, tmp_path, storage_backend):
    settings = make_settings(tmp_path, server, keep_audio=True, **storage_settings(storage_backend))
    async with running_bot(server, settings) as run:
        storage = run.bot.storage
        _, message = await ask_genre(server, song_bytes(tmp_path))
        prediction = await poll(lambda: storage.prediction_by_message(int(message["id"])))
        assert prediction.has_windows and prediction.has_audio
        handle = await server.send_slash_command("genre-forget", {}, user_id=USER_ID)
        msg = await handle.wait_message(timeout=10)
        assert "deleted 1 of your predictions" in msg["content"]
        assert_private(server, handle, msg)
        assert (await storage.stats()).n_predictions == 0
        assert await storage.windows(prediction.id) is None and await storage.audio(prediction.id) is None
        assert not [p for p in settings.data_dir.rglob("*") if p.is_file() and p.parent.name in ("windows", "audio")]
        if storage_backend.name == "postgres":
            assert await storage_backend.raw("SELECT count(*) FROM prediction_files") == [(0,)]


async def test_classify_genre_message_command(server, tmp_path):
    """Apps > Classify genre on someone's message: the first audio attachment is classified."""
    settings = make_settings(tmp_path, server)
    async with running_bot(server, settings):
        photo = server.add_attachment("cover.png", b"\x89PNG....", "image/png")
        song = server.add_attachment("track.ogg", song_bytes(tmp_path, 6, fmt="ogg", seed=8), "audio/ogg")
        post = await server.send_user_message("new track!", user_id=USER_ID, attachments=[photo, song])
        handle = await server.send_message_command("Classify genre", post, user_id=OTHER_ID)
        assert handle.payload["data"]["type"] == 3 and handle.payload["data"]["target_id"] == post["id"]
        reply = await handle.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=60)
        assert reply.get("embeds"), reply
        assert_public(server, handle, reply)
        assert "**track.ogg**" in reply["embeds"][0]["description"]
        assert reply["interaction_metadata"]["name"] == "Classify genre"
        assert db_rows(settings, "SELECT user_id, file_name FROM predictions") == [(OTHER_ID, "track.ogg")]

        words = await server.send_user_message("no audio here", user_id=USER_ID, attachments=[photo])
        handle = await server.send_message_command("Classify genre", words, user_id=OTHER_ID)
        msg = await handle.wait_message(timeout=10)
        assert "no audio attachment" in msg["content"]
        assert_private(server, handle, msg)


async def kill_busy_worker(inference, killed: set[int], timeout: float = 90.0) -> int:
    """SIGKILL the worker or replica that is working on an upload now (not one killed before); returns its pid."""
    import glob
    import tempfile
    from pathlib import Path

    local = getattr(inference, "tmp_dir", None) is not None

    def busy() -> int | None:
        if local:  # a pool worker leaves a job marker holding its pid while it works on an upload
            for marker in glob.glob(str(inference.tmp_dir / "*" / "job-*")):
                try:
                    pid = int(Path(marker).read_text() or 0)
                except (OSError, ValueError):
                    continue
                if pid and pid not in killed:
                    return pid
            return None
        for scratch in (Path(tempfile.gettempdir()) / "genrebot-replicas").glob("*"):  # a replica decoding
            if scratch.name.isdigit() and int(scratch.name) not in killed and any(scratch.iterdir()):
                return int(scratch.name)
        return None

    pid = await poll(lambda: asyncio.sleep(0, busy()), timeout=timeout)
    os.kill(pid, signal.SIGKILL)
    killed.add(pid)
    return pid


async def test_worker_killed_twice_mid_request_gets_error_then_recovers(server, tmp_path, stack):
    """A worker (or replica) dying under an upload once is replaced and the upload sent again; an upload
    under which two die (a "poison" file) gets the error, privately, and the next request succeeds."""
    settings = make_settings(tmp_path, server, **stack.settings)
    async with running_bot(server, settings) as run:
        inference = run.bot.inference
        local = stack.inference["inference"] == "local"
        deaths = lambda: inference.restarts if local else inference.failures  # noqa: E731
        killed: set[int] = set()
        att = server.add_attachment("slow.mp3", song_bytes(tmp_path, 120), "audio/mpeg", delay=0.0)
        handle = await server.send_slash_command("genre", {"file": att})
        await kill_busy_worker(inference, killed)
        await poll(lambda: asyncio.sleep(0, deaths() == 1), timeout=60)
        assert not handle.messages  # not blamed yet: sent again to a fresh worker
        await kill_busy_worker(inference, killed)
        msg = await handle.wait_message(lambda m: m.get("content") or m.get("embeds"), timeout=90)
        assert "crashed" in msg.get("content", "")
        assert_private(server, handle, msg)
        _, ok = await ask_genre(server, song_bytes(tmp_path, 5, seed=2))  # the pool is rebuilt / Serve replaced it
        assert ok["embeds"]
        assert deaths() == 2


async def test_cooldown_limits_one_user(server, tmp_path):
    settings = make_settings(tmp_path, server, cooldown_seconds=30.0)
    async with running_bot(server, settings):
        data = song_bytes(tmp_path)
        _, first = await ask_genre(server, data)
        handle, second = await ask_genre(server, data)
        _, other = await ask_genre(server, data, user_id=OTHER_ID)
        assert first["embeds"] and other["embeds"]
        assert "try again in" in second["content"]
        assert_private(server, handle, second)


def genre_folders(root, per_genre: int, seconds: float, seed0: int):
    """Ten synthetic 'genres' that differ in pitch and tempo, as genre sub-folders."""
    from genre_model.config import GENRES

    for i, genre in enumerate(GENRES):
        for j in range(per_genre):
            samples = synth_music(seconds, SR, seed=seed0 + 100 * i + j, f0=110.0 * 1.25 ** i, bpm=70 + 9 * i)
            encode(samples, root / genre / f"{genre}.{seed0 + j:05d}.wav", SR, "wav")
    return root


async def test_admin_retrain_promotes_or_refuses_and_pool_follows(server, tmp_path, stack):
    base = genre_folders(tmp_path / "base", 3, 4.0, 0)
    holdout = genre_folders(tmp_path / "holdout", 1, 4.0, 50)
    settings = make_settings(tmp_path, server, base_data=base, holdout_data=holdout, retrain_epochs=15,
                             **stack.settings)
    async with running_bot(server, settings) as run:
        live_before = run.bot.inference.model_version
        handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
        final = await handle.wait_message(lambda m: (m.get("content") or "").startswith(("\N{WHITE HEAVY CHECK MARK}",
                                          "\N{NO ENTRY}", "\N{CROSS MARK}")), timeout=400)
        text = final["content"]
        print("\n/retrain said:", text)
        # one public reply (deliberately: the channel sees the model change), edited as the work goes on
        assert handle.callback["type"] == 5 and {e["target"] for e in handle.edits} == {"@original"}
        progress = [e["message"]["content"] for e in handle.edits[:-1]]
        assert progress and all(p.startswith("\N{GEAR} Retraining: ") for p in progress), progress
        assert progress[0] == "\N{GEAR} Retraining: Retraining with 0 corrections\N{HORIZONTAL ELLIPSIS}"
        assert handle.edits[-1]["message"]["content"] == text
        assert server.visible_to_channel(final) and server.messages[int(final["id"])]["content"] == text
        leftovers = list((settings.data_dir / "retrain").iterdir())
        assert not leftovers, f"the run's exported corrections outlived it: {leftovers}"
        models = await run.bot.storage.list_models()
        assert len(models) == 1, text
        version, is_live = models[0].version, models[0].is_live
        if text.startswith("\N{WHITE HEAVY CHECK MARK}"):
            assert is_live and run.bot.inference.model_version == version != live_before
            _, reply = await ask_genre(server, song_bytes(tmp_path, 5))
            assert reply["embeds"][0]["footer"]["text"] == f"model {version}"
            if stack.inference["inference"] == "ray":
                assert await run.bot.inference.replica_versions() == {version}
            assert (settings.data_dir / "models" / version / "metadata.json").is_file(), "kept in the model store"
        else:
            assert text.startswith("\N{NO ENTRY}") and "worse" in text
            assert not is_live and run.bot.inference.model_version == live_before


async def test_failed_retrain_leaves_live_model_serving(server, tmp_path):
    """Also: a retrain that outlives its interaction token (15 minutes) still reports its outcome,
    in the channel, since its reply can no longer be edited."""
    broken = tmp_path / "broken"
    (broken / "rock").mkdir(parents=True)
    (broken / "rock" / "rock.00000.wav").write_bytes(b"RIFF....not really")
    settings = make_settings(tmp_path, server, base_data=broken)
    async with running_bot(server, settings) as run:
        live_before = run.bot.inference.model_version
        handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID)
        first = await handle.wait_edit(1, timeout=60)
        assert first["content"].startswith("\N{GEAR} Retraining: ")
        handle.age(15 * 60 + 1)  # the token expires while the training runs
        final = await server.wait_for(lambda: next(
            (m for m in server.channel_view() if (m["content"] or "").startswith("\N{CROSS MARK}")), None), timeout=300)
        assert "interaction_metadata" not in final, "a plain channel message, not an edit of the expired reply"
        assert server.requests_matching("PATCH", rf"/webhooks/\d+/{handle.token}/messages/@original")[-1].status == 401
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
        handle, msg = await ask_genre(server, song_bytes(tmp_path))
        assert msg["content"] == replies.SORRY
        assert_private(server, handle, msg)  # on_app_command_error, after the public defer
        del run.bot.storage.record_prediction
        _, ok = await ask_genre(server, song_bytes(tmp_path, seed=4))
        assert ok["embeds"], "still serving"


# ---------------------------------------------------------------------------------------- command registration


def listed_twice(server):
    counts = collections.Counter((c["name"], c.get("type", 1)) for c in server.commands_listed_to_member())
    return [key for key, n in counts.items() if n > 1]


async def test_guild_ids_register_commands_once_in_those_guilds(server, tmp_path):
    """With GENREBOT_GUILD_IDS: registered in the guild only; an earlier global registration is emptied,
    so members see each command once; a configured guild the bot is not in is skipped with an error."""
    server.register_commands([{"name": "genre", "type": 1, "description": "from an earlier, global deployment"}])
    assert listed_twice(server) == []
    settings = make_settings(tmp_path, server, guild_ids=(server.guild_id, 424242424242424242))
    async with running_bot(server, settings):
        assert server.commands[None] == []
        listed = server.commands_listed_to_member()
        assert sorted(c["name"] for c in listed) == sorted(COMMANDS) and not listed_twice(server)
        assert all(c["guild_id"] == str(server.guild_id) for c in listed)
        refused = server.requests_matching("PUT", r"/guilds/424242424242424242/commands$")
        assert [r.status for r in refused] == [403]
        # the guild's commands work
        handle = await server.send_slash_command("genre-forget", {}, user_id=USER_ID)
        assert handle.payload["data"]["guild_id"] == str(server.guild_id)
        msg = await handle.wait_message(timeout=10)
        assert "deleted 0 of your predictions" in msg["content"]


async def test_without_guild_ids_commands_are_global_and_leftover_guild_ones_removed(server, tmp_path):
    server.register_commands([{"name": "genre", "type": 1, "description": "from an earlier, guild deployment"},
                              {"name": "Classify genre", "type": 3}], guild_id=server.guild_id)
    assert listed_twice(server) == []  # nothing global yet
    settings = make_settings(tmp_path, server)
    async with running_bot(server, settings):
        assert server.commands[server.guild_id] == []
        assert sorted(c["name"] for c in server.commands[None]) == sorted(COMMANDS)
        assert not listed_twice(server)
        before = len(server.requests_matching("PUT", rf"/guilds/{server.guild_id}/commands$"))
    # a second start finds nothing left over: it only looks (GET), it writes nothing to the guild
    async with running_bot(server, settings):
        assert len(server.requests_matching("PUT", rf"/guilds/{server.guild_id}/commands$")) == before
        assert not listed_twice(server)
