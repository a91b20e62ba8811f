"""The SQL migrations (see README.md here), shipped inside the package as ``bot.migrations``."""
