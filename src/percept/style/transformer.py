"""The image transformation network of Johnson, Alahi & Fei-Fei (ECCV 2016), with the conditional instance
normalisation of Dumoulin, Shlens & Kudlur (ICLR 2017) so that one network holds several styles.

Architecture (Johnson et al., supplementary Table 1, with Ulyanov's instance normalisation and
Odena et al.'s resize-convolutions)::

    conv 9x9, 32, stride 1   -> IN -> ReLU        (H, W)
    conv 3x3, 64, stride 2   -> IN -> ReLU        (H/2, W/2)
    conv 3x3, 128, stride 2  -> IN -> ReLU        (H/4, W/4)
    5 x residual block, 128: conv 3x3 -> IN -> ReLU -> conv 3x3 -> IN, plus the input (no ReLU after the sum)
    nearest x2, conv 3x3, 64 -> IN -> ReLU        (H/2, W/2)
    nearest x2, conv 3x3, 32 -> IN -> ReLU        (H, W)
    conv 9x9, 3              -> sigmoid           (H, W), RGB in [0, 1]

Every convolution reflection-pads its input (no dark borders). Upsampling is nearest-neighbour followed by a
convolution instead of a transposed convolution, whose uneven kernel overlap draws checkerboard patterns.

**Output in [0, 1] by a sigmoid.** Johnson's network ends in a scaled tanh (``150 * tanh``) because it works in
Caffe's mean-subtracted 0-255 range; for RGB in [0, 1] the same bounded, smooth map is
``(tanh(x / 2) + 1) / 2 = sigmoid(x)``. Bounding by the activation rather than clamping keeps a gradient on
every pixel (a clamp's zero gradient lets pixels stick at black or white), and a zero-initialised output
starts at mid-grey.

**Styles.** Every normalisation layer is a :class:`ConditionalInstanceNorm2d` holding one ``(gamma, beta)``
per style; with ``num_styles=1`` it is an ordinary affine instance norm. The forward pass takes style weights
``(S,)`` or ``(B, S)``: one-hot selects a style, a convex combination blends the styles' ``gamma`` and
``beta`` (Dumoulin et al., section 4).

**Fixed statistics.** Instance norm normalises with the mean and variance of the image it sees. For tiled
inference (:mod:`percept.style.tiling`) :meth:`TransformNet.statistics` records those statistics once on a
whole image, and ``forward(..., statistics=...)`` normalises every tile with them instead of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PerceptError

#: Per normalisation layer, in forward order: mean and variance over the positions, each ``(B, C, 1, 1)``.
NormStatistics = list[tuple[torch.Tensor, torch.Tensor]]

#: Channels after the first, second and third convolution (Johnson et al., Table 1).
DEFAULT_CHANNELS = (32, 64, 128)
RESIDUAL_BLOCKS = 5
EPS = 1e-5
#: Smallest input side: the deepest reflection padding (1 px at 1/4 resolution) needs at least 2 px there.
MIN_SIDE = 8


def instance_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance of ``(B, C, H, W)`` over the positions, each ``(B, C, 1, 1)``."""
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return mean, var


