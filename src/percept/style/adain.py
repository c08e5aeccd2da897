"""Arbitrary style transfer in real time with Adaptive Instance Normalisation (Huang & Belongie, ICCV 2017).

One forward pass instead of an optimisation. The encoder ``f`` (``vgg19:gatys`` up to relu4_1, reflection
padding, frozen) maps the content image ``c`` and the style image ``s`` to features; AdaIN gives the content
features the channel-wise mean ``mu`` and standard deviation ``sigma`` of the style features::

    t = AdaIN(f(c), f(s)) = sigma(f(s)) * (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))

and the decoder ``g`` (:mod:`percept.style.decoder`) turns ``t`` into the stylised image ``g(t)``. The paper's
test-time controls (its Sec. 7) are options of :func:`stylize_adain`:

* content-style trade-off: ``t = alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c)``;
* style interpolation: a convex combination ``sum_k w_k AdaIN(f(c), f(s_k))`` of the targets of several styles;
* colour preservation: recolour the style to the content's colour statistics first, or transfer luminance only;
* spatial control: a mask gives the foreground style 1 and the background style 2, each region normalised with
  its own content statistics.

:func:`train_adain` trains a decoder as in the paper: content loss ``|f(g(t)) - t|^2`` at relu4_1, style loss
the squared differences of channel means and standard deviations of ``f(g(t))`` and ``f(s)`` at relu1_1,
relu2_1, relu3_1 and relu4_1, Adam with the learning rate decay of the paper's code.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PerceptError
from ..models import FeatureNet, get_model
from ..models.formats import ADAIN_ENCODER
from .decoder import Decoder, load_decoder
from .params import check_blend_weights

#: Layers of the paper's style loss; the last one is the AdaIN layer (content loss, decoder input).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
ADAIN_LAYER = ADAIN_ENCODER["layer"]
#: The encoder downsamples by 8 (three poolings); images are padded to a multiple of it.
STRIDE = 8


# ------------------------------------------------------------------------------------------ the operation


def mean_std(
    features: torch.Tensor, weights: torch.Tensor | None = None, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over the positions of ``features``.

    Args:
        features: ``(B, C, H, W)``.
        weights: optional ``(B, 1, H, W)`` or ``(1, 1, H, W)`` in ``[0, 1]``: the statistics of that region only
            (weighted mean and unbiased weighted variance; for a binary mask exactly those of the positions
            inside it).
        eps: added to the variance (as in the paper's code), so a flat channel has std ``sqrt(eps)``.

    Returns:
        ``(mean, std)``, each ``(B, C, 1, 1)``. The variance is unbiased (divides by ``N - 1``).
    """
    flat = features.flatten(2)
    if weights is None:
        return flat.mean(2)[..., None, None], (flat.var(2) + eps).sqrt()[..., None, None]
    w = weights.expand(features.shape[0], 1, *features.shape[2:]).flatten(2)
    total = w.sum(2, keepdim=True).clamp_min(1e-8)
    mean = (w * flat).sum(2, keepdim=True) / total
    dof = (total - w.pow(2).sum(2, keepdim=True) / total).clamp_min(1e-8)
    var = (w * (flat - mean).pow(2)).sum(2, keepdim=True) / dof
    return mean.unsqueeze(-1), (var + eps).sqrt().unsqueeze(-1)


