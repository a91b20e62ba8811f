"""Storage of predictions, votes and models: the :class:`Storage` protocol and its backends.

:mod:`~genrebot.storage.sqlite` (embedded, the default) and :mod:`~genrebot.storage.postgres`
(shared, ``GENREBOT_DATABASE_URL``) implement it side by side; :mod:`~genrebot.storage.migrate`
applies their numbered SQL, :mod:`~genrebot.storage.files` keeps per-prediction files in the data
folder, :mod:`~genrebot.storage.export` writes the correction dataset. The PostgreSQL backend is
imported on demand (it needs ``asyncpg``: ``pip install 'genrebot[postgres]'``).
"""

from genrebot.errors import StorageError
from genrebot.storage.base import VOTES, Correction, ModelRow, Prediction, Stats, Storage, Vote
from genrebot.storage.sqlite import SqliteStorage

__all__ = ["VOTES", "Correction", "ModelRow", "Prediction", "SqliteStorage", "Stats", "Storage", "StorageError",
           "Vote"]
