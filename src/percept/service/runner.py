"""Painting a job: the style transfer itself (:func:`paint`, on in-memory images, with progress, ETA, previews and
cancellation through callbacks, independent of the store and the disk) and :func:`run_job`, which runs a claimed
job of the embedded workers from its folder and writes the result atomically with its parameters.

Method ``quality`` is optimisation (Gatys et al., :func:`percept.style.stylize`, L-BFGS from the photo);
``instant`` is one forward pass of AdaIN (:func:`percept.style.stylize_adain`). A job's folder
``data_dir/jobs/<id>/`` holds ``photo.png``, ``style.png`` (uploaded styles only), ``preview.png`` (the
current image, rewritten while it runs) and finally ``result.png``. Redis workers (:mod:`.broker_worker`) call
:func:`paint` on the bytes they received and never see that folder.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps

from ..errors import PerceptError
from ..image import (
    combine_luminance_chroma,
    load_image,
    png_info,
    save_image,
    to_pil,
    to_tensor,
)
from .geometry import check_geometry
from .store import Job, JobStore, discard_outputs, job_dir
from .styles import load_style_image

log = logging.getLogger(__name__)

#: Style weight of :class:`~percept.style.params.StyleParams` at strength 1; each 0.5 less divides it by 10.
STYLE_WEIGHT = 100.0
#: Seconds between progress reports (cancellation is noticed within this time) and between previews.
PROGRESS_EVERY = 0.5
PREVIEW_EVERY = 2.0
#: Largest image a job input may be once decoded (the web layer allows far less; a bound for bytes from Redis).
MAX_INPUT_SIDE = 16384


class Stop(Exception):
    """Raised by a ``report`` or ``stop_check`` callback to abandon a job (cancelled, lost, or worker stopping)."""



@dataclass
class Progress:
    """What :func:`paint` reports while it runs."""

    progress: float | None  # 0..1 (None: unchanged)
    message: str
    eta_seconds: float | None = None  # seconds left, once known
    image: torch.Tensor | None = None  # the current image (colours put back as in the result) when a preview is due


def quality_iterations(size: int) -> int:
    """L-BFGS steps per coarse-to-fine stage for method ``quality`` at output ``size`` (longest side, px).

    Chosen for a CPU laptop: 150 steps at <= 256 px (converged to the eye, about a minute), 100 at <= 512 px,
    60 per stage above that (stages 256, 512, ..., size, each starting from the previous one's result).
    """
    return 150 if size <= 256 else 100 if size <= 512 else 60


def style_weight(strength: float) -> float:
    """Style loss weight for ``strength`` in [0, 1]: 100 (the library default) at 1, 10 at 0.5, 1 at 0."""
    return STYLE_WEIGHT * 10 ** (2 * (strength - 1))


def paint(
    photo: Image.Image,
    style: Image.Image,
    params: dict[str, Any],
    *,
    device: str = "auto",
    iterations: int = 0,
    report: Callable[[Progress], None] = lambda progress: None,
    stop_check: Callable[[], bool] = lambda: False,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Paint ``photo`` in ``style`` as a job's ``params`` say; return the image ``(1, 3, H, W)`` and the library's
    record of how it was made.

    ``report`` gets a :class:`Progress` when the network loads, about every :data:`PROGRESS_EVERY` seconds
    while ``quality`` runs (with the current image every :data:`PREVIEW_EVERY` seconds or 10 % of the steps),
    and may raise :class:`Stop`; ``stop_check`` is asked after every step, and True raises :class:`Stop`.
    ``iterations``: L-BFGS steps per stage for ``quality`` (0: :func:`quality_iterations`).
    Raises :class:`PerceptError` for a job that cannot be painted.
    """
    from ..style import (  # torch-heavy: loaded by the worker, not the web process
        stylize,
        stylize_adain,
    )

    p = params
    check_geometry(p, photo.size, style.size)  # the submission's check: a job that passed it never fails here
    preserve = "luminance" if p["preserve_color"] else "none"
    report(Progress(None, "loading the network"))
    if stop_check():
        raise Stop
    if p["method"] == "instant":
        report(Progress(0.05, "painting (one pass)"))
        result = stylize_adain(photo, style, alpha=p["strength"], preserve_color=preserve, size=p["size"],
                               device=device)
        return result.image, result.record

    steps = iterations or quality_iterations(p["size"])
    clock = {"first": 0.0, "progress": 0.0, "preview": 0.0, "preview_step": 0}

    def on_step(it: Any) -> None:  # it: percept.style.Iterate
        now = time.monotonic()
        if it.step == 1:
            clock["first"] = now
        rate = (now - clock["first"]) / (it.step - 1) if it.step > 1 else None
        eta = rate * (it.total_steps - it.step) if rate is not None else None
        preview = (now - clock["preview"] >= PREVIEW_EVERY or it.step - clock["preview_step"] >= it.total_steps / 10
                   or it.step == it.total_steps)
        if preview:
            clock["preview"], clock["preview_step"] = now, it.step
        if preview or now - clock["progress"] >= PROGRESS_EVERY:
            if stop_check():
                raise Stop
            report(Progress(it.step / it.total_steps * 0.99, f"painting: step {it.step} of {it.total_steps}", eta,
                            _preview_image(it.image, photo if preserve == "luminance" else None) if preview else None))
            clock["progress"] = now
        elif stop_check():
            raise Stop

    result = stylize(photo, style, callback=on_step, size=p["size"], iterations=steps,
                     style_weight=style_weight(p["strength"]), preserve_color=preserve, seed=p["seed"], device=device)
    return result.image, result.record


def _preview_image(image: torch.Tensor, colour_from: Image.Image | None) -> torch.Tensor:
    """The current image in [0, 1]; with colour preservation the photo's colours are put back, as in the result."""
    image = image.detach().clamp(0, 1)
    if colour_from is not None:
        h, w = image.shape[-2:]
        image = combine_luminance_chroma(image, to_tensor(colour_from, size=(w, h)).to(image.device))
    return image


def result_metadata(job_id: str, params: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The parameters stored in ``result.png``: the job, its service parameters and the library's record."""
    return {"job": job_id, "service_params": params, **record}


def encode_png(image: torch.Tensor | Image.Image, metadata: dict[str, Any] | None = None, *,
               longest: int | None = None) -> bytes:
    """``image`` as PNG bytes, with ``metadata`` in the same text chunk as :func:`percept.image.save_image`;
    ``longest``: shrink to at most that many pixels first (previews)."""
    pil = to_pil(image) if isinstance(image, torch.Tensor) else image
    if longest is not None and max(pil.size) > longest:
        pil = pil.copy()
        pil.thumbnail((longest, longest), Image.LANCZOS)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", pnginfo=png_info(metadata))
    return buffer.getvalue()


def decode_image(data: bytes, *, what: str, fmt: str | None = None) -> Image.Image:
    """Bytes (from the web layer's stored PNG, or from Redis) as an RGB image; anything else raises
    :class:`PerceptError`. ``fmt``: the one format accepted (e.g. ``"PNG"``)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if fmt is not None and img.format != fmt:
                raise PerceptError(f"the {what} is {img.format}, expected {fmt}")
            if not (0 < w <= MAX_INPUT_SIDE and 0 < h <= MAX_INPUT_SIDE):
                raise PerceptError(f"the {what} has an unexpected size ({w}x{h})")
            return ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PerceptError(f"the {what} is not a readable image ({exc})") from None


# --------------------------------------------------------------------------------------------- embedded jobs


def run_job(
    store: JobStore,
    data_dir: Path,
    job: Job,
    *,
    worker_id: str,
    device: str = "auto",
    iterations: int = 0,
    stop_check: Callable[[], bool] = lambda: False,
) -> str:
    """Run ``job`` (already claimed by ``worker_id``) to the end; return its final status: done, failed,
    cancelled, or queued (given back because ``stop_check()`` became true: the worker is shutting down).

    ``iterations``: L-BFGS steps per stage for ``quality`` (0: :func:`quality_iterations`). Never raises for a
    job's own failure: that is recorded as status failed with a one-line error. Cancellation is seen through
    the store: a progress write of a job the worker no longer owns fails.
    """
    folder = job_dir(data_dir, job.id)
    result = folder / "result.png"
    if result.is_file():  # an earlier attempt wrote it but died before saying so: do not paint twice
        store.finish(job.id, worker_id, "done", progress=1.0, message="done (result of an earlier attempt)")
        return _status(store, job.id)
    started = time.monotonic()

    def report(update: Progress) -> None:
        if update.image is not None:
            save_image(update.image, folder / "preview.png")
        changes: dict[str, Any] = {"message": update.message}
        if update.progress is not None:
            changes["progress"] = update.progress
        if update.eta_seconds is not None:
            changes["eta_seconds"] = update.eta_seconds
        if stop_check() or not store.heartbeat(job.id, worker_id, **changes):
            raise Stop

    try:
        p = job.params
        photo = load_image(folder / "photo.png", what="photo")
        style = (load_image(folder / "style.png", what="style image") if p["style"] == "upload"
                 else load_style_image(p["style"]))
        image, record = paint(photo, style, p, device=device, iterations=iterations, report=report,
                              stop_check=stop_check)
        if not store.heartbeat(job.id, worker_id, progress=0.99, message="saving"):  # cancelled meanwhile
            return _finished(store, data_dir, job.id)
        save_image(image, result, result_metadata(job.id, p, record))
        if not store.finish(job.id, worker_id, "done", progress=1.0,
                            message=f"done in {time.monotonic() - started:.0f} s"):
            log.info("job %s finished after it was cancelled or taken over; status unchanged", job.id)
    except Stop:
        if stop_check() and store.release(job.id, worker_id, "requeued: the worker stopped"):
            return "queued"
    except PerceptError as exc:
        store.finish(job.id, worker_id, "failed", error=str(exc), message="failed")
    except Exception as exc:  # a bug or a broken installation: the job fails, the worker lives on
        log.exception("job %s failed", job.id)
        store.finish(job.id, worker_id, "failed", error=internal_error(exc), message="failed")
    return _finished(store, data_dir, job.id)


def internal_error(exc: BaseException) -> str:
    """One line for an unexpected exception."""
    return f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]


def _finished(store: JobStore, data_dir: Path, job_id: str) -> str:
    """The job's status once this worker is done with it; a cancelled job's preview, result and partial files
    (which this worker may have written after the cancellation removed them) are deleted."""
    status = _status(store, job_id)
    if status == "cancelled":
        discard_outputs(data_dir, job_id)
    return status


def _status(store: JobStore, job_id: str) -> str:
    job = store.get(job_id)
    return job.status if job is not None else "cancelled"
