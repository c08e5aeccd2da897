"""Style by region: masks that say which style paints where, and guided Gram matrices (Gatys, Ecker, Bethge,
Hertzmann & Shechtman, "Controlling perceptual factors in neural style transfer", CVPR 2017).

Mask format (the same for optimisation and AdaIN):

* **two styles, one mask**: white (1) gets the first style, black (0) the second, grey blends (``m`` and
  ``1 - m``);
* **K styles, K masks** (one per style, in the styles' order; on the command line comma-separated,
  ``--mask sky.png,ground.png``): each mask is the weight of its style; where masks overlap the styles blend in
  proportion (the weights are normalised to sum 1 at every pixel). Every pixel must be in some mask and every
  style must have some pixel.

A mask is an image file, a PIL image or a tensor in ``[0, 1]``: ``(H, W)``/``(1, H, W)``/``(1, 1, H, W)`` for one
mask, ``(K, H, W)``/``(1, K, H, W)`` for K masks. It must have the content's aspect ratio (2 % tolerance) and is
resized to the output (bilinear, antialiased), then to each layer's grid by area averaging
(:func:`downsample_mask`): the average-pooling propagation of the paper, exact for VGG's 2x2 poolings when the
sides are even.

The optimisation's style loss for style ``k`` at a layer compares the Gram matrix of the generated features
weighted by mask ``k`` and normalised by the mask's sum (:func:`guided_gram`) with the style image's whole Gram
matrix, as a relative error like :func:`percept.losses.style_loss`; the regions' losses add up weighted by each
region's share of the image, so every pixel is pushed as hard as without a mask, and one style on the whole
image is exactly the plain loss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import PerceptError
from ..image import load_image, to_tensor
from ..losses import gram_matrix, outer_products
from ..record import describe_input

#: Largest aspect-ratio difference between the mask and the content, as ``|log(ratio_mask / ratio_content)|``.
ASPECT_TOLERANCE = 0.02
#: A style whose largest mask weight is below half of one 8-bit grey level has no pixels.
EMPTY = 0.5 / 255
_EPS = 1e-8


# ------------------------------------------------------------------------------------------------ the masks


def mask_items(mask: Any) -> list[Any]:
    """The separate masks of a ``mask`` setting: a comma-separated string of files (unless the whole string is an
    existing file), a list or tuple, or one mask."""
    if isinstance(mask, (str, os.PathLike)):
        text = os.fspath(mask)
        if "," in text and not Path(text).exists():
            parts = [p.strip() for p in text.split(",")]
            if not all(parts):
                raise PerceptError(f"mask {text!r} has an empty name; give files separated by commas: a.png,b.png")
            return parts
        return [mask]
    if isinstance(mask, (list, tuple)):
        return list(mask)
    return [mask]


def _read(item: Any) -> torch.Tensor:
    """One mask item -> ``(k, H, W)`` float in ``[0, 1]`` on the CPU (k > 1 only for a multi-channel tensor)."""
    if isinstance(item, (str, os.PathLike, Image.Image)):
        pil = (item if isinstance(item, Image.Image) else load_image(item, what="mask")).convert("L")
        return to_tensor(pil.convert("RGB"))[0, :1]
    if isinstance(item, torch.Tensor):
        m = item.detach().float().cpu()
        while m.dim() > 3 and m.shape[0] == 1:
            m = m[0]
        if m.dim() == 2:
            m = m[None]
        if m.dim() != 3:
            raise PerceptError(f"mask tensor must have shape (H, W), (1, H, W) or (1, 1, H, W) (one mask) or "
                               f"(K, H, W), (1, K, H, W) (one per style), got {tuple(item.shape)}")
        if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise PerceptError("mask tensor values must lie in [0, 1] (1 = the mask's style)")
        return m
    raise PerceptError(f"mask must be an image file, a PIL image or a tensor, not {type(item).__name__}")


def load_masks(mask: Any, styles: int, content_size: tuple[int, int]) -> torch.Tensor:
    """Read, check and normalise the masks of ``styles`` style images.

    Args:
        mask: a file (or comma-separated files), a PIL image, a tensor, or a list of them (see the module).
        styles: the number of style images.
        content_size: ``(w, h)`` of the content (the output); the masks must have its aspect ratio.

    Returns:
        ``(1, K, H, W)`` on the CPU at the masks' own resolution, K = ``styles``, summing to 1 at every pixel.

    Raises:
        PerceptError: one line for a missing or unreadable file, a wrong type, shape or value range, masks of
            different sizes, a mask count that does not match the styles, a wrong aspect ratio, a pixel in no mask,
            or a style that no pixel uses.
    """
    items = mask_items(mask)
    parts = [_read(item) for item in items]
    sizes = {tuple(p.shape[-2:]) for p in parts}
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for h, w in (tuple(p.shape[-2:]) for p in parts))
        raise PerceptError(f"the masks differ in size ({shown} px); give masks of one size")
    masks = torch.cat(parts)
    count = masks.shape[0]
    if count == 1:
        if styles != 2:
            more = f"; for {styles} styles give one mask per style, comma-separated" if styles > 2 else ""
            raise PerceptError(f"a mask needs exactly two style images (white: the first, black: the second), got "
                               f"{styles}{more}")
        masks = torch.cat([masks, 1 - masks])
    elif count != styles:
        if len(items) == 1 and isinstance(items[0], torch.Tensor):
            raise PerceptError(f"mask tensor must have shape (H, W) (two styles) or (K, H, W) with K = {styles} (one "
                               f"channel per style), got {tuple(items[0].shape)}")
        raise PerceptError(f"{count} masks for {styles} style images; give one mask for two styles or one mask per "
                           "style")
    (w, h), (mw, mh) = content_size, (masks.shape[-1], masks.shape[-2])
    if abs(math.log((mw / mh) / (w / h))) > ASPECT_TOLERANCE:
        raise PerceptError(f"mask is {mw}x{mh} px but the content is {w}x{h}: give a mask with the content's "
                           "aspect ratio")
    if count > 1:
        total = masks.sum(0, keepdim=True)
        uncovered = int((total < _EPS).sum())
        if uncovered:
            raise PerceptError(f"{uncovered} of {mw * mh} mask pixels are black in every mask; every pixel needs a "
                               "style: make the masks cover the image")
        masks = masks / total
    for k in range(styles):
        if float(masks[k].max()) < EMPTY:
            which = f"mask {k + 1}" if count > 1 else ("the mask is black everywhere" if k == 0
                                                         else "the mask is white everywhere")
            raise PerceptError(f"style {k + 1} has no pixels ({which}); drop that style or give it a region")
    return masks[None]


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(1, K, H, W)`` masks -> ``(1, K, h, w)`` at ``size=(w, h)`` (bilinear, antialiased; sums stay 1)."""
    w, h = size
    if tuple(masks.shape[-2:]) == (h, w):
        return masks
    return F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def mask_record(mask: Any) -> tuple[str, Any]:
    """What a record keeps of a ``mask`` setting: the ``mask`` parameter (the file names, comma-separated; "" for
    masks held in memory) and the ``inputs["mask"]`` entry (one :func:`percept.record.describe_input`, or a list
    of them for several masks)."""
    items = mask_items(mask)
    files = all(isinstance(i, (str, os.PathLike)) for i in items)
    described = [describe_input(i) for i in items]
    return (",".join(os.fspath(i) for i in items) if files else ""), (described[0] if len(items) == 1 else described)


