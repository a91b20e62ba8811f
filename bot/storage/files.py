"""Per-prediction files in the local data folder: feature windows, and kept uploads.

One :class:`FolderStore` per kind of file is the only code that names, writes, reads and deletes
those files. The naming rule: ``<data dir>/<folder>/<prediction id><suffix>``, e.g.
``windows/42.npz`` or ``audio/42.mp3``; the database row records that relative name, and
deleting goes by the recorded name, never by a pattern.

Writes are crash-safe: bytes go to a fsynced temp file first (:meth:`FolderStore.stage`, outside
any database transaction), which :meth:`FolderStore.publish` renames into place and makes durable
inside the transaction that records it. Methods block: call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Protocol

from bot.errors import StorageError

WINDOWS_FOLDER = "windows"
AUDIO_FOLDER = "audio"
_PENDING = ".pending-"


class FileStore(Protocol):
    """A place for one kind of per-prediction file (a local folder today)."""

    def stage(self, write: Callable[[BinaryIO], None]) -> Path:
        """Run ``write`` on a new temp file and make it durable; returns the temp file."""

    def publish(self, staged: Path, prediction_id: int, suffix: str) -> str:
        """Give a staged file its final name, durably; returns the name to record."""

    def read(self, name: str) -> bytes:
        """The bytes of a recorded file."""

    def delete(self, names: Iterable[str]) -> None:
        """Delete recorded files (missing ones are fine)."""


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderStore:
    """Files of one kind, one per prediction, in ``<data_dir>/<folder>/`` (see the module doc)."""

    def __init__(self, data_dir: Path, folder: str) -> None:
        self.data_dir = Path(data_dir)
        self.folder = folder
        self.directory = self.data_dir / folder

    def name(self, prediction_id: int, suffix: str) -> str:
        """The naming rule: the name, relative to the data folder, of a prediction's file."""
        if not suffix.startswith(".") or any(c in suffix for c in "/\\\0"):
            raise ValueError(f"bad file suffix {suffix!r}")
        return f"{self.folder}/{int(prediction_id)}{suffix}"

    def path(self, name: str) -> Path:
        """The absolute path of a recorded name (which must be one of this store's)."""
        if not name.startswith(f"{self.folder}/") or "/" in name[len(self.folder) + 1:] or ".." in name:
            raise StorageError(f"{name!r} is not a file of the {self.folder} store")
        return self.data_dir / name

    def stage(self, write: Callable[[BinaryIO], None]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=_PENDING, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        return Path(tmp)

    def publish(self, staged: Path, prediction_id: int, suffix: str) -> str:
        name = self.name(prediction_id, suffix)
        os.replace(staged, self.data_dir / name)
        _fsync_dir(self.directory)
        return name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def delete(self, names: Iterable[str]) -> None:
        paths = [self.path(name) for name in names]
        for path in paths:
            with suppress(FileNotFoundError):
                path.unlink()
        if paths and self.directory.is_dir():
            _fsync_dir(self.directory)


def discard(paths: Iterable[Path]) -> None:
    """Remove the staged or published files of a write that did not commit."""
    for path in paths:
        with suppress(FileNotFoundError):
            path.unlink()
