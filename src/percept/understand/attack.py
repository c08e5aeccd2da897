"""Adversarial examples: imperceptible changes that flip a classifier's decision ("make this panda a gibbon").

* FGSM (Goodfellow et al. 2015): one step of size ``epsilon`` along the sign of the loss gradient.
* PGD (Madry et al. 2018): ``steps`` signed-gradient steps of ``step_size``, each followed by projection onto the
  L-inf ball of radius ``epsilon`` around the image and onto [0, 1].

Untargeted attacks raise the loss of the original class; targeted ones lower the loss of ``target``. Images are
RGB ``(1, 3, H, W)`` in [0, 1]; ``epsilon`` is in those units (4/255 = four 8-bit levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import PerceptError
from .classifier import Classifier
from .hooks import no_inplace

METHODS = ("fgsm", "pgd")


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
