"""Adversarial examples: imperceptible changes that flip a classifier's decision ("make this panda a gibbon").

* FGSM (Goodfellow et al. 2015): one step of size ``epsilon`` along the sign of the loss gradient.
* PGD (Madry et al. 2018): ``steps`` signed-gradient steps of ``step_size``, each followed by projection onto the
  L-inf ball of radius ``epsilon`` around the image and onto [0, 1].

Untargeted attacks raise the loss of the original class; targeted ones lower the loss of ``target``. Images are
RGB ``(1, 3, H, W)`` in [0, 1]; ``epsilon`` is in those units (4/255 = four 8-bit levels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import PerceptError
from ..models import get_model
from ..models.classifier import Classifier
from ..record import describe_input
from .explanation import Explanation, as_pil, explained
from .hooks import no_inplace
from .montage import side_by_side
from .params import ATTACKS as METHODS
from .params import AttackParams, explain_settings


@dataclass
class AttackResult:
    """An adversarial image and what it did."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1], CPU
    perturbation: torch.Tensor  # image - original, (1, 3, H, W)
    original_class: int
    new_class: int
    target: int | None
    probability: float  # of new_class
    success: bool  # targeted: new_class == target; untargeted: new_class != original_class
    linf: float  # max |perturbation|, in [0, 1] units
    l2: float

    @property
    def amplification(self) -> float:
        """How much :func:`perturbation_image` enlarges the perturbation to show it."""
        return 0.5 / max(self.linf, 1e-12)


def attack(classifier: Classifier, image: torch.Tensor, *, method: str = "pgd", epsilon: float = 4 / 255,
           target: str | int | None = None, steps: int = 20, step_size: float | None = None) -> AttackResult:
    """Attack ``image`` ``(1, 3, H, W)`` in [0, 1]; ``target`` (name or index) makes it targeted.

    ``steps`` and ``step_size`` (default ``2.5 * epsilon / steps``, Madry et al.) apply to PGD.
    """
    if method not in METHODS:
        raise PerceptError(f"unknown attack {method!r}; use {', '.join(METHODS)}")
    if not 0 < epsilon <= 1:
        raise PerceptError(f"epsilon must be in (0, 1] (image units; 4/255 = 0.0157), got {epsilon}")
    if steps < 1:
        raise PerceptError(f"steps must be >= 1, got {steps}")
    model, device = classifier.model, classifier.device
    original = image.detach().to(device)
    with torch.no_grad():
        original_class = int(model(original).argmax(dim=1)[0])
    goal = None if target is None else classifier.class_index(target)
    label = torch.tensor([original_class if goal is None else goal], device=device)
    sign = 1.0 if goal is None else -1.0  # climb the original class's loss, or descend the target's
    if method == "fgsm":
        steps, step_size = 1, epsilon
    step_size = 2.5 * epsilon / steps if step_size is None else step_size
    x = original.clone()
    with no_inplace(model):
        for _ in range(steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x), label), x)
            with torch.no_grad():
                x = x + sign * step_size * grad.sign()
                x = (original + (x - original).clamp(-epsilon, epsilon)).clamp(0, 1)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)[0]
    new_class = int(probs.argmax())
    delta = (x - original).detach().cpu()
    success = new_class == goal if goal is not None else new_class != original_class
    return AttackResult(x.detach().cpu(), delta, original_class, new_class, goal, float(probs[new_class]), success,
                        float(delta.abs().max()), float(delta.norm()))


def perturbation_image(result: AttackResult) -> torch.Tensor:
    """The perturbation amplified to the full range, mid-grey = no change: ``(1, 3, H, W)`` in [0, 1]."""
    return (0.5 + result.perturbation * result.amplification).clamp(0, 1)


def explain_attack(image: Any, **settings: Any) -> Explanation[AttackResult]:
    """Load the classifier of ``settings`` (:class:`~percept.understand.params.AttackParams`; ``epsilon`` is a
    fraction of the [0, 1] range) and attack the centre crop of ``image`` (a file, PIL image or tensor). Figure:
    original | amplified perturbation | adversarial image, ``(1, 3, crop, 3 crop)``."""
    params = explain_settings(AttackParams, settings)
    pil = as_pil(image)
    classifier = get_model(params.model, device=params.device, kind="classifier")
    x = classifier.prepare(pil)
    target = params.target if params.target != "" else None
    r = attack(classifier, x, method=params.attack, epsilon=params.epsilon, target=target, steps=params.steps)
    names = classifier.classes
    return explained(params, side_by_side(x, perturbation_image(r), r.image), r,
                     inputs={"image": describe_input(image)}, weights_id=classifier.id,
                     original=names[r.original_class], new=names[r.new_class],
                     target=None if r.target is None else names[r.target], probability=round(r.probability, 4),
                     success=r.success, linf=r.linf, l2=round(r.l2, 4))
