"""Saliency: which pixels a classifier's decision depends on, by one call signature for every method.

``saliency(classifier, image, method=..., target=...)`` returns a map ``(H, W)`` over the input, >= 0, larger
where the class score depends more on the image:

* ``gradient`` (Simonyan et al. 2014): ``max_c |d score / d x_c|``.
* ``smoothgrad`` (Smilkov et al. 2017): the gradient map averaged over ``samples`` noisy copies
  (noise std ``noise`` x the input range), in batches of ``batch_size``.
* ``guided`` (guided backprop, Springenberg et al. 2015): the gradient map with every ReLU (``nn.ReLU``,
  ``nn.ReLU6`` modules) passing back only positive gradients; sharper, but class-insensitive (Adebayo et al. 2018).
* ``gradcam`` (Selvaraju et al. 2017): the ReLU of a layer's activations weighted by the spatial mean of the
  score's gradient with respect to them, upsampled bilinearly; default layer: the last feature map.
* ``occlusion`` (Zeiler & Fergus 2014): the drop of the class probability when a ``window`` x ``window`` patch
  (every ``stride`` pixels) is replaced by the ``baseline`` (``zero``: black, the default; the image's ``mean`` colour; the ``blur``-red image), drawn
  at the window's centre as in the paper (each pixel takes its nearest window centre's drop); default window a
  third of the shorter side, stride a quarter of it; occluded copies are evaluated ``batch_size`` at a time.

The score is the class logit (probability for occlusion); ``target`` is a class name or index (default: the top
class).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PerceptError
from ..image import to_tensor
from ..models import get_model
from ..models.classifier import Classifier
from ..record import describe_input
from .explanation import Explanation, as_pil, explained
from .hooks import capture, no_inplace
from .montage import side_by_side
from .params import OCCLUSION_BASELINES as BASELINES
from .params import SALIENCY_METHODS as METHODS
from .params import SaliencyParams, explain_settings


def target_index(classifier: Classifier, image: torch.Tensor, target: str | int | None) -> int:
    """``target`` as a class index; ``None`` means the classifier's top class for ``image``."""
    if target is not None:
        return classifier.class_index(target)
    with torch.no_grad():
        return int(classifier.model(image.to(classifier.device)).argmax(dim=1)[0])


def gradient_map(classifier: Classifier, image: torch.Tensor, target: int) -> torch.Tensor:
    """``max_c |d logit_target / d x_c|`` for ``image`` ``(1, 3, H, W)``: ``(H, W)``."""
    x = image.to(classifier.device).clone().requires_grad_(True)
    with no_inplace(classifier.model):
        (grad,) = torch.autograd.grad(classifier.model(x)[0, target], x)
    return grad[0].abs().amax(dim=0).cpu()