# ----------------------------------------------------------------------------------- the pure functions


def downsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Masks on a layer's grid: the average of the pixels each cell covers (adaptive average pooling).

    Args:
        mask: ``(B, K, H, W)`` weights in ``[0, 1]``.
        size: ``(h, w)`` of the layer's feature map.

    Returns:
        ``(B, K, h, w)``. For ``H = 2h`` it is 2x2 average pooling: a VGG pooling stage. Weights that sum to 1 over
        ``K`` still do.
    """
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.adaptive_avg_pool2d(mask, tuple(size))


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the positions inside a (soft) mask: their weighted average outer product.

    Args:
        features: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)`` or ``(1, 1, H, W)`` weights in ``[0, 1]``, on the features' grid.

    Returns:
        ``(B, C, C)`` with ``G[b] = sum_p m_p F_p F_p^T / sum_p m_p``; a mask of ones gives
        :func:`percept.losses.gram_matrix`.
    """
    b, c, h, w = features.shape
    if tuple(mask.shape[-2:]) != (h, w) or mask.shape[1] != 1:
        raise PerceptError(f"mask {tuple(mask.shape)} does not fit features {tuple(features.shape)}; "
                           "downsample it with downsample_mask")
    flat = features.reshape(b, c, h * w)
    weights = mask.reshape(mask.shape[0], 1, h * w).expand(b, 1, h * w).to(flat.dtype)
    return outer_products(flat, weights) / weights.sum(2, keepdim=True).clamp_min(_EPS)


