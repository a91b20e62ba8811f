"""The correction export: the layout ``genre-model train`` and ``genre_model.retrain`` read.

``<out>/<label>/pred-<id>.npz`` (the stored windows file, byte for byte) plus ``<out>/MANIFEST.csv``
written by :func:`genre_model.dataset.write_manifest`: path, genre, group (``corr-<n>``: linked by
uploader or by file, see :func:`bot.feedback.uploader_groups`), source (corrected/confirmed).
No Discord id leaves the database. Shared by every storage backend.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable, Sequence

from genre_model.dataset import MANIFEST_NAME, ManifestRow, write_manifest
from bot.errors import StorageError
from bot.feedback import Correction, check_label

log = logging.getLogger(__name__)


async def export_corrections(out_dir: Path, corrections: Sequence[Correction],
                             windows_file: Callable[[int], Awaitable[bytes | None]]) -> int:
    """Write ``corrections`` into the empty or missing ``out_dir``; ``windows_file(prediction id)``
    gives the stored windows file's bytes. Returns the number of examples written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise StorageError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in corrections:
        data = await windows_file(item.prediction_id)
        if data is None:
            log.warning("windows of prediction %d are missing; skipped", item.prediction_id)
            continue
        label = check_label(item.label)
        relative = f"{label}/pred-{item.prediction_id}.npz"
        await asyncio.to_thread(_write, out_dir / relative, data)
        rows.append(ManifestRow(relative, label, item.group, source=item.source))
    return await asyncio.to_thread(write_manifest, out_dir / MANIFEST_NAME, rows)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
