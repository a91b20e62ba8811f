"""Build the bot's backends once, from settings; the bot receives them ready to use."""

from __future__ import annotations

import logging
from pathlib import Path

from genre_model.artifact import load_info
from genre_model.errors import ArtifactError
from genrebot.inference.local import InferencePool
from genrebot.settings import Settings
from genrebot.errors import SettingsError
from genrebot.storage import SqliteStorage, Storage

log = logging.getLogger(__name__)


async def open_storage(settings: Settings) -> Storage:
    """The database, migrated to the current schema: PostgreSQL if GENREBOT_DATABASE_URL is set,
    else SQLite at GENREBOT_DB (with its files in the data folder)."""
    if settings.database_url:
        try:
            from genrebot.storage.postgres import PostgresStorage
        except ImportError as exc:
            raise SettingsError("GENREBOT_DATABASE_URL needs asyncpg: pip install 'genrebot[postgres]'") from exc
        return await PostgresStorage.open(settings.database_url)
    return await SqliteStorage.open(settings.db_path, settings.data_dir)


async def live_model_dir(settings: Settings, storage: Storage) -> Path:
    """The model to serve: the last promoted one if it is usable, else the configured one."""
    live = await storage.live_model()
    if live is not None:
        try:
            load_info(settings.data_dir / live.path)
            return settings.data_dir / live.path
        except ArtifactError as exc:
            log.error("live model %s is unusable (%s); serving %s instead", live.version, exc, settings.model_dir)
    return settings.model_dir


async def start_inference(settings: Settings, storage: Storage) -> InferencePool:
    """Warmed-up inference workers serving the live model."""
    model_dir = await live_model_dir(settings, storage)
    pool = InferencePool(model_dir, settings.workers, settings.queue_limit, settings.inference_timeout,
                         settings.data_dir / "tmp")
    await pool.start()
    log.info("serving model %s from %s with %d workers", pool.model_version, model_dir, settings.workers)
    return pool
