"""Feature distance: the feature reconstruction loss of Johnson et al. 2016, per layer (0 = identical).

``||f_l(x) - f_l(y)||^2 / (C_l H_l W_l)``: the mean squared difference of a pretrained network's activations at
layer ``l``, per image. Unlike LPIPS nothing is learned on top: the numbers depend on the network's weights and
grow with the activations' scale (Gatys' normalised ``vgg19`` weights, the default, have mean activation 1 per
filter).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from ..device import resolve_device
from ..models.registry import get_model
from .inputs import image_pair

#: The layers compared when none are given: the last ReLU of each block.
FEATURE_LAYERS: dict[str, tuple[str, ...]] = {
    "vgg19": ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"),
    "vgg16": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    "alexnet": ("relu1", "relu2", "relu3", "relu4", "relu5"),
}


@functools.lru_cache(maxsize=4)
def feature_model(model: str, device: str):
    """The shared feature network ``model`` on ``device`` (built on first use)."""
    return get_model(model, kind="features", device=device)


def feature_distance(x: torch.Tensor, y: torch.Tensor, *, model: str = "vgg19", layers: Sequence[str] | None = None,
                     device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """Mean squared feature difference per layer: ``(B, 3, H, W)`` twice, in ``[0, 1]`` -> ``{layer: (B,)}``.

    Args:
        model: a feature network of the registry (``vgg19``, ``vgg16``, ``alexnet``), optionally with its weights
            (``vgg19:caffe``); the network normalises its input itself.
        layers: layer names (``percept models vgg19`` lists them); ``None``: :data:`FEATURE_LAYERS` of the model.
        device: where to compute (``None``: ``x``'s device; ``"auto"``: the fastest here).

    Returns the layers in the order given. Gradients flow to the inputs, so each term is usable as a training loss.
    """
    x, y = image_pair(x, y)
    dev = x.device if device is None else resolve_device(device)
    net = feature_model(model, str(dev))
    wanted = list(layers) if layers else list(FEATURE_LAYERS[net.arch])
    feats = net(torch.cat([x, y]).to(dev), wanted)
    batch = x.shape[0]
    return {layer: (feats[layer][:batch] - feats[layer][batch:]).pow(2).mean(dim=(1, 2, 3)) for layer in wanted}
