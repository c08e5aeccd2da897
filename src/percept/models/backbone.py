"""Pretrained backbones for transfer learning: a frozen network that maps images to one feature vector each.

Offline: EfficientNet-Lite0/-Lite2 (pooled features after the head convolution) and the conv features of VGG-16,
VGG-19 and AlexNet (their deepest ReLU, pooled). Online (or from the torch hub cache): torchvision's ResNet-18/50,
MobileNetV3-Large, EfficientNet-B0 and ConvNeXt-T with their classifier removed. ``get_model(name,
kind="backbone")`` builds one.

``layers`` and ``pooling`` make richer vectors: the feature maps of several stages, each pooled by
:class:`~percept.models.pooling.FeaturePooling` (``avg``, ``max``, ``gram``, ``bilinear``), concatenated::

    bb = get_model("efficientnet_lite0", kind="backbone", layers=["stage3", "stage5"], pooling="gram")

Layer names (:func:`backbone_layers`): EfficientNet-Lite and EfficientNet-B0 ``stage1`` ... ``stage7`` (the
output of each stage of MBConv blocks, a stage being the blocks that share one row of the network's table) and
``head`` (after the 1x1 head convolution); VGG and AlexNet their ReLU names (``relu3_1``); ResNet ``layer1`` ...
``layer4``; ConvNeXt-T ``stage1`` ... ``stage4``; MobileNetV3-Large ``stage1`` ... ``stage6`` (its blocks grouped
by resolution and width) and ``head``. Without ``layers`` and with ``avg`` the backbone is exactly the network's
pooled penultimate features (its ``cache_id`` has no layer or pooling part).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PerceptError
from .names import FEATURE_NET_LAYERS, POOLINGS
from .pooling import FeaturePooling
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


#: torchvision module of each named stage (the last name of each is the default layer for non-average pooling).
TORCHVISION_LAYERS = {
    "resnet18": {f"layer{i}": f"layer{i}" for i in range(1, 5)},
    "resnet50": {f"layer{i}": f"layer{i}" for i in range(1, 5)},
    "efficientnet_b0": {**{f"stage{i}": f"features.{i}" for i in range(1, 8)}, "head": "features.8"},
    "convnext_tiny": {f"stage{i}": f"features.{2 * i - 1}" for i in range(1, 5)},
    "mobilenet_v3_large": {**{f"stage{i}": f"features.{n}" for i, n in enumerate((1, 3, 6, 10, 12, 15), 1)},
                           "head": "features.16"},
}


def _efficientnet_stage_ends(net: nn.Module) -> dict[str, int]:
    """``{"stage1": index of its last block, ..., "head": -1}``: a stage is a run of blocks with the same output
    width (every stage of the EfficientNet table widens the network)."""
    widths = [block._project_conv.out_channels for block in net.blocks]
    ends = [i for i in range(len(widths)) if i == len(widths) - 1 or widths[i + 1] != widths[i]]
    return {**{f"stage{k}": end for k, end in enumerate(ends, 1)}, "head": -1}


def backbone_layers(name: str) -> list[str]:
    """The layer names a backbone can read (``layers=``), input side first; the last is its default layer."""
    if name.startswith("efficientnet_lite"):
        return [f"stage{k}" for k in range(1, 8)] + ["head"]
    if name in FEATURE_NET_LAYERS:
        from .feature_net import layer_names

        names = [n for n in layer_names(name) if n.startswith("relu")]
        return names[: names.index(FEATURE_NET_LAYERS[name]) + 1]
    return list(TORCHVISION_LAYERS.get(name, {}))


def check_layers(name: str, layers: list[str]) -> list[str]:
    """``layers`` as a list without repeats, or a one-line error listing the valid names."""
    valid = backbone_layers(name)
    unknown = [layer for layer in layers if layer not in valid]
    if unknown:
        raise PerceptError(f"unknown layer {unknown[0]!r} for backbone {name}; choose from {', '.join(valid)}")
    return list(dict.fromkeys(layers))


class _EfficientNetStages(nn.Module):
    """EfficientNet-Lite feature maps after the stages ``ends`` (block indices; -1 = head), in that order; the pass
    stops after the deepest one."""

    def __init__(self, net: nn.Module, ends: list[int]) -> None:
        super().__init__()
        self.net, self.ends = net, ends
        self.last = len(net.blocks) if -1 in ends else max(ends)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        net, maps = self.net, {}
        x = net.act(net._bn0(net._conv_stem(net.preprocess(x))))
        for i, block in enumerate(net.blocks):
            if i > self.last:
                break
            x = block(x)
            maps[i] = x
        if -1 in self.ends:
            maps[-1] = net.act(net._bn1(net._conv_head(x)))
        return [maps[end] for end in self.ends]


class _FeatureNetLayers(nn.Module):
    """Feature maps of a :class:`~percept.models.FeatureNet`'s ``layers``, in that order."""

    def __init__(self, net: nn.Module, layers: list[str]) -> None:
        super().__init__()
        self.net, self.layers = net, layers

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = self.net(x, self.layers)
        return [maps[layer] for layer in self.layers]


