"""deploy/compose.yaml, checked without Docker (no Docker engine runs on these machines).

What can be checked here: the file parses (with compose's merge keys), every service the
scaled set-up needs is there, each bot's environment is accepted by ``load_settings`` as
the bot would read it, every ``GENREBOT_*`` variable it sets is one that settings.py
reads, the bots split the gateway shards exactly, and the Ray nodes and the bots agree
on the cluster's address and image.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "deploy" / "compose.yaml"
SETTINGS_SOURCE = (REPO / "bot" / "settings.py").read_text()
SECRETS = {"DISCORD_TOKEN": "token-from-dotenv", "POSTGRES_PASSWORD": "pw", "RAY_AUTH_TOKEN": "r" * 32}


def interpolate(value: str) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` with the .env values above."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in SECRETS:
            return SECRETS[name]
        if op == ":-":
            return arg
        raise AssertionError(f"${{{name}}} has no value and no default")
    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def environment(service: dict) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in (service.get("environment") or {}).items()}


def bots(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if name.startswith("bot")}


def test_services_of_the_scaled_setup(compose):
    services = compose["services"]
    assert {"postgres", "ray-head", "ray-worker"} <= set(services) and len(bots(compose)) >= 2
    assert services["postgres"]["image"].startswith("postgres:")
    assert "--head" in services["ray-head"]["entrypoint"]
    images = {s.get("image") for name, s in services.items() if name != "postgres"}
    assert images == {"genrebot-scale"}, "Ray nodes and bots must run the same genrebot and Ray versions"
    build = services["ray-head"]["build"]
    dockerfile = (COMPOSE.parent / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile == REPO / "Dockerfile" and "ARG EXTRAS" in dockerfile.read_text()
    assert set(build["args"]["EXTRAS"].split(",")) == {"train", "ray", "postgres"}, "/retrain, Ray Serve, PostgreSQL"


def test_every_genrebot_variable_is_read_by_settings(compose):
    names = {k for s in compose["services"].values() for k in environment(s) if k.startswith("GENREBOT_")}
    assert names, "the bots are configured through GENREBOT_* variables"
    unknown = {n for n in names if f'"{n}"' not in SETTINGS_SOURCE}
    assert not unknown, f"compose sets variables settings.py never reads: {sorted(unknown)}"


def test_each_bot_environment_loads_and_shards_are_split_exactly(compose):
    counts, owned = set(), []
    for name, service in bots(compose).items():
        env = environment(service)
        settings = load_settings(env, dotenv=False)
        assert settings.inference == "ray" and settings.token == SECRETS["DISCORD_TOKEN"], name
        assert settings.database_url == "postgresql://genrebot:pw@postgres:5432/genrebot", "one shared PostgreSQL"
        assert settings.ray_address == "ray-head:6379"
        assert settings.data_dir == Path("/data") and "/data" in " ".join(service["volumes"])
        assert "ray start --address=ray-head:6379" in " ".join(service["entrypoint"])
        assert service["entrypoint"][-1].endswith("exec genre-bot"), "SIGTERM reaches the bot"
        counts.add(settings.shard_count)
        owned.extend(settings.shard_ids)
    (count,) = counts
    assert sorted(owned) == list(range(count)), "every shard is run by exactly one bot process"


def test_ray_nodes_share_the_auth_token_and_address(compose):
    services = compose["services"]
    for name in ("ray-head", "ray-worker", *bots(compose)):
        env = environment(services[name])
        assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN"] == SECRETS["RAY_AUTH_TOKEN"], name
    assert "--address=ray-head:6379" in " ".join(services["ray-worker"]["entrypoint"])
    assert "--port=6379" in " ".join(services["ray-head"]["entrypoint"])
