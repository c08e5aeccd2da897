"""Settings of ``percept train --strategy auto`` (:func:`percept.transfer.auto.train_auto`).

The automatic strategy chooses the recipe itself (frozen features with a pooling, or fine-tuning, and their
settings), so it takes only what frames the choice: the backbone, the split, the time budget and where to run.
Settings shared with the other strategies keep their default and help from
:class:`~percept.transfer.params.FeaturesParams`. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import PerceptError
from ..params import default_of, setting
from .params import FeaturesParams, _check_cache_dir


def _as_in_features(name: str) -> Any:
    f = next(f for f in fields(FeaturesParams) if f.name == name)
    return setting(default_of(f), **f.metadata)


@dataclass
class AutoParams:
    """Automatic choice of a transfer-learning recipe within a time budget."""

    budget_minutes: float = setting(15.0, "time for choosing and training, in minutes: the recipes are compared on "
                                    "the training images, and fine-tuning is tried only when its estimated time "
                                    "fits", metavar="MIN")
    holdout: float = setting(0.25, "share of the training images held out to compare fine-tuning with the best "
                             "frozen-features recipe (the validation images are never used for the choice)")
    backbone: str = _as_in_features("backbone")
    val_fraction: float = _as_in_features("val_fraction")
    seed: int = _as_in_features("seed")
    batch_size: int = _as_in_features("batch_size")
    device: str = _as_in_features("device")
    cache_dir: str | None = _as_in_features("cache_dir")

    def __post_init__(self) -> None:
        if not self.budget_minutes > 0:
            raise PerceptError(f"budget-minutes must be > 0, got {self.budget_minutes}")
        if not 0.05 <= self.holdout <= 0.5:
            raise PerceptError(f"holdout must be between 0.05 and 0.5, got {self.holdout}")
        _check_cache_dir(self)
        if self.batch_size < 1:
            raise PerceptError(f"batch-size must be >= 1, got {self.batch_size}")