def region_style_loss(features: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor,
                      shares: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Style loss of several regions at one layer.

    Args:
        features: ``(1, C, H, W)`` of the image being optimised.
        masks: ``(1, K, H, W)`` region weights on the features' grid.
        targets: ``(K, C, C)`` the whole Gram matrix of each style image.
        shares: ``K`` weights of the regions (their share of the image).

    Returns:
        Scalar ``sum_k shares_k * mean((G_k - A_k)^2) / mean(A_k^2)`` with ``G_k`` the :func:`guided_gram` of
        region ``k``.
    """
    loss = features.new_zeros(())
    for k in range(targets.shape[0]):
        gram = guided_gram(features, masks[:, k : k + 1])
        loss = loss + shares[k] * (gram - targets[k]).pow(2).mean() / (targets[k].pow(2).mean() + _EPS)
    return loss


class RegionStyleLoss(nn.Module):
    """:func:`region_style_loss` at one layer for fixed style targets and masks at the image's resolution."""

    def __init__(self, style_features: Sequence[torch.Tensor], masks: torch.Tensor) -> None:
        """``style_features``: each style's ``(1, C, h_k, w_k)`` at this layer; ``masks``: ``(1, K, H, W)`` on the
        generated image's grid."""
        super().__init__()
        self.register_buffer("targets", torch.cat([gram_matrix(f) for f in style_features]).detach())
        self.register_buffer("masks", masks.detach())
        self.shares = [float(s) for s in masks.mean((0, 2, 3))]
        self._grid: dict[tuple[int, int], torch.Tensor] = {}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        size = tuple(features.shape[-2:])
        if size not in self._grid:
            self._grid[size] = downsample_mask(self.masks, size)
        return region_style_loss(features, self._grid[size], self.targets, self.shares)


def region_errors(features: dict[str, torch.Tensor], masks: torch.Tensor,
                  style_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """How close each region's style is to each style image: the relative Gram error of every region to every
    style, per layer (a measurement, not a loss).

    Args:
        features: ``{layer: (1, C, H_l, W_l)}`` of an image.
        masks: ``(1, K, H, W)`` regions on the image's grid.
        style_grams: ``{layer: (S, C, C)}`` whole Gram matrices of S style images.

    Returns:
        ``(L, K, S)`` in the order of ``style_grams``: ``mean((G_k - A_s)^2) / mean(A_s^2)``.
    """
    rows = []
    for layer, grams in style_grams.items():
        grid = downsample_mask(masks, tuple(features[layer].shape[-2:]))
        per_region = []
        for k in range(masks.shape[1]):
            g = guided_gram(features[layer], grid[:, k : k + 1])[0]
            per_region.append(torch.stack([(g - a).pow(2).mean() / (a.pow(2).mean() + _EPS) for a in grams]))
        rows.append(torch.stack(per_region))
    return torch.stack(rows)
