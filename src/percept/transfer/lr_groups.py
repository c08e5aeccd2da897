"""Optimisation of fine-tuning: discriminative learning rates per parameter group, the optimiser, the schedule."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import PerceptError
from .finetune_net import FinetuneNet
from .names import OPTIMIZER_DEFAULTS, SCHEDULES


def param_groups(model: FinetuneNet, lr: float, weight_decay: float,
                 discriminative: bool = True) -> list[dict[str, Any]]:
    """Discriminative learning rates: unfrozen stages' earlier half at lr/9, later half at lr/3, head at lr
    (``discriminative=False``: everything at lr, as when training from scratch)."""
    unfrozen = model.stages[model.frozen_below :]
    half = len(unfrozen) // 2
    early, late = (lr / 9, lr / 3) if discriminative else (lr, lr)
    groups = [
        {"name": "early", "params": [p for s in unfrozen[:half] for p in s.parameters()], "lr": early},
        {"name": "late", "params": [p for s in unfrozen[half:] for p in s.parameters()], "lr": late},
        {"name": "head", "params": list(model.head.parameters()), "lr": lr},
    ]
    return [dict(g, weight_decay=weight_decay) for g in groups if g["params"]]


def make_optimizer(kind: str, groups: list[dict[str, Any]], momentum: float = 0.9) -> torch.optim.Optimizer:
    """AdamW, or SGD with (Nesterov) momentum, over ``groups`` (each with its own lr and weight decay)."""
    if kind == "adamw":
        return torch.optim.AdamW(groups)
    if kind == "sgd":
        return torch.optim.SGD(groups, momentum=momentum, nesterov=momentum > 0)
    raise PerceptError(f"unknown optimizer {kind!r}; use {' or '.join(OPTIMIZER_DEFAULTS)}")


def make_scheduler(kind: str, optimizer: torch.optim.Optimizer, steps: int):
    """Per-step schedule over ``steps`` steps: ``cosine`` decays every group's lr to 0; ``onecycle`` warms up
    for 30% of the steps to each group's lr, then anneals (momentum cycles inversely)."""
    if kind == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    if kind == "onecycle":
        cycle_momentum = "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=steps, pct_start=0.3, cycle_momentum=cycle_momentum)
    raise PerceptError(f"unknown schedule {kind!r}; use {' or '.join(SCHEDULES)}")
