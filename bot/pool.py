"""The inference pool: a spawn-based ProcessPoolExecutor whose workers hold the model.

The event loop only awaits futures; decoding, features, inference and plotting all run
in the workers. A crashed or hung worker takes its request down with an
:class:`~bot.errors.InferenceFailed` and the pool is rebuilt; a full queue answers
:class:`~bot.errors.QueueFull` at once; :meth:`InferencePool.swap` changes the model
without a restart (new workers warm up first, old ones finish their work).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from bot import worker
from bot.errors import InferenceFailed, QueueFull
from genre_model.artifact import load_info

log = logging.getLogger(__name__)


class InferencePool:
    """Bounded, self-healing pool of model workers."""

    def __init__(self, model_dir: Path, workers: int, max_queue: int, timeout: float, cpu_count: int | None = None,
                 tmp_dir: Path | None = None):
        self.model_dir = Path(model_dir)
        #: Workers' scratch files (a copy of each upload while ffmpeg reads it), one sub-folder per
        #: executor, removed with it: a killed worker must not leave a user's audio behind.
        self.tmp_dir = Path(tmp_dir) if tmp_dir else None
        self._tmp_ids = itertools.count()
        self.workers = workers
        self.max_queue = max_queue
        self.timeout = timeout
        self.threads = max(1, (cpu_count or multiprocessing.cpu_count()) // workers)
        self._executor: ProcessPoolExecutor | None = None
        self._pending = 0
        self._lock = asyncio.Lock()
        self.model_version: str = ""
        self.restarts = 0

    @property
    def pending(self) -> int:
        """Requests queued or running now."""
        return self._pending

    @property
    def full(self) -> bool:
        """True when a new request would be refused with QueueFull."""
        return self._pending >= self.max_queue

    async def start(self) -> None:
        """Check the model (cheaply, in this process) and bring up warmed workers."""
        info = load_info(self.model_dir)  # raises ArtifactError with a clear line
        if self.tmp_dir is not None:  # left over from a run that was killed
            await asyncio.to_thread(shutil.rmtree, self.tmp_dir, True)
        self._executor = await self._spawn(self.model_dir)
        self.model_version = info.version

    async def _spawn(self, model_dir: Path) -> ProcessPoolExecutor:
        scratch = None
        if self.tmp_dir is not None:
            scratch = self.tmp_dir / str(next(self._tmp_ids))
            scratch.mkdir(parents=True, exist_ok=True)
        executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init_worker, initargs=(str(model_dir), self.threads, str(scratch) if scratch else None))
        executor._genrebot_scratch = scratch  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(*(loop.run_in_executor(executor, worker.ping) for _ in range(self.workers)))
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return executor

    async def classify(self, data: bytes, filename: str, max_seconds: float) -> worker.ClassifyResult:
        """Classify one upload in a worker. Raises QueueFull, InferenceFailed or AudioError."""
        if self._executor is None:
            raise InferenceFailed("the classifier is not running")
        if self.full:
            raise QueueFull("I'm busy with other songs right now; please try again in a minute.")
        self._pending += 1
        executor = self._executor
        try:
            future = asyncio.get_running_loop().run_in_executor(executor, worker.classify, data, filename, max_seconds)
            return await asyncio.wait_for(future, self.timeout)
        except BrokenProcessPool:
            log.warning("an inference worker died; rebuilding the pool")
            await self._rebuild(executor)
            raise InferenceFailed("the classifier crashed on this file; it has been restarted") from None
        except asyncio.TimeoutError:
            log.warning("classification exceeded %.0f s; rebuilding the pool", self.timeout)
            await self._rebuild(executor, kill=True)
            raise InferenceFailed(f"classifying took longer than {self.timeout:.0f} s and was stopped") from None
        finally:
            self._pending -= 1

    async def _rebuild(self, broken: ProcessPoolExecutor, kill: bool = False) -> None:
        async with self._lock:
            if self._executor is not broken:  # someone else already rebuilt it
                return
            _shutdown(broken, kill=kill)
            self._executor = None
            self.restarts += 1
            self._executor = await self._spawn(self.model_dir)

    async def swap(self, model_dir: Path) -> str:
        """Serve a new model: warm new workers first, then retire the old ones gracefully."""
        info = load_info(Path(model_dir))
        fresh = await self._spawn(Path(model_dir))
        async with self._lock:
            old, self._executor = self._executor, fresh
            self.model_dir, self.model_version = Path(model_dir), info.version
        if old is not None:
            await asyncio.to_thread(old.shutdown, wait=True)
            _remove_scratch(old)
        return info.version

    async def worker_pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [p.pid for p in (self._executor._processes or {}).values()] if self._executor else []

    async def close(self) -> None:
        """Stop taking work; cancel what waits, let running jobs end, then stop the workers."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
            _remove_scratch(executor)


def _shutdown(executor: ProcessPoolExecutor, kill: bool) -> None:
    if kill:
        for process in list((executor._processes or {}).values()):
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    _remove_scratch(executor)


def _remove_scratch(executor: ProcessPoolExecutor) -> None:
    scratch = getattr(executor, "_genrebot_scratch", None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
