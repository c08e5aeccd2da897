"""Input normalisations that belong to a set of weights.

Each module maps an RGB batch ``(B, 3, H, W)`` in ``[0, 1]`` to what a network was trained on. They are
attached to the network by the weights registry, so callers never normalise by hand.
"""

from __future__ import annotations

import torch
from torch import nn

#: Caffe/Oxford VGG mean pixel, in BGR order, on the 0-255 scale.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
#: torchvision's ImageNet statistics, RGB order, on the 0-1 scale.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CaffeBGR(nn.Module):
    """RGB in [0, 1] -> BGR in [0, 255] minus the Caffe mean pixel (original VGG weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * 255.0 - self.mean

    def extra_repr(self) -> str:
        return "RGB[0,1] -> BGR*255 - mean"


class ImageNetNormalize(nn.Module):
    """RGB in [0, 1] -> (x - mean) / std with torchvision's ImageNet statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return "RGB[0,1] -> (x - imagenet_mean) / imagenet_std"


PREPROCESSING = {"caffe": CaffeBGR, "imagenet": ImageNetNormalize}
