"""The local inference backend: a spawn-based ProcessPoolExecutor whose workers hold the model.

The event loop only awaits futures; decoding, features, inference and plotting all run
in the workers. When a worker dies the pool is rebuilt and the requests it broke are sent again
to the fresh workers: a worker that died while idle (or while another upload ran) costs nobody
anything, and only an upload that was running on a worker that died, twice, is blamed
(:class:`~bot.errors.InferenceFailed`, "crashed on this file"). A hung worker takes its request
down with InferenceFailed at once (a second try would hang as long); a full queue answers
:class:`~bot.errors.QueueFull` at once; :meth:`InferencePool.serve_version` changes the
model without a restart (new workers warm up first, old ones finish their work).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from bot.errors import InferenceFailed
from bot.inference import worker
from bot.inference.base import Classified, QueueBound
from bot.model_store import ModelStore

log = logging.getLogger(__name__)

#: Deaths of a worker running an upload before that upload is blamed for them.
DEATHS_BEFORE_BLAME = 2
#: Pools an upload may see break under it (whoever is to blame) before the request gives up.
MAX_ATTEMPTS = 4


@dataclasses.dataclass(eq=False)
class _Workers:
    """One generation of workers and its scratch folder (each upload's copy while ffmpeg reads it)."""

    executor: ProcessPoolExecutor
    scratch: Path
    #: Reported by the workers themselves when they warmed up.
    pids: list[int] = dataclasses.field(default_factory=list)

    def stop(self, *, kill: bool = False, wait: bool = False) -> None:
        """Stop the workers (killing them if asked) and delete the scratch folder."""
        if kill:
            for pid in self.pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.executor.shutdown(wait=wait, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


class InferencePool(QueueBound):
    """Bounded, self-healing pool of model workers (an :class:`~bot.inference.base.InferenceBackend`)."""

    def __init__(self, store: ModelStore, workers: int, max_queue: int, timeout: float, tmp_dir: Path,
                 cpu_count: int | None = None) -> None:
        super().__init__(max_queue)
        self.store = store
        self.workers = workers
        self.timeout = timeout
        #: A killed worker must not leave a user's audio behind: every generation of workers
        #: writes under its own sub-folder, removed with it (and all of it at start-up).
        self.tmp_dir = Path(tmp_dir)
        self.threads = max(1, (cpu_count or multiprocessing.cpu_count()) // workers)
        self.model_version = ""
        self._model_dir: Path | None = None
        self.restarts = 0
        self._generation = itertools.count()
        self._current: _Workers | None = None
        self._lock = asyncio.Lock()

    async def start(self, version: str) -> None:
        """Check the model (cheaply, in this process) and bring up warmed workers serving ``version``."""
        info = self.store.info(version)  # raises ArtifactError with a clear line
        await asyncio.to_thread(shutil.rmtree, self.tmp_dir, True)  # left by a run that was killed
        self._current = await self._spawn(info.directory)
        self._model_dir, self.model_version = info.directory, info.version

    async def _spawn(self, model_dir: Path) -> _Workers:
        scratch = self.tmp_dir / str(next(self._generation))
        scratch.mkdir(parents=True, exist_ok=True)
        context = multiprocessing.get_context("spawn")
        executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=worker.init_worker,
            initargs=(str(model_dir), self.threads, str(scratch), context.Barrier(self.workers)))
        workers = _Workers(executor, scratch)
        loop = asyncio.get_running_loop()
        try:
            answers = await asyncio.gather(*(loop.run_in_executor(executor, worker.ping)
                                             for _ in range(self.workers)))
        except BaseException:
            workers.stop()
            raise
        workers.pids = [pid for pid, _ in answers]
        return workers

    async def classify(self, data: bytes, filename: str, max_seconds: float) -> Classified:
        """Classify one upload in a worker. Raises QueueFull, InferenceFailed or AudioError.

        A broken pool is rebuilt and the upload sent again; only an upload that was running on a
        worker when it died, ``DEATHS_BEFORE_BLAME`` times, fails with "crashed on this file"."""
        if self._current is None:
            raise InferenceFailed("the classifier is not running")
        with self.slot():
            job = secrets.token_hex(8)
            deaths = 0
            for attempt in range(1, MAX_ATTEMPTS + 1):
                current = self._current
                if current is None:
                    raise InferenceFailed("the classifier is not running")
                try:
                    future = asyncio.get_running_loop().run_in_executor(
                        current.executor, worker.classify, data, filename, max_seconds, job)
                    return await asyncio.wait_for(future, self.timeout)
                except BrokenProcessPool:
                    # Looked at before anything awaits: the marker goes with the broken pool's scratch folder.
                    ran_here = (current.scratch / f"job-{job}").exists()
                    deaths += ran_here
                    log.warning("an inference worker died %s; rebuilding the pool",
                                "while classifying this upload" if ran_here else "(not while classifying this upload)")
                    await self._rebuild(current)
                    if deaths >= DEATHS_BEFORE_BLAME:
                        raise InferenceFailed("the classifier crashed on this file; it has been restarted") from None
                except asyncio.TimeoutError:
                    log.warning("classification exceeded %.0f s; rebuilding the pool", self.timeout)
                    await self._rebuild(current, kill=True)
                    raise InferenceFailed(f"classifying took longer than {self.timeout:.0f} s and was stopped") from None
                log.info("sending the upload again (attempt %d)", attempt + 1)
            raise InferenceFailed("the classifier keeps crashing; please try again later")

    async def _rebuild(self, broken: _Workers, kill: bool = False) -> None:
        async with self._lock:
            if self._current is not broken:  # someone else already rebuilt it
                return
            broken.stop(kill=kill)
            self._current = None
            self.restarts += 1
            assert self._model_dir is not None
            self._current = await self._spawn(self._model_dir)

    async def serve_version(self, version: str) -> str:
        """Serve another model version: warm new workers first, then retire the old ones gracefully."""
        if version == self.model_version:
            return version
        info = self.store.info(version)
        fresh = await self._spawn(info.directory)
        async with self._lock:
            old, self._current = self._current, fresh
            self._model_dir, self.model_version = info.directory, info.version
        if old is not None:
            await asyncio.to_thread(old.stop, wait=True)
        return info.version

    async def worker_pids(self) -> list[int]:
        """Process ids of the current workers (as they reported them)."""
        return list(self._current.pids) if self._current else []

    async def close(self) -> None:
        """Stop taking work; cancel what waits, let running jobs end, then stop the workers."""
        current, self._current = self._current, None
        if current is not None:
            await asyncio.to_thread(current.stop, wait=True)
