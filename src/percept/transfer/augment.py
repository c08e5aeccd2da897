"""Data augmentation for fine-tuning: presets plus individual settings, built from torchvision transforms.

Per image: random resized crop (area and aspect ranges), horizontal/vertical flips, rotation, colour jitter
(brightness, saturation, hue), AlexNet's PCA lighting noise, random erasing (cutout). Per batch: mixup and
cutmix (torchvision's ``MixUp`` / ``CutMix``), which mix the one-hot labels in the same proportion as the
pixels.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PerceptError
from ..params import from_settings, to_record
from .params import AugmentPreviewParams

# ImageNet RGB principal components (Krizhevsky et al. 2012), as used by AlexNet's lighting noise.
_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


@dataclass(frozen=True)
class Augment:
    """Augmentation settings; every field is also a ``percept train`` option."""

    hflip: float = 0.5  # probability of a horizontal flip
    vflip: float = 0.0  # probability of a vertical flip
    crop_scale: tuple[float, float] = (0.35, 1.0)  # area range of the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect-ratio range of the random resized crop
    rotation: float = 0.0  # maximum rotation in degrees
    brightness: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    lighting: float = 0.0  # std of AlexNet PCA lighting noise (0.1 in the paper)
    erasing: float = 0.0  # probability of random erasing (cutout)
    mixup: float = 0.0  # Beta(alpha, alpha) for mixup; 0 = off
    cutmix: float = 0.0  # Beta(alpha, alpha) for cutmix; 0 = off

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NEUTRAL = Augment(hflip=0.0, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), brightness=0.0, saturation=0.0, hue=0.0)
PRESETS = {
    "none": None,
    "light": Augment(),
    "strong": Augment(vflip=0.0, rotation=15.0, brightness=0.3, saturation=0.3, hue=0.05, lighting=0.1,
                      erasing=0.25, mixup=0.2, cutmix=1.0, crop_scale=(0.25, 1.0)),
}


def get_augment(preset: str = "light", **overrides: Any) -> Augment | None:
    """A preset (``none``, ``light``, ``strong``) with individual settings overridden; ``None`` = no augmentation."""
    if preset not in PRESETS:
        raise PerceptError(f"unknown augmentation preset {preset!r}; use {', '.join(PRESETS)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    base = PRESETS[preset]
    if base is None and not overrides:
        return None
    try:
        return replace(base or _NEUTRAL, **overrides)
    except TypeError as exc:
        raise PerceptError(f"unknown augmentation setting: {exc}") from None


class PCALighting(nn.Module):
    """AlexNet lighting noise: add ``eigvec @ (alpha * eigval)``, ``alpha ~ N(0, std)``, to ``(3, H, W)``."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.std
        shift = _EIGVEC @ (alpha * _EIGVAL)
        return (image + shift.view(3, 1, 1)).clamp(0, 1)


def image_transform(crop: int, aug: Augment):
    """PIL image -> augmented ``(3, crop, crop)`` tensor in [0, 1]."""
    from torchvision import transforms

    steps: list[Any] = [transforms.RandomResizedCrop(crop, scale=aug.crop_scale, ratio=aug.crop_ratio)]
    if aug.hflip:
        steps.append(transforms.RandomHorizontalFlip(aug.hflip))
    if aug.vflip:
        steps.append(transforms.RandomVerticalFlip(aug.vflip))
    if aug.rotation:
        steps.append(transforms.RandomRotation(aug.rotation))
    if aug.brightness or aug.saturation or aug.hue:
        steps.append(transforms.ColorJitter(brightness=aug.brightness, saturation=aug.saturation, hue=aug.hue))
    steps.append(transforms.ToTensor())
    if aug.lighting:
        steps.append(PCALighting(aug.lighting))
    if aug.erasing:
        steps.append(transforms.RandomErasing(p=aug.erasing, value="random"))
    return transforms.Compose(steps)


def batch_mixer(aug: Augment | None, num_classes: int):
    """``(x, y) -> (x, soft_y)`` applying mixup or cutmix (one chosen at random per batch), or ``None``."""
    if aug is None or not (aug.mixup or aug.cutmix):
        return None
    from torchvision.transforms import v2

    choices = []
    if aug.mixup:
        choices.append(v2.MixUp(alpha=aug.mixup, num_classes=num_classes))
    if aug.cutmix:
        choices.append(v2.CutMix(alpha=aug.cutmix, num_classes=num_classes))
    return choices[0] if len(choices) == 1 else v2.RandomChoice(choices)


def preview_augment(data: str | os.PathLike, output: str | os.PathLike, **settings: Any) -> dict[str, Any]:
    """Draw a grid of augmented training samples of ``data`` to the image ``output``; return its record.

    One row per training image (``images`` of them, drawn at random), ``per_image`` augmented samples of
    ``size`` x ``size`` pixels each; ``settings`` are fields of
    :class:`~percept.transfer.params.AugmentPreviewParams` (``augment``, ``augment_overrides``, ``seed``, ...).
    The grid is ``per_image * size + (per_image + 1) * 4`` pixels wide and carries its record (``inputs.images``:
    the training images shown, one per row).
    """
    from torchvision.utils import make_grid

    from ..image import check_writable, load_image, save_image
    from ..record import describe_input, make_record
    from .data import scan_dataset

    params = from_settings(AugmentPreviewParams, settings)
    output = check_writable(output)
    aug = get_augment(params.augment, **params.augment_overrides)
    if aug is None:
        raise PerceptError("augmentation preset 'none' has nothing to preview; use light or strong")
    torch.manual_seed(params.seed)
    samples = scan_dataset(data, seed=params.seed).train
    picks = [samples[i] for i in torch.randperm(len(samples))[: params.images].tolist()]
    transform = image_transform(params.size, aug)
    tiles = [transform(load_image(path)) for path, _ in picks for _ in range(params.per_image)]
    grid = make_grid(torch.stack(tiles), nrow=params.per_image, padding=4, pad_value=1.0)
    inputs = {"data": {"path": str(Path(data))}, "images": [describe_input(path) for path, _ in picks]}
    record = make_record("augment-preview", to_record(params), inputs=inputs, augmentation=aug.to_dict())
    save_image(grid.unsqueeze(0), output, record)
    return record
