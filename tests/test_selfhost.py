"""Self-hosting as a person does it: the installed ``genre-bot`` command, started in a folder
holding only ``.env``, with nothing about Discord in the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GENRE_BOT = Path(sys.executable).parent / "genre-bot"


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "GENREBOT_"))}


async def _start_and_stop(server, workdir: Path, args: list[str]) -> str:
    log = workdir / "bot.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(str(GENRE_BOT), *args, cwd=workdir, env=clean_env(),
                                                    stdout=out, stderr=out)
        try:
            exited = asyncio.create_task(proc.wait())
            ready = asyncio.create_task(server.wait_commands(["genre", "retrain"], timeout=90))
            done, _ = await asyncio.wait({exited, ready}, return_when=asyncio.FIRST_COMPLETED)
            assert ready in done, f"bot exited early: {log.read_text(errors='replace')}"
            ready.result()
            for _ in range(600):  # a healthy start ends with "logged in as NAME (ID)"
                if "logged in as" in log.read_text(errors="replace") or proc.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            assert "logged in as" in log.read_text(errors="replace"), log.read_text(errors="replace")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(exited, 30) == 0, log.read_text(errors="replace")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return log.read_text(errors="replace")


def _write_env(path: Path, server) -> None:
    path.write_text(f"DISCORD_TOKEN=test-token-from-dotenv\nDISCORD_API_BASE={server.api_base}\n"
                    f"DISCORD_GATEWAY_URL={server.gateway_url}\nGENREBOT_DATA_DIR=data\nGENREBOT_WORKERS=1\n")


async def test_dotenv_in_the_working_folder_is_read(server, tmp_path):
    assert GENRE_BOT.exists(), GENRE_BOT
    _write_env(tmp_path / ".env", server)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]
    await _start_and_stop(server, tmp_path, [])
    assert (tmp_path / "data").is_dir()  # GENREBOT_DATA_DIR relative to the working folder


async def test_env_file_option(server, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    _write_env(conf / "bot.env", server)
    run = tmp_path / "run"
    run.mkdir()
    await _start_and_stop(server, run, ["--env-file", str(conf / "bot.env")])


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    from bot.settings import load_settings

    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-file\nGENREBOT_LOG_LEVEL=debug\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "from-env")
    monkeypatch.delenv("GENREBOT_LOG_LEVEL", raising=False)
    settings = load_settings()
    assert settings.token == "from-env" and settings.log_level == "DEBUG"


def test_missing_env_file_is_one_clear_line(tmp_path):
    result = subprocess.run([str(GENRE_BOT), "--env-file", "nope.env"], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["genre-bot: --env-file nope.env: no such file"]


def test_version_and_help(tmp_path):
    from genre_model import __version__

    for cmd in ("genre-bot", "genre-model"):
        result = subprocess.run([str(GENRE_BOT.parent / cmd), "--version"], cwd=tmp_path, env=clean_env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{cmd} {__version__}"), result.stdout
    result = subprocess.run([str(GENRE_BOT), "--help"], cwd=tmp_path, env=clean_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "--env-file" in result.stdout and "--version" in result.stdout
    assert "``" not in result.stdout and "`" not in result.stdout, result.stdout


async def test_no_voice_warnings_at_start(server, tmp_path):
    _write_env(tmp_path / ".env", server)
    log = await _start_and_stop(server, tmp_path, [])
    assert "PyNaCl" not in log and "davey" not in log and "voice will NOT" not in log, log


def test_env_example_lists_every_setting():
    import re

    import bot.settings

    root = Path(__file__).resolve().parents[1]
    source = Path(bot.settings.__file__).read_text()
    read = set(re.findall(r'"((?:GENREBOT|DISCORD)_[A-Z_]+)"', source))
    example = (root / ".env.example").read_text()
    listed = set(re.findall(r"^#?((?:GENREBOT|DISCORD)_[A-Z_]+)=", example, re.M))
    assert read == listed, (sorted(read - listed), sorted(listed - read))
    assert re.search(r"^DISCORD_TOKEN=$", example, re.M)


PERMISSIONS = 117824  # the integer the README documents


def test_permission_integer_and_invite_url(tmp_path):
    import base64

    from bot.discord_adapter.permissions import required_permissions

    perms = required_permissions()
    assert perms.value == PERMISSIONS
    assert {name for name, on in perms if on} == {"read_messages", "send_messages", "embed_links", "attach_files",  # read_messages = View Channel
                                                 "add_reactions", "read_message_history"}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"permissions={PERMISSIONS}" in readme
    app_id = 123456789012345678
    token = base64.urlsafe_b64encode(str(app_id).encode()).decode().rstrip("=") + ".abc.def"
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={token}\n")
    result = subprocess.run([str(GENRE_BOT), "invite-url"], cwd=tmp_path, env=clean_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"https://discord.com/oauth2/authorize?client_id={app_id}"
                                     f"&scope=bot+applications.commands&permissions={PERMISSIONS}")
