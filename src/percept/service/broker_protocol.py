"""Redis mode (``--broker redis://...``): what travels through Redis between the web process (:mod:`.broker`)
and ``percept worker`` processes (:mod:`.broker_worker`), and how both sides connect.

Jobs run on ``percept worker`` processes on any machine that reaches Redis, while the web process stays the only
one that reads or writes the job store and the data dir. Keys under ``percept:`` (RQ's own under ``rq:``):

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
"""

from __future__ import annotations

from ..errors import PerceptError
from .config import redact_url

QUEUE = "percept"  # RQ queue name
#: The RQ task's import path, as enqueued: part of the wire format (workers of other versions import it).
TASK = "percept.service.broker.execute"
PREFIX = "percept"
KEEP = 7 * 86400  # seconds results (and the state of attempts) stay in Redis for a web process to collect
STATE_FIELDS = ("worker", "progress", "eta", "message", "seq")


def key(kind: str, ident: str) -> str:
    """``percept:<kind>:<job id or attempt id>``."""
    return f"{PREFIX}:{kind}:{ident}"


def serializer():
    """RQ's JSON serializer (never pickle: nothing a worker reads can run code)."""
    from rq.serializers import JSONSerializer

    return JSONSerializer


def as_text(value: bytes | str | None) -> str | None:
    """A Redis reply as ``str`` (None stays None)."""
    return value.decode() if isinstance(value, bytes) else value


def connect(url: str, *, timeout: float | None = None):
    """A Redis client; ``timeout``: seconds a command may take (None for workers: RQ blocks while waiting)."""
    from redis import Redis

    return Redis.from_url(url, health_check_interval=30, socket_keepalive=True, socket_connect_timeout=10,
                          socket_timeout=timeout)


def unreachable(url: str | None, exc: Exception) -> PerceptError:
    """The one-line error for a broker that does not answer (its password hidden)."""
    return PerceptError(f"cannot use the broker {redact_url(url)} ({exc}); is redis-server running?")
