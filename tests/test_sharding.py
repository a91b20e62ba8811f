"""The sharded gateway: one bot with two shards, and two bot processes each running one shard
over one PostgreSQL database (the scaled set-up's storage).

The fake server (``fakediscord.sharding``) routes every guild event to shard
``(guild_id >> 22) % shard_count`` only, as Discord does, so a reply proves that the
process owning that shard received the event.
"""

from __future__ import annotations

import signal

import pytest
import pytest_asyncio
from testkit.botharness import OTHER_ID, USER_ID, BotProcess, make_settings, poll, running_bot
from conftest import encode, synth_music
from testkit.fakediscord.sharding import ShardedFakeDiscordServer, shard_of

from bot.discord_adapter import replies
from bot.ratelimit import Cooldowns

pytestmark = pytest.mark.slow

SR = 22050


@pytest_asyncio.fixture
async def sharded():
    """A fake Discord with two shards: the default guild and a second guild on the other shard."""
    srv = ShardedFakeDiscordServer(shard_count=2, default_user_id=USER_ID)
    await srv.start()
    srv.other = srv.add_guild(shard_id=1 - shard_of(srv.guild_id, 2))
    try:
        yield srv
    finally:
        await srv.stop()


def song(tmp_path, seed=0) -> bytes:
    return encode(synth_music(6.0, SR, seed=seed), tmp_path / f"s{seed}.mp3", SR, "mp3").read_bytes()


async def ask(server, data: bytes, guild_id: int, channel_id: int, user_id: int = USER_ID):
    att = server.add_attachment("song.mp3", data, "audio/mpeg")
    handle = await server.send_slash_command("genre", {"file": att}, guild_id=guild_id, channel_id=channel_id,
                                             user_id=user_id)
    return handle, await handle.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=90)


def delivered(server, shard_id: int, event: str) -> set[str]:
    return {gid for t, gid in server.shards[shard_id].delivered if t == event}


async def test_one_bot_runs_two_shards(sharded, tmp_path):
    main, other = sharded.guild_id, sharded.other
    settings = make_settings(tmp_path, sharded, shard_count=2)
    async with running_bot(sharded, settings) as run:
        assert sorted(run.bot.shards) == [0, 1] and run.bot.shard_count == 2
        shards_identified = sorted(tuple(p["d"]["shard"]) for p in sharded.gateway_received if p.get("op") == 2)
        assert shards_identified == [(0, 2), (1, 2)]
        for guild_id, channel_id in ((main, sharded.channel_id), (other.guild_id, other.channel_id)):
            _, message = await ask(sharded, song(tmp_path), guild_id, channel_id)
            assert message.get("embeds"), message
        assert delivered(sharded, shard_of(main, 2), "INTERACTION_CREATE") == {str(main)}
        assert delivered(sharded, shard_of(other.guild_id, 2), "INTERACTION_CREATE") == {str(other.guild_id)}
        assert {g.id for g in run.bot.guilds} == {main, other.guild_id}


