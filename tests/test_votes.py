"""Votes that survive forged input, races with the reply, dead workers and storage outages (issue 16).

Every story runs the real GenreBot (discord.py) against the fake Discord server, on SQLite and on
the tests' real PostgreSQL where storage is involved, and asserts on stored rows and on what
members see.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading

import pytest
from test_bot_e2e import ask_genre, assert_private, kill_busy_worker, song_bytes, storage_settings
from testkit.botharness import OTHER_ID, USER_ID, make_settings, poll, running_bot

from bot import votes
from bot.discord_adapter import replies
from genre_model.config import display_name

pytestmark = pytest.mark.slow


async def feedback_rows(backend) -> list[tuple]:
    return await backend.raw("SELECT prediction_id, user_id, vote, corrected_genre FROM feedback ORDER BY user_id")


def other_genre(predicted: str) -> str:
    return "jazz" if predicted != "jazz" else "rock"


async def test_forged_interactions_store_nothing_and_are_refused(server, tmp_path, storage_backend):
    settings = make_settings(tmp_path, server, **storage_settings(storage_backend))
    async with running_bot(server, settings) as run:
        storage = run.bot.storage
        _, message = await ask_genre(server, song_bytes(tmp_path))
        mid = int(message["id"])
        prediction = await storage.prediction_by_message(mid)
        assert prediction is not None  # linked before the reply was visible
        words = await server.send_user_message("just chatting", user_id=OTHER_ID)
        run.bot.get_cog("FeedbackCog").timing = votes.Timing(link_wait=0.2, outage=5.0)

        forged = [  # (message, custom id, values, component type) -> what the member is told
            (mid, "genrebot:correct", ["notagenre"], 3, replies.NOT_OFFERED),
            (mid, "genrebot:correct", ["Jazz"], 3, replies.NOT_OFFERED),  # a display name, not a label
            (mid, "genrebot:correct", ["jazz", "rock"], 3, replies.NOT_OFFERED),
            (mid, "genrebot:correct", [], 3, replies.NOT_OFFERED),
            (mid, "genrebot:evil", ["jazz"], 3, replies.NOT_OFFERED),
            (mid, "genrebot:correct:1", ["jazz"], 3, replies.NOT_OFFERED),
            (mid, "genrebot:correct", None, 2, replies.NOT_OFFERED),  # a button with the menu's id
            (int(words["id"]), "genrebot:correct", ["jazz"], 3, replies.NOT_TRACKED),  # not a prediction
        ]
        for target, custom_id, values, ctype, told in forged:
            comp = await server.send_component_interaction(target, custom_id, values, user_id=OTHER_ID,
                                                           component_type=ctype)
            answer = await comp.wait_message(lambda m: m.get("content"), timeout=15)
            assert answer["content"] == told, (custom_id, values, answer["content"])
            assert_private(server, comp, answer)
        assert await feedback_rows(storage_backend) == []

        # a reply that is not music offers nothing to vote on: a pick on it is refused too
        await storage_backend.raw(f"UPDATE predictions SET sound = 'speech' WHERE id = {prediction.id}")
        comp = await server.send_component_interaction(mid, "genrebot:correct", ["jazz"], user_id=OTHER_ID)
        answer = await comp.wait_message(lambda m: m.get("content"), timeout=15)
        assert answer["content"] == replies.NOTHING_TO_VOTE
        assert_private(server, comp, answer)
        await server.add_reaction(mid, replies.WRONG, user_id=OTHER_ID)
        await asyncio.sleep(0.5)
        assert await feedback_rows(storage_backend) == []

        # and a genuine pick on a music reply still counts
        await storage_backend.raw(f"UPDATE predictions SET sound = 'music' WHERE id = {prediction.id}")
        right = other_genre(prediction.genre)
        comp = await server.send_component_interaction(mid, "genrebot:correct", [right], user_id=OTHER_ID)
        answer = await comp.wait_message(lambda m: m.get("content"), timeout=15)
        assert f"this is **{display_name(right)}**" in answer["content"]
        assert await feedback_rows(storage_backend) == [(prediction.id, OTHER_ID, "wrong", right)]


async def test_votes_racing_the_reply_are_stored(server, tmp_path, storage_backend):
    """Discord shows the reply at once but answers the bot's edit 3 s later: a ❌ and a menu pick made
    as soon as the reply is visible are stored (the reply was linked before it became visible)."""
    settings = make_settings(tmp_path, server, **storage_settings(storage_backend))
    async with running_bot(server, settings) as run:
        server.webhook_edit_delay = 3.0
        att = server.add_attachment("song.mp3", song_bytes(tmp_path), "audio/mpeg")
        handle = await server.send_slash_command("genre", {"file": att}, user_id=USER_ID)
        message = await handle.wait_message(lambda m: m.get("embeds"), timeout=60)
        mid = int(message["id"])
        assert server.visible_to_channel(mid)
        await server.add_reaction(mid, replies.WRONG, user_id=OTHER_ID)
        pick = "jazz"
        comp = await server.send_component_interaction(mid, "genrebot:correct", [pick], user_id=USER_ID)
        answer = await comp.wait_message(lambda m: m.get("content"), timeout=15)
        assert server.bot_reactions_on(mid) == []  # the bot has not even heard back from its edit yet
        assert answer["content"] != replies.NOT_TRACKED
        assert_private(server, comp, answer)
        prediction = await run.bot.storage.prediction_by_message(mid)

        async def both():
            rows = await feedback_rows(storage_backend)
            return rows if len(rows) == 2 else None
        rows = await poll(both, timeout=15)
        mine = ("right", None) if pick == prediction.genre else ("wrong", pick)
        assert rows == [(prediction.id, USER_ID, *mine), (prediction.id, OTHER_ID, "wrong", None)]
        await poll(lambda: asyncio.sleep(0, server.bot_reactions_on(mid) == [replies.RIGHT, replies.WRONG]))


async def test_idle_worker_death_costs_nothing_and_one_death_mid_request_is_retried(server, tmp_path, stack):
    """A worker (or Serve replica) that died between requests fails nobody's request; one that dies
    under an upload once costs that upload a second try, not an error (two deaths: see
    test_bot_e2e.py::test_worker_killed_twice_mid_request_gets_error_then_recovers)."""
    settings = make_settings(tmp_path, server, **stack.settings)
    async with running_bot(server, settings) as run:
        inference = run.bot.inference
        local = stack.inference["inference"] == "local"
        _, reply = await ask_genre(server, song_bytes(tmp_path, 5, seed=1))
        assert reply["embeds"]
        for pid in await inference.worker_pids():  # every worker dies while idle
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        handle, reply = await ask_genre(server, song_bytes(tmp_path, 5, seed=2))
        assert reply["embeds"] and server.visible_to_channel(reply), reply
        if local:
            assert inference.restarts == 1

        att = server.add_attachment("once.mp3", song_bytes(tmp_path, 60, seed=3), "audio/mpeg")
        handle = await server.send_slash_command("genre", {"file": att})
        await kill_busy_worker(inference, set())
        reply = await handle.wait_message(lambda m: m.get("content") or m.get("embeds"), timeout=120)
        assert reply["embeds"] and server.visible_to_channel(reply), reply


async def test_postgres_restart_mid_vote_stores_the_vote_or_tells_the_voter(server, tmp_path, pg_cluster):
    async with _pg(pg_cluster, tmp_path) as backend:
        settings = make_settings(tmp_path, server, **storage_settings(backend))
        async with running_bot(server, settings) as run:
            cog = run.bot.get_cog("FeedbackCog")
            _, message = await ask_genre(server, song_bytes(tmp_path))
            mid = int(message["id"])
            prediction = await run.bot.storage.prediction_by_message(mid)
            right = other_genre(prediction.genre)

            # the server restarts while the votes arrive: they are stored once it is back
            cog.timing = votes.Timing(outage=60.0)
            pg_cluster.crash()
            try:
                comp = await server.send_component_interaction(mid, "genrebot:correct", [right], user_id=OTHER_ID)
                await server.add_reaction(mid, replies.RIGHT, user_id=USER_ID)
                await asyncio.sleep(3.0)
                assert not comp.messages  # nobody was told anything false while the database was down
            finally:
                pg_cluster.restart()
            answer = await comp.wait_message(lambda m: m.get("content"), timeout=60)
            assert f"this is **{display_name(right)}**" in answer["content"]
            assert_private(server, comp, answer)

            async def both():
                rows = await feedback_rows(backend)
                return rows if len(rows) == 2 else None
            assert await poll(both, timeout=60) == [(prediction.id, USER_ID, "right", None),
                                                    (prediction.id, OTHER_ID, "wrong", right)]

            # an outage longer than the retry budget: the voter is told, the reaction is taken back
            cog.timing = votes.Timing(outage=2.0)
            pg_cluster.crash()
            try:
                comp = await server.send_component_interaction(mid, "genrebot:correct", [prediction.genre],
                                                               user_id=OTHER_ID)
                answer = await comp.wait_message(lambda m: m.get("content"), timeout=60)
                assert answer["content"] == replies.VOTE_NOT_SAVED
                assert_private(server, comp, answer)
                third = 444444444444444444
                await server.add_reaction(mid, replies.WRONG, user_id=third)
                await server.wait_for_request("DELETE", rf"/reactions/.*/{third}$", timeout=60)
            finally:
                pg_cluster.restart()
            assert await feedback_rows(backend) == [(prediction.id, USER_ID, "right", None),
                                                    (prediction.id, OTHER_ID, "wrong", right)]
            # and the bot kept running: the next vote counts
            comp = await server.send_component_interaction(mid, "genrebot:correct", [prediction.genre],
                                                           user_id=OTHER_ID)
            answer = await comp.wait_message(lambda m: m.get("content"), timeout=60)
            assert "Thanks!" in answer["content"]


class _pg:
    """A fresh database on the session's PostgreSQL (dropped afterwards)."""

    def __init__(self, cluster, tmp_path) -> None:
        self.cluster, self.tmp_path = cluster, tmp_path

    async def __aenter__(self):
        from storage_backends import PostgresBackend

        self.url = await self.cluster.create_database()
        return PostgresBackend(self.tmp_path, self.url)

    async def __aexit__(self, *exc) -> None:
        await self.cluster.drop_database(self.url)


