"""The /retrain workflow, Discord-free: export corrections, train a candidate in a separate
process, record it, and promote it (hot swap) only if the training process says so.

The training and promotion policy itself is :mod:`genre_model.retrain`; this module only
moves data between storage, that process and the inference backend, and keeps these promises:

* **One retrain at a time across every bot process**: a retrain is a row in storage, and at most
  one row is 'running' (:meth:`Storage.claim_retrain`). Its owner (``host:pid:token``) refreshes a
  heartbeat; a running row whose owner is dead (same host, process gone) or silent for longer than
  :data:`LEASE_SECONDS` is settled as 'interrupted' by the next process that looks (at start-up, or
  when an admin asks for a retrain), and its public reply is settled from the row.
* **Scratch only**: the export and the candidate live in ``data/retrain/<retrain id>/`` (the trainer's
  temp files too), removed when the retrain ends, fails or is interrupted, and swept at start-up.
  :func:`scrub_exports` removes forgotten members' rows and files from any export still on disk; a
  candidate trained while that happened is discarded.
* **The trainer dies with the bot**: it runs in its own process group, killed when the retrain is
  cancelled, and asks Linux to kill it when the bot process dies (``genre_model.retrain``).
* **No raw error in public**: a failure is logged with a short error id; the outcome carries only the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import logging
import os
import secrets
import shutil
import signal
import socket
from collections import deque
from pathlib import Path
from typing import Awaitable, Callable, Iterable

from genre_model import retrain
from genre_model.dataset import MANIFEST_NAME
from genre_model.errors import ArtifactError
from bot.errors import InferenceFailed
from bot.inference.base import InferenceBackend
from bot.model_store import ModelStore
from bot.settings import Settings
from bot.storage.base import Correction, RetrainRow, Storage

log = logging.getLogger(__name__)

Progress = Callable[[str], Awaitable[None]]

#: Scratch folder of the retrains, under the data folder: ``retrain/<retrain id>/``.
SCRATCH = "retrain"
#: How often the owner of a running retrain says it is alive (and re-checks its export).
HEARTBEAT_SECONDS = 10.0
#: A running retrain whose owner has been silent this long is settled as interrupted.
LEASE_SECONDS = 60.0
#: Environment variable naming the bot process to the trainer (which dies when it does).
PARENT_PID_ENV = retrain.PARENT_PID_ENV

_TOKEN = secrets.token_hex(4)


def error_id() -> str:
    """A short id that ties a public "see the bot's log" to the log line with the detail."""
    return secrets.token_hex(3)


def process_owner() -> str:
    """This bot process, as recorded in the retrain it runs: ``host:pid:token``."""
    return f"{socket.gethostname()}:{os.getpid()}:{_TOKEN}"


def owner_is_dead(owner: str) -> bool:
    """Whether the process named ``owner`` certainly no longer runs: it ran on this host, and its pid
    is gone or is this very process under another token (a restart). Elsewhere, only the lease tells."""
    host, _, rest = owner.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token != _TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclasses.dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended: ``promoted`` (``candidate`` now serves), ``kept`` (the candidate was not
    better), ``failed`` (``error_id`` names the log line with the detail) or ``discarded`` (a member
    was forgotten while it trained, so nothing it made was kept); ``serving`` is the version live
    afterwards and ``reason`` the promotion rule's verdict. :mod:`bot.discord_adapter.replies` words it."""

    status: str
    serving: str
    candidate: str | None = None
    reason: str = ""
    error_id: str = ""


@dataclasses.dataclass(frozen=True)
class Claim:
    """The answer to "may I retrain?": ``retrain_id`` (None: another retrain runs) and the stale
    retrains settled on the way (their public replies still say they are running)."""

    retrain_id: int | None
    settled: tuple[RetrainRow, ...] = ()


async def settle_stale(storage: Storage) -> list[RetrainRow]:
    """Settle a running retrain whose owner is dead or silent past the lease as 'interrupted'."""
    row = await storage.running_retrain()
    if row is None or not (owner_is_dead(row.owner) or row.heartbeat_age_s > LEASE_SECONDS):
        return []
    if not await storage.finish_retrain(row.id, "interrupted", f"owner {row.owner} is gone"):
        return []
    log.warning("retrain %d of %s was interrupted (its bot process is gone)", row.id, row.owner)
    return [row]


async def claim(storage: Storage, requested_by: int | None, channel_id: int | None) -> Claim:
    """Take the one retrain slot (stale holders are settled first)."""
    settled = await settle_stale(storage)
    return Claim(await storage.claim_retrain(process_owner(), requested_by, channel_id), tuple(settled))


