"""Class visualisation: the image a classifier finds most typical of a class (Simonyan et al. 2014), made
readable with Yosinski et al. 2015's regularisers.

Gradient ascent on the class logit from a grey image with faint seeded noise. Each step: the image is rolled by a
random jitter (up to ``jitter`` px; the gradient is rolled back), moved by ``lr`` times the gradient divided by
its mean absolute value (so ``lr`` is the mean change of a pixel, in [0, 1] units, whatever the network's scale),
decayed towards grey by ``decay`` (L2 regularisation as weight decay: ``x <- 0.5 + (1 - decay)(x - 0.5)``) and
clamped to [0, 1]; every ``blur_every`` steps it is blurred (Gaussian, std ``blur_sigma`` px), which suppresses
the high frequencies a classifier responds to but a person does not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import PerceptError
from ..models import get_model
from ..models.classifier import Classifier
from .ascent import ascent_step, blur
from .explanation import Explanation, explained
from .hooks import no_inplace
from .montage import side_by_side
from .params import ClassImageParams, explain_settings


@dataclass
class ClassImageResult:
    """A class visualisation and how far it moved the class score."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1], CPU
    target: int
    start_logit: float  # of target, on the start image
    end_logit: float  # of target, on the final image (no jitter)
    rank: int  # of target among all classes on the final image; 1 = top
    probability: float  # softmax probability of target on the final image

    @property
    def gain(self) -> float:
        return self.end_logit - self.start_logit


def class_image(classifier: Classifier, target: str | int, *, size: int = 0, steps: int = 200,
                lr: float = 0.02, decay: float = 0.005, jitter: int = 16, blur_every: int = 4,
                blur_sigma: float = 1.0, noise: float = 0.02, seed: int = 0, progress: bool = False
                ) -> ClassImageResult:
    """Maximise the logit of ``target`` (class name or index) over a ``size`` x ``size`` image (default: the
    classifier's crop size), on the classifier's device; see the module docstring for the options.

    Returns the image ``(1, 3, size, size)`` in [0, 1] on the CPU with the target's logit before and after, and its
    rank and probability at the end.
    """
    index = classifier.class_index(target)
    size = size or classifier.crop
    if size < 8 or steps < 1 or lr <= 0 or not 0 <= decay < 1 or jitter < 0 or blur_every < 0 or noise < 0:
        raise PerceptError(f"class-image needs size >= 8, steps >= 1, lr > 0, 0 <= decay < 1 and jitter, blur_every, "
                           f"noise >= 0; got size {size}, steps {steps}, lr {lr}, decay {decay}, jitter {jitter}, "
                           f"blur_every {blur_every}, noise {noise}")
    model, device = classifier.model, classifier.device
    generator = torch.Generator().manual_seed(seed)
    x = (0.5 + noise * torch.randn(1, 3, size, size, generator=generator)).clamp(0, 1).to(device)
    with torch.no_grad():
        start = float(model(x)[0, index])
    with no_inplace(model):
        for step in tqdm(range(steps), desc=f"class image {classifier.classes[index]}", unit="step",
                         disable=not progress):
            x = ascent_step(x, lambda moved: model(moved)[0, index], step_size=lr, max_shift=jitter,
                            generator=generator)
            with torch.no_grad():
                x = (0.5 + (1 - decay) * (x - 0.5)).clamp(0, 1)
                if blur_every and (step + 1) % blur_every == 0:
                    x = blur(x, blur_sigma)
    with torch.no_grad():
        logits = model(x)[0]
    probs = logits.softmax(dim=0)
    rank = int((logits > logits[index]).sum()) + 1
    return ClassImageResult(x.detach().cpu(), index, start, float(logits[index]), rank, float(probs[index]))


def explain_class_image(*, progress: bool = False, **settings: Any) -> Explanation[list[ClassImageResult]]:
    """Load the classifier of ``settings`` (:class:`~percept.understand.params.ClassImageParams`) and draw one class
    image per class of ``target`` (names or indices), side by side: figure ``(1, 3, size, n size)``. Every class
    name is checked before any work."""
    params = explain_settings(ClassImageParams, settings)
    if not params.target:
        raise PerceptError("give the class(es) to draw (--class NAME|INDEX[,...])")
    classifier = get_model(params.model, device=params.device, kind="classifier")
    targets = [classifier.class_index(t) for t in params.target]
    results = [class_image(classifier, t, size=params.size or None, steps=params.steps, lr=params.lr,
                           decay=params.decay, jitter=params.jitter, blur_every=params.blur_every,
                           blur_sigma=params.blur_sigma, seed=params.seed, progress=progress) for t in targets]
    return explained(params, side_by_side(*(r.image for r in results)), results, weights_id=classifier.id,
                     classes=[classifier.classes[r.target] for r in results],
                     logits=[[round(r.start_logit, 3), round(r.end_logit, 3)] for r in results])
