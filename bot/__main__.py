"""``python -m bot`` and the ``genre-bot`` command: :func:`bot.discord_adapter.cli.main`.

Kept free of imports on purpose: inference workers are spawned processes, and a spawned process
imports the parent's main module again. Importing discord.py here would put it (and aiohttp) in
every worker, about 30 MB each, for nothing.
"""

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the bot's command line (imported only here, in the bot's own process)."""
    from bot.discord_adapter.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
