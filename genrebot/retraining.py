"""The /retrain workflow, Discord-free: export corrections, train a candidate in a separate
process, record it, and promote it (hot swap) only if the training process says so.

The training and promotion policy itself is :mod:`genre_model.retrain`; this module only
moves data between storage, that process and the inference backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import shutil
from typing import Awaitable, Callable

from genre_model import retrain
from genrebot.inference.local import InferencePool
from genrebot.settings import Settings
from genrebot.storage import Storage

Progress = Callable[[str], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended: ``promoted`` (now live), ``kept`` (candidate not better) or ``failed``."""

    status: str
    message: str
    version: str | None = None


async def run_retrain(settings: Settings, storage: Storage, inference: InferencePool,
                      progress: Progress) -> RetrainOutcome:
    """Train a candidate on base data + corrections; promote it if it is not worse. Never raises for
    a failed training run: the live model keeps serving and the outcome says why."""
    if settings.base_data is None:
        raise ValueError("retraining needs base data (GENREBOT_BASE_DATA)")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    work = settings.data_dir / "retrain" / stamp
    corrections = work / "corrections"
    n_corrections = await storage.export_corrections(corrections)
    candidate = settings.data_dir / "models" / stamp
    argv = retrain.command(base=settings.base_data, corrections=corrections if n_corrections else None,
                           holdout=settings.holdout_data, live=inference.model_dir, out=candidate,
                           cache=settings.data_dir / "cache", epochs=settings.retrain_epochs)
    await progress(f"Retraining with {n_corrections} corrections\N{HORIZONTAL ELLIPSIS}")
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.DEVNULL)
    result, error = None, None
    assert process.stdout is not None
    async for raw in process.stdout:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == "result":
            result = event
        elif event.get("event") == "error":
            error = event.get("message")
        elif event.get("event") == "progress":
            await progress(str(event.get("message", ""))[:300])
    code = await process.wait()
    if code != 0 or result is None:
        shutil.rmtree(candidate, ignore_errors=True)
        return RetrainOutcome("failed", f"Retrain failed ({error or f'exit code {code}'}); "
                                        f"model {inference.model_version} keeps serving.")
    version = result["version"]
    await storage.record_model(version, str(candidate.relative_to(settings.data_dir)),
                               {"candidate": result["candidate"], "live": result["live"]}, note=result["reason"])
    if not result["promote"]:
        return RetrainOutcome("kept", f"Not promoted: {result['reason']}. "
                                      f"Model {inference.model_version} keeps serving.", version)
    await inference.swap(candidate)
    await storage.set_live_model(version)
    return RetrainOutcome("promoted", f"Promoted model {version}: {result['reason']}.", version)
