"""DeepGaze I and II: a trained readout of frozen ImageNet features, turned into a fixation density.

DeepGaze I (Kümmerer, Theis & Bethge 2015) reads AlexNet features with one pointwise linear map; DeepGaze II
(Kümmerer, Wallis, Gatys & Bethge 2017) reads several VGG-19 layers with a small network of 1x1 convolutions
(softplus between them). Both then go the same way (:class:`DeepGaze`)::

    features (B, C, h, w) --standardise--> readout (B, h, w) --bilinear--> (B, H, W) --Gaussian blur (learnt
    sigma)--> + w * log centre bias (learnt weight w) --log-softmax over the H*W pixels--> log-density (B, H, W)

The features are standardised per channel with statistics of the training images (buffers ``mean``, ``std``): a
reparametrisation that makes the learning rate mean the same for every network. The last readout layer starts at
zero, so an untrained model *is* the centre bias, and any gain over it is learnt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .resample import interpolation_matrix

#: Initial blur, px of the 256-px working grid.
SIGMA_INIT = 8.0
#: Largest blur radius applied, px (the kernel is cut at 4 sigma, and at this).
MAX_RADIUS = 64


class GaussianBlur(nn.Module):
    """A Gaussian blur whose ``sigma`` (px) is learnt (as its logarithm), borders replicated.

    Along an axis of ``n`` px the blur is a matrix ``(n, n)`` (:meth:`matrix`; kernel cut at 4 sigma, at most
    :data:`MAX_RADIUS`, each row summing to 1), so ``forward`` maps ``(B, H, W)`` to ``K_H @ x @ K_W.T`` and
    DeepGaze folds its upsampling into the same two products.
    """

    def __init__(self, sigma: float = SIGMA_INIT) -> None:
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))

    @property
    def sigma(self) -> float:
        return float(self.log_sigma.detach().exp())

    def matrix(self, n: int) -> torch.Tensor:
        """``(n, n)``: row ``i`` holds the weights of the pixels blurred into pixel ``i``."""
        sigma = self.log_sigma.exp()
        radius = max(1, min(MAX_RADIUS, math.ceil(4 * float(sigma.detach()))))
        offsets = torch.arange(-radius, radius + 1, device=sigma.device)
        weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
        weights = (weights / weights.sum()).expand(n, -1)
        index = (torch.arange(n, device=sigma.device)[:, None] + offsets[None, :]).clamp(0, n - 1)
        return torch.zeros(n, n, device=sigma.device, dtype=weights.dtype).scatter_add(1, index, weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix(x.shape[-2]) @ x @ self.matrix(x.shape[-1]).T


def readout_network(channels: int, outputs: Sequence[int]) -> nn.Sequential:
    """1x1 convolutions ``channels -> outputs[0] -> ... -> outputs[-1]`` (= 1) with softplus between them; the
    last one starts at zero. ``outputs=[1]`` is DeepGaze I's linear readout (no bias: the softmax ignores it)."""
    layers: list[nn.Module] = []
    c = channels
    for i, out in enumerate(outputs):
        last = i == len(outputs) - 1
        conv = nn.Conv2d(c, out, 1, bias=len(outputs) > 1)
        if last:
            nn.init.zeros_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        layers.append(conv)
        if not last:
            layers.append(nn.Softplus())
        c = out
    return nn.Sequential(*layers)


class DeepGaze(nn.Module):
    """Features of one or more same-size images -> their log fixation densities (see the module docstring).

    Args:
        channels: channels of the (concatenated) features read.
        readout: output channels of the readout's 1x1 convolutions; ``[1]`` for DeepGaze I, ``[8, 16, 2, 1]``
            for DeepGaze II.
        sigma: initial blur, px of the output grid.

    ``forward(features (B, C, h, w), log_centre_bias (H, W))`` -> ``(B, H, W)`` log-densities, each with
    ``logsumexp`` over its pixels = 0.
    """

    def __init__(self, channels: int, readout: Sequence[int] = (1,), *, sigma: float = SIGMA_INIT) -> None:
        super().__init__()
        self.channels, self.outputs = int(channels), [int(c) for c in readout]
        self.register_buffer("mean", torch.zeros(self.channels))
        self.register_buffer("std", torch.ones(self.channels))
        self.readout = readout_network(self.channels, self.outputs)
        self.blur = GaussianBlur(sigma)
        self.centre_bias_weight = nn.Parameter(torch.tensor(1.0))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise each feature channel with these training statistics ``(C,)`` (a std of 0 counts as 1)."""
        self.mean.copy_(mean)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def saliency(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(B, C, h, w)`` -> ``(B, H, W)``: the readout upsampled (bilinear) to ``size = (H, W)`` and blurred,
        before the centre bias; both are linear, so they run as ``M_H @ readout @ M_W.T``."""
        x = (features.float() - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        r = self.readout(x)[:, 0]
        (big_h, big_w), (h, w) = size, r.shape[-2:]
        up_h = torch.from_numpy(interpolation_matrix(big_h, h)).to(r)
        up_w = torch.from_numpy(interpolation_matrix(big_w, w)).to(r)
        return (self.blur.matrix(big_h) @ up_h) @ r @ (self.blur.matrix(big_w) @ up_w).T

    def forward(self, features: torch.Tensor, log_centre_bias: torch.Tensor) -> torch.Tensor:
        size = tuple(log_centre_bias.shape[-2:])
        logits = self.saliency(features, size) + self.centre_bias_weight * log_centre_bias
        return torch.log_softmax(logits.flatten(1), dim=1).view(-1, *size)

    def facts(self) -> dict[str, float]:
        """The learnt scalars: blur sigma (px) and centre-bias weight."""
        return {"blur_sigma_px": round(self.blur.sigma, 3),
                "centre_bias_weight": round(float(self.centre_bias_weight.detach()), 4)}
