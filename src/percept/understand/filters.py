"""First-layer filters: what the network looks for in raw pixels (oriented edges, colour blobs, ...)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.utils import make_grid

from ..errors import PerceptError
from ..models.preprocess import CaffeBGR
from .explanation import Explanation, explained
from .layer_features import load_network
from .params import FiltersParams, explain_settings


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` (in definition order) that reads the 3 colour channels of the image."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3 and module.groups == 1:
            return module
    raise PerceptError(f"{type(model).__name__} has no convolution over the 3 colour channels")


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's weights as RGB filters ``(N, 3, k, k)`` (a copy, float32, on the CPU).

    Networks whose preprocessing swaps to BGR (Caffe weights, :class:`~percept.models.preprocess.CaffeBGR`)
    have their channel order flipped back, so the colours shown are the ones the filter responds to.
    """
    weight = first_conv(model).weight.detach().float().cpu().clone()
    if any(isinstance(m, CaffeBGR) for m in model.modules()):
        weight = weight.flip(1)
    return weight


def filter_grid(filters: torch.Tensor, *, columns: int = 8, cell: int = 32, padding: int = 2) -> torch.Tensor:
    """Draw filters ``(N, 3, k, k)`` as one image ``(1, 3, H, W)`` in [0, 1].

    All filters share one scale, symmetric around zero (0.5 grey = 0), so their strengths compare; each is
    enlarged to ``cell`` pixels (nearest neighbour: the kernel's pixels stay visible), ``columns`` per row.
    """
    if filters.dim() != 4 or filters.shape[1] != 3:
        raise PerceptError(f"filters must be (N, 3, k, k), got {tuple(filters.shape)}")
    scale = float(filters.abs().max()) or 1.0
    shown = (filters / (2 * scale) + 0.5).clamp(0, 1)
    shown = nn.functional.interpolate(shown, size=(cell, cell), mode="nearest")
    return make_grid(shown, nrow=columns, padding=padding, pad_value=1.0).unsqueeze(0)


def explain_filters(**settings: Any) -> Explanation[torch.Tensor]:
    """Load the network of ``settings`` (:class:`~percept.understand.params.FiltersParams`) and draw its first
    layer's filters; the result is the filters ``(N, 3, k, k)``."""
    params = explain_settings(FiltersParams, settings)
    filters = first_layer_filters(load_network(params.model, device=params.device).model)
    return explained(params, filter_grid(filters, columns=params.columns), filters, filters=int(filters.shape[0]),
                     kernel=list(filters.shape[2:]))
