"""The /retrain workflow, Discord-free: export corrections, train a candidate in a separate
process, record it, and promote it (hot swap) only if the training process says so.

The training and promotion policy itself is :mod:`genre_model.retrain`; this module only
moves data between storage, that process and the inference backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import shutil
from typing import Awaitable, Callable

from genre_model import retrain
from genre_model.errors import ArtifactError
from bot.errors import InferenceFailed
from bot.inference.base import InferenceBackend
from bot.model_store import ModelStore
from bot.settings import Settings
from bot.storage.base import Storage

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended: ``promoted`` (``candidate`` now serves), ``kept`` (the candidate was not
    better) or ``failed`` (``problem`` says why); ``serving`` is the version live afterwards and
    ``reason`` the promotion rule's verdict. :mod:`bot.discord_adapter.replies` words it."""

    status: str
    serving: str
    candidate: str | None = None
    reason: str = ""
    problem: str = ""


async def run_retrain(settings: Settings, storage: Storage, inference: InferenceBackend, store: ModelStore,
                      progress: Progress) -> RetrainOutcome:
    """Train a candidate on base data + corrections; promote it if it is not worse. Never raises for
    a failed training run: the live model keeps serving and the outcome says why.

    The candidate joins the model ``store`` (``data/models/<version>``) and is promoted by version:
    every worker or replica of the backend serves it once this returns "promoted"."""
    if settings.base_data is None:
        raise ValueError("retraining needs base data (GENREBOT_BASE_DATA)")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    work = settings.data_dir / "retrain" / stamp
    live = inference.model_version
    try:
        corrections = work / "corrections"
        n_corrections = await storage.export_corrections(corrections)
        candidate = work / "candidate"
        request = retrain.RetrainRequest(base=settings.base_data, live=store.path(live), out=candidate,
                                         corrections=corrections if n_corrections else None,
                                         holdout=settings.holdout_data, cache=settings.data_dir / "cache",
                                         epochs=settings.retrain_epochs)
        await progress(f"Retraining with {n_corrections} corrections\N{HORIZONTAL ELLIPSIS}")
        process = await asyncio.create_subprocess_exec(*request.argv(), stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.DEVNULL)
        result: retrain.RetrainResult | None = None
        error: str | None = None
        assert process.stdout is not None
        async for raw in process.stdout:
            event = retrain.read_event(raw)
            if isinstance(event, retrain.RetrainResult):
                result = event
            elif isinstance(event, retrain.RetrainFailed):
                error = event.message
            elif isinstance(event, retrain.Progress):
                await progress(event.message[:300])
        code = await process.wait()
        if code != 0 or result is None:
            return RetrainOutcome("failed", live, problem=error or f"exit code {code}")
        try:
            version = await asyncio.to_thread(store.add, candidate)
        except ArtifactError as exc:
            return RetrainOutcome("failed", live, problem=str(exc))
        await storage.record_model(version, str(store.path(version).relative_to(settings.data_dir)),
                                   {"candidate": result.candidate, "live": result.reference}, note=result.reason)
        if not result.promote:
            return RetrainOutcome("kept", live, version, reason=result.reason)
        try:
            await inference.serve_version(version)
        except (ArtifactError, InferenceFailed) as exc:
            return RetrainOutcome("failed", live, version, problem=f"it could not be rolled out ({exc})")
        await storage.set_live_model(version)
        return RetrainOutcome("promoted", version, version, reason=result.reason)
    finally:
        # The exported corrections are copies of members' data: none outlives the run
        # (/genre-forget must not miss them); the candidate has moved to the model store.
        await asyncio.to_thread(shutil.rmtree, work, True)
        pruned = await asyncio.to_thread(store.prune, {inference.model_version})
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