class _TorchvisionLayers(nn.Module):
    """Feature maps of torchvision modules ``nodes`` (an FX feature extractor), in that order."""

    def __init__(self, net: nn.Module, nodes: list[str], preprocessing: str) -> None:
        super().__init__()
        from torchvision.models.feature_extraction import create_feature_extractor

        from .preprocess import Normalized

        self.nodes = nodes
        self.body = Normalized(create_feature_extractor(net, {n: n for n in nodes}), preprocessing)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = self.body(x)
        return [maps[node] for node in self.nodes]


class PooledLayers(nn.Module):
    """``(B, 3, H, W) -> (B, dim)``: the maps of ``extractor`` (a list), each pooled by its
    :class:`~percept.models.pooling.FeaturePooling`, concatenated in the order of the layers (gram and bilinear
    parts are unit vectors each; the concatenation is not normalised again)."""

    def __init__(self, extractor: nn.Module, pooling: str, channels: list[int]) -> None:
        super().__init__()
        self.extractor = extractor
        self.pools = nn.ModuleList(FeaturePooling(pooling, c) for c in channels)

    @property
    def dim(self) -> int:
        return sum(p.dim for p in self.pools)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(m) for pool, m in zip(self.pools, self.extractor(x))], dim=1)


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
    layers: tuple[str, ...] = ()  # () = the network's pooled penultimate features
    pooling: str = "avg"

    @property
    def cache_id(self) -> str:
        """Everything that determines a feature vector besides the image bytes (layers and pooling only when
        they are not the defaults, so the default backbone's id never changes)."""
        base = f"{self.name}|{self.weights_id}|dim{self.dim}|resize{self.resize}|crop{self.crop}|v1"
        if not self.layers and self.pooling == "avg":
            return base
        return f"{base}|layers={','.join(self.layers)}|pool={self.pooling}-v1"

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


def _layered(name: str, weights: Weights, pretrained: bool, layers: list[str], pooling: str) -> Backbone:
    """The backbone reading ``layers`` (default: the last of :func:`backbone_layers`) pooled by ``pooling``."""
    layers = check_layers(name, layers) if layers else backbone_layers(name)[-1:]
    if name.startswith("efficientnet_lite"):
        from .efficientnet import efficientnet_lite

        net = efficientnet_lite(name, weights)
        ends = _efficientnet_stage_ends(net)
        extractor: nn.Module = _EfficientNetStages(net, [ends[layer] for layer in layers])
        weights_id, resize, crop = net.weights.id, net.weights.resize_size, net.weights.input_size
    elif name in FEATURE_NET_LAYERS:
        from .feature_net import build_feature_net

        net = build_feature_net(weights)
        extractor = _FeatureNetLayers(net, layers)
        weights_id, resize, crop = net.weights.id, 256, 224
    else:
        from .torchvision_nets import torchvision_network

        model, tv_weights = torchvision_network(name, weights if pretrained else None)
        extractor = _TorchvisionLayers(model, [TORCHVISION_LAYERS[name][layer] for layer in layers],
                                       weights.preprocessing)
        weights_id, resize, crop = f"torchvision:{tv_weights}", 256, 224
    with torch.no_grad():
        channels = [m.shape[1] for m in extractor.eval()(torch.zeros(1, 3, crop, crop))]
    model = PooledLayers(extractor, pooling, channels)
    return Backbone(name, weights_id, model, model.dim, resize, crop, tuple(layers), pooling)


def build_backbone(weights: Weights, *, pretrained: bool = True, layers: list[str] | tuple[str, ...] | None = None,
                   pooling: str = "avg", device: str | torch.device = "cpu") -> Backbone:
    """The frozen backbone of ``weights.arch`` (eval mode, on ``device``) with those pretrained ``weights``.

    ``pretrained=False`` gives the same architecture with random weights (for from-scratch baselines; its
    ``weights_id`` is ``random-init``). ``layers`` (names from :func:`backbone_layers`; unset: the default
    layer) and ``pooling`` (``avg``, ``max``, ``gram``, ``bilinear``) read several stages and pool each; unset
    layers with ``avg`` is the network's pooled penultimate features. :func:`percept.models.get_model` resolves
    names and calls this.
    """
    name = weights.arch
    if pooling not in POOLINGS:
        raise PerceptError(f"unknown pooling {pooling!r}; use {', '.join(POOLINGS)}")
    if layers or pooling != "avg":
        if not backbone_layers(name):
            raise PerceptError(f"backbone {name} takes no layers or pooling other than avg")
        backbone = _layered(name, weights, pretrained, list(layers or []), pooling)
    elif name.startswith("efficientnet_lite"):
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
