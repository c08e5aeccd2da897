"""Settings of super-resolution: training (:class:`TrainSrParams`), upscaling (:class:`UpscaleParams`) and the
comparison against bicubic (:class:`EvaluateSrParams`).

:func:`percept.sr.train_sr`, :func:`percept.sr.upscale` and :func:`percept.sr.evaluate_sr` take these fields as
keyword arguments and read their defaults from here; ``percept train-sr``, ``upscale`` and ``evaluate-sr``
generate their options from them; outputs record them. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PerceptError
from ..params import check_choices, device_setting, setting

#: The upscaling factors percept trains and evaluates (the paper's x4 and x8).
FACTORS = (4, 8)
#: Training losses: pixel MSE, feature reconstruction (VGG-16 relu2_2 MSE) or both.
LOSSES = ("pixel", "feature", "mix")
#: How low-resolution inputs are made (:mod:`percept.sr.degrade`): Johnson et al.'s Gaussian blur (sigma 1) then
#: bicubic downsampling, or antialiased bicubic downsampling alone (the reference networks' training data).
DEGRADATIONS = ("blur", "bicubic")
DEGRADATION_HELP = ("how the low-resolution inputs are made: blur (Gaussian blur, sigma 1, then bicubic "
                    "downsampling; Johnson et al.) or bicubic (antialiased bicubic downsampling; how SRResNet and "
                    "SRGAN were trained)")
#: The reference networks that ship offline (x4 only), and bicubic interpolation.
PEERS = ("srresnet", "srgan")
BICUBIC = "bicubic"
#: Metrics evaluate-sr can report (from :mod:`percept.metrics`).
SR_METRICS = ("psnr", "ssim", "lpips")
#: Settings that only some losses use: setting -> the losses that use it.
LOSS_ONLY = {"feature_weight": ("mix",)}


def check_factor(factor: int, what: str = "factor") -> int:
    """``factor`` if it is one percept supports, else one line."""
    if factor not in FACTORS:
        raise PerceptError(f"{what} {factor} is not supported; use {' or '.join(map(str, FACTORS))}")
    return factor


def refuse_unused(loss: str, explicit: Any) -> None:
    """One line for a setting given explicitly that ``loss`` does not use (``--loss pixel --feature-weight 1``)."""
    for name, losses in LOSS_ONLY.items():
        if name in explicit and loss not in losses:
            raise PerceptError(f"--loss {loss} does not use --{name.replace('_', '-')}; drop it (it is for "
                               f"--loss {' or '.join(losses)})")


def _positive(params: Any, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if value is not None and not value > 0:
            raise PerceptError(f"{name.replace('_', '-')} must be > 0, got {value}")


@dataclass
class TrainSrParams:
    """Training a super-resolution network with perceptual losses (Johnson, Alahi & Fei-Fei 2016)."""

    images: str | None = setting(None, "folder of high-resolution photos, searched recursively (e.g. COCO)",
                                 metavar="DIR")
    factor: int = setting(4, "upscaling factor: 4 or 8")
    loss: str = setting("feature", "pixel (MSE), feature (MSE of VGG-16 relu2_2 features, the paper's perceptual "
                        "loss) or mix (pixel + feature-weight x feature)", choices=LOSSES)
    feature_weight: float = setting(0.001, "weight of the feature loss in --loss mix (at 0.001 both terms are "
                                    "about equal for bicubic upscales)")
    degradation: str = setting("blur", DEGRADATION_HELP, choices=DEGRADATIONS)
    steps: int = setting(200000, "training steps (batches) in all, including those of a resumed run")
    max_minutes: float | None = setting(None, "stop after M minutes, saving the network; --resume goes on",
                                        metavar="M")
    crop: int = setting(288, "side of the square high-resolution training crops, px (a multiple of the factor)")
    batch_size: int = setting(4, "crops per step")
    lr: float = setting(1e-3, "Adam learning rate")
    warmup: int = setting(100, "raise the learning rate linearly from 0 over the first N steps (0: none)",
                          metavar="N")
    blocks: int = setting(4, "residual blocks of the network")
    bicubic_skip: bool = setting(True, "the network adds its output to the bicubic upscale (off: it draws the "
                                 "whole image through a scaled tanh, as in the paper)")
    seed: int = setting(0, "seeds the network's initialisation, the photo order and the crops")
    checkpoint_every: int = setting(500, "save the model file and OUT.ckpt every N steps", metavar="N")
    log_every: int = setting(50, "the history holds the mean losses of every N steps", metavar="N")
    device: str = device_setting()
    workers: int | None = setting(None, "image-loading processes", metavar="N", shown="0 on the CPU, up to 8 on a GPU")
    amp: bool | None = setting(None, "mixed precision: float16 autocast with loss scaling on CUDA/MPS, bfloat16 on "
                               "the CPU", shown="on for CUDA, off elsewhere")

    def __post_init__(self) -> None:
        check_factor(self.factor)
        check_choices(self)
        _positive(self, "lr", "max_minutes", "feature_weight")
        if self.warmup < 0:
            raise PerceptError(f"warmup must be >= 0, got {self.warmup}")
        for name in ("steps", "batch_size", "blocks", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise PerceptError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.crop % self.factor or self.crop < 8 * self.factor:
            raise PerceptError(f"crop {self.crop} must be a multiple of the factor {self.factor} and at least "
                               f"{8 * self.factor} px (e.g. {288 // self.factor * self.factor})")


@dataclass
class UpscaleParams:
    """Upscaling an image with a trained network, a reference network or bicubic interpolation."""

    model: str = setting("srresnet", "bicubic, srresnet (SRGAN paper's pixel-loss network, x4), srgan (its GAN "
                         "network, x4) or a model file of percept train-sr", metavar="NAME|SR.pt")
    factor: int | None = setting(None, "upscaling factor, 4 or 8; a network upscales by its own factor",
                                 shown="4 for bicubic, else the network's")
    tile: int | None = setting(None, "upscale in tiles of N x N input pixels (less memory for large images)",
                               metavar="N", shown="the whole image at once")
    overlap: int | None = setting(None, "input pixels shared by adjacent tiles; the default makes tiled and "
                                  "whole-image results equal", metavar="N", shown="3 x the network's reach")
    device: str = device_setting()

    def __post_init__(self) -> None:
        self.model = str(self.model)
        if self.factor is not None:
            check_factor(self.factor)
        _positive(self, "tile")
        if self.overlap is not None and self.overlap < 0:
            raise PerceptError(f"overlap must be >= 0, got {self.overlap}")


@dataclass
class EvaluateSrParams:
    """Comparing upscalers against bicubic on high-resolution photos degraded as in training."""

    factor: int = setting(4, "upscaling factor: 4 or 8")
    degradation: str = setting("blur", DEGRADATION_HELP, choices=DEGRADATIONS)
    metrics: list[str] = setting(list(SR_METRICS), "metrics to report: psnr, ssim (higher is better), lpips "
                                 "(lower is better)", metavar="NAME,...")
    border: int | None = setting(None, "pixels cropped from each side of the outputs before measuring",
                                 metavar="N", shown="the factor")
    channel: str = setting("rgb", "what PSNR and SSIM compare: rgb (all three channels) or y (the luma, as most "
                           "super-resolution papers report)", choices=("rgb", "y"))
    device: str = device_setting()

    def __post_init__(self) -> None:
        check_factor(self.factor)
        check_choices(self)
        self.metrics = [str(m).strip().lower() for m in self.metrics]
        unknown = [m for m in self.metrics if m not in SR_METRICS]
        if unknown or not self.metrics:
            raise PerceptError(f"unknown metric {(unknown or [''])[0]!r}; use one or more of {', '.join(SR_METRICS)}")
        if self.border is not None and self.border < 0:
            raise PerceptError(f"border must be >= 0, got {self.border}")

    @property
    def crop(self) -> int:
        """The border actually cropped (``border``, else the factor)."""
        return self.factor if self.border is None else self.border
