"""The service facade: the one object the web layer (and the CLI) talks to.

:class:`Service` owns the job store, the data directory and either the embedded worker threads or the Redis
broker. The web layer validates uploads and ids before it calls in here; this module re-checks the job
parameters, and never builds a path from anything but a job id it generated itself (ids that do not match
the id pattern are simply unknown).
"""

from __future__ import annotations

import functools
import io
import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from PIL import Image, ImageOps

from ..errors import PerceptError
from ..image import atomic_write
from .config import ServiceConfig
from .geometry import check_geometry
from .notify import check_contact_email, check_webhook_url
from .store import Job, JobStore, QueueFull, discard_outputs, job_dir, new_job_id, valid_job_id
from .styles import Style, get_style, list_styles, load_style_image
from .workers import EmbeddedWorkers

__all__ = ["METHODS", "QueueFull", "Service"]

log = logging.getLogger(__name__)

METHODS = ("quality", "instant")  # optimisation (Gatys et al.) or one pass of AdaIN
MIN_SIZE = 64  # smallest output, pixels (longest side)


class Service:
    """Jobs in, paintings out: submission, status, cancellation and result files of the artwork service.

    Call :meth:`start` before use and :meth:`stop` at the end. Without ``config.broker`` jobs run on
    ``config.workers`` threads in this process; with a broker they run on ``percept worker`` processes on any
    machine that reaches Redis, and a collector thread of this process brings their progress and results
    back. Either way this process is the only one using the store and the data dir (a lock file enforces it).
    """

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store: JobStore | None = None
        self._workers: EmbeddedWorkers | None = None
        self._broker: Any = None  # broker.RedisBroker (imported only with a broker: it needs redis and rq)
        self._lock_file: FileLock | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the store, recover interrupted jobs and start the workers (or the broker's collector).

        Embedded: every job still marked running was interrupted (this process is the only one running jobs
        of this data dir) and is queued again. Broker: the collector carries on following every queued or
        running job: results that arrived meanwhile are stored, jobs of workers that died are run again, jobs
        RQ lost are enqueued again.
        """
        config = self.config
        config.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        self.store = JobStore(config.db_path)
        if config.broker is None:
            requeued = self.store.requeue_interrupted()
            if requeued:
                log.warning("requeued %d job(s) interrupted by the last shutdown", requeued)
            self._workers = EmbeddedWorkers(self.store, config)
            self._workers.start()
        else:
            from .broker import RedisBroker

            broker = RedisBroker(self.store, config)
            try:
                broker.start()
            except BaseException:
                broker.stop()
                self.stop()
                raise
            self._broker = broker

    def stop(self) -> None:
        """Stop the workers; a running optimisation is queued again (it runs from the start on the next start).
        With a broker, jobs go on running on the workers; the next start collects them."""
        if self._workers is not None:
            self._workers.stop()
            self._workers = None
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._lock_file is not None:
            self._lock_file.release()
            self._lock_file = None

    def __enter__(self) -> Service:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _lock_data_dir(self) -> None:
        lock = FileLock(self.config.data_dir / "service.lock")  # an OS lock: released when the process dies
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise PerceptError(f"another percept service is using {self.config.data_dir}; stop it or use another "
                               "--data-dir (to add workers, use --broker and percept worker)") from None
        self._lock_file = lock

    @property
    def _store(self) -> JobStore:
        if self.store is None:
            raise RuntimeError("call Service.start() first")
        return self.store

    # ------------------------------------------------------------------------------------------ queries

    def styles(self) -> list[Style]:
        """The predefined styles of the gallery."""
        return list_styles()

    def job(self, job_id: str) -> Job | None:
        """The job with this id, or None (also for anything that is not a well-formed id)."""
        return self._store.get(job_id) if valid_job_id(job_id) else None

    def jobs(self, status: str | None = "done", limit: int = 50) -> list[Job]:
        """The newest jobs with this status (None: any), newest first."""
        return self._store.list(status, limit)

    def health(self) -> dict[str, Any]:
        """Counts for a health check: queued and running jobs, how jobs run."""
        counts = self._store.counts()
        return {"status": "ok", "queued": counts["queued"], "running": counts["running"],
                "workers": "redis" if self.config.broker else self.config.workers}

    def result_path(self, job_id: str) -> Path | None:
        """The finished ``result.png`` (PNG with the parameters in a text chunk), or None."""
        job = self.job(job_id)
        path = job_dir(self.config.data_dir, job_id) / "result.png" if job is not None else None
        return path if job is not None and job.status == "done" and path.is_file() else None

    def preview_path(self, job_id: str) -> Path | None:
        """The latest ``preview.png`` of the job (the result once done), or None before the first one."""
        job = self.job(job_id)
        if job is None:
            return None
        if job.status == "cancelled":
            return None  # nothing of a cancelled job is shown (its files are gone)
        folder = job_dir(self.config.data_dir, job_id)
        for path in ([folder / "result.png"] if job.status == "done" else []) + [folder / "preview.png"]:
            if path.is_file():
                return path
        return None

    def photo_path(self, job_id: str) -> Path | None:
        """The uploaded photo as stored (``photo.png``: upright, RGB, at most the job's size), or None."""
        if self.job(job_id) is None:
            return None
        path = job_dir(self.config.data_dir, job_id) / "photo.png"
        return path if path.is_file() else None

    # ------------------------------------------------------------------------------------------ commands

    def submit(
        self,
        *,
        photo: bytes,
        style_id: str | None,
        style_image: bytes | None,
        method: str,
        size: int,
        strength: float,
        preserve_color: bool,
        seed: int | None,
        email: str | None,
        webhook: str | None,
        client: str,
    ) -> Job:
        """Store the inputs and queue a job; return it as queued (status ``queued``, whatever a worker does next).

        Args:
            photo: the photo's file bytes (PNG, JPEG or WebP, already checked by the web layer).
            style_id: a predefined style (see :meth:`styles`), or None with ``style_image``.
            style_image: an uploaded style's file bytes, or None with ``style_id``.
            method: ``quality`` (optimisation) or ``instant`` (AdaIN).
            size: longest side of the result, 64 to ``config.max_size`` pixels.
            strength: style strength in [0, 1] (1: full style).
            preserve_color: keep the photo's colours.
            seed: random seed (None: a fresh one, recorded in the job).
            email, webhook: where to say that the job finished (optional).
            client: the submitter's address (never shown).

        Raises:
            QueueFull: ``config.queue_cap`` jobs are queued or running.
            PerceptError: a parameter is invalid (one line saying which).
        """
        store = self._store
        params = self._check_params(style_id=style_id, style_image=style_image, method=method, size=size,
                                    strength=strength, preserve_color=preserve_color, seed=seed)
        email, webhook = _check_contacts(email, webhook, allow_private=self.config.allow_private_webhooks)
        if store.active_count() >= self.config.queue_cap:  # cheap early answer; create() checks atomically
            raise QueueFull(f"the queue is full ({self.config.queue_cap} jobs); try again later")
        photo_image = _prepare_image(photo, longest=size, what="photo")
        style_prepared = (_prepare_image(style_image, longest=size, what="style image") if style_image is not None
                          else None)
        # the check the worker makes before painting, on the images exactly as it will load them
        check_geometry(params, photo_image.size,
                       style_prepared.size if style_prepared is not None else _gallery_style_size(params["style"]))
        job = Job(id=new_job_id(), params=params, client=client, email=email, webhook=webhook, message="queued")
        folder = job_dir(self.config.data_dir, job.id)
        folder.mkdir(parents=True)
        try:
            _write_png(photo_image, folder / "photo.png")
            if style_prepared is not None:
                _write_png(style_prepared, folder / "style.png")
            job = store.create(job, cap=self.config.queue_cap)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._dispatch(job.id)
        return job  # as queued: a worker may already have claimed it

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job (it never runs) or a running one (it stops at its next step, within a second for
        ``quality``; an ``instant`` pass is short and its result is discarded). Finished jobs stay as they are.
        None for an unknown id."""
        if not valid_job_id(job_id) or self._store.get(job_id) is None:
            return None
        job = self._store.cancel(job_id)
        if job is not None and job.status == "cancelled":
            # the preview (and an instant job's result) go now; a running worker may still be writing a file: it
            # removes its own leftovers when it notices the cancellation
            discard_outputs(self.config.data_dir, job_id, partial=False)
        if self._broker is not None and job is not None and job.status == "cancelled":
            try:
                self._broker.cancel(job_id)  # a running attempt stops within a second
            except Exception as exc:  # Redis away: the store says cancelled, so its result is never collected
                log.warning("could not tell the workers that job %s is cancelled (%s)", job_id, exc)
        return job

    def _dispatch(self, job_id: str) -> None:
        if self._workers is not None:
            self._workers.wake()
        elif self._broker is not None:
            try:
                self._broker.enqueue(job_id)
            except Exception as exc:  # the job is safe in the store; the collector enqueues it later
                log.warning("could not enqueue job %s now (%s); it will be enqueued when the broker is back",
                            job_id, exc)
                self._broker.wake()

    def _check_params(self, *, style_id: str | None, style_image: bytes | None, method: str, size: int,
                      strength: float, preserve_color: bool, seed: int | None) -> dict[str, Any]:
        if (style_id is None) == (style_image is None):
            raise PerceptError("choose exactly one style: a predefined style id or an uploaded style image")
        if style_id is not None:
            get_style(style_id)
        if method not in METHODS:
            raise PerceptError(f"unknown method {method!r}; use {' or '.join(METHODS)}")
        if not isinstance(size, int) or not MIN_SIZE <= size <= self.config.max_size:
            raise PerceptError(f"size {size} out of range; use {MIN_SIZE} to {self.config.max_size} pixels")
        if not 0.0 <= strength <= 1.0:
            raise PerceptError(f"strength must be between 0 and 1, got {strength}")
        if seed is not None and not 0 <= seed < 2**63:
            raise PerceptError(f"seed must be between 0 and 2**63 - 1, got {seed}")
        return {"method": method, "style": style_id if style_id is not None else "upload", "size": size,
                "strength": float(strength), "preserve_color": bool(preserve_color),
                "seed": seed if seed is not None else secrets.randbelow(2**31)}



def _prepare_image(data: bytes, *, longest: int, what: str) -> Image.Image:
    """Decode, turn upright (EXIF orientation), drop metadata (GPS and all) and shrink to ``longest`` px (the
    job's output size: nothing larger is ever used): the image as the worker will load it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (longest, longest))  # JPEG: decode at a reduced scale when that is enough
            rgb = ImageOps.exif_transpose(img).convert("RGB")
        rgb.thumbnail((longest, longest), Image.LANCZOS)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes Pillow raise (EXIF included)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PerceptError(f"the {what} is not a readable image ({reason}); export it again as PNG or JPEG") from None
    return rgb


def _write_png(image: Image.Image, path: Path) -> None:
    # compress_level 1: fast; submission latency matters more than bytes
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG", compress_level=1))


@functools.lru_cache(maxsize=None)
def _gallery_style_size(style_id: str) -> tuple[int, int]:
    """``(w, h)`` of a predefined style as the worker loads it."""
    return load_style_image(style_id).size


def _check_contacts(email: str | None, webhook: str | None, *, allow_private: bool) -> tuple[str | None, str | None]:
    """Empty strings as None; an email address must be one plain ``name@host`` (no header injection), a webhook an
    http(s) URL with a host, both printable ASCII without spaces or control characters."""
    email = (email or "").strip(" ") or None  # spaces around a pasted address; a CR, LF or tab is refused
    webhook = (webhook or "").strip(" ") or None
    if email is not None:
        check_contact_email(email)
    if webhook is not None:
        check_webhook_url(webhook, allow_private=allow_private)
    return email, webhook
