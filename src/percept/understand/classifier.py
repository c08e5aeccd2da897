"""Any classifier percept can load, as one object the explanation methods share.

A :class:`Classifier` maps RGB ``(B, 3, H, W)`` in [0, 1] to logits ``(B, K)`` (normalisation inside), names its
classes and knows its evaluation geometry (resize the short side, centre-crop). :func:`load_classifier` builds it
from an ImageNet classifier name (EfficientNet-Lite0/-Lite2 offline; torchvision's ResNet, MobileNetV3,
EfficientNet-B0 and ConvNeXt-T when their weights are cached or can be downloaded) or from a run folder written
by ``percept train``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..device import module_device, resolve_device
from ..errors import PerceptError
from ..models.efficientnet import CLASSIFIERS as LITE_CLASSIFIERS
from ..models.efficientnet import get_classifier, imagenet_categories
from ..transfer.names import TORCHVISION_BACKBONES


@dataclass
class Classifier:
    """A classifier in eval mode with frozen parameters.

    Attributes:
        model: RGB ``(B, 3, H, W)`` in [0, 1] -> logits ``(B, K)``.
        classes: the ``K`` class names, index order.
        resize, crop: evaluation geometry: short side resized to ``resize``, centre crop ``crop`` x ``crop``.
        id: what was loaded (e.g. ``efficientnet_lite0:imagenet`` or the run folder).
        transform: PIL image -> ``(3, crop, crop)`` or ``(1, 3, crop, crop)`` in [0, 1], exactly as the classifier
            was evaluated (its resampling filter included).
    """

    model: nn.Module
    classes: list[str]
    resize: int
    crop: int
    id: str
    transform: Callable[[Image.Image], torch.Tensor]

    @property
    def device(self) -> torch.device:
        return module_device(self.model)

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """``(1, 3, crop, crop)`` RGB in [0, 1] on the model's device, prepared as the classifier was evaluated
        (short side resized to ``resize``, centre crop)."""
        x = self.transform(image.convert("RGB"))
        return (x.unsqueeze(0) if x.dim() == 3 else x).to(self.device)

    def class_index(self, name_or_index: str | int) -> int:
        """The index of a class given by name (exact, then case-insensitive) or index; a one-line error
        suggests close names otherwise."""
        if isinstance(name_or_index, int) or str(name_or_index).lstrip("-").isdigit():
            index = int(name_or_index)
            if not 0 <= index < len(self.classes):
                raise PerceptError(f"class index {index} out of range; {self.id} has {len(self.classes)} classes "
                                   f"(0..{len(self.classes) - 1})")
            return index
        name = str(name_or_index)
        lowered = [c.lower() for c in self.classes]
        if name in self.classes:
            return self.classes.index(name)
        if name.lower() in lowered:
            return lowered.index(name.lower())
        close = difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(self.classes[lowered.index(c)]) for c in close)}?" if close else ""
        raise PerceptError(f"unknown class {name!r} for {self.id}{hint}")

    @torch.no_grad()
    def top(self, x: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable ``(class, probability)`` per image of ``x`` ``(B, 3, H, W)``."""
        probs = self.model(x.to(self.device)).softmax(dim=1)
        values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
        return [[(self.classes[i], float(v)) for v, i in zip(vs, ids)] for vs, ids in zip(values, indices)]


def load_classifier(spec: str | os.PathLike = "efficientnet_lite0", *, device: str | torch.device = "cpu"
                    ) -> Classifier:
    """Load ``spec``: an ImageNet classifier name or a run folder from ``percept train``.

    Names: ``efficientnet_lite0``, ``efficientnet_lite2`` (offline) and torchvision's
    ``resnet18, resnet50, mobilenet_v3_large, efficientnet_b0, convnext_tiny`` (their ImageNet weights from the
    torch hub cache or a download). Unknown names and unloadable weights are one-line errors.
    """
    dev = resolve_device(device)
    if Path(spec).is_dir():
        classifier = _from_run(Path(spec))
    elif str(spec) in LITE_CLASSIFIERS:
        model = get_classifier(str(spec), "imagenet")
        entry = model.weights
        classifier = Classifier(model, list(model.categories), entry.resize_size, entry.input_size,
                                f"{spec}:imagenet", entry.prepare)
    elif str(spec) in TORCHVISION_BACKBONES:
        classifier = _from_torchvision(str(spec))
    else:
        names = [*LITE_CLASSIFIERS, *TORCHVISION_BACKBONES]
        raise PerceptError(f"unknown classifier {str(spec)!r}: give a run folder from `percept train` or one of "
                           f"{', '.join(names)}")
    classifier.model.eval().requires_grad_(False).to(dev)
    return classifier


class _Normalized(nn.Module):
    """``model((x - mean) / std)`` for RGB ``x`` in [0, 1] (torchvision's ImageNet normalisation)."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _from_torchvision(name: str) -> Classifier:
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        model = torchvision.models.get_model(name, weights=weights)
    except Exception as exc:  # noqa: BLE001 - offline, a blocked proxy, a damaged cache file
        raise PerceptError(f"cannot load torchvision's {name} ImageNet weights ({type(exc).__name__}); they "
                           "download on first use (needs internet) into the torch hub cache; offline, use "
                           "efficientnet_lite0 or efficientnet_lite2") from None
    from ..transfer.backbones import view_transform

    preset = weights.transforms()
    resize, crop = int(preset.resize_size[0]), int(preset.crop_size[0])
    return Classifier(_Normalized(model, tuple(preset.mean), tuple(preset.std)), list(imagenet_categories()),
                      resize, crop, f"{name}:{weights.name.lower()}", view_transform(resize, crop))


def _from_run(path: Path) -> Classifier:
    from ..transfer.backbones import view_transform
    from ..transfer.export import run_network
    from ..transfer.runs import load_run

    run = load_run(path, device="cpu")
    body, head, resize, crop = run_network(run)
    return Classifier(nn.Sequential(body, head), list(run.classes), resize, crop, str(path),
                      view_transform(resize, crop))
