"""Input normalisations that belong to a set of weights, and the wrapper that puts one in front of a network.

Every network percept builds takes an RGB batch ``(B, 3, H, W)`` in ``[0, 1]``; the normalisation its weights were
trained with is part of the module, so callers never normalise by hand:

* ``caffe``: RGB -> BGR, times 255, minus the Caffe mean pixel (original VGG weights);
* ``imagenet``: ``(x - mean) / std`` with torchvision's ImageNet statistics;
* ``tf``: ``(x * 255 - 127) / 128`` (the TensorFlow EfficientNet-Lite weights).

:data:`PREPROCESSING` maps each name to its module; :class:`Normalized` wraps a network that expects normalised
input (a torchvision model, say) so that it takes ``[0, 1]`` RGB too.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import PerceptError

#: Caffe/Oxford VGG mean pixel, in BGR order, on the 0-255 scale.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
#: torchvision's ImageNet statistics, RGB order, on the 0-1 scale.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def caffe_bgr(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> BGR on the 0-255 scale minus ``mean`` ``(1, 3, 1, 1)`` (BGR order)."""
    return x.flip(1) * 255.0 - mean


def imagenet_normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(x - mean) / std`` (statistics of shape ``(1, 3, 1, 1)``)."""
    return (x - mean) / std


def tf_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> ``(x * 255 - 127) / 128``, about ``[-1, 1]``."""
    return (x * 255.0 - 127.0) / 128.0


def _stat(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values).view(1, 3, 1, 1)


class CaffeBGR(nn.Module):
    """RGB in [0, 1] -> BGR in [0, 255] minus the Caffe mean pixel (original VGG weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", _stat(CAFFE_BGR_MEAN), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return caffe_bgr(x, self.mean)

    def extra_repr(self) -> str:
        return "RGB[0,1] -> BGR*255 - mean"


class ImageNetNormalize(nn.Module):
    """RGB in [0, 1] -> (x - mean) / std with torchvision's ImageNet statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", _stat(IMAGENET_MEAN), persistent=False)
        self.register_buffer("std", _stat(IMAGENET_STD), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imagenet_normalize(x, self.mean, self.std)

    def extra_repr(self) -> str:
        return "RGB[0,1] -> (x - imagenet_mean) / imagenet_std"


class TFNormalize(nn.Module):
    """RGB in [0, 1] -> ``(x * 255 - 127) / 128``, the input range of the TF EfficientNet-Lite weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tf_normalize(x)

    def extra_repr(self) -> str:
        return "RGB[0,1] -> (x*255 - 127) / 128"


#: Every normalisation a set of weights may name.
PREPROCESSING: dict[str, type[nn.Module]] = {"caffe": CaffeBGR, "imagenet": ImageNetNormalize, "tf": TFNormalize}


def preprocessing_module(name: str) -> nn.Module:
    """A new module for the normalisation called ``name`` (``caffe``, ``imagenet`` or ``tf``)."""
    if name not in PREPROCESSING:
        raise PerceptError(f"unknown preprocessing {name!r}; use {', '.join(PREPROCESSING)}")
    return PREPROCESSING[name]()


class Normalized(nn.Module):
    """``net(preprocess(x))``: a network trained on normalised input, taking RGB ``(B, 3, H, W)`` in [0, 1].

    Args:
        net: the network (its submodules keep their names under ``net.``).
        preprocessing: a name from :data:`PREPROCESSING` or a module.
    """

    def __init__(self, net: nn.Module, preprocessing: str | nn.Module = "imagenet") -> None:
        super().__init__()
        self.preprocess = preprocessing_module(preprocessing) if isinstance(preprocessing, str) else preprocessing
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x))
