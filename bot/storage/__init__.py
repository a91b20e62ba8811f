"""Storage of predictions, votes and models: the :class:`Storage` protocol and its backends.

:mod:`~bot.storage.sqlite` (embedded, the default) and :mod:`~bot.storage.postgres`
(shared, ``GENREBOT_DATABASE_URL``) implement it side by side; :mod:`~bot.storage.migrate`
applies their numbered SQL, :mod:`~bot.storage.files` keeps per-prediction files in the data
folder, :mod:`~bot.storage.export` writes the correction dataset. The PostgreSQL backend is
imported on demand (it needs ``asyncpg``: ``pip install '.[postgres]'``).
"""

from bot.errors import StorageError
from bot.storage.base import VOTES, Correction, ModelRow, Stats, Storage, StoredPrediction, Upload, Vote
from bot.storage.sqlite import SqliteStorage

__all__ = ["VOTES", "Correction", "ModelRow", "StoredPrediction", "SqliteStorage", "Stats", "Storage", "StorageError", "Upload",
           "Vote"]