def adain(
    content_feat: torch.Tensor,
    style_feat: torch.Tensor,
    eps: float = 1e-5,
    *,
    content_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adaptive instance normalisation: normalise each content channel, then scale and shift it by the style's.

    Args:
        content_feat: ``(B, C, H, W)``.
        style_feat: ``(B, C, H', W')`` or ``(1, C, H', W')`` (any spatial size: only its statistics count).
        eps: added to both variances (see :func:`mean_std`).
        content_mask: optional ``(B or 1, 1, H, W)`` weights in ``[0, 1]``: normalise with the statistics of that
            region of the content (spatial control). The output is defined everywhere.

    Returns:
        ``(B, C, H, W)`` whose channel means and stds (inside ``content_mask``) are the style's.
    """
    c_mean, c_std = mean_std(content_feat, content_mask, eps)
    s_mean, s_std = mean_std(style_feat, eps=eps)
    return (content_feat - c_mean) / c_std * s_std + s_mean


class AdaIN(nn.Module):
    """:func:`adain` as a module: ``AdaIN()(content_feat, style_feat)``."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, content_feat: torch.Tensor, style_feat: torch.Tensor) -> torch.Tensor:
        return adain(content_feat, style_feat, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


def adain_target(
    content_feat: torch.Tensor,
    style_feats: Sequence[torch.Tensor],
    *,
    alpha: float = 1.0,
    style_blend_weights: Sequence[float] | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The decoder input ``t`` for one content and one or more styles (the paper's test-time controls).

    Args:
        content_feat: ``(B, C, H, W)`` content features ``f(c)``.
        style_feats: features ``(1, C, H_k, W_k)`` of each style.
        alpha: content-style trade-off in ``[0, 1]``: ``t = alpha * target + (1 - alpha) * f(c)``.
        style_blend_weights: one per style, the convex combination ``target = sum_k w_k AdaIN(f(c), f(s_k))``
            (normalised to sum 1; default equal).
        mask: ``(B or 1, 1, H, W)`` in ``[0, 1]`` (two styles exactly): ``target = m * AdaIN_m(f(c), f(s_1)) +
            (1 - m) * AdaIN_{1-m}(f(c), f(s_2))``, where ``AdaIN_m`` normalises with the content's statistics
            inside ``m``.

    Returns:
        ``t``, shaped like ``content_feat``.
    """
    if mask is not None:
        if len(style_feats) != 2:
            raise PerceptError(f"a mask needs exactly two styles (foreground, background), got {len(style_feats)}")
        fg = adain(content_feat, style_feats[0], content_mask=mask)
        bg = adain(content_feat, style_feats[1], content_mask=1 - mask)
        target = mask * fg + (1 - mask) * bg
    else:
        n = len(style_feats)
        weights = check_blend_weights(list(style_blend_weights or []), n, what="style(s)") or [1.0 / n] * n
        target = sum(w * adain(content_feat, s) for w, s in zip(weights, style_feats))
    return alpha * target + (1 - alpha) * content_feat


def mean_std_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's style loss at one layer: ``mse(mu(F), mu(S)) + mse(sigma(F), sigma(S))`` (scalar).

    ``features`` ``(B, C, H, W)``; ``target`` ``(B or 1, C, H', W')``. Means over batch and channels.
    """
    mean, std = mean_std(features)
    t_mean, t_std = mean_std(target)
    return F.mse_loss(mean, t_mean.expand_as(mean)) + F.mse_loss(std, t_std.expand_as(std))


# -------------------------------------------------------------------------------------------- the network


class AdaINNet(nn.Module):
    """Encoder ``f`` + AdaIN + decoder ``g``.

    Args:
        encoder: a :class:`~percept.models.FeatureNet` (``vgg19:gatys``, reflection padding; frozen).
        decoder: a :class:`~percept.style.decoder.Decoder` for that encoder.

    ``net(content, style, alpha)`` stylises a batch ``(B, 3, H, W)`` in ``[0, 1]`` with one style
    ``(1, 3, H', W')`` and returns ``(B, 3, H, W)`` in ``[0, 1]``; build one with :func:`load_adain` and reuse it
    (for video frames, say) to skip loading the weights again.
    """

    def __init__(self, encoder: FeatureNet, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    #: Memory layout of the inputs of the convolutions; :func:`load_adain` uses channels-last, the faster layout
    #: for inference on CPUs and GPUs (the values do not depend on it).
    memory_format: torch.memory_format = torch.contiguous_format

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> relu4_1 features ``(B, 512, H // 8, W // 8)``."""
        return self.encoder(image.contiguous(memory_format=self.memory_format), [ADAIN_LAYER])[ADAIN_LAYER]

    def decode(self, target: torch.Tensor) -> torch.Tensor:
        """Features ``(B, 512, h, w)`` -> image ``(B, 3, 8h, 8w)``, not clamped."""
        return self.decoder(target.contiguous(memory_format=self.memory_format)).contiguous()

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(content, STRIDE)
        target = adain_target(self.encode(padded), [self.encode(style)], alpha=alpha)
        return self.decode(target)[..., :h, :w].clamp(0, 1)


def load_adain(decoder: str | os.PathLike | None = None, *, device: str | torch.device = "cpu") -> AdaINNet:
    """The AdaIN network with pretrained weights, frozen, in eval mode, on ``device``.

    ``decoder``: a registered decoder name (default: the published ``coco_wikiart``) or a decoder file (see
    :mod:`percept.style.decoder`).
    """
    net = AdaINNet(_encoder(device), load_decoder(decoder, device=device)).eval()
    net.memory_format = torch.channels_last
    return net.to(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=2)
def shared_adain(decoder: str | None, stamp: tuple[int, int] | None, device: torch.device) -> AdaINNet:
    """:func:`load_adain` kept between :func:`stylize_adain` calls; ``stamp`` (mtime, size) of a decoder file
    makes a rewritten file load again."""
    return load_adain(decoder, device=device)


def _encoder(device: str | torch.device) -> FeatureNet:
    arch, weights = ADAIN_ENCODER["encoder"].split(":")
    return get_model(arch, weights, kind="features", padding_mode=ADAIN_ENCODER["padding_mode"], last=ADAIN_LAYER,
                     device=device)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflection-pad ``(B, C, H, W)`` on the bottom and right to multiples of ``multiple``; return it and
    the original ``(H, W)`` (crop the result back with ``[..., :H, :W]``)."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == pad_w == 0:
        return image, (h, w)
    return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect"), (h, w)
