"""The worker side of Redis mode: :func:`execute`, the RQ task that runs one attempt of a job inside a
``percept worker`` process and reports through Redis (keys: :mod:`.broker_protocol`), and :func:`run_worker`,
that process's loop. A worker needs nothing but the Redis URL: no data dir, no job store.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import threading
import time
from typing import Any

from ..errors import PerceptError
from .broker_protocol import KEEP, QUEUE, as_text, connect, key, serializer, unreachable
from .config import WorkerConfig, service_packages
from .runner import (
    Progress,
    Stop,
    decode_image,
    encode_png,
    internal_error,
    paint,
    result_metadata,
)
from .styles import load_style_image
from .workers import worker_name

log = logging.getLogger(__name__)

PREVIEW_EVERY = 2.0  # seconds between previews sent by a worker
PREVIEW_SIDE = 256  # longest side of a preview sent through Redis, pixels


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
    if as_text(current) != attempt or blocked:
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
        elif as_text(current) != attempt:
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


def run_worker(**settings: Any) -> None:
    """Run jobs from the broker until stopped (SIGINT/SIGTERM: the running job is given back at its next step and
    another worker runs it). The network stays loaded between jobs.

    Args:
        **settings: the fields of :class:`~percept.service.config.WorkerConfig` (``broker`` defaults to
            ``$PERCEPT_BROKER``; ``burst``: stop when the queue is empty; ``nice``: lower the CPU priority).

    Raises:
        PerceptError: no or a bad broker URL, Redis does not answer, or redis/rq are not installed.
    """
    global _context
    config = WorkerConfig.from_env(**settings)
    if config.nice and hasattr(os, "nice"):
        os.nice(config.nice)
    with service_packages("percept worker"):
        from redis.exceptions import RedisError
        from rq import Queue, SimpleWorker
        from rq.timeouts import TimerDeathPenalty

    assert config.broker is not None  # WorkerConfig refuses none
    redis = connect(config.broker)
    try:
        redis.ping()
    except RedisError as exc:
        raise unreachable(config.broker, exc) from None
    _context = _WorkerContext(redis, device=config.device, iterations=config.iterations)
    stopping = _context.stopping

    class Worker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty  # timeout=-1: no time limit, and no SIGALRM

        def request_stop(self, signum, frame):  # noqa: ANN001
            stopping.set()
            super().request_stop(signum, frame)

    queue = Queue(QUEUE, connection=redis, serializer=serializer())
    try:
        Worker([queue], connection=redis, name=f"percept-{worker_name()}", serializer=serializer()).work(
            burst=config.burst, logging_level="WARNING")
    finally:
        redis.close()
