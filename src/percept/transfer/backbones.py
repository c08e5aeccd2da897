"""Pretrained backbones for transfer learning: a network that maps images to one feature vector each.

Offline: EfficientNet-Lite0/-Lite2 (full ImageNet classifiers) and the conv features of VGG-16, VGG-19 and
AlexNet. Online (or from the torch hub cache): torchvision's ResNet-18/50, MobileNetV3-Large,
EfficientNet-B0 and ConvNeXt-T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PerceptError, WeightsUnavailableError
from ..models import get_feature_net
from ..models.preprocess import ImageNetNormalize
from .names import BACKBONES, FEATURE_NET_LAYERS, TORCHVISION_BACKBONES



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


class _Normalized(nn.Module):
    """ImageNet normalisation in front of a torchvision model whose classifier was removed."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.normalize, self.net = ImageNetNormalize(), net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


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


#: Test-time augmentation: which views of an image are averaged.
TTA_VIEWS = {
    "none": ("center",),
    "flip": ("center", "center_flip"),
    "flip+crops": ("center", "center_flip", "top_left", "top_right", "bottom_left", "bottom_right"),
}


def view_transform(resize: int, crop: int, view: str = "center"):
    """Resize the shorter side to ``resize``, then take one ``crop`` x ``crop`` view as a tensor in [0, 1].

    Views: ``center``, ``center_flip`` (mirrored), ``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``.
    """
    from torchvision import transforms  # imported here: torchvision takes seconds to import
    from torchvision.transforms import functional as TF

    def corner(img, name: str):
        w, h = img.size
        top = 0 if name.startswith("top") else h - crop
        left = 0 if name.endswith("left") else w - crop
        return TF.crop(img, top, left, crop, crop)

    steps = [transforms.Resize(resize)]
    if view in ("center", "center_flip"):
        steps.append(transforms.CenterCrop(crop))
        if view == "center_flip":
            steps.append(transforms.RandomHorizontalFlip(p=1.0))
    elif view in ("top_left", "top_right", "bottom_left", "bottom_right"):
        steps.append(transforms.Lambda(lambda img: corner(img, view)))
    else:
        raise PerceptError(f"unknown view {view!r}")
    return transforms.Compose([*steps, transforms.ToTensor()])


def _torchvision_backbone(name: str, pretrained: bool = True) -> tuple[nn.Module, int, str]:
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT if pretrained else None
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as exc:  # noqa: BLE001 - download and cache errors come in many types
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise WeightsUnavailableError(
            f"torchvision weights for {name} unavailable ({reason}); connect to the internet once so they are "
            f"cached in {torch.hub.get_dir()}/checkpoints, or use an offline backbone (efficientnet_lite0, vgg16)"
        ) from None
    if hasattr(model, "fc"):
        dim, model.fc = model.fc.in_features, nn.Identity()
    else:  # mobilenet, efficientnet, convnext: the last Linear of `classifier`
        dim = model.classifier[-1].in_features
        model.classifier[-1] = nn.Identity()
    return model, dim, f"torchvision:{weights}"


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


def get_backbone(name: str = "efficientnet_lite0", *, device: str | torch.device = "cpu",
                 pretrained: bool = True) -> Backbone:
    """Build a frozen backbone in eval mode on ``device``; one-line errors for unknown or missing weights.

    ``pretrained=False`` gives the same architecture with random weights (for from-scratch baselines).
    """
    if name.startswith("efficientnet_lite"):
        from ..models import get_classifier

        net = get_classifier(name)
        size = net.weights.input_size
        model: nn.Module = _PooledEfficientNet(net)
        backbone = Backbone(name, net.weights.id, model, net.feature_dim, net.weights.resize_size, size)
    elif name in FEATURE_NET_LAYERS:
        net = get_feature_net(name)
        layer = FEATURE_NET_LAYERS[name]
        dim = net.layers[layer.replace("relu", "conv")].out_channels
        backbone = Backbone(name, f"{net.weights.id}@{layer}", _PooledFeatureNet(net, layer), dim, 256, 224)
    elif name in TORCHVISION_BACKBONES:
        model, dim, weights_id = _torchvision_backbone(name, pretrained)
        backbone = Backbone(name, weights_id, _Normalized(model), dim, 256, 224)
    else:
        raise PerceptError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if not pretrained:
        reinitialize(backbone.model)
        backbone.weights_id = "random-init"
    backbone.model.requires_grad_(False)
    backbone.model.eval().to(device)
    return backbone
