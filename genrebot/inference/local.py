"""The inference pool: a spawn-based ProcessPoolExecutor whose workers hold the model.

The event loop only awaits futures; decoding, features, inference and plotting all run
in the workers. A crashed or hung worker takes its request down with an
:class:`~bot.errors.InferenceFailed` and the pool is rebuilt; a full queue answers
:class:`~bot.errors.QueueFull` at once; :meth:`InferencePool.swap` changes the model
without a restart (new workers warm up first, old ones finish their work).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from genrebot.inference import worker
from genrebot.errors import InferenceFailed, QueueFull
from genre_model.artifact import load_info

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class _Workers:
    """One generation of workers and its scratch folder (each upload's copy while ffmpeg reads it)."""

    executor: ProcessPoolExecutor
    scratch: Path

    def pids(self) -> list[int]:
        return [p.pid for p in (self.executor._processes or {}).values()]

    def stop(self, *, kill: bool = False, wait: bool = False) -> None:
        """Stop the workers (killing them if asked) and delete the scratch folder."""
        if kill:
            for process in list((self.executor._processes or {}).values()):
                process.kill()
        self.executor.shutdown(wait=wait, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


class InferencePool:
    """Bounded, self-healing pool of model workers."""

    def __init__(self, model_dir: Path, workers: int, max_queue: int, timeout: float, tmp_dir: Path,
                 cpu_count: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.max_queue = max_queue
        self.timeout = timeout
        #: A killed worker must not leave a user's audio behind: every generation of workers
        #: writes under its own sub-folder, removed with it (and all of it at start-up).
        self.tmp_dir = Path(tmp_dir)
        self.threads = max(1, (cpu_count or multiprocessing.cpu_count()) // workers)
        self.model_version = ""
        self.restarts = 0
        self._generation = itertools.count()
        self._current: _Workers | None = None
        self._pending = 0
        self._lock = asyncio.Lock()

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
        await asyncio.to_thread(shutil.rmtree, self.tmp_dir, True)  # left by a run that was killed
        self._current = await self._spawn(self.model_dir)
        self.model_version = info.version

    async def _spawn(self, model_dir: Path) -> _Workers:
        scratch = self.tmp_dir / str(next(self._generation))
        scratch.mkdir(parents=True, exist_ok=True)
        executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init_worker, initargs=(str(model_dir), self.threads, str(scratch)))
        workers = _Workers(executor, scratch)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(*(loop.run_in_executor(executor, worker.ping) for _ in range(self.workers)))
        except BaseException:
            workers.stop()
            raise
        return workers

    async def classify(self, data: bytes, filename: str, max_seconds: float) -> worker.ClassifyResult:
        """Classify one upload in a worker. Raises QueueFull, InferenceFailed or AudioError."""
        current = self._current
        if current is None:
            raise InferenceFailed("the classifier is not running")
        if self.full:
            raise QueueFull("I'm busy with other songs right now; please try again in a minute.")
        self._pending += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(
                current.executor, worker.classify, data, filename, max_seconds)
            return await asyncio.wait_for(future, self.timeout)
        except BrokenProcessPool:
            log.warning("an inference worker died; rebuilding the pool")
            await self._rebuild(current)
            raise InferenceFailed("the classifier crashed on this file; it has been restarted") from None
        except asyncio.TimeoutError:
            log.warning("classification exceeded %.0f s; rebuilding the pool", self.timeout)
            await self._rebuild(current, kill=True)
            raise InferenceFailed(f"classifying took longer than {self.timeout:.0f} s and was stopped") from None
        finally:
            self._pending -= 1

    async def _rebuild(self, broken: _Workers, kill: bool = False) -> None:
        async with self._lock:
            if self._current is not broken:  # someone else already rebuilt it
                return
            broken.stop(kill=kill)
            self._current = None
            self.restarts += 1
            self._current = await self._spawn(self.model_dir)

    async def swap(self, model_dir: Path) -> str:
        """Serve a new model: warm new workers first, then retire the old ones gracefully."""
        info = load_info(Path(model_dir))
        fresh = await self._spawn(Path(model_dir))
        async with self._lock:
            old, self._current = self._current, fresh
            self.model_dir, self.model_version = Path(model_dir), info.version
        if old is not None:
            await asyncio.to_thread(old.stop, wait=True)
        return info.version

    async def worker_pids(self) -> list[int]:
        """Process ids of the current workers."""
        return self._current.pids() if self._current else []

    async def close(self) -> None:
        """Stop taking work; cancel what waits, let running jobs end, then stop the workers."""
        current, self._current = self._current, None
        if current is not None:
            await asyncio.to_thread(current.stop, wait=True)
