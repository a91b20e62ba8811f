"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl``, on 127.0.0.1.

The server binaries come from Debian's ``postgresql`` package (installed by scripts/setup.sh).
PostgreSQL refuses to run as root, and CI runs as root: then the cluster runs as the unprivileged
``postgres`` user the package creates; as anyone else it runs as that user. Missing binaries are an
error with a clear message, never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

SUPERUSER = "genrebot"


class PostgresMissing(RuntimeError):
    """The PostgreSQL server programs are not installed."""


def server_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: $GENREBOT_PG_BIN, else the newest Debian one, else PATH."""
    if os.environ.get("GENREBOT_PG_BIN"):
        candidates = [Path(os.environ["GENREBOT_PG_BIN"])]
    else:
        debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                        if Path(p).parent.name.isdigit() else 0, reverse=True)
        candidates = [Path(p) for p in debian]
        if shutil.which("initdb"):
            candidates.append(Path(shutil.which("initdb")).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresMissing("PostgreSQL server programs (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or "
                          "on PATH: run scripts/setup.sh (it installs Debian's postgresql package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """``start()`` a fresh cluster in a temp folder; ``url(db)``; ``create_database()``; ``stop()``."""

    def __init__(self) -> None:
        self.bin = server_bin_dir()
        self.run_as = "postgres" if os.geteuid() == 0 else None
        if self.run_as:
            try:
                account = pwd.getpwnam(self.run_as)
            except KeyError:
                raise PostgresMissing("running as root, but there is no 'postgres' user to run the test "
                                      "PostgreSQL server as: install Debian's postgresql package") from None
            self._uid, self._gid = account.pw_uid, account.pw_gid
        self.root = Path(tempfile.mkdtemp(prefix="genrebot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.bin / args[0]), *args[1:]], user=self.run_as, group=self.run_as,
                                capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr or result.stdout}\n{log}")
        return result

    def start(self) -> "PostgresCluster":
        if self.run_as:
            os.chown(self.root, self._uid, self._gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
                  "--no-sync")
        for attempt in range(5):  # the free port may be taken between choosing and binding it
            self.port = _free_port()
            options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                       "-c max_connections=200")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options,
                          "start")
                return self
            except RuntimeError:
                if attempt == 4:
                    raise
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def crash(self) -> None:
        """Stop the server the hard way (no checkpoint): what a power cut or ``kill -9`` leaves behind."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def restart(self) -> None:
        """Start the server again on the same port (it replays its WAL)."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    async def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import asyncpg

        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database` (closing any connection left to it)."""
        import asyncpg

        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await conn.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