async def test_sqlite_locked_mid_vote_stores_the_vote_or_tells_the_voter(server, tmp_path):
    settings = make_settings(tmp_path, server)
    async with running_bot(server, settings) as run:
        cog = run.bot.get_cog("FeedbackCog")
        _, message = await ask_genre(server, song_bytes(tmp_path))
        mid = int(message["id"])
        prediction = await run.bot.storage.prediction_by_message(mid)
        right = other_genre(prediction.genre)

        def rows():
            with sqlite3.connect(settings.db_path) as conn:
                return conn.execute("SELECT prediction_id, user_id, vote, corrected_genre FROM feedback"
                                    " ORDER BY user_id").fetchall()

        def hold_lock(seconds: float, locked: threading.Event) -> None:
            conn = sqlite3.connect(settings.db_path, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            locked.set()
            threading.Event().wait(seconds)
            conn.execute("ROLLBACK")
            conn.close()

        # another process holds the database longer than SQLite's busy timeout (5 s): retried, then stored
        cog.timing = votes.Timing(outage=30.0)
        locked = threading.Event()
        holder = threading.Thread(target=hold_lock, args=(7.0, locked))
        holder.start()
        locked.wait(10)
        comp = await server.send_component_interaction(mid, "genrebot:correct", [right], user_id=OTHER_ID)
        answer = await comp.wait_message(lambda m: m.get("content"), timeout=60)
        await asyncio.to_thread(holder.join)
        assert f"this is **{display_name(right)}**" in answer["content"]
        assert_private(server, comp, answer)
        assert rows() == [(prediction.id, OTHER_ID, "wrong", right)]

        # locked for longer than the retry budget: the voter is told; the reaction is taken back
        cog.timing = votes.Timing(outage=1.0)
        locked = threading.Event()
        holder = threading.Thread(target=hold_lock, args=(14.0, locked))
        holder.start()
        locked.wait(10)
        try:
            comp = await server.send_component_interaction(mid, "genrebot:correct", [prediction.genre],
                                                           user_id=USER_ID)
            await server.add_reaction(mid, replies.WRONG, user_id=USER_ID)
            answer = await comp.wait_message(lambda m: m.get("content"), timeout=30)
            assert answer["content"] == replies.VOTE_NOT_SAVED
            assert_private(server, comp, answer)
            await server.wait_for_request("DELETE", rf"/reactions/.*/{USER_ID}$", timeout=30)
        finally:
            await asyncio.to_thread(holder.join)
        assert rows() == [(prediction.id, OTHER_ID, "wrong", right)]


def test_a_menu_choice_must_be_one_the_menu_offered() -> None:
    labels = ("blues", "hiphop", "jazz")
    ok = votes.check_menu_choice("genrebot:correct", 3, ["hiphop"], labels)
    assert ok is None
    for custom_id, ctype, values in [("genrebot:correct", 3, ["Hip-hop"]), ("genrebot:correct", 3, ["notagenre"]),
                                     ("genrebot:correct", 3, []), ("genrebot:correct", 3, ["jazz", "blues"]),
                                     ("genrebot:correct", 3, None), ("genrebot:correct", 2, ["jazz"]),
                                     ("genrebot:other", 3, ["jazz"]), (None, 3, ["jazz"]),
                                     ("genrebot:correct", 3, [["jazz"]])]:
        assert votes.check_menu_choice(custom_id, ctype, values, labels), (custom_id, ctype, values)


class FlakyStorage:
    """A storage whose writes fail as "unavailable" ``outage`` times before they succeed."""

    unavailable = (ConnectionError,)

    def __init__(self, outage: int) -> None:
        self.outage = outage
        self.calls = 0
        self.stored: list[tuple] = []

    async def prediction_by_message(self, message_id):
        from bot.storage.base import StoredPrediction

        return StoredPrediction(7, 1, None, None, message_id, None, "", "a.mp3", "0" * 64, 5.0, "v", "rock", 0.9,
                                (("rock", 0.9),), True, False)

    async def set_vote(self, prediction_id, user_id, vote):
        self.calls += 1
        if self.calls <= self.outage:
            raise ConnectionError("server restarting")
        self.stored.append((prediction_id, user_id, vote))


async def test_an_outage_is_retried_within_the_budget_and_reported_after_it() -> None:
    timing = votes.Timing(outage=1.0, first_backoff=0.05, max_backoff=0.1)
    short = FlakyStorage(outage=3)
    outcome = await votes.record_reaction(short, message_id=1, user_id=2, vote="right", on_own_message=True,
                                          timing=timing)
    assert outcome.status == "right" and short.stored == [(7, 2, "right")] and short.calls == 4
    endless = FlakyStorage(outage=10**6)
    outcome = await votes.record_menu_choice(endless, message_id=1, user_id=2, custom_id="genrebot:correct",
                                             component_type=3, values=["rock"], labels=("rock",), timing=timing)
    assert outcome.status == "failed" and endless.stored == [] and endless.calls > 3
