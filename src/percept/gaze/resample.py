"""Resampling between grids: linear interpolation as matrices, and densities moved to another grid.

Bilinear interpolation with ``align_corners=False`` (what ``torch.nn.functional.interpolate`` does) is separable
and linear, so along one axis it is a matrix ``(n_out, n_in)`` (:func:`interpolation_matrix`); a map ``(h, w)``
goes to ``(H, W)`` as ``A_H @ map @ A_W.T``. The centre bias uses it for exact, fast log-likelihoods, and DeepGaze
folds it into its blur.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=128)
def interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` float64 matrix of 1-D linear interpolation between cell centres (``align_corners=False``,
    edges clamped), equal to ``interpolate(mode="bilinear")`` along one axis (no antialiasing)."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = src - low
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), low), 1 - frac)
    np.add.at(m, (np.arange(n_out), high), frac)
    return m


def resample(density: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(height, width)`` float64: a grid ``density`` interpolated bilinearly and renormalised to sum to 1."""
    up = interpolation_matrix(height, density.shape[0]) @ density @ interpolation_matrix(width, density.shape[1]).T
    return up / up.sum()


def resize_log_density(log_density: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """``(h, w)`` log-density -> ``(height, width)`` float32: the density resampled (bilinear, antialiased when
    shrinking) and renormalised over the new pixels."""
    if tuple(log_density.shape) == (height, width):
        return log_density
    density = log_density.detach().double().exp()[None, None]
    shrink = height < log_density.shape[0] or width < log_density.shape[1]
    up = F.interpolate(density, size=(height, width), mode="bilinear", align_corners=False, antialias=shrink)[0, 0]
    up = up.clamp_min(1e-300)
    return (up / up.sum()).log().float()
