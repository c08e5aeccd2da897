"""Settings of the style trainers: an AdaIN decoder (:class:`TrainAdainParams`) and a feed-forward style network
(:class:`TrainStyleParams`).

:func:`percept.style.adain_train.train_adain` and :func:`percept.style.transform_train.train_transform_net` take
these fields as keyword arguments and read their defaults from here; ``percept train-adain`` and ``percept
train-style`` generate their options from them. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PerceptError
from ..params import device_setting, setting

LR_SCHEDULES = ("constant", "linear")
LOSS_NETWORK_CHOICES = ("vgg16", "vgg19")
AMP_HELP = "mixed precision: float16 autocast with loss scaling on CUDA/MPS, bfloat16 on the CPU"
WORKERS_HELP = "image-loading processes"


def _amp() -> Any:
    return setting(None, AMP_HELP, shown="on for CUDA, off elsewhere")


def _workers() -> Any:
    return setting(None, WORKERS_HELP, metavar="N", shown="0 on the CPU, up to 8 on a GPU")


def _at_least(params: Any, low: int, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if value is not None and value < low:
            raise PerceptError(f"{name.replace('_', '-')} must be >= {low}, got {value}")


def _not_negative(params: Any, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not value >= 0:
            raise PerceptError(f"{name.replace('_', '-')} must be >= 0, got {value}")


@dataclass
class TrainAdainParams:
    """Training an AdaIN decoder (Huang & Belongie 2017) on photos and paintings."""

    content_dir: str | None = setting(None, "photos, searched recursively", metavar="DIR")
    style_dir: str | None = setting(None, "paintings, searched recursively", metavar="DIR")
    steps: int | None = setting(None, "training steps (batches); may be raised when resuming")
    batch_size: int = setting(8, "content and style images per step")
    lr: float = setting(1e-4, "Adam learning rate, decayed as lr / (1 + lr-decay * step)")
    lr_decay: float = setting(5e-5, "learning-rate decay per step")
    size: int = setting(256, "side of the square training crops, px")
    load_size: int = setting(512, "each image is first resized so that its shorter side is this, px")
    content_weight: float = setting(1.0, "weight of the content loss")
    style_weight: float = setting(10.0, "weight of the style loss")
    init: str = setting("shipped", "start from the shipped decoder (fine-tuning), random weights (seeded) or a "
                        "decoder FILE", metavar="shipped|random|FILE")
    seed: int = setting(0, "seeds the initialisation and every batch (reproducible, also across resumes)")
    checkpoint_every: int = setting(1000, "write OUT.ckpt every N steps, to resume from", metavar="N")
    log_every: int = setting(100, "the history holds the mean losses of every N steps", metavar="N")
    device: str = device_setting()
    workers: int | None = _workers()
    amp: bool | None = _amp()

    def __post_init__(self) -> None:
        _at_least(self, 1, "steps", "batch_size", "checkpoint_every", "log_every")
        if not self.lr > 0:
            raise PerceptError(f"lr must be > 0, got {self.lr}")
        _not_negative(self, "lr_decay", "content_weight", "style_weight")
        if not 16 <= self.size <= self.load_size:
            raise PerceptError(f"crop size {self.size} must be >= 16 and <= load size {self.load_size}")
        self.init = str(self.init)


@dataclass
class TrainStyleParams:
    """Training a feed-forward style network (Johnson et al. 2016; several styles: Dumoulin et al. 2017)."""

    content_dir: str | None = setting(None, "photos, searched recursively (e.g. COCO train2014)", metavar="DIR")
    steps: int = setting(40000, "training steps (batches) in all, including those of a resumed run")
    max_minutes: float | None = setting(None, "stop after M minutes, saving the network; resuming goes on",
                                        metavar="M")
    size: int = setting(256, "side of the square training crops, px")
    style_size: int | None = setting(None, "longest side of the style image(s) for the Gram matrices (unset: size)")
    batch_size: int = setting(4, "photos per step")
    lr: float = setting(1e-3, "Adam learning rate")
    lr_schedule: str = setting("constant", "constant (Johnson et al.) or linear decay to 0 at the last step, for "
                               "short runs", choices=LR_SCHEDULES)
    content_weight: float = setting(1.0, "content loss weight")
    style_weight: float = setting(3.0, "style loss weight; higher = stronger style")
    tv_weight: float = setting(10.0, "total-variation weight (smoothness)")
    network: str = setting("vgg16", "loss network", choices=LOSS_NETWORK_CHOICES)
    weights: str | None = setting(None, "loss network weights: a name (see `percept models`) or a state-dict file "
                                  "(unset: the network's default)", metavar="NAME|FILE")
    content_layers: list[str] | None = setting(None, "content layers (unset: relu2_2)", cli=False)
    style_layers: list[str] | None = setting(None, "style layers (unset: VGG-16 relu1_2, relu2_2, relu3_3, relu4_3; "
                                             "VGG-19 relu1_1 ... relu5_1)", cli=False)
    style_layer_weights: list[float] | None = setting(None, "relative weight of each style layer, in order (VGG-16: "
                                                      "relu1_2, relu2_2, relu3_3, relu4_3; unset: equal)",
                                                      metavar="W,...")
    channels: list[int] | None = setting(None, "widths of the transform network (unset: Johnson's 32, 64, 128)",
                                         cli=False)
    init: str | None = setting(None, "start from a trained network instead of random weights: multistyle26 or a "
                               "MODEL.pt of train-style (its design and weights; each new style starts from the mean "
                               "of its styles' norm parameters), so far fewer steps are needed", metavar="NAME|MODEL.pt")
    sample_every: int = setting(500, "write samples/step_N.png in the training folder every N steps (0: never)",
                                metavar="N")
    checkpoint_every: int = setting(500, "save the model file and the checkpoint every N steps (and at the end)",
                                    metavar="N")
    sample_content: str | None = setting(None, "photo the samples show (unset: the first photo)", metavar="PHOTO")
    seed: int = setting(0, "seeds the network's initialisation, the photo order and the crops")
    device: str = device_setting()
    workers: int | None = _workers()
    amp: bool | None = _amp()

    def __post_init__(self) -> None:
        if self.network not in LOSS_NETWORK_CHOICES:
            raise PerceptError(f"unknown loss network {self.network!r}; use {' or '.join(LOSS_NETWORK_CHOICES)}")
        _at_least(self, 16, "size", "style_size")
        _at_least(self, 1, "steps", "batch_size")
        if not self.lr > 0:
            raise PerceptError(f"lr must be > 0, got {self.lr}")
        _not_negative(self, "content_weight", "style_weight", "tv_weight")
        if self.lr_schedule not in LR_SCHEDULES:
            raise PerceptError(f"unknown lr schedule {self.lr_schedule!r}; use {' or '.join(LR_SCHEDULES)}")
        if self.init is not None and self.channels is not None:
            raise PerceptError("init gives the network's widths; drop channels (or init)")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise PerceptError(f"max-minutes must be > 0, got {self.max_minutes}")
        if self.sample_every < 0 or self.checkpoint_every < 0:
            raise PerceptError("sample-every and checkpoint-every must be >= 0")
