"""The Ray Serve inference backend: replicas of a Serve deployment hold the LiteRT model.

The bot calls the deployment through an async ``DeploymentHandle`` (awaited on its own
event loop). Each replica serves one request at a time (the work is CPU-bound); requests
wait at the caller, and the bot's own bound (``GENREBOT_QUEUE_LIMIT`` per bot process)
still answers "busy" before anything is downloaded.

Models are shipped, not mounted: :meth:`RayServeBackend.serve_version` reads the
artifact's bytes from the local :class:`~bot.model_store.ModelStore`, puts them
into a small detached actor (the *model shelf*, so they outlive the bot process that put
them and reach replicas on any machine through Ray's object store), then changes the
deployment's ``user_config`` to the new version. Serve applies a ``user_config`` change as
a lightweight, rolling update: each replica's :meth:`GenreClassifier.reconfigure` loads the
new model in the background while the old one keeps answering, then swaps it in, so no
request is dropped; ``serve.run`` returns once every replica serves the new version.

A replica that died while idle costs nobody anything: Serve's router notices the dead replica
when it sends it a request and routes the request again (Ray >= 2.35, ``Router`` retries on
``ActorDiedError`` from the replica's system message). A replica that dies while running an
upload is replaced by Serve's controller and the upload sent once more; only an upload during
which a replica died twice fails (:class:`~bot.errors.InferenceFailed`), as with the local pool.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import ray
from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayError, RayTaskError
from ray.serve.exceptions import BackPressureError

from genre_model.errors import ArtifactError, AudioError
from genre_model.predict import Classifier
from bot.errors import InferenceFailed, QueueFull, SettingsError
from bot.inference import worker
from bot.inference.base import Classified, QueueBound
from bot.model_store import ModelStore, unpack

log = logging.getLogger(__name__)

APP = "genrebot"
NAMESPACE = "genrebot"
SHELF = "genrebot-model-shelf"
#: Versions the shelf keeps (the live one, the one before, and room for candidates).
SHELF_VERSIONS = 4
#: Memory for the object store of a Ray instance the bot starts itself (artifacts are ~7 MB).
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


@ray.remote(num_cpus=0)
class ModelShelf:
    """Artifact bytes by version, held by the cluster so that replicas anywhere can load them."""

    def __init__(self) -> None:
        self._files: collections.OrderedDict[str, dict[str, bytes]] = collections.OrderedDict()

    def put(self, version: str, files: dict[str, bytes]) -> None:
        self._files[version] = files
        self._files.move_to_end(version)
        while len(self._files) > SHELF_VERSIONS:
            self._files.popitem(last=False)

    def get(self, version: str) -> dict[str, bytes] | None:
        return self._files.get(version)


def _scratch_dir() -> Path:
    """This replica's temp folder; those of replicas that were killed are removed."""
    root = Path(tempfile.gettempdir()) / "genrebot-replicas"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        try:
            os.kill(int(old.name), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(old, ignore_errors=True)
        except PermissionError:
            pass
    mine = root / str(os.getpid())
    mine.mkdir(exist_ok=True)
    return mine


@serve.deployment(name="GenreClassifier", max_ongoing_requests=1, graceful_shutdown_timeout_s=60,
                  health_check_period_s=2, health_check_timeout_s=30)
class GenreClassifier:
    """One replica: the LiteRT classifier of the version in ``user_config``."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._classifier: Classifier | None = None
        self._cache = Path(tempfile.gettempdir()) / "genrebot-models"
        self._lock = threading.Lock()  # one model load at a time
        #: A LiteRT interpreter serves one thread at a time. Serve frees a request's slot when the caller
        #: cancels it (timeout), but the cancelled work runs on in its thread: the next request waits for it.
        self._busy = threading.Lock()
        self._scratch = _scratch_dir()
        tempfile.tempdir = str(self._scratch)  # decoder scratch files; removed by a successor if this one is killed

    def __del__(self) -> None:  # Serve's graceful shutdown
        shutil.rmtree(self._scratch, ignore_errors=True)

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Load the model version named in ``user_config`` and swap it in (running requests keep the old one)."""
        version = str(config["version"])
        with self._lock:
            if self._classifier is not None and self._classifier.version == version:
                return
            shelf = ray.get_actor(SHELF, namespace=NAMESPACE)
            files = ray.get(shelf.get.remote(version))
            if files is None:
                raise ArtifactError(f"model {version} is not on the model shelf")
            fresh = Classifier(unpack(files, version, self._cache), num_threads=self._threads)
            self._classifier = fresh

    def classify(self, data: bytes, filename: str, max_seconds: float) -> Classified:
        with self._busy:
            classifier = self._classifier
            if classifier is None:
                raise ArtifactError("this replica has no model yet")
            return worker.classify_with(classifier, data, filename, max_seconds)

    def ping(self) -> tuple[int, str]:
        """(process id, model version) of this replica."""
        return os.getpid(), self._classifier.version if self._classifier else ""


class RayServeBackend(QueueBound):
    """Classifies uploads on a Ray Serve deployment (an :class:`~bot.inference.base.InferenceBackend`)."""

    def __init__(self, store: ModelStore, *, address: str | None, replicas: int, max_replicas: int,
                 replica_cpus: float, max_queue: int, timeout: float, local_cpus: int) -> None:
        super().__init__(max_queue)
        self.store = store
        self.address = address
        self.replicas = replicas
        self.max_replicas = max_replicas
        self.replica_cpus = replica_cpus
        self.timeout = timeout
        self.local_cpus = local_cpus
        self.model_version = ""
        self.failures = 0
        self._handle: Any = None
        self._shelf: Any = None
        self._connected = False  # this backend called ray.init (and disconnects on close)
        self._started_ray = False  # ... and that started a Ray instance of its own (stopped on close)
        self._deploy_lock = asyncio.Lock()

    async def start(self, version: str) -> None:
        """Connect to Ray (join ``address`` or start a local instance) and deploy ``version``."""
        self.store.info(version)  # a missing or corrupt model fails here, before Ray starts
        try:
            await asyncio.to_thread(self._connect)
        except Exception as exc:  # ConnectionError, RuntimeError, ... from ray.init / serve.start
            where = f"join the Ray cluster at {self.address}" if self.address else "start a local Ray instance"
            raise SettingsError(f"cannot {where} (GENREBOT_RAY_ADDRESS): {exc}") from exc
        await self.serve_version(version, force=True)
        log.info("Ray Serve: %s serving model %s", self.describe(), self.model_version)

    def _connect(self) -> None:
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=self.local_cpus, include_dashboard=False, namespace=NAMESPACE,
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES, log_to_driver=False)
                self._started_ray = True
            self._connected = True
        serve.start(proxy_location="Disabled")  # handles only; no HTTP proxy (a no-op if Serve runs)
        # On the head node: a bot's own (zero-CPU) node may leave the cluster, the head stays with it.
        self._shelf = ModelShelf.options(name=SHELF, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                                         resources={"node:__internal_head__": 0.001}).remote()

    def describe(self) -> str:
        scaling = (f"{self.replicas}-{self.max_replicas} replicas (autoscaling)" if self.max_replicas > self.replicas
                   else f"{self.replicas} replicas")
        return f"{scaling} x {self.replica_cpus:g} CPU"

    def _application(self, version: str) -> Any:
        options: dict[str, Any] = {"user_config": {"version": version},
                                   "ray_actor_options": {"num_cpus": self.replica_cpus}}
        if self.max_replicas > self.replicas:
            options["autoscaling_config"] = {"min_replicas": self.replicas, "max_replicas": self.max_replicas,
                                             "target_ongoing_requests": 1}
        else:
            options["num_replicas"] = self.replicas
        threads = max(1, round(self.replica_cpus))
        return GenreClassifier.options(**options).bind(threads)

    async def serve_version(self, version: str, *, force: bool = False) -> str:
        """Ship ``version`` to the shelf and roll it out to every replica; returns when all serve it."""
        async with self._deploy_lock:
            if version == self.model_version and not force:
                return version
            files = await asyncio.to_thread(self.store.files, version)  # checksums verified
            await self._shelf.put.remote(version, files)
            try:
                self._handle = await asyncio.to_thread(serve.run, self._application(version), name=APP,
                                                       route_prefix=None)
            except RayError as exc:
                raise ArtifactError(f"Ray Serve could not deploy model {version}: {exc}") from exc
            self.model_version = version
            return version

    async def classify(self, data: bytes, filename: str, max_seconds: float) -> Classified:
        """Classify one upload on a replica. Raises QueueFull, InferenceFailed or AudioError."""
        handle = self._handle
        if handle is None:
            raise InferenceFailed("the classifier is not running")
        with self.slot():
            for attempt in (1, 2):
                try:
                    response = handle.classify.remote(data, filename, max_seconds)
                    return await asyncio.wait_for(_result(response), self.timeout)
                except asyncio.TimeoutError:
                    response.cancel()
                    self.failures += 1
                    log.warning("classification exceeded %.0f s on Ray Serve; cancelled", self.timeout)
                    raise InferenceFailed(f"classifying took longer than {self.timeout:.0f} s and was stopped") from None
                except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                    self.failures += 1
                    log.warning("a Ray Serve replica died (%s) running an upload; Serve replaces it", type(exc).__name__)
                    if attempt == 2:
                        raise InferenceFailed("the classifier crashed on this file; it is being restarted") from None
                except BackPressureError:
                    raise QueueFull() from None
                except RayError as exc:
                    self.failures += 1
                    log.error("Ray Serve request failed: %s", exc)
                    raise InferenceFailed("the classifier failed on this file; please try again") from None
            raise AssertionError("unreachable")

    async def worker_pids(self, pings: int = 24) -> list[int]:
        """Process ids of the replicas that answer ``pings`` pings (on whichever machine they run)."""
        if self._handle is None:
            return []
        answers = await asyncio.gather(*(self._handle.ping.remote() for _ in range(pings)))
        return sorted({pid for pid, _ in answers})

    async def replica_versions(self, pings: int = 24) -> set[str]:
        """Model versions reported by the replicas answering ``pings`` pings."""
        answers = await asyncio.gather(*(self._handle.ping.remote() for _ in range(pings)))
        return {version for _, version in answers}

    async def close(self) -> None:
        """Stop using the deployment. A Ray instance this backend started is stopped with it; a joined
        cluster keeps the deployment running for the other bot processes."""
        self._handle = None
        if self._started_ray:
            await asyncio.to_thread(serve.shutdown)
        if self._connected:
            await asyncio.to_thread(ray.shutdown)
            self._connected = self._started_ray = False


async def _result(response: Any) -> Classified:
    """Await a DeploymentResponse; the replica's AudioError comes back as itself (its message for the user)."""
    try:
        return await response
    except RayTaskError as exc:
        if isinstance(exc.cause, AudioError):
            raise exc.cause from None
        raise
