"""The job store: one SQLite file (WAL) in the data dir, used only by the service process (its web requests,
its embedded worker threads or its Redis collector thread; Redis workers never see it).

Every state change is one short transaction, so the store is safe for many threads. A worker owns a running job
through ``worker`` and keeps ``heartbeat`` fresh; its writes are conditional on still owning it, so a cancelled
or requeued job can never be overwritten by a worker that lost it.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import PerceptError

STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: Fields of :class:`Job` the API may show: no client address, no email address, no webhook URL.
PRIVATE_FIELDS = ("client", "email", "webhook", "worker", "heartbeat")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    eta_seconds REAL,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    client TEXT NOT NULL DEFAULT '',
    email TEXT,
    webhook TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    heartbeat REAL,
    log TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created);
"""


class QueueFull(Exception):
    """The queue already holds its cap of queued and running jobs; the client should retry later."""


def new_job_id() -> str:
    """A fresh unguessable job id: 16 random bytes, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)


def valid_job_id(text: object) -> bool:
    """True for the shape of an id :func:`new_job_id` generates (22 URL-safe base64 characters), nothing else."""
    return isinstance(text, str) and JOB_ID.fullmatch(text) is not None


def job_dir(data_dir: Path, job_id: str) -> Path:
    """``data_dir/jobs/<id>``; the id is validated first, so no other path can ever be built from it."""
    if not valid_job_id(job_id):
        raise PerceptError("invalid job id")
    return Path(data_dir) / "jobs" / job_id


#: What a job's painting leaves in its folder (besides the inputs): the current image and the result.
OUTPUTS = ("preview.png", "result.png")


def discard_outputs(data_dir: Path, job_id: str, *, partial: bool = True) -> None:
    """Delete the preview and the result of a cancelled job, and with ``partial`` its unfinished temporary files
    too (only once no worker writes into the folder any more); the inputs stay."""
    folder = job_dir(data_dir, job_id)
    for name in OUTPUTS:
        (folder / name).unlink(missing_ok=True)
    if partial and folder.is_dir():
        for path in folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)


@dataclass
class Job:
    """One request to paint a photo; ``id`` is its only handle."""

    id: str
    status: str = "queued"
    progress: float = 0.0  # 0..1
    eta_seconds: float | None = None  # estimated seconds left while running
    message: str = ""  # current state in words
    error: str | None = None  # one line when failed
    params: dict[str, Any] = field(default_factory=dict)  # method, style, size, strength, preserve_color, seed
    client: str = ""  # submitting client's address (rate limits, never shown)
    email: str | None = None
    webhook: str | None = None
    created: float = 0.0  # unix seconds
    started: float | None = None
    finished: float | None = None
    attempts: int = 0  # times a worker claimed it
    worker: str | None = None  # who runs it now
    heartbeat: float | None = None  # last sign of life of that worker, unix seconds
    log: list[str] = field(default_factory=list)  # events, oldest first

    def to_public_dict(self) -> dict[str, Any]:
        """What the API returns: everything but who submitted it and where notifications go."""
        data = asdict(self)
        for name in PRIVATE_FIELDS:
            data.pop(name)
        return data


_COLUMNS = [f.name for f in fields(Job)]
_JSON_COLUMNS = ("params", "log")


def _row_to_job(row: sqlite3.Row) -> Job:
    data = dict(row)
    for name in _JSON_COLUMNS:
        data[name] = json.loads(data[name])
    return Job(**data)


def _encode(name: str, value: Any) -> Any:
    if name not in _COLUMNS or name == "id":
        raise ValueError(f"unknown job field {name!r}")
    if name == "status" and value not in STATUSES:
        raise ValueError(f"unknown status {value!r}")
    return json.dumps(value) if name in _JSON_COLUMNS else value


class JobStore:
    """Jobs in one SQLite file; one connection per thread, every write one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (takes the write lock at once, so read-then-write cannot race) ... ``COMMIT``."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def close_thread(self) -> None:
        """Close the calling thread's connection (for short-lived threads: one connection each otherwise)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            conn.close()
            self._local.conn = None

    def create(self, job: Job, *, cap: int | None = None) -> Job:
        """Insert a new job (logged as queued); with ``cap``, raise :class:`QueueFull` when that many jobs are
        queued or running already."""
        job.created = job.created or time.time()
        job.log = [*job.log, _event(job.created, "queued")]
        values = {name: _encode(name, getattr(job, name)) for name in _COLUMNS if name != "id"}
        with self._transaction() as db:
            if cap is not None and db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchone()[0] >= cap:
                raise QueueFull(f"the queue is full ({cap} jobs); try again later")
            db.execute(f"INSERT INTO jobs (id, {', '.join(values)}) VALUES (?{', ?' * len(values)})",
                       (job.id, *values.values()))
        return job

    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row is not None else None

    def update(self, job_id: str, **changes: Any) -> bool:
        """Set fields unconditionally; False when no such job."""
        return self._update("id = ?", (job_id,), changes)

    def _update(self, where: str, args: tuple[Any, ...], changes: dict[str, Any]) -> bool:
        sets = ", ".join(f"{name} = ?" for name in changes)
        values = tuple(_encode(name, value) for name, value in changes.items())
        with self._transaction() as db:
            return db.execute(f"UPDATE jobs SET {sets} WHERE {where}", values + args).rowcount == 1

    def list(self, status: str | None = None, limit: int = 50) -> list[Job]:
        """Newest first; all statuses when ``status`` is None."""
        if status is None:
            rows = self._conn().execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        else:
            rows = self._conn().execute("SELECT * FROM jobs WHERE status = ? ORDER BY created DESC LIMIT ?",
                                        (status, limit))
        return [_row_to_job(row) for row in rows]

    def list_active(self) -> list[Job]:
        """Every queued or running job, oldest first."""
        return [_row_to_job(row) for row in self._conn().execute(
            "SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created")]

    def active_count(self) -> int:
        """Queued plus running jobs."""
        return self._conn().execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Number of jobs in each status."""
        found = dict(self._conn().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {status: found.get(status, 0) for status in STATUSES}

    def claim(self, worker_id: str, job_id: str | None = None) -> Job | None:
        """Atomically move the oldest queued job (or ``job_id`` if it is still queued) to running for
        ``worker_id``; None when there is none."""
        now = time.time()
        pick = "?" if job_id is not None else "(SELECT id FROM jobs WHERE status = 'queued' ORDER BY created LIMIT 1)"
        with self._transaction() as db:
            row = db.execute(
                f"UPDATE jobs SET status = 'running', worker = ?, attempts = attempts + 1, started = ?, heartbeat = ?,"
                f" progress = 0, eta_seconds = NULL, message = 'starting', log = json_insert(log, '$[#]', ?)"
                f" WHERE id = {pick} AND status = 'queued' RETURNING *",
                (worker_id, now, now, _event(now, f"started by {worker_id}"), *((job_id,) if job_id else ())),
            ).fetchone()
        return _row_to_job(row) if row is not None else None

    def heartbeat(self, job_id: str, worker_id: str, **changes: Any) -> bool:
        """Refresh the heartbeat (and set ``changes``) of a job ``worker_id`` still runs; False when it lost the
        job (cancelled, or requeued as stale), which tells the worker to stop."""
        return self._update("id = ? AND status = 'running' AND worker = ?", (job_id, worker_id),
                            {**changes, "heartbeat": time.time()})

    def finish(self, job_id: str, worker_id: str, status: str, **changes: Any) -> bool:
        """Move a job ``worker_id`` still runs to a final status; False (and no change) if it lost the job."""
        if status not in ("done", "failed"):
            raise ValueError(f"a worker finishes a job as done or failed, not {status!r}")
        return self._update("id = ? AND status = 'running' AND worker = ?", (job_id, worker_id),
                            {**changes, "status": status, "finished": time.time(), "eta_seconds": None})

    def release(self, job_id: str, worker_id: str, reason: str) -> bool:
        """Give a running job back to the queue (worker shutting down); it runs again from the start."""
        return self._requeue("id = ? AND status = 'running' AND worker = ?", (job_id, worker_id), reason) == 1

    def requeue_interrupted(self, *, stale_after: float | None = None) -> int:
        """Running jobs back to queued: all of them (start-up of the only process that runs jobs), or only those
        whose worker gave no sign of life for ``stale_after`` seconds; returns how many."""
        if stale_after is None:
            return self._requeue("status = 'running'", (), "requeued: interrupted by a restart")
        return self._requeue("status = 'running' AND heartbeat < ?", (time.time() - stale_after,),
                             f"requeued: no heartbeat for {stale_after:g} s")

    def _requeue(self, where: str, args: tuple[Any, ...], reason: str) -> int:
        with self._transaction() as db:
            return db.execute(
                "UPDATE jobs SET status = 'queued', worker = NULL, heartbeat = NULL, progress = 0, eta_seconds = NULL,"
                f" message = ?, log = json_insert(log, '$[#]', ?) WHERE {where}",
                (reason, _event(time.time(), reason), *args),
            ).rowcount

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a running one stops at its next step); finished jobs stay as they are.
        None for an unknown id."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'cancelled', finished = ?, eta_seconds = NULL, message = 'cancelled',"
                " log = json_insert(log, '$[#]', ?) WHERE id = ? AND status IN ('queued', 'running')",
                (now, _event(now, "cancelled"), job_id),
            )
        return self.get(job_id)

    def log(self, job_id: str, line: str) -> None:
        """Append a timestamped event to the job's log."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET log = json_insert(log, '$[#]', ?) WHERE id = ?",
                       (_event(time.time(), line), job_id))


def _event(when: float, line: str) -> str:
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(when))}Z {line}"
