"""Storage of predictions, votes and models (SQLite today)."""

from genrebot.storage.sqlite import (
    VOTES, Correction, ModelRow, Prediction, Stats, Storage, StorageError, default_migrations_dir, load_migrations,
    load_windows, split_statements,
)

__all__ = ["VOTES", "Correction", "ModelRow", "Prediction", "Stats", "Storage", "StorageError",
           "default_migrations_dir", "load_migrations", "load_windows", "split_statements"]
