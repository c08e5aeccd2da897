"""Data-parallel training under ``torchrun``: process group set-up and the few collectives training needs.

``torchrun --nproc-per-node N -m percept train ...`` starts N processes with ``RANK``/``WORLD_SIZE`` in their
environment; :func:`init_distributed` joins them (NCCL on CUDA, gloo on CPU). Without those variables every
function here is a no-op, so the same training code runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from ..device import resolve_device


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes (1 = not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files, prints and shows progress bars."""
        return self.rank == 0

    def record(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}


def init_distributed(device: str | torch.device = "auto") -> tuple[DistContext, torch.device]:
    """Join the ``torchrun`` process group if there is one; return the context and this process's device.

    With CUDA each process takes GPU ``LOCAL_RANK``; otherwise all use ``device`` (CPU, gloo backend).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(), resolve_device(device)
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend)
    return DistContext(rank, world, local, backend, owns), dev


def broadcast(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if not ctx.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.active:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def close(ctx: DistContext) -> None:
    """Leave the process group (if this code created it)."""
    if ctx.active and ctx.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