def smoothgrad_map(classifier: Classifier, image: torch.Tensor, target: int, *, samples: int = 32,
                   noise: float = 0.15, batch_size: int = 16, seed: int = 0) -> torch.Tensor:
    """:func:`gradient_map` averaged over ``samples`` copies with Gaussian noise (std ``noise``, seeded)."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(image.shape[-2:])
    with no_inplace(classifier.model):
        for start in range(0, samples, batch_size):
            n = min(batch_size, samples - start)
            noisy = image.cpu() + noise * torch.randn((n, *image.shape[1:]), generator=generator)
            x = noisy.to(classifier.device).requires_grad_(True)
            (grad,) = torch.autograd.grad(classifier.model(x)[:, target].sum(), x)
            total += grad.abs().amax(dim=1).sum(dim=0).cpu()
    return total / samples


@contextmanager
def guided_relus(model: nn.Module) -> Iterator[int]:
    """Inside the context every ``nn.ReLU``/``nn.ReLU6`` of ``model`` passes back only positive gradients (guided
    backprop); yields how many there are. In-place flags are turned off meanwhile; hooks removed on exit."""
    relus = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    if not relus:
        raise PerceptError(f"guided backprop needs ReLU modules; {type(model).__name__} has none (its activations "
                           "are functions or another kind): use gradient or smoothgrad")

    def positive(_module: nn.Module, grad_input: tuple, _grad_output: tuple) -> tuple:
        return tuple(None if g is None else g.clamp_min(0) for g in grad_input)

    with no_inplace(model):
        handles = [m.register_full_backward_hook(positive) for m in relus]
        try:
            yield len(relus)
        finally:
            for handle in handles:
                handle.remove()


def guided_map(classifier: Classifier, image: torch.Tensor, target: int) -> torch.Tensor:
    """Guided backprop: :func:`gradient_map` through :func:`guided_relus`: ``(H, W)``."""
    with guided_relus(classifier.model):
        return gradient_map(classifier, image, target)


def last_feature_layer(classifier: Classifier) -> str:
    """Name of the last module whose output is a 4-D feature map (found with one forward pass)."""
    names = [n for n, m in classifier.model.named_modules() if n and not list(m.children())]
    with torch.no_grad(), capture(classifier.model, names, detach=True) as acts:
        classifier.model(torch.zeros(1, 3, classifier.crop, classifier.crop, device=classifier.device))
        shapes = {n: acts[n].dim() for n in names if n in acts}
    maps = [n for n in names if shapes.get(n) == 4]
    if not maps:
        raise PerceptError(f"{classifier.id} has no layer with a feature map for Grad-CAM")
    return maps[-1]


def gradcam_map(classifier: Classifier, image: torch.Tensor, target: int, *, layer: str | None = None
                ) -> torch.Tensor:
    """Grad-CAM of ``layer`` (default :func:`last_feature_layer`), upsampled to the image: ``(H, W)``."""
    layer = layer or last_feature_layer(classifier)
    x = image.to(classifier.device).clone().requires_grad_(True)  # the parameters are frozen: a graph needs this
    with capture(classifier.model, [layer]) as acts:
        score = classifier.model(x)[0, target]
    activation = acts[layer]
    (grad,) = torch.autograd.grad(score, activation)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    return F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0].cpu()


def occlusion_map(classifier: Classifier, image: torch.Tensor, target: int, *, window: int | None = None,
                  stride: int | None = None, baseline: str = "zero", batch_size: int = 32) -> torch.Tensor:
    """Drop of the target probability when a ``window`` x ``window`` patch is replaced by the ``baseline``, every
    ``stride`` pixels; each pixel takes the drop of the window whose centre is nearest to it: ``(H, W)``.

    Defaults: ``window`` a third of the shorter side, ``stride`` a quarter of the window, ``zero`` (black) patches:
    in a close-up the image's mean colour is the object's own colour and hides little of it (docs/understand.md).
    """
    if baseline not in BASELINES:
        raise PerceptError(f"unknown occlusion baseline {baseline!r}; use {', '.join(BASELINES)}")
    h, w = image.shape[-2:]
    window = window or max(1, min(h, w) // 3)
    stride = stride or max(1, window // 4)
    if not 1 <= stride <= window <= min(h, w):
        raise PerceptError(f"occlusion needs 1 <= stride <= window <= {min(h, w)} px, got window {window}, "
                           f"stride {stride}")
    image = image.cpu()
    if baseline == "mean":
        fill = image.mean(dim=(2, 3), keepdim=True).expand_as(image)
    elif baseline == "blur":
        fill = F.avg_pool2d(F.pad(image, [window // 2] * 4, mode="reflect"), window + 1 - window % 2, stride=1)
        fill = fill[..., :h, :w]
    else:
        fill = torch.zeros_like(image)
    tops = list(range(0, h - window + 1, stride)) + ([h - window] if (h - window) % stride else [])
    lefts = list(range(0, w - window + 1, stride)) + ([w - window] if (w - window) % stride else [])
    boxes = [(t, l) for t in tops for l in lefts]
    with torch.no_grad():
        base = float(classifier.model(image.to(classifier.device)).softmax(dim=1)[0, target])
        drops = []
        for start in range(0, len(boxes), batch_size):
            batch = image.repeat(len(boxes[start : start + batch_size]), 1, 1, 1)
            for i, (t, l) in enumerate(boxes[start : start + batch_size]):
                batch[i, :, t : t + window, l : l + window] = fill[0, :, t : t + window, l : l + window]
            probs = classifier.model(batch.to(classifier.device)).softmax(dim=1)[:, target].cpu()
            drops += (base - probs).tolist()
    grid = torch.tensor(drops).view(len(tops), len(lefts))
    rows = _nearest(torch.arange(h) + 0.5, torch.tensor(tops) + window / 2)
    cols = _nearest(torch.arange(w) + 0.5, torch.tensor(lefts) + window / 2)
    return grid[rows][:, cols].clamp_min(0)


def _nearest(positions: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """For each position ``(N,)`` the index of the nearest of ``centres`` ``(M,)``."""
    return (positions[:, None] - centres[None, :]).abs().argmin(dim=1)


def saliency(classifier: Classifier, image: torch.Tensor, *, method: str = "gradcam",
             target: str | int | None = None, **options) -> tuple[torch.Tensor, int]:
    """The saliency map ``(H, W)`` (>= 0, CPU) of ``image`` ``(1, 3, H, W)`` in [0, 1] and the class index
    explained. ``options`` go to the method (see the module docstring)."""
    if method not in METHODS:
        raise PerceptError(f"unknown saliency method {method!r}; use {', '.join(METHODS)}")
    index = target_index(classifier, image, target)
    compute = {"gradient": gradient_map, "smoothgrad": smoothgrad_map, "guided": guided_map, "gradcam": gradcam_map,
               "occlusion": occlusion_map}[method]
    allowed = [name for name in inspect.signature(compute).parameters if name not in ("classifier", "image", "target")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise PerceptError(f"saliency method {method!r} has no option {unknown[0]!r}; its options: "
                           f"{', '.join(allowed) or 'none'}")
    return compute(classifier, image, index, **options), index


def overlay(image: torch.Tensor, heat: torch.Tensor, *, alpha: float = 0.5, colormap: str = "jet") -> torch.Tensor:
    """``image`` ``(1, 3, H, W)`` in [0, 1] blended with ``heat`` ``(H, W)`` scaled to [0, 1] and coloured with a
    matplotlib colormap: ``(1, 3, H, W)``."""
    from matplotlib import colormaps

    scaled = (heat / heat.max()).nan_to_num(0.0) if float(heat.max()) > 0 else torch.zeros_like(heat)
    colour = torch.from_numpy(colormaps[colormap](scaled.numpy())[..., :3]).permute(2, 0, 1).float()
    return ((1 - alpha) * image.cpu() + alpha * colour.unsqueeze(0)).clamp(0, 1)


@dataclass
class SaliencyResult:
    """A saliency map and what it explains.

    Attributes:
        image: the input as the classifier saw it, ``(1, 3, H, W)`` in [0, 1], CPU.
        heat: the map ``(H, W)``, >= 0.
        target, target_name: the class explained.
        top: the classifier's most probable class for the image and its probability.
    """

    image: torch.Tensor
    heat: torch.Tensor
    target: int
    target_name: str
    top: tuple[str, float]


def explain_saliency(image: Any, **settings: Any) -> Explanation[SaliencyResult]:
    """Load the classifier of ``settings`` (:class:`~percept.understand.params.SaliencyParams`), explain ``image``
    (a file, PIL image or tensor; its centre crop, or the whole image with ``whole=True``) and draw it with the
    heat-map overlay beside it: figure ``(1, 3, H, 2 W)``."""
    params = explain_settings(SaliencyParams, settings)
    pil = as_pil(image)
    classifier = get_model(params.model, device=params.device, kind="classifier")
    x = to_tensor(pil, longest=classifier.resize) if params.whole else classifier.prepare(pil).cpu()
    target = params.target if params.target != "" else None
    heat, index = saliency(classifier, x, method=params.method, target=target, **params.method_options())
    top = classifier.top(x, 1)[0][0]
    result = SaliencyResult(x.cpu(), heat, index, classifier.classes[index], top)
    return explained(params, side_by_side(x, overlay(x, heat)), result, inputs={"image": describe_input(image)},
                     weights_id=classifier.id, top=top[0], **{"class": result.target_name})
