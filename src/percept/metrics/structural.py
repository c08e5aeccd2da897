"""SSIM: the structural similarity index of Wang et al. 2004 (1 for identical images, higher is better)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..errors import PerceptError
from .inputs import prepare

#: Wang et al.'s constants: Gaussian window of 11 x 11 with sigma 1.5, K1 = 0.01, K2 = 0.03.
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


@functools.lru_cache(maxsize=8)
def _gaussian(size: int, sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian window, ``(size,)`` float64."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of each channel, valid region: ``(B, C, H, W)`` -> ``(B, C, H-10, W-10)``."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, channel: str = "rgb", crop: int = 0
         ) -> torch.Tensor:
    """Mean SSIM per image: ``(B, 3, H, W)`` twice -> ``(B,)``.

    Convention (Wang et al. 2004): local means, variances and covariance under an 11 x 11 Gaussian window with
    sigma 1.5 (population statistics, no ``N/(N-1)`` correction), ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2``
    with ``L = data_range``; the SSIM map is averaged over the valid region only (windows that lie wholly inside the
    image, so no padding is involved), then over the three RGB channels. This equals scikit-image's
    ``structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    channel_axis=..., data_range=1)``. ``channel="y"`` compares the BT.601 luma only; ``crop`` cuts that many pixels
    at every border first. Images need at least 11 px per side (after the crop). Computed in float32 (float64 for
    float64 inputs).
    """
    x, y = prepare(x, y, channel=channel, crop=crop)
    if min(x.shape[-2:]) < WINDOW:
        raise PerceptError(f"SSIM needs images of at least {WINDOW}x{WINDOW} px, got {x.shape[-1]}x{x.shape[-2]}")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    g = _gaussian(WINDOW, SIGMA).to(device=x.device, dtype=dtype)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mu_x, mu_y, xx, yy, xy = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), g).chunk(5, dim=1)  # one pass
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))
