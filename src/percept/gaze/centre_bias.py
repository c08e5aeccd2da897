"""The centre bias: where people look regardless of the image, as a kernel density of training fixations.

Fixations are taken in normalised coordinates (fractions of the image's width and height, so images of any size
and aspect pool), binned on a :data:`GRID` x :data:`GRID` grid and smoothed by a Gaussian kernel of ``bandwidth``
(a fraction of the side, the same along both axes), then mixed with a uniform share ``uniform`` so that no pixel
has zero probability. Both are chosen by cross-validated log-likelihood: images are split into folds, the density
of the other folds scores each fold's fixations on their own working grids, and the pair with the highest mean
log-likelihood over all fixations wins. For an image, the grid is resampled (bilinear) to its working grid and
renormalised (:func:`~percept.gaze.resample.resample`): :meth:`CentreBias.log_density` is a log-density whose
``logsumexp`` over pixels is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .data import FixationData, kfold
from .resample import resample

#: Bins per side of the normalised density grid.
GRID = 64
#: Kernel bandwidths tried, as fractions of the image's width / height.
BANDWIDTHS = (0.015, 0.02, 0.03, 0.045, 0.065, 0.09, 0.13, 0.18)
#: Uniform shares tried.
UNIFORM_SHARES = (0.0001, 0.001, 0.01, 0.05)


def _smoothing(sigma_cells: float, n: int = GRID) -> np.ndarray:
    """``(n, n)`` matrix whose product with a histogram axis is a Gaussian blur of ``sigma_cells`` (not truncated;
    what falls outside the grid is lost, and the density is renormalised afterwards)."""
    i = np.arange(n, dtype=np.float64)
    return np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma_cells) ** 2)


def density_grid(points: np.ndarray, bandwidth: float, uniform: float, grid: int = GRID) -> np.ndarray:
    """``(grid, grid)`` float64 density (rows = y) of normalised ``points`` ``(n, 2)`` (x, y in [0, 1]), summing
    to 1: the Gaussian kernel density, mixed with ``uniform`` of the uniform density."""
    hist, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=grid, range=[[0, 1], [0, 1]])
    k = _smoothing(bandwidth * grid, grid)
    smooth = k @ hist @ k.T
    smooth /= smooth.sum()
    return (1 - uniform) * smooth + uniform / grid**2


def resample_log_density(density: np.ndarray, width: int, height: int) -> torch.Tensor:
    """``(height, width)`` float32 log-density from a grid ``density`` (:func:`resample`)."""
    return torch.from_numpy(np.log(np.maximum(resample(density, width, height), 1e-300))).float()


@dataclass
class CentreBias:
    """A fitted centre bias: the normalised ``density`` grid ``(GRID, GRID)``, its kernel ``bandwidth`` and
    ``uniform`` share, and ``scores`` (cross-validated bits per fixation of each tried pair, relative to uniform)."""

    density: np.ndarray
    bandwidth: float
    uniform: float
    scores: dict[str, float] = field(default_factory=dict)
    _cache: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    def log_density(self, width: int, height: int) -> torch.Tensor:
        """``(height, width)`` float32 log-density over a grid of that size (``logsumexp`` = 0)."""
        key = (width, height)
        if key not in self._cache:
            self._cache[key] = resample_log_density(self.density, width, height)
        return self._cache[key]

    def to_dict(self) -> dict[str, Any]:
        return {"density": torch.from_numpy(np.asarray(self.density, dtype=np.float64)), "bandwidth": self.bandwidth,
                "uniform": self.uniform, "scores": dict(self.scores)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CentreBias:
        density = state["density"]
        density = density.numpy() if isinstance(density, torch.Tensor) else np.asarray(density)
        return cls(density.astype(np.float64), float(state["bandwidth"]), float(state["uniform"]),
                   dict(state.get("scores", {})))


def _points(data: FixationData, names: Sequence[str]) -> np.ndarray:
    return np.concatenate([data.normalised(n) for n in names]) if names else np.zeros((0, 2))


def _fixations_by_grid(data: FixationData, names: Sequence[str]) -> dict[tuple[int, int], torch.Tensor]:
    """The fixations of ``names`` as flat pixel indices ``row * W + column``, pooled per working-grid size."""
    pooled: dict[tuple[int, int], list[np.ndarray]] = {}
    for name in names:
        w, h = data.stimuli[name].grid
        fix = data.grid_fixations(name)
        pooled.setdefault((w, h), []).append(fix[:, 1] * w + fix[:, 0])
    return {grid: torch.from_numpy(np.concatenate(parts)) for grid, parts in pooled.items()}


def _log_likelihood_sum(density: np.ndarray, pooled: dict[tuple[int, int], torch.Tensor]) -> float:
    """Sum over the ``pooled`` fixations of log p + log(pixels) (nats; 0 for a uniform prediction)."""
    total = 0.0
    for (w, h), index in pooled.items():
        p = resample(density, w, h).ravel()[index.numpy()]
        total += float(np.log(np.maximum(p, 1e-300)).sum()) + len(index) * np.log(w * h)
    return total


def fit_centre_bias(data: FixationData, names: Sequence[str], *, folds: int = 5, seed: int = 0,
                    bandwidths: Sequence[float] = BANDWIDTHS, uniform_shares: Sequence[float] = UNIFORM_SHARES
                    ) -> CentreBias:
    """The centre bias of the fixations on ``names``, with bandwidth and uniform share chosen by ``folds``-fold
    cross-validation by image (see the module docstring). With a single image the middle candidates are used."""
    names = list(names)
    pairs = [(b, u) for b in bandwidths for u in uniform_shares]
    scores: dict[str, float] = {}
    if len(names) >= 2:
        parts = kfold(names, min(folds, len(names)), seed)
        totals = dict.fromkeys(pairs, 0.0)
        for i, held in enumerate(parts):
            rest = [n for j, part in enumerate(parts) if j != i for n in part]
            points, pooled = _points(data, rest), _fixations_by_grid(data, held)
            for b, u in pairs:
                totals[(b, u)] += _log_likelihood_sum(density_grid(points, b, u), pooled)
        n = data.count(names)
        scores = {f"bandwidth {b:g}, uniform {u:g}": round(float(totals[(b, u)] / n / np.log(2)), 5) for b, u in pairs}
        best = max(pairs, key=lambda pair: totals[pair])
    else:
        best = (bandwidths[len(bandwidths) // 2], uniform_shares[len(uniform_shares) // 2])
    return CentreBias(density_grid(_points(data, names), *best), best[0], best[1], scores)

