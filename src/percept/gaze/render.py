"""Pictures of fixation densities: a heat map on its own, or drawn over the photo, with fixations as dots.

Both scale the density by its maximum; the overlay blends the colour in proportion to the density, so that the
photo stays visible where people rarely look.
"""

from __future__ import annotations

import numpy as np
import torch

#: The matplotlib colormap of the heat maps.
COLORMAP = "inferno"
#: Colour of drawn fixations (RGB in [0, 1]).
FIXATION_COLOUR = (0.2, 1.0, 1.0)


def _scaled(log_density: torch.Tensor) -> np.ndarray:
    density = log_density.detach().double().exp().cpu().numpy()
    top = density.max()
    return density / top if top > 0 else np.zeros_like(density)


def heat_map(log_density: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` log-density -> ``(1, 3, H, W)`` RGB in [0, 1]: the density over its maximum, coloured."""
    from matplotlib import colormaps

    colour = colormaps[COLORMAP](_scaled(log_density))[..., :3]
    return torch.from_numpy(colour).permute(2, 0, 1).unsqueeze(0).float()


def overlay(image: torch.Tensor, log_density: torch.Tensor, *, strength: float = 0.8) -> torch.Tensor:
    """``image`` ``(1, 3, H, W)`` with the heat map of ``log_density`` ``(H, W)`` blended in, up to ``strength``
    where the density is highest."""
    alpha = torch.from_numpy(_scaled(log_density)).float().sqrt() * strength
    return (image.cpu().float() * (1 - alpha) + heat_map(log_density) * alpha).clamp(0, 1)


def draw_fixations(image: torch.Tensor, xy: np.ndarray, *, radius: int = 1,
                   colour: tuple[float, float, float] = FIXATION_COLOUR) -> torch.Tensor:
    """``image`` ``(1, 3, H, W)`` with a square dot of side ``2 * radius + 1`` at each fixation ``(x, y)`` px."""
    out = image.clone()
    h, w = out.shape[-2:]
    value = torch.tensor(colour, dtype=out.dtype).view(3, 1, 1)
    for x, y in np.asarray(xy, dtype=np.float64).reshape(-1, 2):
        col, row = min(int(x), w - 1), min(int(y), h - 1)
        out[0, :, max(0, row - radius) : row + radius + 1, max(0, col - radius) : col + radius + 1] = value
    return out
