"""Settings of the artwork service: one dataclass shared by the web app, the embedded workers and
``percept worker`` processes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PerceptError

MIB = 1024 * 1024
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")


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


@dataclass
class ServiceConfig:
    """Everything a service process needs (``percept worker`` processes need only the broker URL)."""

    data_dir: Path = field(default_factory=default_data_dir)
    workers: int = 1  # embedded worker threads (ignored with a broker: start `percept worker` processes)
    broker: str | None = None  # redis://host:6379/0: jobs run on RQ workers instead of embedded threads
    device: str = "auto"  # auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps
    max_upload_bytes: int = 20 * MIB  # per uploaded image
    max_pixels: int = 40_000_000  # per uploaded image, checked before decoding
    max_size: int = 1024  # longest side of an output, pixels
    queue_cap: int = 100  # queued + running jobs at most
    rate_limit: str = "30/minute"  # job submissions per client address (`limits` notation)
    smtp_url: str | None = None  # smtp://user:pass@host:port or smtps://... (TLS); None: no email
    mail_from: str = "percept@localhost"
    webhook_timeout: float = 10.0  # seconds per webhook attempt
    allow_private_webhooks: bool = True  # False: webhooks to loopback/private addresses are refused
    public_url: str | None = None  # base URL used in notifications, e.g. https://art.example.org
    host: str = "127.0.0.1"
    port: int = 8000
    iterations: int = 0  # L-BFGS steps per stage of method "quality"; 0: by size (runner.quality_iterations)
    stale_after: float = 60.0  # seconds without a heartbeat (in Redis) before a broker worker's job runs again

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        if self.workers < 0:
            raise PerceptError(f"workers must be >= 0, got {self.workers}")
        if not 16 <= self.max_size <= 16384:
            raise PerceptError(f"max size {self.max_size} out of range; use 16 to 16384 pixels")
        if self.iterations < 0:
            raise PerceptError(f"iterations must be >= 0, got {self.iterations}")
        if self.queue_cap < 1:
            raise PerceptError(f"queue cap must be >= 1, got {self.queue_cap}")
        if self.broker is not None:
            check_broker_url(self.broker)
        if self.smtp_url is not None and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise PerceptError(f"SMTP URL must start with smtp:// or smtps://, got {self.smtp_url.split(':')[0]}://...")

    @classmethod
    def from_env(cls, **overrides: object) -> ServiceConfig:
        """Defaults from ``PERCEPT_SMTP_URL``, ``PERCEPT_MAIL_FROM``, ``PERCEPT_PUBLIC_URL`` and ``PERCEPT_BROKER``
        (secrets such as passwords in URLs stay out of the process list), then ``overrides`` (None values are
        ignored)."""
        values: dict[str, object] = {}
        for name, var in (("smtp_url", "PERCEPT_SMTP_URL"), ("mail_from", "PERCEPT_MAIL_FROM"),
                          ("public_url", "PERCEPT_PUBLIC_URL"), ("broker", "PERCEPT_BROKER")):
            if os.environ.get(var):
                values[name] = os.environ[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"
