"""The fake Discord of deploy/smoke.sh, run as one more compose service (deploy/compose.smoke.yaml).

It runs testkit's sharded fake Discord server on 0.0.0.0:8080, reachable from the bots as
http://fakediscord:8080 (never discord.com), synthesises the base and held-out data of /retrain
into the shared data volume, then:

1. waits until every gateway shard (0-3, split over bot-a and bot-b) is connected and the slash
   commands are registered (prints START READY);
2. asks /genre in a guild on each shard, so both bots answer through their own shards;
3. asks /retrain as the admin and waits for its verdict;
4. after a promotion, asks /genre again on every shard: every reply must name the new model.

Prints one `SMOKE PASSED` or `SMOKE FAILED: ...` line, then keeps serving until SIGTERM (so the
bots are stopped while their Discord is still there).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp.web

from testkit.audio import encode, synth_music
from testkit.fakediscord import server as server_module
from testkit.fakediscord.sharding import ShardedFakeDiscordServer, shard_of

PORT = 8080
HOST = os.environ.get("SMOKE_FAKEDISCORD_HOST", "fakediscord")
ADMIN_ID = int(os.environ.get("SMOKE_ADMIN_ID", "111111111111111111"))
USER_ID = 222222222222222222
SHARDS = int(os.environ.get("GENREBOT_SHARD_COUNT", "4"))
DATA = Path(os.environ.get("SMOKE_DATA", "/data/smoke"))
SR = 22050
T0 = time.monotonic()


def say(*words: object) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s]", *words, flush=True)


class ReachableFakeDiscord(ShardedFakeDiscordServer):
    """The sharded fake server, listening on every interface and naming itself by its service name."""

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{PORT}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{HOST}:{PORT}/gateway"


def listen_everywhere() -> None:
    """testkit's server binds 127.0.0.1 on a random port; in a container it must take 0.0.0.0:8080."""
    site = aiohttp.web.TCPSite

    class Site(site):  # type: ignore[misc, valid-type]
        def __init__(self, runner, host=None, port=None, **kwargs):
            super().__init__(runner, "0.0.0.0", PORT, **kwargs)

    server_module.web.TCPSite = Site  # the module's own reference to aiohttp.web


def genre_folders(root: Path, per_genre: int, seconds: float, seed0: int) -> Path:
    """Ten synthetic 'genres' differing in pitch and tempo (as tests/test_bot_e2e.py)."""
    from genre_model.config import GENRES

    for i, genre in enumerate(GENRES):
        for j in range(per_genre):
            path = root / genre / f"{genre}.{seed0 + j:05d}.wav"
            if not path.exists():
                samples = synth_music(seconds, SR, seed=seed0 + 100 * i + j, f0=110.0 * 1.25 ** i, bpm=70 + 9 * i)
                encode(samples, path, SR, "wav")
    return root


def song(seed: int) -> bytes:
    return encode(synth_music(6.0, SR, seed=seed), DATA / "songs" / f"s{seed}.mp3", SR, "mp3").read_bytes()


async def ask_genre(server, guild_id: int, channel_id: int, seed: int) -> dict:
    att = server.add_attachment("song.mp3", song(seed), "audio/mpeg")
    handle = await server.send_slash_command("genre", {"file": att}, guild_id=guild_id, channel_id=channel_id,
                                             user_id=USER_ID + seed)
    return await handle.wait_message(lambda m: m.get("embeds") or m.get("content"), timeout=180)


def footer(message: dict) -> str:
    embeds = message.get("embeds") or []
    return (embeds[0].get("footer") or {}).get("text", "") if embeds else ""


async def scenario(server) -> None:
    guilds = {shard_of(server.guild_id, SHARDS): (server.guild_id, server.channel_id)}
    for shard in range(SHARDS):
        if shard not in guilds:
            g = server.add_guild(shard_id=shard, name=f"Guild on shard {shard}")
            guilds[shard] = (g.guild_id, g.channel_id)
    await server.wait_shards(list(range(SHARDS)), timeout=600)
    await server.wait_commands(["genre", "retrain"], timeout=120)
    say("START READY: all", SHARDS, "shards connected, commands registered")

    async def genre_everywhere(round_: int) -> dict[int, str]:
        models = {}
        for shard, (guild_id, channel_id) in sorted(guilds.items()):
            t = time.monotonic()
            reply = await ask_genre(server, guild_id, channel_id, seed=10 * round_ + shard)
            if not reply.get("embeds"):
                raise AssertionError(f"/genre on shard {shard}: {reply.get('content')!r}")
            got = {gid for t_, gid in server.shards[shard].delivered if t_ == "INTERACTION_CREATE"}
            if str(guild_id) not in got:
                raise AssertionError(f"/genre for shard {shard}'s guild was not delivered on shard {shard}")
            models[shard] = footer(reply)
            say(f"/genre shard {shard}: {reply['embeds'][0].get('title', '')!r} ({footer(reply)}) "
                f"in {time.monotonic() - t:.1f}s")
        return models

    before = await genre_everywhere(0)
    say("GENRE OK: every shard answered;", json.dumps(before))

    t = time.monotonic()
    guild_id, channel_id = guilds[0]
    handle = await server.send_slash_command("retrain", {}, user_id=ADMIN_ID, guild_id=guild_id, channel_id=channel_id)
    final = await handle.wait_message(lambda m: (m.get("content") or "").startswith(
        ("\N{WHITE HEAVY CHECK MARK}", "\N{NO ENTRY}", "\N{CROSS MARK}")), timeout=1200)
    text = final["content"]
    say(f"RETRAIN ({time.monotonic() - t:.0f}s): {text.splitlines()[0][:300]}")
    if not text.startswith("\N{WHITE HEAVY CHECK MARK}"):
        raise AssertionError("the retrained model was not promoted, so there is nothing new to serve")

    after = await genre_everywhere(1)
    if len(set(after.values())) != 1 or set(after.values()) & set(before.values()):
        raise AssertionError(f"not every shard serves the promoted model: before {before}, after {after}")
    say("PROMOTION OK: both bots serve", next(iter(after.values())))


async def main() -> int:
    listen_everywhere()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    say("synthesising the base and held-out data in", DATA)
    await asyncio.to_thread(genre_folders, DATA / "base", 3, 4.0, 0)
    await asyncio.to_thread(genre_folders, DATA / "holdout", 1, 4.0, 50)
    server = ReachableFakeDiscord(shard_count=SHARDS, default_user_id=USER_ID)
    await server.start()
    say("fake Discord listening on", server.base_url)
    task = asyncio.create_task(scenario(server))
    done, _ = await asyncio.wait({task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        exc = task.exception()
        say("SMOKE PASSED" if exc is None else f"SMOKE FAILED: {type(exc).__name__}: {exc}")
        await stop.wait()
    else:
        task.cancel()
        say("SMOKE FAILED: stopped before the scenario ended")
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
