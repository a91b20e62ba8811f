"""``python -m bot``: the same as the ``genre-bot`` command (:mod:`bot.discord_adapter.cli`)."""

import sys

from bot.discord_adapter.cli import main

if __name__ == "__main__":
    sys.exit(main())
