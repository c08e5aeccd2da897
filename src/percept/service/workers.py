"""The embedded workers: threads inside the service process (the default, no ``--broker``).

The SQLite store decides: a job runs only after :meth:`JobStore.claim` moved it from queued to running for one
worker thread, so a job never runs twice at the same time. With ``--broker`` jobs run on ``percept worker``
processes instead (:mod:`.broker`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from .config import ServiceConfig
from .notify import notify
from .runner import run_job
from .store import Job, JobStore

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 10.0  # seconds between heartbeats of a running job
POLL_EVERY = 1.0  # seconds an idle embedded worker waits before it looks for queued jobs again


def worker_name(index: int = 0) -> str:
    """``host:pid:index``: who claimed a job, in the job's log."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


def process(store: JobStore, config: ServiceConfig, job: Job, *, worker_id: str,
            stop_check: Callable[[], bool]) -> str:
    """Run a claimed job with a heartbeat, then send its notifications; return its final status."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_EVERY) and store.heartbeat(job.id, worker_id):
            pass
        store.close_thread()

    beater = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
    beater.start()
    try:
        status = run_job(store, config.data_dir, job, worker_id=worker_id, device=config.device,
                         iterations=config.iterations, stop_check=stop_check)
    finally:
        done.set()
        beater.join()
    finished = store.get(job.id)
    if status in ("done", "failed") and finished is not None and (finished.email or finished.webhook):
        notify(store, config, finished)
    return status


class EmbeddedWorkers:
    """``config.workers`` threads in this process that claim queued jobs and run them."""

    def __init__(self, store: JobStore, config: ServiceConfig) -> None:
        self.store = store
        self.config = config
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._loop, args=(i,), name=f"percept-worker-{i}", daemon=True)
                         for i in range(self.config.workers)]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """A job was queued: idle workers look now instead of at their next poll."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every thread; a running optimisation is given back to the queue at its next step (an instant job
        finishes first). Waits up to ``timeout`` seconds in all."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _loop(self, index: int) -> None:
        worker_id = worker_name(index)
        while not self._stopping.is_set():
            job = self.store.claim(worker_id)
            if job is None:
                self._wake.wait(POLL_EVERY)
                self._wake.clear()
                continue
            try:
                process(self.store, self.config, job, worker_id=worker_id, stop_check=self._stopping.is_set)
            except Exception:  # the store itself failed (disk full, database locked for 30 s): keep serving
                log.exception("worker %s: job %s could not be processed", worker_id, job.id)
