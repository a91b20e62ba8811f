"""Settings, read once from environment variables (and an optional ``.env`` file)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

from bot.errors import SettingsError
from genre_model.config import DEFAULT_MODEL_DIR, MAX_AUDIO_SECONDS


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the bot can be configured with; see the README's table."""

    token: str = dataclasses.field(repr=False)
    db_path: Path = Path("data/genrebot.sqlite3")
    #: PostgreSQL instead of SQLite at ``db_path`` (may hold a password: never logged).
    database_url: str | None = dataclasses.field(default=None, repr=False)
    data_dir: Path = Path("data")
    model_dir: Path = DEFAULT_MODEL_DIR
    workers: int = max(1, os.cpu_count() or 1)
    queue_limit: int = 32
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_audio_seconds: float = MAX_AUDIO_SECONDS
    cooldown_seconds: float = 10.0
    download_timeout: float = 30.0
    inference_timeout: float = 60.0
    admin_ids: frozenset[int] = frozenset()
    admin_role_ids: frozenset[int] = frozenset()
    guild_ids: tuple[int, ...] = ()
    base_data: Path | None = None
    holdout_data: Path | None = None
    retrain_epochs: int = 0
    keep_audio: bool = False
    api_base: str | None = None
    gateway_url: str | None = None
    log_level: str = "INFO"
    # scaling out: inference backend and gateway shards (README, "Scaling out")
    inference: str = "local"
    ray_address: str | None = None
    ray_replicas: int = 1
    ray_max_replicas: int = 0
    ray_replica_cpus: float = 1.0
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None


INFERENCE_BACKENDS = ("local", "ray")


