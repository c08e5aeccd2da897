"""How low-resolution inputs are made from high-resolution photos, and the bicubic baseline.

Two degradations (:data:`DEGRADATIONS`):

* ``blur`` (Johnson, Alahi & Fei-Fei 2016, Sec. 4.1): the high-resolution image is blurred with a Gaussian of
  ``sigma = 1.0``, then downsampled with bicubic interpolation. The blur does the anti-aliasing, so the bicubic
  downsampling itself is plain (``antialias=False``).
* ``bicubic``: antialiased bicubic downsampling alone (as Pillow's and MATLAB's ``imresize``): the degradation of
  the DIV2K training pairs of the reference networks SRResNet and SRGAN. A network meets its best results on the
  degradation it was trained on; the blurred inputs are softer.

The result is clamped to ``[0, 1]`` and rounded to 8 bits, as a low-resolution image saved to a file would be.
Everything works on batches ``(B, 3, H, W)`` on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import PerceptError
from .params import DEGRADATIONS

#: The paper's blur before downsampling.
BLUR_SIGMA = 1.0


def gaussian_kernel(sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian ``(2r + 1,)`` with radius ``r = ceil(3 sigma)`` (float32, sums to 1)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with reflected borders (a constant image stays constant).

    Images smaller than the kernel's radius + 1 on a side are padded by replication instead of reflection.
    """
    kernel = gaussian_kernel(sigma).to(images.device, images.dtype)
    r, c = kernel.numel() // 2, images.shape[1]
    mode = "reflect" if min(images.shape[-2:]) > r else "replicate"
    x = F.pad(images, (r, r, r, r), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def crop_to_factor(images: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, C, H, W)`` cropped at the bottom and right to ``(B, C, H - H % factor, W - W % factor)``."""
    h, w = images.shape[-2:]
    if min(h, w) < factor:
        raise PerceptError(f"an image of {w}x{h} px is smaller than the factor {factor}; give images of at least "
                           f"{factor} px per side")
    return images[..., : h - h % factor, : w - w % factor]


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Clamped to ``[0, 1]`` and rounded to the 256 levels of an 8-bit image."""
    return images.clamp(0, 1).mul(255).round().div(255)


def degrade(hr: torch.Tensor, factor: int, *, degradation: str = "blur", sigma: float = BLUR_SIGMA
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The low-resolution input of ``hr`` ``(B, 3, H, W)`` in ``[0, 1]``: ``(lr, hr_cropped)``.

    ``hr`` is first cropped so that its sides are multiples of ``factor`` (:func:`crop_to_factor`); ``lr`` is
    ``(B, 3, H // factor, W // factor)``, clamped and rounded to 8 bits (:func:`quantize`). ``degradation``:
    ``blur`` (Gaussian blur of ``sigma``, then bicubic downsampling without antialiasing) or ``bicubic``
    (antialiased bicubic downsampling).
    """
    if degradation not in DEGRADATIONS:
        raise PerceptError(f"unknown degradation {degradation!r}; use {' or '.join(DEGRADATIONS)}")
    hr = crop_to_factor(hr, factor)
    h, w = hr.shape[-2:]
    blur = degradation == "blur"
    source = gaussian_blur(hr.float(), sigma) if blur else hr.float()
    lr = F.interpolate(source, size=(h // factor, w // factor), mode="bicubic", align_corners=False,
                       antialias=not blur)
    return quantize(lr), hr


def bicubic_upscale(lr: torch.Tensor, factor: int) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, C, factor h, factor w)`` by bicubic interpolation (not clamped)."""
    h, w = lr.shape[-2:]
    return F.interpolate(lr, size=(h * factor, w * factor), mode="bicubic", align_corners=False)
