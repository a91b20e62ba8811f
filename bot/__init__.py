"""genrebot: the Discord bot over :mod:`genre_model`.

Two layers live here, and only the outer one knows Discord:

* the service layer (this package's modules): settings, storage backends (:mod:`bot.storage`),
  inference backends (:mod:`bot.inference`), the vote rules (:mod:`bot.feedback`), the
  retrain-and-promote workflow (:mod:`bot.retraining`) and the composition root that builds them
  (:mod:`bot.backends`); plain Python, testable without a Discord connection;
* :mod:`bot.discord_adapter`: the thin Discord adapter (discord.py client, cogs, replies), the only
  code that imports ``discord``.

``genre_model`` is the ML library under both; it never imports the bot. The layers are checked
by ``tests/test_architecture.py``; ``docs/architecture.md`` walks a song through them.
"""
