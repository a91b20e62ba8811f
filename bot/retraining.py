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
import logging
import shutil
from typing import Awaitable, Callable

from genre_model import retrain
from genre_model.errors import ArtifactError
from bot.errors import InferenceFailed
from bot.inference.base import InferenceBackend
from bot.settings import Settings
from bot.storage.base import Storage

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended: ``promoted`` (now live), ``kept`` (candidate not better) or ``failed``."""

    status: str
    message: str
    version: str | None = None


async def run_retrain(settings: Settings, storage: Storage, inference: InferenceBackend,
                      progress: Progress) -> RetrainOutcome:
    """Train a candidate on base data + corrections; promote it if it is not worse. Never raises for
    a failed training run: the live model keeps serving and the outcome says why.

    The candidate joins the model store (``data/models/<version>``) and is promoted by version:
    every worker or replica of the backend serves it once this returns "promoted"."""
    if settings.base_data is None:
        raise ValueError("retraining needs base data (GENREBOT_BASE_DATA)")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    work = settings.data_dir / "retrain" / stamp
    try:
        corrections = work / "corrections"
        n_corrections = await storage.export_corrections(corrections)
        candidate = work / "candidate"
        store = inference.store
        argv = retrain.command(base=settings.base_data, corrections=corrections if n_corrections else None,
                               holdout=settings.holdout_data, live=store.path(inference.model_version), out=candidate,
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
            return RetrainOutcome("failed", f"Retrain failed ({error or f'exit code {code}'}); "
                                            f"model {inference.model_version} keeps serving.")
        try:
            version = await asyncio.to_thread(store.add, candidate)
        except ArtifactError as exc:
            return RetrainOutcome("failed", f"Retrain failed ({exc}); model {inference.model_version} keeps serving.")
        await storage.record_model(version, str(store.path(version).relative_to(settings.data_dir)),
                                   {"candidate": result["candidate"], "live": result["live"]}, note=result["reason"])
        if not result["promote"]:
            return RetrainOutcome("kept", f"Not promoted: {result['reason']}. "
                                          f"Model {inference.model_version} keeps serving.", version)
        live_before = inference.model_version
        try:
            await inference.serve_version(version)
        except (ArtifactError, InferenceFailed) as exc:
            return RetrainOutcome("failed", f"Model {version} could not be rolled out ({exc}); "
                                            f"model {live_before} keeps serving.", version)
        await storage.set_live_model(version)
        return RetrainOutcome("promoted", f"Promoted model {version}: {result['reason']}.", version)
    finally:
        # The exported corrections are copies of members' data: none outlives the run
        # (/genre-forget must not miss them); the candidate has moved to the model store.
        await asyncio.to_thread(shutil.rmtree, work, True)
        pruned = await asyncio.to_thread(inference.store.prune, {inference.model_version})
        if pruned:
            log.info("model store: removed old models %s", ", ".join(pruned))


class LiveModelFollower:
    """Keeps a bot process serving the live model when *another* process promoted it.

    Acts only when the live version in storage changes (so this process's own promotion,
    which serves the new version before recording it, is never undone). With Ray Serve the
    deployment is shared and already rolled out; with local pools this loads the version from
    the model store, which must then be shared by the processes (see README, "Scaling out").
    """

    def __init__(self, storage: Storage, inference: InferenceBackend) -> None:
        self.storage = storage
        self.inference = inference
        self._seen = inference.model_version

    async def check(self) -> str | None:
        """Serve the live version if it changed since the last check; returns it when it did."""
        live = await self.storage.live_model()
        if live is None or live.version == self._seen:
            return None
        self._seen = live.version
        if live.version != self.inference.model_version:
            try:
                await self.inference.serve_version(live.version)
                log.info("now serving model %s, promoted by another bot process", live.version)
            except (ArtifactError, InferenceFailed) as exc:
                log.error("model %s was promoted elsewhere but cannot be served here: %s", live.version, exc)
        return live.version
