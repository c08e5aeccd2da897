"""What the gradient-ascent methods (class images, feature inversion, DeepDream) share.

Images are RGB ``(1, 3, H, W)`` in [0, 1] on the network's device. The regularisers are Yosinski et al. 2015's
(jitter, Gaussian blur; L2 decay is one line in :mod:`~percept.understand.class_image`), applied in
:func:`ascent_step`; total variation is :func:`percept.losses.tv_loss`; named layers are read with
:func:`~percept.understand.hooks.layer_outputs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from ..errors import PerceptError
from ..models.classifier import Classifier


def network(model: nn.Module | Classifier) -> nn.Module:
    """The module that maps RGB [0, 1] to features or logits (a :class:`Classifier`'s ``model``)."""
    return model.model if isinstance(model, Classifier) else model


def check_image(image: torch.Tensor) -> torch.Tensor:
    """``image`` if it is ``(1, 3, H, W)``; a one-line error otherwise."""
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise PerceptError(f"image must be (1, 3, H, W) RGB in [0, 1], got {tuple(image.shape)}")
    return image


def random_shift(max_shift: int, generator: torch.Generator) -> tuple[int, int]:
    """A uniform random ``(dy, dx)`` in ``[-max_shift, max_shift]``, drawn from ``generator``."""
    if max_shift <= 0:
        return 0, 0
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return dy, dx


def roll(image: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """``image`` ``(B, C, H, W)`` shifted circularly by ``(dy, dx)`` pixels (jitter; undo with the negated shift)."""
    return torch.roll(image, shifts=shift, dims=(-2, -1))


def ascent_step(x: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor], *, step_size: float,
                max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """One jittered, normalised gradient-ascent step on ``x`` ``(1, 3, H, W)``: ``score`` (a scalar) is taken on
    ``x`` rolled by a random shift of up to ``max_shift`` px, its gradient is rolled back and ``x`` moves by
    ``step_size`` x gradient / mean |gradient| (so ``step_size`` is the mean change of a pixel). Not clamped."""
    shift = random_shift(max_shift, generator)
    moved = roll(x, shift).requires_grad_(True)
    (grad,) = torch.autograd.grad(score(moved), moved)
    with torch.no_grad():
        grad = roll(grad, (-shift[0], -shift[1]))
        return x + step_size * grad / grad.abs().mean().clamp_min(1e-12)


def blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(B, C, H, W)`` with std ``sigma`` px (kernel ``2 ceil(3 sigma) + 1``, reflected border)."""
    if sigma <= 0:
        return image
    size = min(2 * math.ceil(3 * sigma) + 1, 2 * ((min(image.shape[-2:]) - 1) // 2) + 1)
    return gaussian_blur(image, [size, size], [sigma, sigma]) if size > 1 else image


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of ``image`` against ``reference``, both in [0, 1] (peak 1)."""
    mse = float((image.float().cpu() - reference.float().cpu()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)