def conditional_instance_norm(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    style: torch.Tensor,
    statistics: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Instance normalisation with a scale and shift blended from per-style parameters.

    Args:
        x: ``(B, C, H, W)``.
        gamma, beta: ``(S, C)``, one row per style.
        style: ``(B, S)`` style weights (one-hot for one style; rows summing to 1 to blend).
        statistics: mean and variance ``(B or 1, C, 1, 1)`` to normalise with instead of ``x``'s own.

    Returns:
        ``(x - mean) / sqrt(var + eps) * (style @ gamma) + style @ beta``, shape of ``x``.
    """
    if statistics is None and style.shape[0] == 1:  # one image (a video frame): one fused kernel
        return F.instance_norm(x, weight=(style @ gamma)[0], bias=(style @ beta)[0], eps=EPS)
    if statistics is None:
        normed = F.instance_norm(x, eps=EPS)
    else:
        mean, var = statistics
        normed = (x - mean) * torch.rsqrt(var + EPS)
    scale = (style @ gamma)[:, :, None, None]
    shift = (style @ beta)[:, :, None, None]
    return normed * scale + shift


class ConditionalInstanceNorm2d(nn.Module):
    """:func:`conditional_instance_norm` with learned ``gamma`` (ones) and ``beta`` (zeros), each ``(S, C)``."""

    def __init__(self, channels: int, num_styles: int = 1) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor,
                statistics: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        return conditional_instance_norm(x, self.gamma, self.beta, style, statistics)

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[1]}, num_styles={self.gamma.shape[0]}"


class _Measured(Exception):
    """Ends a forward pass as soon as the one norm layer being measured has been measured."""


class _Norms:
    """What the normalisation layers of one forward pass share.

    ``style`` ``(B, S)``; ``fixed``: statistics to normalise the first ``len(fixed)`` layers with (the others use
    their own); ``record``: a list that receives each layer's own statistics, or only layer ``layer``'s (the
    pass then stops there), measured over all positions or only over ``region`` ``(top, left, height, width)``
    of the padded input of ``size`` ``(H, W)``, scaled to each layer's resolution.
    """

    def __init__(self, style: torch.Tensor, fixed: NormStatistics | None = None, record: NormStatistics | None = None,
                 region: tuple[int, int, int, int] | None = None, size: tuple[int, int] = (1, 1),
                 layer: int | None = None) -> None:
        self.style, self.fixed, self.record = style, fixed, record
        self.region, self.size, self.layer, self.index = region, size, layer, 0

    def __call__(self, norm: ConditionalInstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
        index, self.index = self.index, self.index + 1
        stats = self.fixed[index] if self.fixed is not None and index < len(self.fixed) else None
        if self.record is not None and self.layer in (None, index):
            if self.region is None:
                own = instance_statistics(x)
                stats = own if stats is None else stats
            else:
                top, left, height, width = (v * x.shape[-1] // self.size[1] for v in self.region)
                own = instance_statistics(x[..., top : top + height, left : left + width])
            self.record.append(own)
            if index == self.layer:
                raise _Measured
        return norm(x, self.style, stats)


class ConvLayer(nn.Sequential):
    """Reflection padding then a ``k x k`` convolution (output ``ceil(H / stride)`` for even padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, bias: bool = True) -> None:
        super().__init__(nn.ReflectionPad2d(kernel // 2),
                         nn.Conv2d(in_channels, out_channels, kernel, stride, bias=bias))


class ConvNormReLU(nn.Module):
    """Optional nearest-neighbour x2 upsampling, :class:`ConvLayer`, conditional instance norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, num_styles: int,
                 upsample: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = ConvLayer(in_channels, out_channels, kernel, stride, bias)
        self.norm = ConditionalInstanceNorm2d(out_channels, num_styles)

    def forward(self, x: torch.Tensor, norms: _Norms) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(norms(self.norm, self.conv(x)), inplace=not torch.is_grad_enabled())

    def extra_repr(self) -> str:
        return "upsample=nearest x2" if self.upsample else ""


class ResidualBlock(nn.Module):
    """``x + IN(conv(ReLU(IN(conv(x)))))``: two 3x3 convolutions, no ReLU after the sum."""

    def __init__(self, channels: int, num_styles: int, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, bias=bias)
        self.norm1 = ConditionalInstanceNorm2d(channels, num_styles)
        self.conv2 = ConvLayer(channels, channels, 3, bias=bias)
        self.norm2 = ConditionalInstanceNorm2d(channels, num_styles)

    def forward(self, x: torch.Tensor, norms: _Norms) -> torch.Tensor:
        h = F.relu(norms(self.norm1, self.conv1(x)), inplace=not torch.is_grad_enabled())
        return x + norms(self.norm2, self.conv2(h))


class TransformNet(nn.Module):
    """Feed-forward style transfer network: RGB ``(B, 3, H, W)`` in [0, 1] -> stylised ``(B, 3, H, W)`` in [0, 1].

    Args:
        num_styles: number of styles ``S`` (one ``(gamma, beta)`` per style in every norm layer).
        channels: widths after the first three convolutions; Johnson et al. use ``(32, 64, 128)``.
        up_channels: widths after the two upsampling convolutions (default: the second and first of ``channels``).
        residual_blocks: number of residual blocks (Johnson et al.: 5).
        out_norm: a conditional instance norm between the last convolution and the sigmoid.
        bias: whether the convolutions have biases (a norm follows every one but the last, which then needs
            ``out_norm``).

    The defaults are Johnson et al.'s network; the other options describe networks trained elsewhere that share
    its design (the multi-style network that ``percept models`` lists as ``multistyle26``).
    Any ``H, W >= 8`` work: the input is reflection-padded to a multiple of 4 and the output cropped back.
    Submodules in forward order: ``conv1, conv2, conv3, res1..resN, up1, up2, out`` (and ``out_norm``).
    """

    def __init__(self, num_styles: int = 1, channels: Sequence[int] = DEFAULT_CHANNELS, *,
                 up_channels: Sequence[int] | None = None, residual_blocks: int = RESIDUAL_BLOCKS,
                 out_norm: bool = False, bias: bool = True) -> None:
        super().__init__()
        if num_styles < 1:
            raise PerceptError(f"num_styles must be >= 1, got {num_styles}")
        c1, c2, c3 = (int(c) for c in channels)
        u1, u2 = (int(c) for c in (up_channels or (c2, c1)))
        self.num_styles, self.channels, self.up_channels = num_styles, (c1, c2, c3), (u1, u2)
        self.residual_blocks, self.bias = int(residual_blocks), bool(bias)
        self.conv1 = ConvNormReLU(3, c1, 9, 1, num_styles, bias=bias)
        self.conv2 = ConvNormReLU(c1, c2, 3, 2, num_styles, bias=bias)
        self.conv3 = ConvNormReLU(c2, c3, 3, 2, num_styles, bias=bias)
        self.res = nn.ModuleList(ResidualBlock(c3, num_styles, bias) for _ in range(self.residual_blocks))
        self.up1 = ConvNormReLU(c3, u1, 3, 1, num_styles, upsample=True, bias=bias)
        self.up2 = ConvNormReLU(u1, u2, 3, 1, num_styles, upsample=True, bias=bias)
        self.out = ConvLayer(u2, 3, 9, bias=bias)
        self.out_norm = ConditionalInstanceNorm2d(3, num_styles) if out_norm else None
        #: What a model file recorded about this network (styles, training, loss network); see feedforward.
        self.metadata: dict = {}

    @property
    def architecture(self) -> dict:
        """The constructor's arguments: ``TransformNet(**net.architecture)`` builds the same network."""
        arch = {"num_styles": self.num_styles, "channels": list(self.channels)}
        extra = {"up_channels": list(self.up_channels), "residual_blocks": self.residual_blocks,
                 "out_norm": self.out_norm is not None, "bias": self.bias}
        default = {"up_channels": [self.channels[1], self.channels[0]], "residual_blocks": RESIDUAL_BLOCKS,
                   "out_norm": False, "bias": True}
        return arch | {k: v for k, v in extra.items() if v != default[k]}  # Johnson's network: the two keys only

    def style_weights(self, style: torch.Tensor | Sequence[float] | None, batch: int) -> torch.Tensor:
        """Style weights as ``(batch, S)`` on this network's device; ``None`` means the only style.

        Raises a :class:`PerceptError` if the number of weights is not ``num_styles``.
        """
        param = self.out[1].weight
        if style is None:
            if self.num_styles != 1:
                raise PerceptError(f"this network holds {self.num_styles} styles; choose one (style index) or "
                                   "give blend weights")
            style = [1.0]
        style = torch.as_tensor(style, dtype=param.dtype, device=param.device)
        if style.shape[-1] != self.num_styles or style.dim() not in (1, 2):
            raise PerceptError(f"style weights of shape {tuple(style.shape)} do not fit a network with "
                               f"{self.num_styles} style(s); give {self.num_styles} weights")
        return style.expand(batch, -1) if style.dim() == 1 else style

    def forward(self, x: torch.Tensor, style: torch.Tensor | Sequence[float] | None = None, *,
                statistics: NormStatistics | None = None) -> torch.Tensor:
        """Stylise ``x`` ``(B, 3, H, W)`` with style weights ``(S,)`` or ``(B, S)`` (see :meth:`style_weights`).

        ``statistics`` (from :meth:`statistics`) replaces the norm layers' own mean and variance.
        """
        return self._run(x, self.style_weights(style, x.shape[0]), statistics, None)

    @property
    def num_norms(self) -> int:
        """Number of normalisation layers (entries of :data:`NormStatistics`)."""
        return sum(isinstance(m, ConditionalInstanceNorm2d) for m in self.modules())

    def statistics(self, x: torch.Tensor, style: torch.Tensor | Sequence[float] | None = None, *,
                   statistics: NormStatistics | None = None, region: tuple[int, int, int, int] | None = None,
                   layer: int | None = None) -> NormStatistics:
        """The mean and variance ``(B, C, 1, 1)`` of what every norm layer receives on ``x``, in forward order.

        Args:
            statistics: normalise the first ``len(statistics)`` layers with these (the rest with their own).
            region: ``(top, left, height, width)`` in pixels of ``x``, multiples of 4: measure each layer only
                over this window (scaled to the layer's resolution), e.g. the part of a tile away from its edges.
            layer: measure only this layer (0-based); the pass stops there, so the list has one entry.
        """
        record: NormStatistics = []
        try:
            self._run(x, self.style_weights(style, x.shape[0]), statistics, record, region, layer)
        except _Measured:
            pass
        return record

    def _run(self, x: torch.Tensor, style: torch.Tensor, fixed: NormStatistics | None,
             record: NormStatistics | None, region: tuple[int, int, int, int] | None = None,
             layer: int | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise PerceptError(f"image of {w}x{h} px is too small for the transform network; use >= {MIN_SIDE} px")
        # always padded (possibly by 0): no branch on the size, so an exported graph pads every size
        x = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="reflect")
        norms = _Norms(style, fixed, record, region, tuple(x.shape[-2:]), layer)
        y = self.conv3(self.conv2(self.conv1(x, norms), norms), norms)
        for block in self.res:
            y = block(y, norms)
        y = self.out(self.up2(self.up1(y, norms), norms))
        if self.out_norm is not None:
            y = norms(self.out_norm, y)
        return torch.sigmoid(y)[..., :h, :w]