def sweep_scratch(data_dir: Path, keep: Iterable[int] = ()) -> list[str]:
    """Remove every retrain scratch folder but those of the running retrains ``keep``; returns the names."""
    root = Path(data_dir) / SCRATCH
    keep_names = {str(k) for k in keep}
    removed = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name not in keep_names:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(entry.name)
    return removed


async def startup(settings: Settings, storage: Storage) -> list[RetrainRow]:
    """At start-up: settle a retrain interrupted by the death of its bot process, and sweep the scratch
    folders nobody runs (e.g. left by a SIGKILL). Returns the settled retrains (their replies to settle)."""
    settled = await settle_stale(storage)
    running = await storage.running_retrain()
    removed = await asyncio.to_thread(sweep_scratch, settings.data_dir, [running.id] if running else [])
    if removed:
        log.info("removed retrain scratch folders left behind: %s", ", ".join(sorted(removed)))
    return settled


def _export_rows(export: Path) -> list[list[str]]:
    with (export / MANIFEST_NAME).open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _prediction_id(relative: str) -> int | None:
    stem = Path(relative).stem
    return int(stem[5:]) if stem.startswith("pred-") and stem[5:].isdigit() else None


def scrub_export(export: Path, corrections: Iterable[Correction]) -> int:
    """Remove from one export every example storage no longer holds with that label (a forgotten
    uploader, a forgotten voter's label); rewrites MANIFEST.csv. Returns the number removed."""
    if not (export / MANIFEST_NAME).is_file():
        return 0
    valid = {(c.prediction_id, c.label) for c in corrections}
    header, *rows = _export_rows(export)
    kept, removed = [], 0
    for row in rows:
        if row and (_prediction_id(row[0]), row[1]) in valid:
            kept.append(row)
            continue
        removed += 1
        if row:
            target = (export / row[0]).resolve()
            if target.is_relative_to(export.resolve()):
                target.unlink(missing_ok=True)
    if removed:
        tmp = export / f".{MANIFEST_NAME}.tmp"
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *kept])
        os.replace(tmp, export / MANIFEST_NAME)
        (export.parent / "FORGOTTEN").touch()  # the run's candidate must not be kept
    return removed


def scrub_exports(data_dir: Path, corrections: Iterable[Correction]) -> int:
    """:func:`scrub_export` on every export on this machine's disk; returns the examples removed."""
    root = Path(data_dir) / SCRATCH
    corrections = list(corrections)
    return sum(scrub_export(work / "corrections", corrections) for work in sorted(root.glob("*")) if work.is_dir())


async def forget_member(settings: Settings, storage: Storage, user_id: int) -> tuple[int, int]:
    """/genre-forget: delete the member's data in storage, then from every export still on disk."""
    counts = await storage.forget_user(user_id)
    if not any((Path(settings.data_dir) / SCRATCH).glob(f"*/corrections/{MANIFEST_NAME}")):
        return counts  # no export on this machine's disk: nothing more to look at
    removed = await asyncio.to_thread(scrub_exports, settings.data_dir, await storage.corrections())
    if removed:
        log.info("removed %d forgotten examples from retrain exports on disk", removed)
    return counts


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the trainer's process group (the trainer and anything it started)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


async def run_retrain(settings: Settings, storage: Storage, inference: InferenceBackend, store: ModelStore,
                      progress: Progress, retrain_id: int) -> RetrainOutcome:
    """Train a candidate on base data + corrections; promote it if it is not worse. Never raises for
    a failed run (the live model keeps serving, the outcome carries an error id); a cancelled run
    (the bot is shutting down) kills the trainer, removes its scratch folder and re-raises.

    ``retrain_id`` is the row :func:`claim` took; this ends it (promoted, kept, failed, interrupted).
    The candidate joins the model ``store`` (``data/models/<version>``) and is promoted by version."""
    if settings.base_data is None:
        raise ValueError("retraining needs base data (GENREBOT_BASE_DATA)")
    work = settings.data_dir / SCRATCH / str(retrain_id)
    live = inference.model_version
    heartbeat = asyncio.create_task(_heartbeat(storage, retrain_id, work), name=f"retrain-{retrain_id}-heartbeat")
    state, detail = "failed", ""
    try:
        outcome = await _run(settings, storage, inference, store, progress, retrain_id, work, live)
        state = "failed" if outcome.status == "discarded" else outcome.status
        detail = outcome.reason or (f"error {outcome.error_id}" if outcome.error_id else outcome.status)
        return outcome
    except asyncio.CancelledError:
        state, detail = "interrupted", "the bot shut down"
        raise
    except Exception:
        eid = error_id()
        log.exception("retrain %d failed [error %s]", retrain_id, eid)
        detail = f"error {eid}"
        return RetrainOutcome("failed", live, error_id=eid)
    finally:
        heartbeat.cancel()
        # The export holds copies of members' data and the candidate has moved to the model store
        # (or is discarded): nothing of the run outlives it.
        await asyncio.to_thread(shutil.rmtree, work, True)
        try:
            await asyncio.shield(storage.finish_retrain(retrain_id, state, detail))
        except Exception as exc:  # storage down: the row's heartbeat stops and a later look settles it
            log.error("could not record the end of retrain %d (%s): %r", retrain_id, state, exc)
        with contextlib.suppress(Exception):
            pruned = await asyncio.to_thread(store.prune, {inference.model_version})
            if pruned:
                log.info("model store: removed old models %s", ", ".join(pruned))


