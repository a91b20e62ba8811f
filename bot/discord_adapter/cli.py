"""``genre-bot`` (and ``python -m bot``): run the bot, or export the correction dataset."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Sequence

import aiohttp
import discord

from bot.discord_adapter.client import GenreBot, point_discord_at
from bot.errors import SettingsError
from bot.settings import Settings, load_settings
from bot.backends import model_store, open_storage, start_inference
from bot.storage import StorageError
from genre_model.artifact import load_info
from genre_model.cli import VersionAction
from genre_model.errors import GenreModelError

log = logging.getLogger("bot")

# The bot never joins voice: do not warn at every start that PyNaCl / davey (voice only) are missing.
for _flag in ("warn_nacl", "warn_dave"):
    if hasattr(discord.VoiceClient, _flag):
        setattr(discord.VoiceClient, _flag, False)

DESCRIPTION = """\
The genrebot Discord bot: /genre names the genre of an uploaded song.

  genre-bot                         run the bot (settings from the environment / .env)
  genre-bot export-corrections DIR  write the corrections in a layout genre-model train reads
"""


class RedactToken(logging.Filter):
    """Belt and braces: never let the token reach a log line."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token and self.token in record.getMessage():
            record.msg, record.args = record.getMessage().replace(self.token, "[token]"), ()
        return True


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(settings.token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


async def run_bot(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    load_info(settings.model_dir)  # fail fast, before connecting, on a missing or corrupt model
    point_discord_at(settings.api_base, settings.gateway_url)
    async with await open_storage(settings) as storage:
        store = model_store(settings)
        inference = await start_inference(settings, storage, store)
        try:
            await _serve(GenreBot(settings, storage, inference, store), settings)
        finally:
            await inference.close()  # the workers stop before the database closes


async def _serve(bot: GenreBot, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, lambda s=sig: (log.info("received %s; shutting down", s.name),
                                                        asyncio.ensure_future(bot.close())))
        except NotImplementedError:  # not on Windows' default loop
            pass
    try:
        async with bot:
            await bot.start(settings.token)
    finally:
        # discord.py's __aexit__ waits only for its own half of a close already under way (the
        # signal handler's): finish the drain here before storage and workers are closed.
        await bot.close()


async def export_corrections(settings: Settings, out_dir: Path) -> int:
    async with await open_storage(settings) as storage:
        return await storage.export_corrections(out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genre-bot", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    env_help = "read settings from this file (default: .env in the current folder); environment variables win"
    parser.add_argument("--env-file", type=Path, default=None, metavar="PATH", help=env_help)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the bot (the default)")
    run.add_argument("--env-file", type=Path, default=argparse.SUPPRESS, metavar="PATH", help=env_help)
    export = sub.add_parser("export-corrections", help="write the correction dataset")
    export.add_argument("out_dir", type=Path)
    export.add_argument("--env-file", type=Path, default=argparse.SUPPRESS, metavar="PATH", help=env_help)
    invite = sub.add_parser("invite-url", help="print the URL that invites the bot with the permissions it needs")
    invite.add_argument("application_id", nargs="?", type=int, help="default: read from DISCORD_TOKEN")
    invite.add_argument("--env-file", type=Path, default=argparse.SUPPRESS, metavar="PATH", help=env_help)
    args = parser.parse_args(argv)
    if args.command == "invite-url":
        from bot.discord_adapter.permissions import application_id_from_token, invite_url

        try:
            app_id = args.application_id
            if app_id is None:
                app_id = application_id_from_token(load_settings(env_file=args.env_file).token)
        except (SettingsError, ValueError) as exc:
            print(f"genre-bot: {exc}", file=sys.stderr)
            return 2
        print(invite_url(app_id))
        return 0
    try:
        settings = load_settings(require_token=args.command != "export-corrections", env_file=args.env_file)
        setup_logging(settings)
        if args.command == "export-corrections":
            count = asyncio.run(export_corrections(settings, args.out_dir))
            print(f"wrote {count} corrected examples to {args.out_dir}")
            return 0
        asyncio.run(run_bot(settings))
        return 0
    except (SettingsError, StorageError, GenreModelError) as exc:
        print(f"genre-bot: {exc}", file=sys.stderr)
        return 2
    except discord.LoginFailure:
        print("genre-bot: Discord rejected the token (DISCORD_TOKEN); check it in the developer portal",
              file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as exc:
        print(f"genre-bot: cannot reach Discord: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
