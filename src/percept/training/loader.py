"""Data loading for training: worker defaults, pinned memory, and a sampler that resumes at a step.

A step-based trainer reads an endless, index-addressed stream: item ``g`` depends only on ``g`` (and a seed), so
the batches are the same with any number of loader processes and after a resume. :class:`StepRange` samples the
part of that stream that is still to train.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def default_workers(device: torch.device) -> int:
    """Loader processes when none are asked for: none on the CPU (they would compete with the training), up to 8
    on an accelerator."""
    return 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)


def loader_options(device: torch.device, workers: int | None = None) -> dict[str, Any]:
    """``num_workers`` (``None``: :func:`default_workers`) and ``pin_memory`` (on CUDA) for a ``DataLoader``."""
    return {"num_workers": default_workers(device) if workers is None else workers,
            "pin_memory": device.type == "cuda"}


class StepRange(Sampler):
    """Indices ``start, start + 1, ..., stop - 1``: the rest of an index-addressed training stream."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def step_loader(dataset: Dataset, *, device: torch.device, start: int, stop: int, batch_size: int | None = None,
                workers: int | None = None) -> DataLoader:
    """Batches for steps ``start .. stop - 1`` of ``dataset``.

    With ``batch_size``, step ``s`` is items ``s * batch_size ... (s + 1) * batch_size - 1``; without, item ``s``
    is the whole batch of step ``s``. The loader has its own generator, so iterating it leaves the global random
    state alone (a resumed run draws the same random numbers as one that was never interrupted).
    """
    n = batch_size or 1
    return DataLoader(dataset, batch_size=batch_size, sampler=StepRange(start * n, stop * n),
                      drop_last=batch_size is not None, generator=torch.Generator().manual_seed(0),
                      **loader_options(device, workers))