async def test_two_processes_split_the_shards_over_one_database(sharded, tmp_path, pg_cluster):
    from storage_backends import PostgresBackend

    database = PostgresBackend(tmp_path, await pg_cluster.create_database())
    data_dir = tmp_path / "shared-data"
    procs = {}
    for shard in (0, 1):  # one after the other: the first one migrates the database
        procs[shard] = await BotProcess(sharded, tmp_path / f"bot{shard}", GENREBOT_DATA_DIR=str(data_dir),
                                        **database.env,
                                        GENREBOT_WORKERS="1", GENREBOT_SHARD_COUNT="2",
                                        GENREBOT_SHARD_IDS=str(shard)).start()
    try:
        await sharded.wait_shards([0, 1])
        assert sharded.shards[0].identify_count == sharded.shards[1].identify_count == 1
        guilds = {shard_of(sharded.guild_id, 2): (sharded.guild_id, sharded.channel_id),
                  shard_of(sharded.other.guild_id, 2): (sharded.other.guild_id, sharded.other.channel_id)}
        replies_by_shard = {}
        for shard, (guild_id, channel_id) in guilds.items():
            _, message = await ask(sharded, song(tmp_path, seed=shard), guild_id, channel_id)
            assert message.get("embeds"), message
            assert delivered(sharded, shard, "INTERACTION_CREATE") == {str(guild_id)}
            replies_by_shard[shard] = int(message["id"])

        # feedback reaches the process that owns the guild, and lands in the shared database
        for mid in replies_by_shard.values():  # the bot reacts once the reply is tracked
            await sharded.wait_for(lambda: len(sharded.bot_reactions_on(mid)) == 2, timeout=20)

        async def votes() -> dict:
            return {(m, u): (v, g) for m, u, v, g in await database.raw(
                "SELECT p.message_id, f.user_id, f.vote, f.corrected_genre FROM feedback f"
                " JOIN predictions p ON p.id = f.prediction_id")}

        (predicted,), = await database.raw(f"SELECT genre FROM predictions WHERE message_id = {replies_by_shard[0]:d}")
        right = "jazz" if predicted != "jazz" else "rock"
        await sharded.add_reaction(replies_by_shard[1], replies.RIGHT, user_id=OTHER_ID)
        comp = await sharded.send_component_interaction(replies_by_shard[0], "genrebot:correct", [right],
                                                        user_id=OTHER_ID)
        await comp.wait_message(timeout=20)  # the persistent menu works in the process owning shard 0

        async def both_voted():
            return len(await votes()) == 2
        await poll(both_voted)
        assert (await votes())[(replies_by_shard[1], OTHER_ID)][0] == "right"
        assert (await votes())[(replies_by_shard[0], OTHER_ID)] == ("wrong", right)
        for shard, (guild_id, _) in guilds.items():  # each shard got its own guild's events, and only those
            assert delivered(sharded, shard, "MESSAGE_REACTION_ADD") == {str(guild_id)}
            assert {gid for _, gid in sharded.shards[shard].delivered if gid} == {str(guild_id)}
    finally:
        codes = [await procs[s].stop(signal.SIGTERM) for s in procs]
        await pg_cluster.drop_database(database.url)
    assert codes == [0, 0], [procs[s].log()[-2000:] for s in procs]


def test_cooldowns_forget_users_whose_pause_is_over():
    now = [1000.0]
    cooldowns = Cooldowns(10.0, clock=lambda: now[0])
    assert cooldowns.retry_after(1) == 0 and cooldowns.retry_after(1) == pytest.approx(10.0)
    now[0] += 4
    assert cooldowns.retry_after(1) == pytest.approx(6.0) and cooldowns.retry_after(2) == 0
    assert len(cooldowns) == 2
    now[0] += 20
    for user in range(3, 1003):  # a thousand users later, only those still pausing are remembered
        assert cooldowns.retry_after(user) == 0
    assert 1 not in cooldowns and 2 not in cooldowns and len(cooldowns) == 1000
    now[0] += 11
    assert cooldowns.retry_after(5000) == 0 and len(cooldowns) == 1
    cooldowns.forget(5000)
    assert len(cooldowns) == 0 and cooldowns.retry_after(5000) == 0
    assert Cooldowns(0).retry_after(1) == 0 and len(Cooldowns(0)) == 0


def test_scaling_settings_are_read_and_checked_together():
    from bot.errors import SettingsError
    from bot.settings import load_settings

    def settings(**env: str):
        return load_settings({"DISCORD_TOKEN": "x", **env}, dotenv=False)

    s = settings(GENREBOT_INFERENCE="ray", GENREBOT_RAY_REPLICAS="2", GENREBOT_RAY_MAX_REPLICAS="4",
                 GENREBOT_SHARD_COUNT="4", GENREBOT_SHARD_IDS="2-3")
    assert (s.inference, s.ray_replicas, s.ray_max_replicas, s.shard_count, s.shard_ids) == ("ray", 2, 4, 4, (2, 3))
    with pytest.raises(SettingsError, match="RAY_MAX_REPLICAS must be at least GENREBOT_RAY_REPLICAS"):
        settings(GENREBOT_RAY_REPLICAS="3", GENREBOT_RAY_MAX_REPLICAS="2")
    with pytest.raises(SettingsError, match=r"SHARD_IDS must be between 0 and 3"):
        settings(GENREBOT_SHARD_COUNT="4", GENREBOT_SHARD_IDS="3-4")
    with pytest.raises(SettingsError, match="GENREBOT_RAY_REPLICAS must be"):
        settings(GENREBOT_RAY_REPLICAS="0")
