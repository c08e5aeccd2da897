"""Redis mode (``--broker redis://...``): jobs run on ``percept worker`` processes on any machine that reaches
Redis, while the web process stays the only one that reads or writes the job store and the data dir.

What travels through Redis (keys under ``percept:``; RQ's own under ``rq:``):

- ``rq:queue:percept``: one RQ job per *attempt* of a job, id ``<job id>-<8 hex>``, serialized as JSON (never
  pickle), carrying everything a worker needs: the job id, the attempt id, the parameters, the photo
  (``photo.png`` as stored by the web process: RGB, at most the job's size) and an uploaded style as base64
  PNG bytes (a predefined style goes by its id: workers have the package), ``iterations`` and the heartbeat TTL.
- ``percept:current:<job id>`` = the attempt the web process wants run (set with the RQ job in one
  transaction). A worker runs an attempt only while it is current and ``percept:cancel:<job id>`` is unset,
  and checks both at every progress report (every 0.5 s), so a cancelled, superseded or re-enqueued attempt
  stops within a second and an attempt never runs twice.
- ``percept:alive:<attempt>``: set by the running worker every ``stale_after / 4`` s with a TTL of
  ``stale_after`` s: its heartbeat.
- ``percept:state:<attempt>`` (hash): worker, progress, eta, message, and a preview PNG (<= 256 px, at most
  every 2 s) with its sequence number.
- ``percept:result:<attempt>`` (hash, TTL 7 days): status done|failed|cancelled|superseded|released, the result
  PNG (with its parameters in the text chunk) or the one-line error. Written in the same transaction that
  deletes the heartbeat, so the web process never sees a finished attempt as a dead one.

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
import math
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import PerceptError
from ..image import atomic_write
from .config import ServiceConfig, redact_url
from .notify import notify
from .runner import Progress, Stop, decode_image, encode_png, internal_error, paint, result_metadata
from .store import Job, JobStore, job_dir
from .styles import load_style_image
from .workers import worker_name

log = logging.getLogger(__name__)

QUEUE = "percept"  # RQ queue name
PREFIX = "percept"
KEEP = 7 * 86400  # seconds results (and the state of attempts) stay in Redis for a web process to collect
CANCEL_KEEP = 86400  # seconds a cancel flag stays
COLLECT_EVERY = 0.5  # seconds between the collector's looks at Redis
INSPECT_EVERY = 5.0  # seconds between checks of waiting attempts against RQ (lost, failed)
PREVIEW_EVERY = 2.0  # seconds between previews sent by a worker
PREVIEW_SIDE = 256  # longest side of a preview sent through Redis, pixels
MAX_DEATHS = 3  # a job whose worker died this many times fails (it may be what kills them)
MAX_PAYLOAD = 64 * 1024 * 1024  # bytes of inputs one RQ job may carry (a 1024 px photo is a few MB)
STATE_FIELDS = ("worker", "progress", "eta", "message", "seq")


def key(kind: str, ident: str) -> str:
    """``percept:<kind>:<job id or attempt id>``."""
    return f"{PREFIX}:{kind}:{ident}"


def _serializer():
    from rq.serializers import JSONSerializer

    return JSONSerializer


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _connect(url: str, *, timeout: float | None = None):
    """A Redis client; ``timeout``: seconds a command may take (None for workers: RQ blocks while waiting)."""
    from redis import Redis

    return Redis.from_url(url, health_check_interval=30, socket_keepalive=True, socket_connect_timeout=10,
                          socket_timeout=timeout)


# --------------------------------------------------------------------------------------------- web process


class RedisBroker:
    """The web side: enqueues attempts, cancels, and (:meth:`start`) follows them in a collector thread that is
    the only writer of the store and the data dir for broker jobs."""

    def __init__(self, store: JobStore, config: ServiceConfig) -> None:
        from rq import Queue

        if config.broker is None:
            raise ValueError("RedisBroker needs config.broker")
        self.store = store
        self.config = config
        self.redis = _connect(config.broker, timeout=30)
        self.queue = Queue(QUEUE, connection=self.redis, serializer=_serializer())
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
            raise PerceptError(f"cannot use the broker {redact_url(self.config.broker)} ({exc}); is redis-server "
                               "running?") from None
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
            current = _text(self.redis.get(key("current", job_id)))
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
                self.queue.enqueue_call("percept.service.broker.execute", kwargs=kwargs, job_id=attempt,
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
            attempt = _text(pipe.execute()[0])
        if attempt is not None and self.queue.remove(attempt):  # still waiting: no worker will ever see it
            self._delete_rq_job(attempt)

    def pending(self) -> set[str]:
        """Ids of jobs whose current attempt RQ holds: waiting in the queue or taken by a worker (attempts of
        dead workers linger in RQ's started registry until RQ's own clean-up; they do not count)."""
        attempts = sorted(set(self.queue.get_job_ids()) | set(self.queue.started_job_registry.get_job_ids()))
        if not attempts:
            return set()
        currents = self.redis.mget([key("current", attempt[:22]) for attempt in attempts])
        return {attempt[:22] for attempt, current in zip(attempts, currents) if _text(current) == attempt}

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
        currents = [_text(value) for value in self.redis.mget([key("current", job.id) for job in jobs])]
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
            alive, state, result = next(replies), next(replies), _text(next(replies))
            if self._stopping.is_set() and not inspect:
                return
            try:
                if result is not None:
                    self._finished(job, attempt, result)
                elif state[0] is not None:
                    self._running(job, attempt, bool(alive), [_text(v) for v in state])
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
            if preview:
                self._write(job.id, "preview.png", preview, what="preview")
        self._seen[job.id] = (attempt, progress, eta, message, seq)

    def _finished(self, job: Job, attempt: str, status: str) -> None:
        fields = self.redis.hmget(key("result", attempt), ("worker", "message", "error", "png"))
        worker, message, error = (_text(v) for v in fields[:3])
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
        from rq.job import Job as RQJob, JobStatus
        from rq.utils import utcparse

        if attempt in queued:
            return
        status, started = (_text(v) for v in self.redis.hmget(RQJob.key_for(attempt), ("status", "started_at")))
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
            return RQJob.fetch(attempt, connection=self.redis, serializer=_serializer()).exc_info
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
            RQJob.fetch(attempt, connection=self.redis, serializer=_serializer()).delete()
        except NoSuchJobError:
            pass

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


# --------------------------------------------------------------------------------------------- worker process


class _WorkerContext:
    """What :func:`execute` needs inside a ``percept worker`` process."""

    def __init__(self, redis: Any, device: str = "auto", iterations: int = 0) -> None:
        self.redis = redis
        self.device = device
        self.iterations = iterations
        self.stopping = threading.Event()


_context: _WorkerContext | None = None


def execute(job_id: str, attempt: str, params: dict[str, Any], photo: str, style: str | None,
            iterations: int = 0, alive_ttl: float = 60.0) -> str:
    """The RQ task: run one attempt of a job on the inputs it carries, reporting through Redis; return how it
    ended (done, failed, cancelled, superseded, released, or skipped when it was not current any more)."""
    from rq import get_current_job

    global _context
    if _context is None:  # a plain `rq worker`: no configuration, defaults
        _context = _WorkerContext(get_current_job().connection)
    redis, ctx = _context.redis, _context
    me = worker_name()
    current_key, cancel_key = key("current", job_id), key("cancel", job_id)
    state_key, alive_key, result_key = key("state", attempt), key("alive", attempt), key("result", attempt)
    ttl = max(1, math.ceil(alive_ttl))
    with redis.pipeline(transaction=True) as pipe:
        pipe.get(current_key)
        pipe.exists(cancel_key, result_key)
        current, blocked = pipe.execute()
    if _text(current) != attempt or blocked:
        return "skipped"
    with redis.pipeline(transaction=True) as pipe:
        pipe.set(alive_key, me, ex=ttl)
        pipe.hset(state_key, mapping={"worker": me, "progress": 0.0, "message": "starting", "eta": ""})
        pipe.expire(state_key, KEEP)
        pipe.execute()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(max(0.25, min(10.0, alive_ttl / 4))):
            try:
                redis.set(alive_key, me, ex=ttl)
            except Exception as exc:  # Redis away for a moment: the next beat may reach it
                log.warning("heartbeat of %s failed: %s", attempt, exc)

    beater = threading.Thread(target=beat, name=f"heartbeat-{attempt}", daemon=True)
    beater.start()
    sent = {"preview": -math.inf, "seq": 0}
    why_stop = {"reason": "released"}

    def check(current: Any, cancelled: Any) -> None:
        if cancelled:
            why_stop["reason"] = "cancelled"
        elif _text(current) != attempt:
            why_stop["reason"] = "superseded"
        elif ctx.stopping.is_set():
            why_stop["reason"] = "released"
        else:
            return
        raise Stop

    def report(update: Progress) -> None:
        fields: dict[str, Any] = {"message": update.message, "updated": time.time(),
                                  "eta": "" if update.eta_seconds is None else f"{update.eta_seconds:.3f}"}
        if update.progress is not None:
            fields["progress"] = f"{update.progress:.4f}"
        now = time.monotonic()
        if update.image is not None and now - sent["preview"] >= PREVIEW_EVERY:
            sent["preview"], sent["seq"] = now, sent["seq"] + 1
            fields.update(preview=encode_png(update.image, longest=PREVIEW_SIDE), seq=sent["seq"])
        with redis.pipeline(transaction=False) as pipe:
            pipe.hset(state_key, mapping=fields)
            pipe.get(current_key)
            pipe.exists(cancel_key)
            _, current, cancelled = pipe.execute()
        check(current, cancelled)

    started = time.monotonic()
    outcome: dict[str, Any]
    try:
        photo_image = decode_image(base64.b64decode(photo), what="photo", fmt="PNG")
        style_image = (decode_image(base64.b64decode(style), what="style image", fmt="PNG") if style is not None
                       else load_style_image(params["style"]))
        image, record = paint(photo_image, style_image, params, device=ctx.device,
                              iterations=ctx.iterations or iterations, report=report,
                              stop_check=ctx.stopping.is_set)
        check(*redis.mget(current_key, cancel_key))
        png = encode_png(image, result_metadata(job_id, params, record))
        outcome = {"status": "done", "png": png, "message": f"done in {time.monotonic() - started:.0f} s"}
    except Stop:
        outcome = {"status": why_stop["reason"]}
    except PerceptError as exc:
        outcome = {"status": "failed", "error": str(exc)}
    except Exception as exc:  # a bug or a broken installation: the job fails, the worker lives on
        log.exception("job %s failed", job_id)
        outcome = {"status": "failed", "error": internal_error(exc)}
    finally:
        done.set()
        beater.join()
    with redis.pipeline(transaction=True) as pipe:
        pipe.hset(result_key, mapping={**outcome, "worker": me, "finished": time.time()})
        pipe.expire(result_key, KEEP)
        pipe.delete(alive_key)
        pipe.execute()
    log.info("job %s (attempt %s): %s", job_id, attempt, outcome["status"])
    return outcome["status"]


def run_worker(broker: str, *, device: str = "auto", iterations: int = 0, burst: bool = False) -> None:
    """Run jobs from the broker until stopped (SIGINT/SIGTERM: the running job is given back at its next step and
    another worker runs it); ``burst``: stop when the queue is empty. Needs nothing but the Redis URL: no data
    dir, no job store. The network stays loaded between jobs."""
    global _context
    from redis.exceptions import RedisError
    from rq import SimpleWorker
    from rq.timeouts import TimerDeathPenalty

    redis = _connect(broker)
    try:
        redis.ping()
    except RedisError as exc:
        raise PerceptError(f"cannot use the broker {redact_url(broker)} ({exc}); is redis-server running?") from None
    _context = _WorkerContext(redis, device=device, iterations=iterations)
    stopping = _context.stopping

    class Worker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty  # timeout=-1: no time limit, and no SIGALRM

        def request_stop(self, signum, frame):  # noqa: ANN001
            stopping.set()
            super().request_stop(signum, frame)

    from rq import Queue

    queue = Queue(QUEUE, connection=redis, serializer=_serializer())
    try:
        Worker([queue], connection=redis, name=f"percept-{worker_name()}", serializer=_serializer()).work(
            burst=burst, logging_level="WARNING")
    finally:
        redis.close()
