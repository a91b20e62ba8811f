"""Build the bot's backends once, from settings; the bot receives them ready to use."""

from __future__ import annotations

import logging

from genre_model.errors import ArtifactError
from bot.errors import SettingsError
from bot.inference.base import InferenceBackend
from bot.model_store import ModelStore
from bot.settings import Settings
from bot.storage.base import Storage
from bot.storage.sqlite import SqliteStorage

log = logging.getLogger(__name__)


async def open_storage(settings: Settings) -> Storage:
    """The database, migrated to the current schema: PostgreSQL if GENREBOT_DATABASE_URL is set,
    else SQLite at GENREBOT_DB (with its files in the data folder)."""
    if settings.database_url:
        try:
            from bot.storage.postgres import PostgresStorage
        except ImportError as exc:
            raise SettingsError("GENREBOT_DATABASE_URL needs asyncpg: pip install '.[postgres]'") from exc
        return await PostgresStorage.open(settings.database_url)
    return await SqliteStorage.open(settings.db_path, settings.data_dir)


def model_store(settings: Settings) -> ModelStore:
    """Model versions: ``data/models/<version>``, plus the configured model."""
    return ModelStore(settings.data_dir / "models", settings.model_dir)


async def live_version(settings: Settings, storage: Storage, store: ModelStore) -> str:
    """The version to serve: the last promoted one if the store has it intact, else the configured model's."""
    live = await storage.live_model()
    if live is not None:
        try:
            return store.info(live.version).version
        except ArtifactError as exc:
            log.error("live model %s is unusable (%s); serving %s instead", live.version, exc, settings.model_dir)
    return store.seed_version()


def make_inference(settings: Settings, store: ModelStore) -> InferenceBackend:
    """The configured inference backend, not started yet (``GENREBOT_INFERENCE``)."""
    if settings.inference == "ray":
        try:
            from bot.inference.ray_serve import RayServeBackend
        except ImportError as exc:
            raise SettingsError(f"GENREBOT_INFERENCE=ray needs Ray Serve: pip install '.[ray]' ({exc})") from None
        return RayServeBackend(store, address=settings.ray_address, replicas=settings.ray_replicas,
                               max_replicas=settings.ray_max_replicas, replica_cpus=settings.ray_replica_cpus,
                               max_queue=settings.queue_limit, timeout=settings.inference_timeout,
                               local_cpus=settings.workers)
    from bot.inference.local import InferencePool

    return InferencePool(store, settings.workers, settings.queue_limit, settings.inference_timeout,
                         settings.data_dir / "tmp")


async def start_inference(settings: Settings, storage: Storage, store: ModelStore) -> InferenceBackend:
    """The configured backend, warmed up and serving the live model from ``store``."""
    version = await live_version(settings, storage, store)
    inference = make_inference(settings, store)
    await inference.start(version)
    log.info("serving model %s with the %s backend", inference.model_version, settings.inference)
    return inference