def _ints(name: str, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise SettingsError(f"{name} must be a comma-separated list of numeric ids, got {value!r}") from None


def _number(name: str, value: str, kind: type, minimum: float) -> float | int:
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return number


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: bool = True, require_token: bool = True,
                  env_file: str | os.PathLike | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: ``os.environ`` after reading ``.env``).

    The file is ``env_file`` when given (it must exist), else ``.env`` in the current working
    folder (the folder the bot is started from) when there is one. Real environment variables
    win over the file.
    """
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            path = Path(env_file) if env_file is not None else Path.cwd() / ".env"
            if env_file is not None and not path.is_file():
                raise SettingsError(f"--env-file {path}: no such file")
            if path.is_file():
                load_dotenv(dotenv_path=path, override=False)
        env = os.environ
    token = env.get("DISCORD_TOKEN", "").strip()
    if require_token and not token:
        raise SettingsError("DISCORD_TOKEN is not set; put the bot token in the environment or in .env")
    values: dict = {"token": token}
    data_dir = Path(env.get("GENREBOT_DATA_DIR", "data"))
    values["data_dir"] = data_dir
    values["db_path"] = Path(env.get("GENREBOT_DB", str(data_dir / "genrebot.sqlite3")))
    database_url = env.get("GENREBOT_DATABASE_URL", "").strip()
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError("GENREBOT_DATABASE_URL must be a postgresql://user@host:port/db URL")
        values["database_url"] = database_url
    if "GENREBOT_MODEL_DIR" in env:
        values["model_dir"] = Path(env["GENREBOT_MODEL_DIR"])
    numbers = {
        "GENREBOT_WORKERS": ("workers", int, 1),
        "GENREBOT_QUEUE_LIMIT": ("queue_limit", int, 1),
        "GENREBOT_MAX_AUDIO_SECONDS": ("max_audio_seconds", float, 1),
        "GENREBOT_COOLDOWN_SECONDS": ("cooldown_seconds", float, 0),
        "GENREBOT_DOWNLOAD_TIMEOUT": ("download_timeout", float, 0.1),
        "GENREBOT_INFERENCE_TIMEOUT": ("inference_timeout", float, 0.1),
        "GENREBOT_RETRAIN_EPOCHS": ("retrain_epochs", int, 1),
        "GENREBOT_RAY_REPLICAS": ("ray_replicas", int, 1),
        "GENREBOT_RAY_MAX_REPLICAS": ("ray_max_replicas", int, 0),
        "GENREBOT_RAY_REPLICA_CPUS": ("ray_replica_cpus", float, 0.1),
        "GENREBOT_SHARD_COUNT": ("shard_count", int, 1),
    }
    for name, (field, kind, minimum) in numbers.items():
        if env.get(name, "").strip():
            values[field] = _number(name, env[name].strip(), kind, minimum)
    if env.get("GENREBOT_MAX_ATTACHMENT_MB", "").strip():
        mb = _number("GENREBOT_MAX_ATTACHMENT_MB", env["GENREBOT_MAX_ATTACHMENT_MB"].strip(), float, 0.001)
        values["max_attachment_bytes"] = int(mb * 1024 * 1024)
    values["admin_ids"] = frozenset(_ints("GENREBOT_ADMIN_IDS", env.get("GENREBOT_ADMIN_IDS", "")))
    values["admin_role_ids"] = frozenset(_ints("GENREBOT_ADMIN_ROLE_IDS", env.get("GENREBOT_ADMIN_ROLE_IDS", "")))
    values["guild_ids"] = _ints("GENREBOT_GUILD_IDS", env.get("GENREBOT_GUILD_IDS", ""))
    for name, field in (("GENREBOT_BASE_DATA", "base_data"), ("GENREBOT_HOLDOUT_DATA", "holdout_data")):
        if env.get(name, "").strip():
            values[field] = Path(env[name].strip())
    values["keep_audio"] = _flag("GENREBOT_KEEP_AUDIO", env.get("GENREBOT_KEEP_AUDIO", ""))
    values["api_base"] = env.get("DISCORD_API_BASE") or None
    values["gateway_url"] = env.get("DISCORD_GATEWAY_URL") or None
    values["log_level"] = env.get("GENREBOT_LOG_LEVEL", "INFO").upper()
    if values["log_level"] not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"GENREBOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {values['log_level']}")
    values.update(_scaling(env, values))
    return Settings(**values)


def _shard_ids(value: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"4-7"`` (or a mix) -> sorted distinct shard ids."""
    ids: set[int] = set()
    for part in value.replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            ids.update(range(int(low), int(high or low) + 1))
        except ValueError:
            raise SettingsError(f"GENREBOT_SHARD_IDS must be shard numbers or ranges like 0-3, got {value!r}") from None
    return tuple(sorted(ids))


def _scaling(env: Mapping[str, str], numbers: Mapping[str, object]) -> dict:
    """The inference backend (local pool or Ray Serve) and the gateway shards this process runs
    (checked against the replica and shard ``numbers`` already read)."""
    values: dict = {}
    inference = env.get("GENREBOT_INFERENCE", "").strip().lower() or "local"
    if inference not in INFERENCE_BACKENDS:
        raise SettingsError(f"GENREBOT_INFERENCE must be local or ray, got {env['GENREBOT_INFERENCE']!r}")
    values["inference"] = inference
    values["ray_address"] = env.get("GENREBOT_RAY_ADDRESS", "").strip() or None
    if numbers.get("ray_max_replicas") and numbers["ray_max_replicas"] < numbers.get("ray_replicas", 1):
        raise SettingsError("GENREBOT_RAY_MAX_REPLICAS must be at least GENREBOT_RAY_REPLICAS (or 0: no autoscaling)")
    if env.get("GENREBOT_SHARD_IDS", "").strip():
        count = numbers.get("shard_count")
        if count is None:
            raise SettingsError("GENREBOT_SHARD_IDS needs GENREBOT_SHARD_COUNT (the total over all bot processes)")
        ids = _shard_ids(env["GENREBOT_SHARD_IDS"])
        if not ids or ids[-1] >= count:
            raise SettingsError(f"GENREBOT_SHARD_IDS must be between 0 and {count - 1} "
                                f"(GENREBOT_SHARD_COUNT={count}), got {env['GENREBOT_SHARD_IDS']!r}")
        values["shard_ids"] = ids
    return values
