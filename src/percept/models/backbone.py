"""Pretrained backbones for transfer learning: a frozen network that maps images to one feature vector each.

Offline: EfficientNet-Lite0/-Lite2 (pooled features after the head convolution) and the conv features of VGG-16,
VGG-19 and AlexNet (their deepest ReLU, pooled). Online (or from the torch hub cache): torchvision's ResNet-18/50,
MobileNetV3-Large, EfficientNet-B0 and ConvNeXt-T with their classifier removed. ``get_model(name,
kind="backbone")`` builds one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .names import FEATURE_NET_LAYERS
from .views import view_transform
from .weights import Weights


class _PooledFeatureNet(nn.Module):
    """A :class:`~percept.models.FeatureNet` layer, globally average-pooled: ``(B, 3, H, W) -> (B, C)``."""

    def __init__(self, net: nn.Module, layer: str) -> None:
        super().__init__()
        self.net, self.layer = net, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, [self.layer])[self.layer].mean(dim=(2, 3))


class _PooledEfficientNet(nn.Module):
    """EfficientNet-Lite features after the head conv, globally average-pooled: ``(B, 3, H, W) -> (B, 1280)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.pool(self.net.forward_features(x))


@dataclass
class Backbone:
    """A frozen feature extractor and how to prepare images for it.

    ``model`` maps RGB batches in ``[0, 1]``, shape ``(B, 3, crop, crop)``, to ``(B, dim)``.
    """

    name: str
    weights_id: str
    model: nn.Module
    dim: int
    resize: int  # shorter side before the centre crop
    crop: int

    @property
    def cache_id(self) -> str:
        """Everything that determines a feature vector besides the image bytes."""
        return f"{self.name}|{self.weights_id}|dim{self.dim}|resize{self.resize}|crop{self.crop}|v1"

    def eval_transform(self, view: str = "center"):
        """PIL image -> ``(3, crop, crop)`` tensor in ``[0, 1]``; see :func:`view_transform`."""
        return view_transform(self.resize, self.crop, view)


def reinitialize(module: nn.Module) -> None:
    """Random weights for ``module``, as when training from scratch: He-normal convolutions (fan-out), unit
    normalisation layers with fresh statistics, small-normal linear layers, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            m.reset_parameters()
            continue
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_backbone(weights: Weights, *, pretrained: bool = True, device: str | torch.device = "cpu") -> Backbone:
    """The frozen backbone of ``weights.arch`` (eval mode, on ``device``) with those pretrained ``weights``.

    ``pretrained=False`` gives the same architecture with random weights (for from-scratch baselines; its
    ``weights_id`` is ``random-init``). :func:`percept.models.get_model` resolves names and calls this.
    """
    name = weights.arch
    if name.startswith("efficientnet_lite"):
        from .efficientnet import efficientnet_lite

        net = efficientnet_lite(name, weights)
        size = net.weights.input_size
        backbone = Backbone(name, net.weights.id, _PooledEfficientNet(net), net.feature_dim, net.weights.resize_size,
                            size)
    elif name in FEATURE_NET_LAYERS:
        from .feature_net import build_feature_net

        net = build_feature_net(weights)
        layer = FEATURE_NET_LAYERS[name]
        dim = net.layers[layer.replace("relu", "conv")].out_channels
        backbone = Backbone(name, f"{net.weights.id}@{layer}", _PooledFeatureNet(net, layer), dim, 256, 224)
    else:
        from .preprocess import Normalized
        from .torchvision_nets import remove_classifier, torchvision_network

        model, tv_weights = torchvision_network(name, weights if pretrained else None)
        dim = remove_classifier(model)
        backbone = Backbone(name, f"torchvision:{tv_weights}", Normalized(model, weights.preprocessing), dim, 256, 224)
    if not pretrained:
        reinitialize(backbone.model)
        backbone.weights_id = "random-init"
    backbone.model.requires_grad_(False)
    backbone.model.eval().to(device)
    return backbone
