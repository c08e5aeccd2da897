"""Settings of fine-tuning (:func:`percept.transfer.finetune.train_finetune`): one source of truth.

``train_finetune`` takes these fields as keyword arguments and reads their defaults from here; ``percept train
--strategy finetune`` generates its options from them. Settings shared with the features strategy (backbone,
split, seed, augmentation, device) are those of :class:`~percept.transfer.params.FeaturesParams`. This module
imports nothing heavy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import PerceptError
from ..params import default_of, setting
from .names import OPTIMIZER_DEFAULTS, SCHEDULES
from .params import FeaturesParams

HEAD_INITS = ("linear-probe", "kaiming", "xavier")
#: Head epochs when ``head_epochs`` is unset: none after a linear-probe start, two after a random one.
HEAD_EPOCHS_DEFAULT = {"linear-probe": 0, "kaiming": 2, "xavier": 2}


def _as_in_features(name: str) -> Any:
    """The field ``name`` of :class:`FeaturesParams` (same default and help): one ``percept train`` option."""
    f = next(f for f in fields(FeaturesParams) if f.name == name)
    return setting(default_of(f), **f.metadata)


def _per_optimizer(key: str) -> str:
    return ", ".join(f"{v[key]:g} for {name}" for name, v in OPTIMIZER_DEFAULTS.items())


def parse_unfreeze(value: int | str) -> int:
    """The number of top stages to unfreeze: ``K`` or ``"all"`` (a number larger than any network's stages)."""
    if str(value).lower() == "all":
        return 10**6
    try:
        k = int(value)
    except ValueError:
        raise PerceptError(f"unfreeze must be a number of stages or 'all', got {value!r}") from None
    if k < 0:
        raise PerceptError(f"unfreeze must be >= 0, got {k}")
    return k


@dataclass
class FinetuneParams:
    """Fine-tuning: a new head on a pretrained backbone, then its top stages with discriminative learning rates."""

    backbone: str = _as_in_features("backbone")
    pretrained: bool = setting(True, "start from the pretrained weights; off: the same architecture from random "
                               "weights, all layers trained for head-epochs + epochs at lr (a baseline)")
    epochs: int = setting(8, "fine-tuning epochs after the head epochs")
    head_epochs: int | None = setting(None, "epochs training only the new head before the fine-tuning epochs",
                                      shown="0 with head-init linear-probe, 2 otherwise")
    unfreeze: str = setting("4", "top backbone stages to fine-tune, or all", metavar="K|all")
    optimizer: str = setting("adamw", "adamw, or sgd with Nesterov momentum", choices=tuple(OPTIMIZER_DEFAULTS))
    lr: float | None = setting(None, "head learning rate; unfrozen stages get lr/3 and lr/9 (unset: "
                               f"{_per_optimizer('lr')}, a fifth of that with head-init linear-probe; see percept lr-find)")
    weight_decay: float | None = setting(None, f"weight decay (unset: {_per_optimizer('weight_decay')})")
    momentum: float = setting(0.9, "SGD momentum")
    schedule: str = setting("cosine", "learning-rate schedule per phase: cosine decay, or onecycle (30% warm-up, "
                            "then anneal)", choices=SCHEDULES)
    dropout: float = setting(0.2, "dropout before the new head")
    head_init: str = setting("linear-probe", "the new head's start: linear-probe = the logistic regression fitted on "
                             "the frozen features (cross-validated C, as --strategy features), so fine-tuning starts "
                             "at the linear probe's accuracy; kaiming or xavier = random", choices=HEAD_INITS)
    freeze_bn: bool = setting(True, "keep the BatchNorm statistics of the unfrozen stages fixed (eval mode); off: "
                              "update them from each batch")
    image_size: int | None = setting(None, "input size in pixels (square crop; images are resized in proportion)",
                                     metavar="PX", shown="the backbone's, 224 for efficientnet_lite0")
    label_smoothing: float = setting(0.1, "label smoothing")
    augment: str = _as_in_features("augment")
    augment_overrides: dict = _as_in_features("augment_overrides")
    reuse_head: bool = setting(False, "start the head rows of classes named like ImageNet classes (e.g. daisy) from "
                               "the pretrained classifier; EfficientNet-Lite backbones")
    batch_size: int = setting(16, "images per step, split evenly across data-parallel processes")
    patience: int = setting(4, "stop after this many fine-tuning epochs without a better validation accuracy; the "
                            "best epoch is restored")
    val_fraction: float = _as_in_features("val_fraction")
    seed: int = _as_in_features("seed")
    device: str = _as_in_features("device")
    workers: int | None = setting(None, "data-loading processes", metavar="N", shown="0 on the CPU, up to 8 on a GPU")
    amp: bool | None = setting(None, "mixed precision (float16 autocast with loss scaling on CUDA, bfloat16 on the "
                               "CPU)", shown="on for CUDA, off elsewhere")

    def __post_init__(self) -> None:
        if self.head_init not in HEAD_INITS:
            raise PerceptError(f"unknown head init {self.head_init!r}; use {', '.join(HEAD_INITS)}")
        if self.head_epochs is not None and self.head_epochs < 0:
            raise PerceptError(f"head-epochs must be >= 0, got {self.head_epochs}")
        if self.image_size is not None and not 32 <= self.image_size <= 1024:
            raise PerceptError(f"image-size must be between 32 and 1024 pixels, got {self.image_size}")
        if self.epochs < 0 or self.epochs + self.resolved_head_epochs() == 0:
            raise PerceptError("give at least one epoch (epochs + head-epochs >= 1)")
        if self.optimizer not in OPTIMIZER_DEFAULTS:
            raise PerceptError(f"unknown optimizer {self.optimizer!r}; use {' or '.join(OPTIMIZER_DEFAULTS)}")
        if self.schedule not in SCHEDULES:
            raise PerceptError(f"unknown schedule {self.schedule!r}; use {' or '.join(SCHEDULES)}")
        if self.lr is not None and not self.lr > 0:
            raise PerceptError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise PerceptError(f"batch-size must be >= 1, got {self.batch_size}")
        parse_unfreeze(self.unfreeze)
        self.augment_overrides = dict(self.augment_overrides or {})

    def resolved_head_epochs(self) -> int:
        """``head_epochs``, or the default for the head's initialisation."""
        return HEAD_EPOCHS_DEFAULT.get(self.head_init, 2) if self.head_epochs is None else self.head_epochs

    def resolved_lr(self) -> float:
        """``lr``, or the optimiser's default (a fifth of it with a linear-probe head)."""
        if self.lr is not None:
            return self.lr
        # a head started from the fitted probe needs no large steps; large ones first undo what the probe knows
        return OPTIMIZER_DEFAULTS[self.optimizer]["lr"] / (5 if self.head_init == "linear-probe" else 1)

    def resolved_weight_decay(self) -> float:
        """``weight_decay``, or the optimiser's default."""
        return OPTIMIZER_DEFAULTS[self.optimizer]["weight_decay"] if self.weight_decay is None else self.weight_decay


#: The fine-tuning settings a learning-rate range test uses (the rest, such as epochs, do not apply to it).
LR_FIND_SETTINGS = ("backbone", "optimizer", "weight_decay", "momentum", "label_smoothing", "augment",
                    "augment_overrides", "batch_size", "val_fraction", "seed", "device", "amp", "workers")


@dataclass
class LrFindParams:
    """The range of a learning-rate range test (:func:`percept.transfer.lr_find.find_learning_rate`)."""

    unfreeze: str = setting("0", "0 = head only; K = also the top K stages with discriminative lrs", metavar="K|all")
    start_lr: float = setting(1e-7, "first learning rate")
    end_lr: float = setting(1.0, "last learning rate")
    steps: int = setting(100, "mini-batches to run")
