"""Settings of the artwork service: :class:`ServiceConfig` (``percept serve``: the web app, the embedded workers
and the broker's collector) and :class:`WorkerConfig` (``percept worker`` processes). Each default and help text
is written once here; the command line generates its options from these fields.

This module imports nothing heavy (no torch, no web framework): the CLI reads it to build ``--help``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import PerceptError
from ..params import defaults, device_setting, from_settings, setting

MIB = 1024 * 1024
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")
#: Settings read from the environment when not given (secrets in URLs stay out of the process list).
ENVIRONMENT = {"smtp_url": "PERCEPT_SMTP_URL", "mail_from": "PERCEPT_MAIL_FROM", "public_url": "PERCEPT_PUBLIC_URL",
               "broker": "PERCEPT_BROKER"}
#: Packages of the ``service`` extra (``pip install 'percept-cnn[service]'``), by import name.
SERVICE_PACKAGES = {"fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "limits", "pydantic",
                    "filelock", "rq", "redis"}
#: Bind addresses that mean "every interface": never a name a client uses.
WILDCARDS = ("0.0.0.0", "::", "[::]", "")
#: A DNS name: labels of letters, digits, hyphens (and underscores, which some internal names have).
HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")
#: The limits that a public service (``public=True``) caps at their defaults.
LIMITS = ("max_upload_mb", "max_pixels", "max_size", "queue_cap", "rate_limit")


class InvalidField(PerceptError):
    """A submitted field whose value the service refuses (the web layer answers 422): a malformed email address
    or webhook URL, or an image too elongated for the network."""


@contextmanager
def service_packages(what: str) -> Iterator[None]:
    """Turn a missing package of the ``service`` extra, imported inside, into a one-line error saying that ``what``
    needs it and how to install it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVICE_PACKAGES:
            raise
        raise PerceptError(f"{what} needs {exc.name}, which is not installed; pip install 'percept-cnn[service]' "
                           "(in a clone: pip install -e '.[service]')") from None


def redact_url(url: str | None) -> str:
    """``url`` without its password (for messages)."""
    from urllib.parse import urlsplit

    password = urlsplit(url or "").password
    return (url or "").replace(f":{password}@", ":***@", 1) if password is not None else url or ""


