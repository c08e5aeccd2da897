"""Any classifier percept can load, as one object: the network, its class names and its evaluation geometry.

A :class:`Classifier` maps RGB ``(B, 3, H, W)`` in [0, 1] to logits ``(B, K)`` (normalisation inside), names its
classes and knows its evaluation geometry (resize the short side, centre-crop). ``get_model(name,
kind="classifier")`` builds one from an ImageNet classifier name (EfficientNet-Lite0/-Lite2 offline; torchvision's
ResNet, MobileNetV3, EfficientNet-B0 and ConvNeXt-T when their weights are cached or can be downloaded) or from a
run folder written by ``percept train``; the builders below are what the registry calls.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..device import module_device
from ..errors import PerceptError
from .views import view_transform
from .weights import ClassifierWeights


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


def _frozen(classifier: Classifier, device: str | torch.device) -> Classifier:
    classifier.model.eval().requires_grad_(False).to(device)
    return classifier


def efficientnet_classifier(weights: ClassifierWeights, *, device: str | torch.device = "cpu") -> Classifier:
    """An EfficientNet-Lite classifier with ``weights``, evaluated as its weights were (bicubic resize, crop)."""
    from .efficientnet import efficientnet_lite

    model = efficientnet_lite(weights.arch, weights)
    if model.categories is None:
        raise PerceptError(f"weights {weights.id} have a {model.num_classes}-class head without class names; "
                           "give ImageNet weights, or a run folder from percept train")
    return _frozen(Classifier(model, list(model.categories), weights.resize_size, weights.input_size, weights.id,
                              weights.prepare), device)


def torchvision_classifier(weights: ClassifierWeights, *, device: str | torch.device = "cpu") -> Classifier:
    """A torchvision ImageNet classifier with ``weights`` (from the torch hub cache, downloaded on first use)."""
    from .preprocess import Normalized
    from .torchvision_nets import torchvision_network

    model, _ = torchvision_network(weights.arch, weights)
    resize, crop = weights.resize_size, weights.input_size
    return _frozen(Classifier(Normalized(model, weights.preprocessing), list(weights.categories), resize, crop,
                              weights.id, view_transform(resize, crop)), device)


def run_classifier(path: Path, *, device: str | torch.device = "cpu") -> Classifier:
    """The classifier trained by ``percept train`` in the run folder ``path`` (either strategy)."""
    from ..transfer.export import run_network
    from ..transfer.runs import load_run

    run = load_run(path, device="cpu")
    body, head, resize, crop = run_network(run)
    return _frozen(Classifier(nn.Sequential(body, head), list(run.classes), resize, crop, str(path),
                              view_transform(resize, crop)), device)
