"""Choosing the compute device."""

from __future__ import annotations

import torch

from .errors import PerceptError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return a usable ``torch.device``.

    ``"auto"`` picks CUDA, then Apple MPS, then CPU. An explicit device that is not available raises a
    :class:`PerceptError` instead of failing later inside PyTorch.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise PerceptError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PerceptError(f"device {device!r} requested but CUDA is not available here; use --device auto or cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise PerceptError(
            f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PerceptError(f"device {device!r} requested but MPS is not available here; use --device auto or cpu")
    return dev


def module_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a module without parameters)."""
    return next(model.parameters(), torch.empty(0)).device


def amp_dtype(amp: bool | None, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for mixed precision: ``amp=None`` means on for CUDA only; float16 (with loss scaling) on
    CUDA and MPS, bfloat16 on the CPU; ``None`` returned means full precision."""
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return None
    return torch.float16 if device.type in ("cuda", "mps") else torch.bfloat16


def channels_last(device: torch.device, dtype: torch.dtype | None) -> bool:
    """Whether training should use the channels-last memory format: always on CUDA, and on the CPU in mixed
    precision (oneDNN's bfloat16 convolutions are faster channels-last, about 10 % for percept's style nets)."""
    return device.type == "cuda" or (device.type == "cpu" and dtype is not None)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error: ``torch.OutOfMemoryError``, or the ``RuntimeError`` MPS raises."""
    return isinstance(exc, torch.OutOfMemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))
