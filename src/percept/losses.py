"""Perceptual losses: content (feature reconstruction), Gram-matrix style and total variation.

Each loss is a pure function plus a thin :class:`torch.nn.Module` that stores its target.

Normalisation (chosen so that weights are portable across image sizes, layers and weight sets):

* :func:`gram_matrix` divides by the number of positions ``H*W``: it is the *average* outer product of the
  feature vectors, so it does not grow with image size (for a stationary texture it is the same at 256 px
  and at 1024 px).
* :func:`content_loss` and :func:`style_loss` are mean squared errors divided by the mean square of the
  target (a relative error). A loss of 1.0 means "as far from the target as a zero output"; the values do not
  depend on the number of channels, the spatial size, or the activation scale of a set of weights (Gatys'
  normalised VGG-19 has activations near 1, the original Caffe VGG-19 in the hundreds). The per-layer
  weights of the classic recipe are therefore simply 1 for every layer.
* :func:`tv_loss` is the mean squared difference between neighbouring pixels of an image in ``[0, 1]``.

So a style weight tuned at 256 px behaves the same at 1024 px, and with another network.
"""

from __future__ import annotations

import torch
from torch import nn

_EPS = 1e-8


class _OuterProducts(torch.autograd.Function):
    """``(F * w) F^T`` for ``F`` ``(B, C, N)`` and optional position weights ``w`` ``(B, 1, N)``.

    Autograd would differentiate the product through both of its factors: two matrix products, then the sum of
    a gradient with a transposed (strided) one, which is slow on large feature maps. The gradient is
    ``((g + g^T) F) * w``: one matrix product. The backward pass is itself differentiable.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(flat, weights)
        return torch.bmm(flat if weights is None else flat * weights, flat.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        flat, weights = ctx.saved_tensors
        grad = grad.to(flat.dtype)  # under autocast the product ran in (b)float16; the gradient is the input's type
        grad_flat = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad_flat = torch.bmm(grad + grad.transpose(1, 2), flat)
            if weights is not None:
                grad_flat = grad_flat * weights
        if ctx.needs_input_grad[1]:
            grad_weights = (flat * torch.bmm(grad, flat)).sum(1, keepdim=True)
            grad_weights = grad_weights.sum_to_size(weights.shape).to(weights.dtype)
        return grad_flat, grad_weights


def outer_products(flat: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over positions of the (weighted) outer products of feature vectors.

    Args:
        flat: ``(B, C, N)`` features at ``N`` positions.
        weights: ``(B, 1, N)`` weight of each position, or None for all ones.

    Returns:
        ``(B, C, C)`` with ``G[b, i, j] = sum_p w[b, p] * F[b, i, p] * F[b, j, p]`` (not normalised).
    """
    if torch.is_grad_enabled() and (flat.requires_grad or (weights is not None and weights.requires_grad)):
        return _OuterProducts.apply(flat, weights)
    return torch.bmm(flat if weights is None else flat * weights, flat.transpose(1, 2))  # also what ONNX export sees


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations averaged over positions.

    Args:
        features: ``(B, C, H, W)``.

    Returns:
        ``(B, C, C)`` with ``G[b, i, j] = sum_p F[b, i, p] * F[b, j, p] / (H * W)``.
    """
    b, c, h, w = features.shape
    return outer_products(features.reshape(b, c, h * w)) / (h * w)


def _relative_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (x - target).pow(2).mean() / (target.pow(2).mean() + _EPS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss ``mean((F - P)^2) / mean(P^2)``; shapes ``(B, C, H, W)``, scalar out."""
    return _relative_mse(features, target)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Gram style loss ``mean((G(F) - A)^2) / mean(A^2)``.

    Args:
        features: ``(B, C, H, W)`` activations of the image being optimised.
        target_gram: ``(C, C)`` or ``(B, C, C)`` target Gram matrix (see :func:`gram_matrix`).
    """
    return _relative_mse(gram_matrix(features), target_gram)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference of vertical and horizontal neighbours of ``(B, C, H, W)``."""
    dy = image[..., 1:, :] - image[..., :-1, :]
    dx = image[..., :, 1:] - image[..., :, :-1]
    return dy.pow(2).mean() + dx.pow(2).mean()


def range_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared amount by which ``(B, C, H, W)`` pixels leave ``[0, 1]`` (0 inside the range).

    Optimisers such as L-BFGS cannot be clamped without breaking their curvature history; this soft penalty
    keeps the optimised image inside the displayable range, so clamping the result changes little.
    """
    return (image - image.clamp(0, 1)).pow(2).mean()


class ContentLoss(nn.Module):
    """:func:`content_loss` against a fixed target ``(B, C, H, W)``."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target)


class StyleLoss(nn.Module):
    """:func:`style_loss` against a fixed target Gram matrix.

    Build it from style activations with :meth:`from_features`; several styles blend by a weighted average of
    their Gram matrices (equivalent, up to a constant, to the weighted sum of the separate losses).
    """

    def __init__(self, target_gram: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target_gram.detach())

    @classmethod
    def from_features(cls, features: list[torch.Tensor], weights: list[float] | None = None) -> "StyleLoss":
        """Target = weighted mean of the Gram matrices of ``features`` (each ``(1, C, H, W)``)."""
        weights = weights or [1.0] * len(features)
        total = float(sum(weights))
        gram = sum(w / total * gram_matrix(f) for w, f in zip(weights, features))
        return cls(gram)  # type: ignore[arg-type]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return style_loss(features, self.target)


class TVLoss(nn.Module):
    """:func:`tv_loss` as a module."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return tv_loss(image)
