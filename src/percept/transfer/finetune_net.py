"""The network of fine-tuning: a pretrained backbone split into stages, plus a new classification head."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import PerceptError
from ..models import get_model


class FinetuneNet(nn.Module):
    """Pretrained backbone ``(B, 3, S, S) -> (B, D)`` plus a new head ``(B, D) -> (B, K)``.

    ``stages`` lists the backbone's parts from input to output; unfreezing the top K means the last K.
    """

    def __init__(self, backbone: str, num_classes: int, dropout: float = 0.2, init: str = "kaiming",
                 pretrained: bool = True, freeze_bn: bool = False, image_size: int | None = None) -> None:
        super().__init__()
        net = get_model(backbone, pretrained=pretrained, kind="backbone")
        self.backbone_name, self.crop, self.resize, self.pretrained = backbone, net.crop, net.resize, pretrained
        if image_size is not None and image_size != net.crop:  # the same resize/crop proportion at another size
            self.crop, self.resize = image_size, round(image_size * net.resize / net.crop)
        self.image_size, self.freeze_bn = image_size, freeze_bn
        self.weights_id = net.weights_id
        self.body = net.model
        self.body.requires_grad_(False)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(net.dim, num_classes))
        linear = self.head[1]
        if init == "kaiming":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="linear")
        elif init == "xavier":
            nn.init.xavier_uniform_(linear.weight)
        elif init == "linear-probe":  # set by set_head from a classifier fitted on the frozen features
            nn.init.zeros_(linear.weight)
        else:
            raise PerceptError(f"unknown head init {init!r}; use linear-probe, kaiming or xavier")
        nn.init.zeros_(linear.bias)
        self.stages = _stages(self.body)
        self.frozen_below = len(self.stages)  # stages[i] with i < frozen_below are frozen

    def reuse_imagenet_rows(self, classes: list[str]) -> list[str]:
        """Initialise the head rows of classes named like an ImageNet class (e.g. ``daisy``) from the
        pretrained classifier (EfficientNet-Lite only). Returns the classes that were matched."""
        from ..models.imagenet import imagenet_categories

        pretrained = getattr(getattr(self.body, "net", None), "_fc", None)
        if pretrained is None:
            raise PerceptError(f"--reuse-head needs a backbone with an ImageNet classifier (efficientnet_lite0/2), "
                               f"not {self.backbone_name}")
        norm = lambda name: name.lower().replace("_", " ").replace("-", " ").strip()
        index = {norm(c): i for i, c in enumerate(imagenet_categories())}
        matched = []
        with torch.no_grad():
            for row, name in enumerate(classes):
                if norm(name) in index:
                    self.head[1].weight[row] = pretrained.weight[index[norm(name)]]
                    self.head[1].bias[row] = pretrained.bias[index[norm(name)]]
                    matched.append(name)
        return matched

    @torch.no_grad()
    def set_head(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Copy ``weight`` ``(K, D)`` and ``bias`` ``(K,)`` (e.g. a fitted linear probe) into the head."""
        linear = self.head[1]
        linear.weight.copy_(torch.as_tensor(weight, dtype=linear.weight.dtype))
        linear.bias.copy_(torch.as_tensor(bias, dtype=linear.bias.dtype))

    def unfreeze_top(self, k: int) -> None:
        """Make the top ``k`` stages trainable (``k >= len(stages)`` unfreezes everything)."""
        k = max(0, min(k, len(self.stages)))
        self.frozen_below = len(self.stages) - k
        for i, stage in enumerate(self.stages):
            stage.requires_grad_(i >= self.frozen_below)

    def train(self, mode: bool = True) -> FinetuneNet:
        """Frozen stages always stay in eval mode, so their BatchNorm statistics never change; with ``freeze_bn``
        every BatchNorm layer of the backbone does (its scale and shift still train)."""
        super().train(mode)
        for stage in self.stages[: self.frozen_below]:
            stage.eval()
        if self.freeze_bn:
            for module in self.body.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _stages(body: nn.Module) -> list[nn.Module]:
    """Backbone parts from input to output, for each kind of backbone :func:`~percept.models.get_model` (kind ``backbone``) builds."""
    inner = getattr(body, "net", body)
    if hasattr(inner, "_blocks"):  # EfficientNet-Lite: stem, each MBConv block, head conv
        return [nn.ModuleList([inner._conv_stem, inner._bn0]), *inner._blocks,
                nn.ModuleList([inner._conv_head, inner._bn1])]
    if hasattr(inner, "layers") and isinstance(inner.layers, nn.ModuleDict):  # FeatureNet: each conv
        return [m for m in inner.layers.values() if isinstance(m, nn.Conv2d)]
    inner = getattr(inner, "net", inner)
    if hasattr(inner, "layer4"):  # torchvision ResNet
        return [nn.ModuleList([inner.conv1, inner.bn1]), inner.layer1, inner.layer2, inner.layer3, inner.layer4]
    if hasattr(inner, "features"):  # torchvision MobileNetV3, EfficientNet, ConvNeXt (+ what precedes the head)
        return [*inner.features, inner.classifier]
    raise PerceptError(f"cannot fine-tune {type(inner).__name__}: unknown layout")


def load_finetuned(path: Path, device: torch.device) -> FinetuneNet:
    """Rebuild a fine-tuned network from ``path/model.pt``."""
    try:
        checkpoint = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        model = FinetuneNet(checkpoint["backbone"], checkpoint["num_classes"], checkpoint["dropout"],
                            pretrained=checkpoint.get("pretrained", True), image_size=checkpoint.get("image_size"))
        model.load_state_dict(checkpoint["state_dict"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise PerceptError(f"{path}/model.pt is not a percept fine-tuned model ({type(exc).__name__})") from None
    return model.eval().to(device)
