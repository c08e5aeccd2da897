"""The layers of a network with their output shapes: the names every other ``explain`` method takes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..device import module_device
from ..models import FeatureNet
from .hooks import capture, layer_names
from .layer_features import load_network
from .params import LayersParams, explain_settings


def layer_shapes(model: nn.Module, *, size: int = 224) -> list[tuple[str, tuple[int, ...] | None]]:
    """``(name, output shape without the batch)`` of every layer of ``model`` that a ``size`` px forward pass runs,
    in definition order (containers never called themselves are left out); a
    :class:`~percept.models.FeatureNet`'s own layer names come with ``None`` (their shapes depend on the input)."""
    if isinstance(model, FeatureNet):
        return [(name, None) for name in model.layer_names]
    names = layer_names(model)
    with torch.no_grad(), capture(model, names, detach=True) as acts:
        model(torch.rand(1, 3, size, size, device=module_device(model)))
    return [(name, tuple(acts[name].shape[1:])) for name in names if name in acts]


def explain_layers(**settings: Any) -> list[tuple[str, tuple[int, ...] | None]]:
    """:func:`layer_shapes` at 224 px of the network of ``settings``
    (:class:`~percept.understand.params.LayersParams`)."""
    params = explain_settings(LayersParams, settings)
    return layer_shapes(load_network(params.model, device=params.device).model)
