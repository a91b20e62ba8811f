"""genrebot's service layer: everything the Discord bot does that is not Discord.

Settings, storage backends (:mod:`genrebot.storage`), inference backends
(:mod:`genrebot.inference`) and the retrain-and-promote workflow
(:mod:`genrebot.retraining`). Nothing here imports discord.py; ``bot/`` is the thin
Discord adapter over it, and ``genre_model`` the ML library under it.
"""
