"""Baselines that ignore the image: the uniform density and a Gaussian blob at the centre.

(The kernel-density centre bias, the strongest of them, is :mod:`percept.gaze.centre_bias`.) Each gives a
``(H, W)`` float32 log-density over a working grid, ``logsumexp`` = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def uniform_log_density(width: int, height: int) -> torch.Tensor:
    """``(height, width)``: the same probability at every pixel, ``-log(width * height)``."""
    return torch.full((height, width), -float(np.log(width * height)), dtype=torch.float32)


@dataclass(frozen=True)
class GaussianBlob:
    """A Gaussian at the image centre with standard deviations ``sigma_x``, ``sigma_y`` (fractions of the
    image's width and height), evaluated at the pixel centres and normalised over the pixels."""

    sigma_x: float
    sigma_y: float

    def log_density(self, width: int, height: int) -> torch.Tensor:
        """``(height, width)`` float32 log-density."""
        xs = (torch.arange(width, dtype=torch.float64) + 0.5) / width - 0.5
        ys = (torch.arange(height, dtype=torch.float64) + 0.5) / height - 0.5
        logits = -0.5 * ((ys[:, None] / self.sigma_y) ** 2 + (xs[None, :] / self.sigma_x) ** 2)
        return (logits - torch.logsumexp(logits.flatten(), 0)).float()

    def to_dict(self) -> dict[str, float]:
        return {"sigma_x": self.sigma_x, "sigma_y": self.sigma_y}


def fit_gaussian_blob(points: np.ndarray) -> GaussianBlob:
    """The blob whose sigmas are the root-mean-square distances of normalised fixations ``(n, 2)`` from the centre
    along each axis (the maximum-likelihood fit of a centred Gaussian on the plane)."""
    rms = np.sqrt(np.mean((np.asarray(points, dtype=np.float64) - 0.5) ** 2, axis=0))
    return GaussianBlob(float(max(rms[0], 1e-3)), float(max(rms[1], 1e-3)))
