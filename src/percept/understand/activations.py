"""Activation maps: where in an image each channel of a layer responds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.utils import make_grid

from ..device import module_device
from ..errors import PerceptError
from ..image import to_tensor
from ..record import describe_input
from .ascent import check_image
from .explanation import Explanation, as_pil, explained
from .hooks import layer_outputs
from .layer_features import load_network
from .params import ActivationsParams, explain_settings


def activation_maps(model: nn.Module, image: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of ``layer`` for ``image`` ``(1, 3, H, W)`` in [0, 1]: ``(C, h, w)``, float32 on the CPU.

    ``layer`` is a module name of ``model`` (see :func:`percept.understand.hooks.layer_names`), or for a
    :class:`~percept.models.FeatureNet` one of its layer names (``relu3_1``); it must produce a feature map.
    """
    check_image(image)
    with torch.no_grad():
        out = layer_outputs(model, image.to(module_device(model)), [layer])[layer]
    if out.dim() != 4:
        raise PerceptError(f"layer {layer!r} gives a tensor of shape {tuple(out.shape)}, not a feature map; "
                           "choose a convolutional layer")
    return out[0].float().cpu()


def strongest_channels(maps: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` channels of ``maps`` ``(C, h, w)`` with the largest mean activation."""
    return maps.mean(dim=(1, 2)).argsort(descending=True)[:count].tolist()


def maps_grid(maps: torch.Tensor, channels: list[int], *, columns: int = 8, cell: int = 96,
              colormap: str = "viridis") -> torch.Tensor:
    """Draw the chosen channels of ``maps`` ``(C, h, w)`` as one image ``(1, 3, H, W)`` in [0, 1].

    Each map is scaled to its own [min, max], coloured with a matplotlib colormap and enlarged to ``cell``
    pixels on its longer side (bilinear).
    """
    from matplotlib import colormaps

    if not channels:
        raise PerceptError("no channels to draw")
    bad = [c for c in channels if not 0 <= c < maps.shape[0]]
    if bad:
        raise PerceptError(f"channel {bad[0]} out of range; the layer has {maps.shape[0]} channels")
    chosen = maps[channels]
    low = chosen.amin(dim=(1, 2), keepdim=True)
    span = (chosen.amax(dim=(1, 2), keepdim=True) - low).clamp_min(1e-12)
    normed = ((chosen - low) / span).numpy()
    coloured = torch.from_numpy(colormaps[colormap](normed)[..., :3]).permute(0, 3, 1, 2).float()
    h, w = maps.shape[-2:]
    size = (cell, max(1, round(cell * w / h))) if h >= w else (max(1, round(cell * h / w)), cell)
    coloured = nn.functional.interpolate(coloured, size=size, mode="bilinear", align_corners=False)
    return make_grid(coloured, nrow=columns, padding=2, pad_value=1.0).unsqueeze(0)


@dataclass
class ActivationMaps:
    """A layer's output for one image, ``maps`` ``(C, h, w)``, and the ``channels`` drawn, strongest first."""

    maps: torch.Tensor
    channels: list[int]


def explain_activations(image: Any, **settings: Any) -> Explanation[ActivationMaps]:
    """Load the network of ``settings`` (:class:`~percept.understand.params.ActivationsParams`), feed it ``image``
    (a file, PIL image or tensor; longest side ``size``) and draw the strongest channels of ``layer``."""
    params = explain_settings(ActivationsParams, settings)
    if not params.layer:
        raise PerceptError("give the layer to show (--layer; `percept explain layers` lists them)")
    x = to_tensor(as_pil(image), longest=params.size)
    maps = activation_maps(load_network(params.model, device=params.device).model, x, params.layer)
    channels = strongest_channels(maps, min(params.channels, maps.shape[0]))
    return explained(params, maps_grid(maps, channels), ActivationMaps(maps, channels),
                     inputs={"image": describe_input(image)}, strongest=channels, map_shape=list(maps.shape))
