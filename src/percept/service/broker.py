"""The web side of Redis mode (``--broker redis://...``): :class:`RedisBroker` enqueues attempts of jobs for
``percept worker`` processes (:mod:`.broker_worker`), cancels them, and collects what they report (what travels
through Redis: :mod:`.broker_protocol`).

The web process runs one :class:`RedisBroker` collector thread that follows every queued or running job of
its store (nothing in memory: a restarted web process simply carries on): it copies progress and previews into
the store and ``preview.png``, writes ``result.png`` atomically and marks the job done or failed (then sends
the notifications), gives back jobs of workers that stopped (SIGTERM) or died (no heartbeat for
``stale_after`` s) as a new attempt, and enqueues again the jobs RQ lost (Redis restarted without
persistence, or unreachable at submission).
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import PerceptError
from ..image import atomic_write
from .broker_protocol import (
    QUEUE,
    STATE_FIELDS,
    TASK,
    as_text,
    connect,
    key,
    serializer,
    unreachable,
)
from .broker_worker import execute  # noqa: F401  (the RQ task is enqueued under this module's name: TASK)
from .config import ServiceConfig
from .notify import notify
from .runner import decode_image
from .store import Job, JobStore, discard_outputs, job_dir

log = logging.getLogger(__name__)

CANCEL_KEEP = 86400  # seconds a cancel flag stays
COLLECT_EVERY = 0.5  # seconds between the collector's looks at Redis
INSPECT_EVERY = 5.0  # seconds between checks of waiting attempts against RQ (lost, failed)
MAX_DEATHS = 3  # a job whose worker died this many times fails (it may be what kills them)
MAX_PAYLOAD = 64 * 1024 * 1024  # bytes of inputs one RQ job may carry (a 1024 px photo is a few MB)


class RedisBroker:
    """The web side: enqueues attempts, cancels, and (:meth:`start`) follows them in a collector thread that is
    the only writer of the store and the data dir for broker jobs."""

    def __init__(self, store: JobStore, config: ServiceConfig) -> None:
        from rq import Queue

        if config.broker is None:
            raise ValueError("RedisBroker needs config.broker")
        self.store = store
        self.config = config
        self.redis = connect(config.broker, timeout=30)
        self.queue = Queue(QUEUE, connection=self.redis, serializer=serializer())
        self._lock = threading.Lock()  # enqueue: check-and-set of the current attempt
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._notifier: ThreadPoolExecutor | None = None
        self._seen: dict[str, tuple[Any, ...]] = {}  # job id -> last state copied into the store
        self._inspected = 0.0
        self._failing = False

    # ---------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Check that Redis answers, collect once (recovery after a restart), then follow jobs in a thread."""
        from redis.exceptions import RedisError

        try:
            self.redis.ping()
            self.collect(inspect=True)
        except RedisError as exc:
            raise unreachable(self.config.broker, exc) from None
        self._stopping.clear()
        self._notifier = ThreadPoolExecutor(max_workers=2, thread_name_prefix="percept-notify")
        self._thread = threading.Thread(target=self._loop, name="percept-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following (jobs go on running on the workers; the next start picks them up), wait for
        notifications being sent, close the connection."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._notifier is not None:
            self._notifier.shutdown(wait=True)
            self._notifier = None
        self.redis.close()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.collect()
                if self._failing:
                    log.warning("the broker answers again")
                self._failing = False
            except Exception as exc:  # Redis away for a while, disk full: try again at the next look
                if not self._failing:
                    log.warning("collecting from the broker failed (%s); retrying", exc)
                self._failing = True
            self._wake.wait(COLLECT_EVERY)
            self._wake.clear()
        self.store.close_thread()

    # ---------------------------------------------------------------------------------- commands

    def enqueue(self, job_id: str, *, expect: str | None = None) -> str | None:
        """Enqueue a new attempt of ``job_id`` if its current attempt is still ``expect`` (None: it has none);
        return the new attempt id, or None when someone else already moved on."""
        folder = job_dir(self.config.data_dir, job_id)
        with self._lock:
            current = as_text(self.redis.get(key("current", job_id)))
            if current != expect:
                return None
            job = self.store.get(job_id)
            if job is None or job.status not in ("queued", "running"):
                return None
            params = job.params
            photo = (folder / "photo.png").read_bytes()
            style = (folder / "style.png").read_bytes() if params["style"] == "upload" else None
            if len(photo) + len(style or b"") > MAX_PAYLOAD:
                raise PerceptError(f"its inputs are too large for the broker (over {MAX_PAYLOAD >> 20} MiB); "
                                   "lower max_size")
            attempt = f"{job_id}-{secrets.token_hex(4)}"
            kwargs = {"job_id": job_id, "attempt": attempt, "params": params,
                      "photo": base64.b64encode(photo).decode("ascii"),
                      "style": base64.b64encode(style).decode("ascii") if style is not None else None,
                      "iterations": self.config.iterations, "alive_ttl": self.config.stale_after}
            with self.redis.pipeline() as pipe:
                self.queue.enqueue_call(TASK, kwargs=kwargs, job_id=attempt,
                                        timeout=-1, result_ttl=0, failure_ttl=86400,
                                        description=f"percept job {job_id}", pipeline=pipe)
                pipe.set(key("current", job_id), attempt)
                pipe.execute()
        return attempt

    def cancel(self, job_id: str) -> None:
        """Tell a worker running ``job_id`` to stop (the store says cancelled already); drop a waiting attempt."""
        with self._lock, self.redis.pipeline() as pipe:
            pipe.get(key("current", job_id))
            pipe.set(key("cancel", job_id), 1, ex=CANCEL_KEEP)
            pipe.delete(key("current", job_id))
            attempt = as_text(pipe.execute()[0])
        if attempt is not None and self.queue.remove(attempt):  # still waiting: no worker will ever see it
            self._delete_rq_job(attempt)

    def pending(self) -> set[str]:
        """Ids of jobs whose current attempt RQ holds: waiting in the queue or taken by a worker (attempts of
        dead workers linger in RQ's started registry until RQ's own clean-up; they do not count)."""
        attempts = sorted(set(self.queue.get_job_ids()) | set(self.queue.started_job_registry.get_job_ids()))
        if not attempts:
            return set()
        currents = self.redis.mget([key("current", attempt[:22]) for attempt in attempts])
        return {attempt[:22] for attempt, current in zip(attempts, currents) if as_text(current) == attempt}

    # ---------------------------------------------------------------------------------- the collector

    def collect(self, *, inspect: bool = False) -> None:
        """One look at every queued or running job: copy progress, handle finished, stopped, dead and lost
        attempts. ``inspect``: also ask RQ about attempts no worker has started (else every 5 s)."""
        jobs = self.store.list_active()
        now = time.monotonic()
        inspect = inspect or now - self._inspected >= INSPECT_EVERY
        if inspect:
            self._inspected = now
        for gone in set(self._seen) - {job.id for job in jobs}:
            del self._seen[gone]
        if not jobs:
            return
        currents = [as_text(value) for value in self.redis.mget([key("current", job.id) for job in jobs])]
        with self.redis.pipeline(transaction=True) as pipe:  # one consistent snapshot of every attempt
            for attempt in currents:
                if attempt is not None:
                    pipe.exists(key("alive", attempt))
                    pipe.hmget(key("state", attempt), STATE_FIELDS)
                    pipe.hget(key("result", attempt), "status")
            replies = iter(pipe.execute())
        queued: set[str] | None = None
        for job, attempt in zip(jobs, currents):
            if attempt is None:
                self._lost(job, None, "requeued: the broker had lost it")
                continue
            alive, state, result = next(replies), next(replies), as_text(next(replies))
            if self._stopping.is_set() and not inspect:
                return
            try:
                if result is not None:
                    self._finished(job, attempt, result)
                elif state[0] is not None:
                    self._running(job, attempt, bool(alive), [as_text(v) for v in state])
                elif inspect:
                    if queued is None:
                        queued = set(self.queue.get_job_ids())
                    self._waiting(job, attempt, queued)
            except Exception:
                log.exception("job %s: attempt %s could not be collected", job.id, attempt)

    def _own(self, job: Job, worker: str) -> Job | None:
        """Make the store say that ``worker`` runs ``job`` (claiming it if queued); None if it is not active."""
        if job.status == "queued":
            return self.store.claim(worker, job.id)
        if job.worker != worker:
            self.store.update(job.id, worker=worker)
            job.worker = worker
        return job

    def _running(self, job: Job, attempt: str, alive: bool, state: list[str | None]) -> None:
        worker, progress, eta, message, seq = state
        assert worker is not None
        if not alive:
            deaths = sum("stopped answering" in line for line in job.log) + 1
            reason = (f"requeued: worker {worker} stopped answering (no heartbeat for "
                      f"{self.config.stale_after:g} s)")
            if job.status == "running":
                self.store.release(job.id, job.worker or "", reason)
            else:
                self.store.log(job.id, reason)
            if deaths >= MAX_DEATHS:
                self._fail_active(job.id, f"the worker died {deaths} times while running this job; giving up")
                self._forget(job.id, attempt)
                self._notify(job.id)
                return
            log.warning("job %s: %s", job.id, reason)
            self._reenqueue(job.id, attempt)
            return
        owned = self._own(job, worker)
        if owned is None:
            return
        seen = self._seen.get(job.id)
        if seen is None or seen[0] != attempt or seen[1:4] != (progress, eta, message):
            changes: dict[str, Any] = {"message": message or ""}
            if progress is not None:
                changes["progress"] = float(progress)
            changes["eta_seconds"] = float(eta) if eta else None
            self.store.heartbeat(job.id, worker, **changes)
        if seq is not None and (seen is None or seen[0] != attempt or seen[4] != seq):
            preview = self.redis.hget(key("state", attempt), "preview")
            if preview and self._active(job.id):
                self._write(job.id, "preview.png", preview, what="preview")
                if not self._active(job.id):  # cancelled while it was written: nothing of it is kept
                    discard_outputs(self.config.data_dir, job.id, partial=False)
        self._seen[job.id] = (attempt, progress, eta, message, seq)

    def _finished(self, job: Job, attempt: str, status: str) -> None:
        fields = self.redis.hmget(key("result", attempt), ("worker", "message", "error", "png"))
        worker, message, error = (as_text(v) for v in fields[:3])
        png = fields[3]
        worker = worker or "unknown worker"
        if status in ("done", "failed"):
            owned = self._own(job, worker)
            if owned is None:
                return
            if status == "done":
                try:
                    self._write(job.id, "result.png", png or b"", what="result")
                except PerceptError as exc:
                    status, error = "failed", str(exc)
            if status == "done":
                if not self.store.finish(job.id, worker, "done", progress=1.0, message=message or "done"):
                    (job_dir(self.config.data_dir, job.id) / "result.png").unlink(missing_ok=True)  # cancelled
            else:
                self.store.finish(job.id, worker, "failed", error=error or "failed", message="failed")
            self._forget(job.id, attempt)
            self._notify(job.id)
        elif status == "released":  # the worker was stopped (SIGTERM): another one runs it from the start
            if job.status == "running":
                self.store.release(job.id, job.worker or "", f"requeued: worker {worker} stopped")
            else:
                self.store.log(job.id, f"requeued: worker {worker} stopped")
            self._reenqueue(job.id, attempt)
        else:  # cancelled or superseded while the store still wants it: a Redis that lost keys; run it again
            self._lost(job, attempt, f"requeued: the attempt ended as {status}")

    def _waiting(self, job: Job, attempt: str, queued: set[str]) -> None:
        """An attempt no worker has reported on: is RQ still holding it? (``queued``: the attempts waiting in the
        queue; the others are looked up by status only: an RQ job's hash also holds its inputs.)"""
        from rq.job import Job as RQJob
        from rq.job import JobStatus
        from rq.utils import utcparse

        if attempt in queued:
            return
        status, started = (as_text(v) for v in self.redis.hmget(RQJob.key_for(attempt), ("status", "started_at")))
        if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            return  # between two looks: being moved in or out of the queue
        if self.redis.exists(key("state", attempt), key("result", attempt)):
            return  # a worker reported since the snapshot (and RQ may have dropped its finished job): next look
        if status is None:
            self._lost(job, attempt, "requeued: the broker had lost it")
        elif status == JobStatus.STARTED:  # taken by a worker that has not reported yet, or died doing so
            if started and time.time() - utcparse(started).timestamp() > self.config.stale_after + INSPECT_EVERY:
                self._lost(job, attempt, "requeued: its worker died before starting it")
        elif status == JobStatus.FAILED and not self._abandoned(attempt):
            self._fail_active(job.id, self._rq_error(attempt))
            self._forget(job.id, attempt)
            self._notify(job.id)
        else:
            self._lost(job, attempt, f"requeued: RQ ended the attempt as {status}")

    def _abandoned(self, attempt: str) -> bool:
        return "AbandonedJobError" in (self._rq_exc_info(attempt) or "AbandonedJobError")

    def _rq_error(self, attempt: str) -> str:
        lines = [line.strip() for line in (self._rq_exc_info(attempt) or "").splitlines() if line.strip()]
        return f"the worker could not run it: {lines[-1] if lines else 'unknown error'}"[:500]

    def _rq_exc_info(self, attempt: str) -> str | None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RQJob

        try:
            return RQJob.fetch(attempt, connection=self.redis, serializer=serializer()).exc_info
        except NoSuchJobError:
            return None

    # ---------------------------------------------------------------------------------- helpers

    def _lost(self, job: Job, attempt: str | None, reason: str) -> None:
        """The current attempt (if any) will never report: run the job again, unless an earlier attempt's result
        is already on disk."""
        if (job_dir(self.config.data_dir, job.id) / "result.png").is_file():
            owned = self._own(job, job.worker or "collector")
            if owned is not None:
                self.store.finish(job.id, owned.worker or "collector", "done", progress=1.0,
                                  message="done (result of an earlier attempt)")
                self._forget(job.id, attempt)
                self._notify(job.id)
            return
        if job.status == "running":
            self.store.release(job.id, job.worker or "", reason)
        elif attempt is not None:
            self.store.log(job.id, reason)
        if attempt is not None:
            log.warning("job %s: %s", job.id, reason)
        self._reenqueue(job.id, attempt)

    def _reenqueue(self, job_id: str, attempt: str | None) -> None:
        try:
            self.enqueue(job_id, expect=attempt)
        except (OSError, PerceptError) as exc:  # its files are gone, or too large: nothing can run it
            error = f"its input files are missing ({exc.strerror})" if isinstance(exc, OSError) else str(exc)
            self._fail_active(job_id, error)
            self._forget(job_id, attempt)
            self._notify(job_id)
            return
        if attempt is not None:
            self._cleanup(attempt)

    def _fail_active(self, job_id: str, error: str) -> None:
        """Fail a job whatever worker the store names (queued: claimed for the record first)."""
        job = self.store.get(job_id)
        if job is None or job.status not in ("queued", "running"):
            return
        owned = self._own(job, job.worker or "collector")
        if owned is not None:
            self.store.finish(job_id, owned.worker or "collector", "failed", error=error, message="failed")

    def _forget(self, job_id: str, attempt: str | None) -> None:
        """The job is finished in the store: drop its keys."""
        self.redis.delete(key("current", job_id), key("cancel", job_id))
        if attempt is not None:
            self._cleanup(attempt)
        self._seen.pop(job_id, None)

    def _cleanup(self, attempt: str) -> None:
        self.redis.delete(key("state", attempt), key("result", attempt))

    def _delete_rq_job(self, attempt: str) -> None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job as RQJob

        try:
            RQJob.fetch(attempt, connection=self.redis, serializer=serializer()).delete()
        except NoSuchJobError:
            pass

    def _active(self, job_id: str) -> bool:
        current = self.store.get(job_id)
        return current is not None and current.status in ("queued", "running")

    def _write(self, job_id: str, name: str, data: bytes, *, what: str) -> None:
        """Check that ``data`` is a PNG a worker made, then write it atomically into the job's folder."""
        decode_image(data, what=f"{what} from the worker", fmt="PNG")
        folder = job_dir(self.config.data_dir, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / name, lambda tmp: Path(tmp).write_bytes(data))

    def _notify(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status not in ("done", "failed") or not (job.email or job.webhook):
            return
        if self._notifier is None:  # the first collection, in start(): send them from this thread
            notify(self.store, self.config, job)
            return
        self._notifier.submit(self._send, job)

    def _send(self, job: Job) -> None:
        try:
            notify(self.store, self.config, job)
        except Exception:
            log.exception("job %s: notifications failed", job.id)
