"""The model store: model versions -> artifact folders.

Promoted and candidate models live in ``data/models/<version>``; the configured model
(``GENREBOT_MODEL_DIR``, the shipped one by default) is known by its own version without
being copied. Backends refer to models by version only. Local workers read the folder;
Ray Serve replicas, which may run on other machines, receive the artifact's bytes
(:meth:`ModelStore.files`) through Ray's object store, so no shared volume is needed.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from genre_model.artifact import DETECTOR, FILES, METADATA, ModelInfo, load_info
from genre_model.errors import ArtifactError

#: Every file a served artifact may consist of (a model without a sound detector has no DETECTOR).
ARTIFACT_FILES = (*FILES, DETECTOR, METADATA)
#: Stored models kept besides the live one: the latest candidates, for inspection or a rollback.
KEEP_NEWEST = 5


class ModelStore:
    """Versions -> verified artifact folders under ``root``, plus the configured ``seed`` model."""

    def __init__(self, root: Path, seed: Path) -> None:
        self.root = Path(root)
        self.seed = Path(seed)

    def path(self, version: str) -> Path:
        """The folder of ``version``. Raises ArtifactError if the store has no such model."""
        candidate = self.root / version
        if (candidate / METADATA).is_file():
            return candidate
        if load_info(self.seed, verify=False).version == version:
            return self.seed
        raise ArtifactError(f"model {version} is not in the model store ({self.root})")

    def info(self, version: str) -> ModelInfo:
        """Verified metadata of ``version`` (checksums checked). Raises ArtifactError."""
        info = load_info(self.path(version))
        if info.version != version:
            raise ArtifactError(f"{info.directory} holds model {info.version}, not {version}")
        return info

    def seed_version(self) -> str:
        """Version of the configured model (checked, so a corrupt one fails at start-up)."""
        return load_info(self.seed).version

    def add(self, artifact_dir: Path) -> str:
        """Move a freshly trained artifact into the store under its own version; returns the version."""
        info = load_info(Path(artifact_dir))
        target = self.root / info.version
        if target.exists():
            raise ArtifactError(f"model {info.version} is already in the model store")
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.move(str(artifact_dir), str(target))
        return info.version

    def prune(self, keep: Iterable[str], newest: int = KEEP_NEWEST) -> list[str]:
        """Delete stored models other than ``keep`` and the ``newest`` most recent; returns the versions
        deleted. Bounds the store's disk use over months of retrains (each model is a few MB)."""
        stored = sorted((d for d in self.root.glob("*") if (d / METADATA).is_file()),
                        key=lambda d: (d / METADATA).stat().st_mtime, reverse=True)
        keep = set(keep)
        gone = [d for d in stored[newest:] if d.name not in keep]
        for directory in gone:
            shutil.rmtree(directory, ignore_errors=True)
        return [d.name for d in gone]

    def files(self, version: str) -> dict[str, bytes]:
        """The artifact's files as bytes (what a remote replica needs to serve ``version``)."""
        info = self.info(version)
        return {name: info.path(name).read_bytes() for name in (*info.files, METADATA)}


def unpack(files: dict[str, bytes], version: str, cache_dir: Path) -> Path:
    """Write shipped artifact bytes to ``cache_dir`` (once per machine and artifact) and verify them."""
    if METADATA not in files:
        raise ArtifactError(f"model {version} was shipped without {METADATA}")
    digest = hashlib.sha256(files[METADATA]).hexdigest()[:16]  # metadata holds every file's checksum
    target = Path(cache_dir) / f"{version}-{digest}"
    if not (target / METADATA).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
        try:
            for name, data in files.items():
                if name not in ARTIFACT_FILES:
                    raise ArtifactError(f"unexpected file {name!r} in model {version}")
                (staging / name).write_bytes(data)
            load_info(staging)  # verified before it is published: a broken set never lands in the cache
            try:
                staging.rename(target)
            except OSError:  # another replica on this machine unpacked it first
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    info = load_info(target)
    if info.version != version:
        raise ArtifactError(f"shipped model claims version {info.version}, expected {version}")
    return target
