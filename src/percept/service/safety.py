"""Everything the web layer checks before a byte or a name reaches the service.

- Uploads: a byte cap enforced while reading, the real format sniffed by Pillow (PNG, JPEG or WebP; the file
  name and the declared content type are ignored), a pixel cap checked from the header before any decoding
  (decompression bombs), then ``verify()`` and a full decode.
- Names: style ids must match a strict pattern before any lookup, and job ids the store's
  (:func:`~percept.service.store.valid_job_id`), so no request can name a path.
- Rate limit: job submissions per client address in a moving window (``limits``, in memory).
- Secret: 32 random bytes in ``data_dir/secret`` (mode 0600), created once and kept across restarts; it signs
  each job's cancel token, so the link to a job shows it but only its submitter can cancel it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from PIL import Image, UnidentifiedImageError

from ..errors import PerceptError
from .config import MIB

STYLE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
FORMATS = ("PNG", "JPEG", "WEBP")


class Rejected(Exception):
    """A request the service refuses: an HTTP status, a one-line reason with its fix, and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def valid_style_id(text: str) -> bool:
    """True for a plausible gallery style id: lower-case letters, digits, ``-`` and ``_``."""
    return isinstance(text, str) and STYLE_ID.fullmatch(text) is not None


def megabytes(n: int) -> str:
    """``n`` bytes in MiB (KiB below one MiB), for messages."""
    return f"{n / MIB:g} MiB" if n >= MIB else f"{n / 1024:g} KiB"


@dataclass(frozen=True)
class ImageInfo:
    """What the checks learnt about an accepted upload."""

    format: str
    width: int
    height: int


def check_image(data: bytes, *, field: str, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Accept ``data`` only if it is a whole, decodable PNG, JPEG or WebP within the byte and pixel caps;
    otherwise raise :class:`Rejected` (413 too large, 415 not such an image, 400 damaged)."""
    if len(data) > max_bytes:
        raise Rejected(413, f"{field}: the file is larger than {megabytes(max_bytes)}; send a smaller image")
    if not data:
        raise Rejected(400, f"{field}: the file is empty; choose a PNG, JPEG or WebP image")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:  # reads the header only
            fmt, (width, height) = img.format or "", img.size
            if width * height > max_pixels:
                raise Rejected(413, f"{field}: {width}x{height} pixels is more than the {max_pixels:,} allowed; "
                               "scale the image down")
            img.verify()
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            img.load()
    except Image.DecompressionBombError:  # beyond twice Pillow's own limit, refused by Pillow in open()
        raise Rejected(413, f"{field}: far too many pixels (a decompression bomb?); scale the image down") from None
    except UnidentifiedImageError:
        raise Rejected(415, f"{field}: not a PNG, JPEG or WebP image; convert it to one of those") from None
    except Rejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the upload is damaged
        raise Rejected(400, f"{field}: the image data is damaged ({type(exc).__name__}); export it again as "
                       "PNG or JPEG") from None
    return ImageInfo(fmt, width, height)


class RateLimiter:
    """``limit`` (``limits`` notation, e.g. ``30/minute``) per key in a moving window, in memory."""

    def __init__(self, limit: str) -> None:
        self.item = parse(limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> None:
        """Count one request of ``key``; raise :class:`Rejected` 429 with ``Retry-After`` when over the limit."""
        if self.limiter.hit(self.item, key):
            return
        reset = self.limiter.get_window_stats(self.item, key).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise Rejected(429, f"too many jobs from your address (limit {self.item}); retry in {wait} s",
                       {"Retry-After": str(wait)})


def load_secret(data_dir: Path) -> bytes:
    """The persistent secret in ``data_dir/secret``: created once with mode 0600, re-restricted if loosened."""
    path = Path(data_dir) / "secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except ValueError:
        secret = b""
    if len(secret) < 32:
        raise PerceptError(f"{path} is not 64 hex digits; delete it and a new secret is created")
    return secret


def cancel_token(secret: bytes, job_id: str) -> str:
    """HMAC of the job id: handed to the submitter only, required to cancel the job."""
    return hmac.new(secret, b"cancel:" + job_id.encode(), hashlib.sha256).hexdigest()[:32]


def check_cancel_token(secret: bytes, job_id: str, token: str | None) -> bool:
    """True when ``token`` is the job's cancel token (constant-time comparison)."""
    return token is not None and hmac.compare_digest(cancel_token(secret, job_id), token)
