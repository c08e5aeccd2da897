"""DeepDream (Mordvintsev, Olah & Tyka 2015): amplify whatever a layer sees in a photo.

Gradient ascent on the mean square of one layer's activations, as in the original notebook: the photo is
shrunk ``octaves - 1`` times by ``octave_scale``; from the smallest octave up, the image (octave base + the detail
carried up from the previous octave, upsampled bilinearly) takes ``steps`` steps, each jittered by a random roll
of up to ``jitter`` px and of size ``step_size`` / mean |gradient| (so ``step_size`` is the mean change of a pixel,
in [0, 1] units), clamped to [0, 1]; the detail (image - octave base) goes on to the next octave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..device import module_device
from ..errors import PerceptError
from ..image import resize, to_tensor
from ..models.classifier import Classifier
from ..record import describe_input
from .ascent import ascent_step, check_image, network
from .explanation import Explanation, as_pil, explained
from .hooks import layer_outputs, no_inplace
from .layer_features import load_network
from .params import DreamParams, explain_settings


@dataclass
class DreamResult:
    """A dreamed image and how much it excites the layer."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1], CPU, the size of the input
    layer: str
    norm_before: float  # RMS activation sqrt(mean(a^2)) of layer on the input
    norm_after: float  # the same on the result (same size)

    @property
    def ratio(self) -> float:
        return self.norm_after / self.norm_before if self.norm_before else float("inf")


def activation_rms(model: nn.Module, image: torch.Tensor, layer: str) -> float:
    """``sqrt(mean(a^2))`` of ``layer``'s output ``a`` for ``image`` ``(1, 3, H, W)`` in [0, 1]."""
    with torch.no_grad():
        return float(layer_outputs(model, image.to(module_device(model)), [layer])[layer].float().pow(2).mean().sqrt())


def dream(model: nn.Module | Classifier, image: torch.Tensor, layer: str, *, octaves: int = 3,
          octave_scale: float = 1.4, steps: int = 10, step_size: float = 0.006, jitter: int = 32, seed: int = 0,
          progress: bool = False) -> DreamResult:
    """Dream ``layer`` of ``model`` (a :class:`~percept.models.FeatureNet` layer such as ``relu4_1`` or a module
    name of a :class:`Classifier` or other module) into ``image`` ``(1, 3, H, W)`` in [0, 1], on the model's device.

    ``steps`` are per octave; see the module docstring for the rest. Returns the image (same size, CPU) with the
    layer's RMS activation on the input and on the result.
    """
    check_image(image)
    if octaves < 1 or octave_scale <= 1 or steps < 1 or step_size <= 0 or jitter < 0:
        raise PerceptError(f"dream needs octaves >= 1, octave_scale > 1, steps >= 1, step_size > 0 and jitter >= 0; "
                           f"got octaves {octaves}, octave_scale {octave_scale}, steps {steps}, step_size "
                           f"{step_size}, jitter {jitter}")
    module = network(model)
    device = module_device(module)
    photo = image.detach().to(device)
    before = activation_rms(module, photo, layer)  # checks the layer name and the size before any work
    h, w = photo.shape[-2:]
    sizes = [(max(1, round(w / octave_scale**i)), max(1, round(h / octave_scale**i))) for i in range(octaves)]
    bases = [resize(photo, size) for size in sizes]  # antialiased, largest first
    generator = torch.Generator().manual_seed(seed)
    detail = torch.zeros_like(bases[-1])
    bar = tqdm(total=octaves * steps, desc=f"dream {layer}", unit="step", disable=not progress)
    with no_inplace(module):
        for base in reversed(bases):
            if detail.shape != base.shape:
                detail = F.interpolate(detail, size=base.shape[-2:], mode="bilinear", align_corners=False)
            x = (base + detail).clamp(0, 1)
            for _ in range(steps):
                x = ascent_step(x, lambda moved: layer_outputs(module, moved, [layer])[layer].pow(2).mean(),
                                step_size=step_size, max_shift=min(jitter, min(x.shape[-2:]) // 2),
                                generator=generator).clamp(0, 1)
                bar.update()
            detail = x - base
    bar.close()
    return DreamResult(x.detach().cpu(), layer, before, activation_rms(module, x, layer))


def explain_dream(image: Any, *, progress: bool = False, **settings: Any) -> Explanation[DreamResult]:
    """Load the network of ``settings`` (:class:`~percept.understand.params.DreamParams`; ``layer`` defaults to the
    model's, :data:`~percept.understand.params.DREAM_LAYER`) and dream it into ``image`` (a file, PIL image or
    tensor; longest side ``size``). The figure is the dreamed image."""
    params = explain_settings(DreamParams, settings)
    layer = params.resolved_layer()
    x = to_tensor(as_pil(image), longest=params.size)
    r = dream(load_network(params.model, device=params.device).model, x, layer, octaves=params.octaves,
              octave_scale=params.octave_scale, steps=params.steps, step_size=params.step_size, jitter=params.jitter,
              seed=params.seed, progress=progress)
    return explained(params, r.image, r, inputs={"image": describe_input(image)}, layer=layer,
                     norm_before=round(r.norm_before, 4), norm_after=round(r.norm_after, 4))
