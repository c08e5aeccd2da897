"""Settings of transfer learning with frozen features, evaluation, prediction, augmentation and export.

Each class lists the keyword arguments of one library function with their defaults and help, written once:
:func:`~percept.transfer.linear.train_features` (:class:`FeaturesParams`),
:func:`~percept.transfer.runs.evaluate` (:class:`EvaluateParams`), :func:`~percept.transfer.runs.predict`
(:class:`PredictParams`), :func:`~percept.transfer.augment.preview_augment` (:class:`AugmentPreviewParams`) and
:func:`~percept.transfer.export.export_run` (:class:`ExportParams`). The ``percept`` commands generate their
options from the same fields. :class:`AugmentOverrides` are the individual augmentation settings a command line
may override on top of a preset (the ``augment_overrides`` dict of the library).

This module imports nothing heavy (no torch): the command line reads it to build ``--help``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from ..errors import PerceptError
from ..models.names import BACKBONES, POOLINGS
from ..params import check_choices, device_setting, setting
from .names import CLASSIFIERS

AUGMENT_PRESETS = ("none", "light", "strong")
TTA_CHOICES = ("none", "flip", "flip+crops")
EXPORT_FORMATS = ("onnx", "torchscript")


# Settings shared by several classes: each default and help text is written here once.
def _batch_size() -> Any:
    return setting(32, "images per batch through the network; bounds memory")


def _device() -> Any:
    return device_setting()


def _cache_dir() -> Any:
    return setting(None, "feature cache folder (unset: $PERCEPT_CACHE/features or ~/.cache/percept/features)",
                   metavar="DIR")


def _augment() -> Any:
    return setting("light", "augmentation preset: light = random resized crop, horizontal flip, colour jitter; "
                   "strong adds rotation, PCA lighting, random erasing, mixup and cutmix", choices=AUGMENT_PRESETS)


def _augment_overrides() -> Any:
    return setting({}, "augmentation settings over the preset, e.g. {'vflip': 0.5} (any field of "
                   "percept.transfer.augment.Augment)", cli=False)


def _tta() -> Any:
    return setting("none", "test-time augmentation: average over the mirror image (flip) and also the four corner "
                   "crops (flip+crops)", choices=TTA_CHOICES)


def _check_positive(params: Any, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if value is not None and value <= 0:
            raise PerceptError(f"{name.replace('_', '-')} must be > 0, got {value}")


def _check_cache_dir(params: Any) -> None:
    """Store the cache folder as a string (records are JSON); anything but a path is refused."""
    if params.cache_dir is not None:
        if not isinstance(params.cache_dir, (str, os.PathLike)):
            raise PerceptError(f"cache-dir must be a folder path, got {type(params.cache_dir).__name__}")
        params.cache_dir = os.fspath(params.cache_dir)


def _check_overrides(params: Any) -> None:
    """``augment_overrides``: a dict of augmentation settings (``None`` = none); unset values are dropped.
    :func:`~percept.transfer.augment.get_augment` checks the names."""
    overrides = params.augment_overrides or {}
    params.augment_overrides = {k: v for k, v in overrides.items() if v is not None}


@dataclass
class AugmentOverrides:
    """Augmentation settings that override a preset's; unset (``None``) keeps the preset's value."""

    vflip: float | None = setting(None, "probability of a vertical flip (unset: the preset's)")
    rotation: float | None = setting(None, "maximum rotation in degrees (unset: the preset's)")
    lighting: float | None = setting(None, "AlexNet PCA lighting noise std, e.g. 0.1 (unset: the preset's)")
    erasing: float | None = setting(None, "probability of random erasing / cutout (unset: the preset's)")
    mixup: float | None = setting(None, "mixup Beta alpha, 0 = off (unset: the preset's)")
    cutmix: float | None = setting(None, "cutmix Beta alpha, 0 = off (unset: the preset's)")


@dataclass
class FeaturesParams:
    """Transfer learning with a frozen backbone: cached features plus a linear classifier."""

    backbone: str = setting("efficientnet_lite0", f"pretrained network: {', '.join(BACKBONES)}", choices=BACKBONES,
                            metavar="NAME")
    classifier: str = setting("logreg", "linear classifier: logreg (multinomial logistic regression), svm (linear "
                              "SVM) or softmax (a softmax layer trained in PyTorch with label smoothing)",
                              choices=CLASSIFIERS)
    features: list[str] = setting([], "read and concatenate these layers of the backbone, e.g. stage3,stage5,head "
                                  "(EfficientNet: stage1..stage7, head; VGG/AlexNet: relu names such as relu3_1; "
                                  "ResNet: layer1..layer4) (unset: the backbone's last features)",
                                  metavar="LAYER,...")
    pooling: str = setting("avg", "how each layer's feature map becomes a vector: avg or max per channel, gram "
                           "(Gram matrix: channel co-occurrences, for textures and fine-grained classes) or "
                           "bilinear (compact bilinear pooling, 8192 numbers per layer)", choices=POOLINGS)
    C: float | None = setting(None, "inverse regularisation strength (unset: chosen by cross-validation on the "
                              "training images)")
    val_fraction: float = setting(0.2, "validation share when the data has no train/val folders")
    seed: int = setting(0, "random seed for the split and the classifier")
    augment: str = _augment()
    augment_overrides: dict = _augment_overrides()
    augment_copies: int = setting(0, "also fit on N augmented copies of each training image (the augmentation "
                                  "preset; cached like plain features)", metavar="N")
    batch_size: int = _batch_size()
    device: str = _device()
    cache_dir: str | None = _cache_dir()

    def __post_init__(self) -> None:
        _check_cache_dir(self)
        _check_overrides(self)
        _check_positive(self, "C", "batch_size")
        if isinstance(self.features, str):  # "stage3,stage5" from Python
            self.features = self.features.split(",")
        self.features = [str(layer).strip() for layer in self.features or [] if str(layer).strip()]
        if self.augment_copies < 0:
            raise PerceptError(f"augment-copies must be >= 0, got {self.augment_copies}")
        check_choices(self)


@dataclass
class EvaluateParams:
    """Evaluation of a run or an ensemble of runs."""

    tta: str = _tta()
    batch_size: int = _batch_size()
    device: str = _device()
    cache_dir: str | None = _cache_dir()

    def __post_init__(self) -> None:
        _check_inference(self)


@dataclass
class PredictParams:
    """Top-k prediction with a trained run."""

    top_k: int = setting(5, "classes to show per image")
    tta: str = _tta()
    batch_size: int = _batch_size()
    device: str = _device()
    cache_dir: str | None = _cache_dir()

    def __post_init__(self) -> None:
        _check_inference(self)


def _check_inference(params: EvaluateParams | PredictParams) -> None:
    if params.tta not in TTA_CHOICES:
        raise PerceptError(f"unknown test-time augmentation {params.tta!r}; use {', '.join(TTA_CHOICES)}")
    _check_cache_dir(params)
    _check_positive(params, "batch_size")


@dataclass
class AugmentPreviewParams:
    """A grid of augmented training samples: one row per image."""

    augment: str = _augment()
    augment_overrides: dict = _augment_overrides()
    images: int = setting(6, "how many training images (rows)", metavar="N")
    per_image: int = setting(6, "augmented samples per image (columns)", metavar="N")
    size: int = setting(160, "tile size in pixels")
    seed: int = setting(0, "random seed")

    def __post_init__(self) -> None:
        _check_overrides(self)
        _check_positive(self, "images", "per_image", "size")
        check_choices(self)


@dataclass
class ExportParams:
    """Export of a trained run (or a trained style network) as one model file."""

    format: str = setting("onnx", "onnx (needs pip install onnx onnxruntime, or pip install 'percept-cnn[export]') "
                          "or torchscript (torch.jit.load; traced)", choices=EXPORT_FORMATS)
    opset: int | None = setting(None, "ONNX opset version (unset: torch's default)")
    style_index: int | None = setting(None, "style network with several styles: bake in style K (unset: its only "
                                      "style)", metavar="K", network=True)
    style_blend_weights: list[float] = setting([], "style network with several styles: bake in this blend, one "
                                               "weight per style", metavar="W,...", network=True)

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise PerceptError(f"unknown export format {self.format!r}; choose one of {', '.join(EXPORT_FORMATS)}")


def network_only(cls: type = ExportParams) -> tuple[str, ...]:
    """Fields of ``cls`` that apply to style networks only."""
    return tuple(f.name for f in fields(cls) if f.metadata.get("network"))
