"""Orderless pooling of a feature map into one vector: average, maximum, Gram matrix and compact bilinear pooling.

Pure functions on tensors (shapes in each docstring) and :class:`FeaturePooling`, the module a
:class:`~percept.models.Backbone` applies to each layer it reads:

* ``avg`` / ``max``: the per-channel mean / maximum over the ``H x W`` locations, ``(B, C)``.
* ``gram``: the Gram matrix ``G = F F^T / (H W)`` of the ``C x HW`` features (Gatys' texture statistic): its upper
  triangle with the diagonal, off-diagonal entries times ``sqrt(2)`` so the dot product of two vectors is the
  Frobenius product of the full matrices, ``(B, C (C + 1) / 2)``; when that exceeds :data:`EXACT_GRAM_MAX_DIM`
  (``C > 128``), the compact sketch below instead. Then signed square root and L2 normalisation.
* ``bilinear``: bilinear pooling (Lin et al. ICCV 2015: the outer product of the features with themselves,
  averaged over locations, i.e. the same ``G``), compressed by the Tensor Sketch of compact bilinear pooling
  (Gao et al. CVPR 2016) to :data:`COMPACT_DIM` numbers, then signed square root and L2 normalisation.

The sketch is a fixed linear map of ``G``: entry ``(i, j)`` is added, with sign ``s1(i) s2(j)``, to bin
``(h1(i) + h2(j)) mod D``, which is exactly the Tensor Sketch of the averaged outer products (computed from ``G``
instead of through FFTs at every location, which is cheaper and exports to ONNX). The expected dot product of
two sketches equals the Frobenius product of their Gram matrices. The hashes and signs come from a
``torch.Generator`` seeded with :data:`SKETCH_SEED` and depend only on ``C`` and ``D``, so they are identical in
every process and on every machine; they are rebuilt on construction and never saved.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import PerceptError
from ..losses import gram_matrix
from .names import POOLINGS

#: Output size of compact bilinear pooling (and of a Gram matrix too large to keep exactly).
COMPACT_DIM = 8192
#: Largest exact Gram vector ``C (C + 1) / 2`` kept as is (``C = 128``).
EXACT_GRAM_MAX_DIM = 8256
#: Seed of the Tensor Sketch hashes and signs.
SKETCH_SEED = 20160627


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C)``: the mean over locations."""
    return x.mean(dim=(2, 3))


def global_max_pool(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C)``: the maximum over locations."""
    return x.amax(dim=(2, 3))


def triangle_indices(channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices ``(C (C + 1) / 2,)`` of the upper triangle (with the diagonal) of a ``C x C`` matrix, row by
    row, and the weight of each entry: 1 on the diagonal, ``sqrt(2)`` off it."""
    rows, cols = torch.triu_indices(channels, channels)
    weights = torch.where(rows == cols, 1.0, math.sqrt(2.0))
    return rows * channels + cols, weights


def gram_triangle(gram: torch.Tensor, index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(B, C, C) -> (B, C (C + 1) / 2)``: the entries ``index`` of each symmetric matrix times ``weights``
    (see :func:`triangle_indices`), so ``<u(A), u(B)> = <A, B>_F``."""
    return gram.flatten(1)[:, index] * weights


def sketch_hashes(channels: int, dim: int, seed: int = SKETCH_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The Tensor Sketch of ``C x C`` matrices into ``dim`` bins: the bin ``(h1(i) + h2(j)) mod dim`` and the sign
    ``s1(i) s2(j)`` of every entry, as flat ``(C * C,)`` tensors (int64 and float32). Deterministic: drawn from a
    CPU ``torch.Generator`` seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    h1, h2 = torch.randint(dim, (channels,), generator=g), torch.randint(dim, (channels,), generator=g)
    s1, s2 = (torch.randint(2, (channels,), generator=g) * 2 - 1 for _ in range(2))
    index = (h1[:, None] + h2[None, :]) % dim
    return index.flatten(), (s1[:, None] * s2[None, :]).flatten().float()


def tensor_sketch(gram: torch.Tensor, index: torch.Tensor, signs: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B, C, C) -> (B, dim)``: compact bilinear pooling of the averaged outer products ``gram`` with the
    hashes of :func:`sketch_hashes`; ``E[<sketch(A), sketch(B)>] = <A, B>_F`` over the random hashes."""
    values = gram.flatten(1) * signs
    out = values.new_zeros(values.shape[0], dim)
    return out.scatter_add(1, index.expand(values.shape[0], -1), values)


def signed_sqrt(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``sign(x) sqrt(|x|)``, elementwise (any shape); ``eps`` keeps the gradient at 0 finite."""
    return torch.sign(x) * torch.sqrt(x.abs() + eps)


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``(B, D) -> (B, D)``: each row divided by its Euclidean norm (rows of zeros stay zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def pooled_dim(pooling: str, channels: int, compact_dim: int = COMPACT_DIM) -> int:
    """Length of the vector that ``pooling`` makes of a ``channels``-channel feature map."""
    if pooling in ("avg", "max"):
        return channels
    if pooling == "gram" and channels * (channels + 1) // 2 <= EXACT_GRAM_MAX_DIM:
        return channels * (channels + 1) // 2
    return compact_dim


class FeaturePooling(nn.Module):
    """``(B, C, H, W) -> (B, dim)``: one of :data:`~percept.models.names.POOLINGS` for ``channels`` channels.

    ``gram`` and ``bilinear`` vectors have unit length (signed square root, then L2); ``avg`` and ``max`` are
    left as they are. The hashes of a sketch are non-persistent buffers rebuilt from :data:`SKETCH_SEED`.
    """

    def __init__(self, pooling: str, channels: int, compact_dim: int = COMPACT_DIM) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise PerceptError(f"unknown pooling {pooling!r}; use {', '.join(POOLINGS)}")
        self.pooling, self.channels = pooling, channels
        self.dim = pooled_dim(pooling, channels, compact_dim)
        self.exact = pooling == "gram" and self.dim == channels * (channels + 1) // 2
        if self.exact:
            index, weights = triangle_indices(channels)
        elif pooling in ("gram", "bilinear"):
            index, weights = sketch_hashes(channels, self.dim)
        else:
            index, weights = torch.zeros(0, dtype=torch.long), torch.zeros(0)
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("weights", weights, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooling == "avg":
            return global_avg_pool(x)
        if self.pooling == "max":
            return global_max_pool(x)
        gram = gram_matrix(x.float())
        if self.exact:
            vector = gram_triangle(gram, self.index, self.weights)
        else:
            vector = tensor_sketch(gram, self.index, self.weights, self.dim)
        return l2_normalize(signed_sqrt(vector))

    def extra_repr(self) -> str:
        return f"{self.pooling}, channels={self.channels}, dim={self.dim}" + (", exact" if self.exact else "")