def check_broker_url(url: str) -> str:
    """``url`` if it is a Redis URL; a one-line error (password hidden) otherwise."""
    if not url.startswith(BROKER_SCHEMES):
        raise PerceptError(f"broker {redact_url(url)!r} is not a Redis URL; use redis://host:6379/0")
    return url


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/percept/service`` (``~/.local/share/percept/service`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "percept" / "service"


def _host_name(name: str) -> str:
    """``name`` as :attr:`ServiceConfig.host_names` holds it (lower case, no brackets, no final dot); a one-line
    error for anything that is not a host name or an IP address."""
    host = name.strip().lower().rstrip(".")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not HOST_NAME.fullmatch(host) or len(host) > 253:
        raise PerceptError(f"allowed host {name.strip()!r} is not a host name or IP address; give names like "
                           "art.example.org, without scheme, port or path")
    return host


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: the only hosts ``percept serve`` binds without --public."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def rate_per_second(rate: str) -> float:
    """Requests per second of a rate in ``limits`` notation (``30/minute``); a one-line error for anything else."""
    from limits import parse

    try:
        item = parse(rate)
    except ValueError:
        raise PerceptError(f"rate limit {rate!r} is not a rate; write it like 30/minute") from None
    return item.amount / item.get_expiry()


def _from_env(cls: type, overrides: dict[str, object]) -> object:
    """``cls(**values)``: :data:`ENVIRONMENT` variables that are set, then ``overrides`` (None values ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, object] = {name: os.environ[var] for name, var in ENVIRONMENT.items()
                                 if name in names and os.environ.get(var)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_settings(cls, values)


def _device() -> Any:
    return device_setting()


def _iterations(help: str) -> Any:
    return setting(0, "L-BFGS steps per stage of method quality", metavar="N",
                   shown=f"0 = {help}: 150 up to 256 px, 100 up to 512 px, 60 above")


@dataclass
class ServiceConfig:
    """Everything a service process needs (``percept worker`` processes need only :class:`WorkerConfig`).

    ``data_dir`` None means :func:`default_data_dir`. :meth:`from_env` also reads :data:`ENVIRONMENT`.
    """

    host: str = setting("127.0.0.1", "address to bind; anything but loopback needs --public")
    port: int = setting(8000, "TCP port")
    data_dir: Path = setting(None, "jobs database, uploads, results and the secret",  # type: ignore[assignment]
                             shown="$XDG_DATA_HOME/percept/service, i.e. ~/.local/share/percept/service")
    workers: int = setting(1, "embedded worker threads (without --broker)", metavar="N")
    broker: str | None = setting(None, "run jobs on `percept worker` processes through Redis (RQ); "
                                 "$PERCEPT_BROKER keeps a password out of `ps`", metavar="redis://HOST:6379/0",
                                 shown="$PERCEPT_BROKER, else off: embedded workers")
    device: str = _device()
    iterations: int = _iterations("by size")
    public: bool = setting(False, "allow a --host reachable from other machines; caps the limits below at their "
                           "defaults and refuses webhooks to private addresses")
    public_url: str | None = setting(None, "base URL for links in notifications and redirects; its host is "
                                     "allowed in the Host header", metavar="URL",
                                     shown="$PERCEPT_PUBLIC_URL, else http://HOST:PORT")
    allowed_hosts: list[str] = setting([], "more names this server answers to, comma-separated, beside localhost, "
                                       "127.0.0.1, [::1], --host and the --public-url host; a request for any "
                                       "other Host is refused (400), which stops DNS rebinding",
                                       metavar="NAME,...", shown="none")
    max_upload_mb: float = setting(20.0, "largest uploaded image, MiB", metavar="MIB", group="limits")
    max_pixels: int = setting(40_000_000, "most pixels of an uploaded image, checked before decoding",
                              metavar="N", group="limits")
    max_size: int = setting(1024, "largest output side, px", metavar="PX", group="limits")
    queue_cap: int = setting(100, "queued plus running jobs at most; more get 503", metavar="N", group="limits")
    rate_limit: str = setting("30/minute", "job submissions per client address, e.g. 30/minute or 500/hour",
                              metavar="N/PERIOD", group="limits")
    smtp_url: str | None = setting(None, "mail server for 'done' emails; smtps:// for TLS; prefer $PERCEPT_SMTP_URL, "
                                   "which keeps the password out of the process list",
                                   metavar="smtp://USER:PASS@HOST:PORT", shown="$PERCEPT_SMTP_URL, else no email",
                                   group="notifications")
    mail_from: str = setting("percept@localhost", "sender of those emails", metavar="ADDRESS",
                             shown="$PERCEPT_MAIL_FROM, else percept@localhost", group="notifications")
    webhook_timeout: float = setting(10.0, "seconds per webhook attempt", cli=False)
    allow_private_webhooks: bool = setting(True, "False: webhooks to loopback/private addresses are refused",
                                           cli=False)
    stale_after: float = setting(60.0, "seconds without a heartbeat (in Redis) before a broker worker's job runs "
                                 "again", cli=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser() if self.data_dir is not None else default_data_dir()
        if self.workers < 0:
            raise PerceptError(f"workers must be >= 0, got {self.workers}")
        if not 16 <= self.max_size <= 16384:
            raise PerceptError(f"max size {self.max_size} out of range; use 16 to 16384 pixels")
        if self.iterations < 0:
            raise PerceptError(f"iterations must be >= 0, got {self.iterations}")
        if self.queue_cap < 1:
            raise PerceptError(f"queue cap must be >= 1, got {self.queue_cap}")
        if self.max_upload_mb <= 0:
            raise PerceptError(f"max upload must be > 0 MiB, got {self.max_upload_mb:g}")
        rate_per_second(self.rate_limit)
        if self.broker is not None:
            check_broker_url(self.broker)
            if self.workers != 1:
                raise PerceptError("--workers sets embedded worker threads, which a service with a broker does not "
                                   "run; start `percept worker` processes instead, or drop --broker")
        if isinstance(self.allowed_hosts, str):  # from Python: serve(allowed_hosts="a.example,b.example")
            self.allowed_hosts = self.allowed_hosts.split(",")
        self.allowed_hosts = [_host_name(name) for name in self.allowed_hosts if name.strip()]
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise PerceptError(f"public URL {self.public_url!r} must be http:// or https:// with a host, like "
                                   "https://art.example.org")
        if self.smtp_url is not None and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise PerceptError(f"SMTP URL must start with smtp:// or smtps://, got {self.smtp_url.split(':')[0]}://...")

    @classmethod
    def from_env(cls, **overrides: object) -> ServiceConfig:
        """Defaults from ``PERCEPT_SMTP_URL``, ``PERCEPT_MAIL_FROM``, ``PERCEPT_PUBLIC_URL`` and ``PERCEPT_BROKER``
        (secrets such as passwords in URLs stay out of the process list), then ``overrides`` (None values are
        ignored; an unknown name is a one-line error)."""
        return _from_env(cls, overrides)  # type: ignore[return-value]

    def for_public(self) -> ServiceConfig:
        """This config for a service reachable from other machines: each of :data:`LIMITS` capped at its default
        (a rate limit no faster than the default) and webhooks to private addresses refused."""
        safe = defaults(ServiceConfig)
        capped: dict[str, object] = {name: min(getattr(self, name), safe[name]) for name in LIMITS
                                     if name != "rate_limit"}
        if rate_per_second(self.rate_limit) > rate_per_second(safe["rate_limit"]):
            capped["rate_limit"] = safe["rate_limit"]
        return dataclasses.replace(self, **capped, allow_private_webhooks=False)  # type: ignore[arg-type]

    @property
    def exposed(self) -> bool:
        """Whether :attr:`host` is reachable from other machines (anything but loopback)."""
        return not is_loopback(self.host)

    @property
    def host_names(self) -> frozenset[str]:
        """The names a request's ``Host`` header may carry (any port): loopback, :attr:`host` unless it is a
        wildcard address, the host of :attr:`public_url` and :attr:`allowed_hosts`; lower case, IPv6 unbracketed."""
        names = {"localhost", "127.0.0.1", "::1", *self.allowed_hosts}
        if self.host not in WILDCARDS:
            names.add(_host_name(self.host))
        if self.public_url:
            names.add(_host_name(urlsplit(self.public_url).hostname or ""))
        return frozenset(names)

    @property
    def max_upload_bytes(self) -> int:
        """The largest uploaded image, bytes."""
        return int(self.max_upload_mb * MIB)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"


@dataclass
class WorkerConfig:
    """Settings of a ``percept worker`` process: it needs only the broker's URL (jobs bring their inputs and take
    their results back through Redis). :meth:`from_env` reads ``PERCEPT_BROKER``."""

    broker: str | None = setting(None, "Redis URL, e.g. redis://localhost:6379/0, redis://:PASSWORD@host:6379/0 or "
                                 "rediss://... (TLS)", metavar="URL",
                                 shown="$PERCEPT_BROKER; prefer the variable when the URL has a password: it stays "
                                 "out of `ps`")
    device: str = _device()
    iterations: int = _iterations("as percept serve says, else by size")
    burst: bool = setting(False, "exit when the queue is empty", shown="off: wait for jobs")
    nice: int = setting(10, "lower this process's CPU priority by N (POSIX), so that a web server on the same "
                        "machine stays responsive while it paints", metavar="N")

    def __post_init__(self) -> None:
        if not self.broker:
            raise PerceptError("give the Redis URL of percept serve --broker: --broker URL or $PERCEPT_BROKER")
        check_broker_url(self.broker)
        if self.iterations < 0:
            raise PerceptError(f"iterations must be >= 0, got {self.iterations}")

    @classmethod
    def from_env(cls, **overrides: object) -> WorkerConfig:
        """``broker`` from ``PERCEPT_BROKER`` unless given, then ``overrides`` (None values are ignored)."""
        return _from_env(cls, overrides)  # type: ignore[return-value]