async def _heartbeat(storage: Storage, retrain_id: int, work: Path) -> None:
    """Keep the retrain's lease, and keep its export free of data forgotten meanwhile (by any process)."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            if not await storage.retrain_heartbeat(retrain_id):
                log.warning("retrain %d is no longer marked running in storage", retrain_id)
            removed = await asyncio.to_thread(scrub_export, work / "corrections", await storage.corrections())
            if removed:
                log.info("retrain %d: removed %d forgotten examples from its export", retrain_id, removed)
        except Exception as exc:  # a database hiccup must not end the retrain
            log.warning("retrain %d heartbeat failed: %r", retrain_id, exc)


def _failed(live: str, retrain_id: int, what: str, detail: object, candidate: str | None = None) -> RetrainOutcome:
    eid = error_id()
    log.error("retrain %d failed [error %s]: %s: %s", retrain_id, eid, what, detail)
    return RetrainOutcome("failed", live, candidate, error_id=eid)


async def _run(settings: Settings, storage: Storage, inference: InferenceBackend, store: ModelStore,
               progress: Progress, retrain_id: int, work: Path, live: str) -> RetrainOutcome:
    corrections = work / "corrections"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    n_corrections = await storage.export_corrections(corrections)
    candidate = work / "candidate"
    request = retrain.RetrainRequest(base=settings.base_data, live=store.path(live), out=candidate,
                                     corrections=corrections if n_corrections else None,
                                     holdout=settings.holdout_data, cache=settings.data_dir / "cache",
                                     epochs=settings.retrain_epochs)
    await progress(f"Retraining with {n_corrections} corrections\N{HORIZONTAL ELLIPSIS}")
    # Its own process group (killed as one), its temp files in the scratch folder, and the bot's pid,
    # so that it dies with the bot even when the bot is SIGKILLed (genre_model.retrain).
    env = {**os.environ, "TMPDIR": str(work / "tmp"), PARENT_PID_ENV: str(os.getpid())}
    process = await asyncio.create_subprocess_exec(*request.argv(), stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    log.info("retrain %d: trainer started (pid %d)", retrain_id, process.pid)
    stderr_tail: deque[str] = deque(maxlen=40)
    try:
        async def read_stderr() -> None:
            assert process.stderr is not None
            async for raw in process.stderr:
                stderr_tail.append(raw.decode(errors="replace").rstrip())

        stderr_task = asyncio.create_task(read_stderr())
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
        await stderr_task
    finally:
        _kill_group(process)  # cancelled (the bot is stopping) or done: nothing of the trainer stays
    if (work / "FORGOTTEN").exists():  # (also when the trainer failed for the files that left its export)
        log.warning("retrain %d: a member was forgotten while it trained; its candidate is discarded (trainer: "
                    "exit code %s, %s)", retrain_id, code, error or "no error")
        return RetrainOutcome("discarded", live)
    if code != 0 or result is None:
        return _failed(live, retrain_id, "the trainer",
                       f"{error or f'exit code {code}'}\n" + "\n".join(stderr_tail))
    if not await storage.retrain_heartbeat(retrain_id):  # settled by another process (lease lost): not ours
        return _failed(live, retrain_id, "the retrain lost its lock", "its row is no longer running in storage")
    try:
        version = await asyncio.to_thread(store.add, candidate)
    except (ArtifactError, OSError) as exc:
        return _failed(live, retrain_id, "adding the candidate to the model store", repr(exc))
    await storage.record_model(version, str(store.path(version).relative_to(settings.data_dir)),
                               {"candidate": result.candidate, "live": result.reference}, note=result.reason)
    if not result.promote:
        return RetrainOutcome("kept", live, version, reason=result.reason)
    try:
        await inference.serve_version(version)
    except (ArtifactError, InferenceFailed) as exc:
        return _failed(live, retrain_id, f"rolling out {version}", repr(exc), version)
    await storage.set_live_model(version)
    return RetrainOutcome("promoted", version, version, reason=result.reason)


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
