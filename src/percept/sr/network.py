"""The super-resolution network of Johnson, Alahi & Fei-Fei (ECCV 2016, supplementary material).

Layers, for an input ``(B, 3, h, w)`` in ``[0, 1]`` and a factor ``f`` (4 or 8)::

    9x9 conv, 64 channels, batch norm, ReLU                           (B, 64, h, w)
    `blocks` residual blocks (paper: 4): 3x3 conv, BN, ReLU, 3x3 conv, BN, + input
    log2(f) upsampling stages: 3x3 conv to 4 x 64 channels, pixel shuffle x2, BN, ReLU
                                                                      (B, 64, f h, f w)
    9x9 conv to 3 channels                                            (B, 3, f h, f w)

The paper upsamples with fractionally-strided convolutions; percept uses sub-pixel convolutions (a convolution
to four times the channels and a pixel shuffle, Shi et al. 2016) initialised so that the four sub-pixels start
equal ("ICNR", Aitken et al. 2017), which is the same family of learned upsampling without the checkerboard
artefacts of transposed convolutions. Batch norm is used as in the paper.

With ``bicubic_skip`` (the default) the network's last convolution starts at zero and its output is added to
the bicubic upscale of the input, so a new network is exactly bicubic interpolation and training only has to
learn the missing detail. Without it the output is the paper's scaled tanh, ``(tanh(x) + 1) / 2``. The output
is not clamped in training; :func:`percept.sr.upscale` clamps it to ``[0, 1]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import PerceptError
from .degrade import bicubic_upscale

CHANNELS = 64


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)


class ResidualBlock(nn.Module):
    """3x3 conv, BN, ReLU, 3x3 conv, BN, plus the input: ``(B, C, h, w)`` -> ``(B, C, h, w)``."""

    def __init__(self, channels: int = CHANNELS) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(),
                                  _conv(channels, channels, 3), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def icnr_(conv: nn.Conv2d, scale: int = 2) -> None:
    """Initialise ``conv`` (``scale^2 * C`` outputs before a pixel shuffle) so that the shuffled sub-pixels start
    equal: each group of ``scale^2`` consecutive output channels shares one kernel."""
    out_channels = conv.out_channels // scale**2
    base = torch.empty(out_channels, *conv.weight.shape[1:])
    nn.init.kaiming_normal_(base, nonlinearity="relu")
    with torch.no_grad():
        conv.weight.copy_(base.repeat_interleave(scale**2, dim=0))
        conv.bias.zero_()


class UpsampleStage(nn.Module):
    """x2 learned upsampling: 3x3 conv to ``4 C``, pixel shuffle, BN, ReLU: ``(B, C, h, w)`` -> ``(B, C, 2h, 2w)``."""

    def __init__(self, channels: int = CHANNELS) -> None:
        super().__init__()
        self.conv = _conv(channels, 4 * channels, 3)
        icnr_(self.conv)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.BatchNorm2d(channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.shuffle(self.conv(x))))


class SRNet(nn.Module):
    """Johnson et al.'s super-resolution network: ``(B, 3, h, w)`` in ``[0, 1]`` -> ``(B, 3, f h, f w)``.

    Args:
        factor: 4 or 8 (``log2(factor)`` upsampling stages).
        blocks: residual blocks (the paper uses 4).
        bicubic_skip: add the output to the bicubic upscale of the input (see the module docstring).

    Attributes:
        reach: how far (input pixels) an input pixel can change the output; tiles that overlap by three times
            this give the same result as the whole image (:mod:`percept.sr.tiles`).
        metadata: what a model file records besides the weights (set by the trainer and the loader).
    """

    def __init__(self, factor: int = 4, blocks: int = 4, *, bicubic_skip: bool = True) -> None:
        super().__init__()
        if factor not in (2, 4, 8):
            raise PerceptError(f"factor {factor} is not supported; use 4 or 8")
        self.factor, self.blocks, self.bicubic_skip = factor, blocks, bicubic_skip
        self.head = nn.Sequential(_conv(3, CHANNELS, 9), nn.BatchNorm2d(CHANNELS), nn.ReLU())
        self.body = nn.Sequential(*(ResidualBlock() for _ in range(blocks)))
        stages = int(math.log2(factor))
        self.upsample = nn.Sequential(*(UpsampleStage() for _ in range(stages)))
        self.tail = _conv(CHANNELS, 3, 9)
        if bicubic_skip:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)
        self.reach = math.ceil(4 + 2 * blocks + sum(2.0**-s for s in range(stages)) + 4 / factor)
        self.metadata: dict = {}

    @property
    def architecture(self) -> dict:
        """What rebuilds this network: ``factor``, ``blocks``, ``bicubic_skip``."""
        return {"factor": self.factor, "blocks": self.blocks, "bicubic_skip": self.bicubic_skip}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tail(self.upsample(self.body(self.head(x))))
        if self.bicubic_skip:
            return out + bicubic_upscale(x, self.factor).to(out.dtype)
        return (torch.tanh(out) + 1) / 2
