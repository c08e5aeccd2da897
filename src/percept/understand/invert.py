"""Feature inversion: what one layer still knows about an image (Mahendran & Vedaldi 2015).

For each layer separately, an image ``x`` is optimised from seeded noise to minimise

    ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2  +  tv_weight * TV(x)  +  alpha_weight * mean(|2 x - 1|^alpha)

where ``phi`` is the layer's output and ``x0`` the original: the relative feature error
(:func:`percept.losses.content_loss`), the total-variation prior (:func:`percept.losses.tv_loss`, mean squared
neighbour difference) and the alpha-norm prior on the image centred on grey (off by default). What comes back
from an early layer is nearly the photo; from deeper layers, less and less of its exact pixels survive.

Optimisers: ``lbfgs`` (default; ``steps`` loss evaluations, no line search, a soft penalty
:func:`percept.losses.range_loss` keeps pixels in [0, 1]) or ``adam`` (``steps`` steps of ``lr``, clamped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..device import module_device
from ..errors import PerceptError
from ..image import to_tensor
from ..losses import content_loss, range_loss, tv_loss
from ..models.classifier import Classifier
from ..record import describe_input
from .ascent import check_image, network, psnr
from .explanation import Explanation, as_pil, explained
from .hooks import layer_outputs, no_inplace
from .layer_features import load_network
from .params import OPTIMIZERS, InvertParams, explain_settings

#: Weight of :func:`percept.losses.range_loss` under L-BFGS (as in percept's style transfer).
RANGE_WEIGHT = 1e4


@dataclass
class Inversion:
    """One layer's reconstruction."""

    layer: str
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], CPU
    psnr: float  # dB against the original, peak 1
    loss: float  # final relative feature error ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2
    start_loss: float  # the same for the noise start


@dataclass
class InversionResult:
    """The original and one reconstruction per layer, shallowest first as asked."""

    original: torch.Tensor  # (1, 3, H, W) in [0, 1], CPU
    inversions: list[Inversion]

    def strip(self) -> torch.Tensor:
        """``original | layer 1 | layer 2 ...`` side by side: ``(1, 3, H, (n + 1) W)``."""
        return torch.cat([self.original, *(inv.image for inv in self.inversions)], dim=3)


def invert_layer(model: nn.Module, image: torch.Tensor, layer: str, *, steps: int = 200,
                 optimizer: str = "lbfgs", lr: float | None = None, tv_weight: float = 0.5,
                 alpha_weight: float = 0.0, alpha: float = 6.0, noise: float = 0.1, seed: int = 0,
                 progress: bool = False) -> Inversion:
    """Reconstruct ``image`` ``(1, 3, H, W)`` in [0, 1] from ``layer`` of ``model`` (see :func:`invert`)."""
    device = module_device(model)
    original = image.detach().to(device)
    with torch.no_grad():
        target = layer_outputs(model, original, [layer])[layer].detach()
    generator = torch.Generator().manual_seed(seed)
    x = (0.5 + noise * torch.randn(image.shape, generator=generator)).clamp(0, 1).to(device).requires_grad_(True)

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        feature = content_loss(layer_outputs(model, x, [layer])[layer], target)
        total = feature + tv_weight * tv_loss(x)
        if alpha_weight:
            total = total + alpha_weight * (2 * x - 1).abs().pow(alpha).mean()
        if optimizer == "lbfgs":
            total = total + RANGE_WEIGHT * range_loss(x)
        return total, feature

    bar = tqdm(total=steps, desc=f"invert {layer}", unit="step", disable=not progress)
    with torch.no_grad():
        start_loss = float(objective()[1])
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=steps, max_eval=steps,
                                tolerance_grad=0.0, tolerance_change=0.0, history_size=50)

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            total, _ = objective()
            total.backward()
            bar.update()
            return total

        opt.step(closure)
    else:
        opt = torch.optim.Adam([x], lr=0.05 if lr is None else lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            objective()[0].backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            bar.update()
    bar.close()
    result = x.detach().clamp(0, 1)
    with torch.no_grad():
        loss = float(content_loss(layer_outputs(model, result, [layer])[layer], target))
    return Inversion(layer, result.cpu(), psnr(result, original), loss, start_loss)


def invert(model: nn.Module | Classifier, image: torch.Tensor, layers: Sequence[str], *, steps: int = 200,
           optimizer: str = "lbfgs", lr: float | None = None, tv_weight: float = 0.5, alpha_weight: float = 0.0,
           alpha: float = 6.0, noise: float = 0.1, seed: int = 0, progress: bool = False) -> InversionResult:
    """Invert ``image`` ``(1, 3, H, W)`` in [0, 1] from each of ``layers`` separately, on the model's device.

    ``model`` is a :class:`~percept.models.FeatureNet` (layers ``relu1_2``, ...), a :class:`Classifier` or any
    module mapping RGB [0, 1] to features (module names, ``percept explain layers``). ``steps`` counts loss
    evaluations (L-BFGS) or steps (Adam, ``lr`` default 0.05; L-BFGS ``lr`` default 1); ``tv_weight`` and
    ``alpha_weight`` weight the priors of the module docstring; every layer starts from the same seeded uniform
    noise. Returns the original and, per layer, the reconstruction with its PSNR and final feature error.
    """
    check_image(image)
    if optimizer not in OPTIMIZERS:
        raise PerceptError(f"unknown optimizer {optimizer!r}; use {', '.join(OPTIMIZERS)}")
    if not layers:
        raise PerceptError("give at least one layer to invert")
    if steps < 1 or tv_weight < 0 or alpha_weight < 0 or alpha <= 0:
        raise PerceptError(f"invert needs steps >= 1, tv_weight >= 0, alpha_weight >= 0 and alpha > 0; got steps "
                           f"{steps}, tv_weight {tv_weight}, alpha_weight {alpha_weight}, alpha {alpha}")
    module = network(model)
    with torch.no_grad():  # every name is checked before the first (long) optimisation
        layer_outputs(module, image.to(module_device(module)), list(layers))
    with no_inplace(module):
        inversions = [invert_layer(module, image, layer, steps=steps, optimizer=optimizer, lr=lr,
                                   tv_weight=tv_weight, alpha_weight=alpha_weight, alpha=alpha, noise=noise, seed=seed,
                                   progress=progress) for layer in layers]
    return InversionResult(image.detach().cpu(), inversions)


def explain_invert(image: Any, *, progress: bool = False, **settings: Any) -> Explanation[InversionResult]:
    """Load the network of ``settings`` (:class:`~percept.understand.params.InvertParams`; ``layers`` default to
    the model's, :data:`~percept.understand.params.INVERT_LAYERS`) and invert ``image`` (a file, PIL image or
    tensor; longest side ``size``) from each layer. Figure: original | layer 1 | layer 2 ..."""
    params = explain_settings(InvertParams, settings)
    layers = params.resolved_layers()
    x = to_tensor(as_pil(image), longest=params.size)
    r = invert(load_network(params.model, device=params.device).model, x, layers, steps=params.steps,
               optimizer=params.optimizer, tv_weight=params.tv_weight, alpha_weight=params.alpha_weight,
               seed=params.seed, progress=progress)
    return explained(params, r.strip(), r, inputs={"image": describe_input(image)}, layers=layers,
                     psnr={inv.layer: round(inv.psnr, 2) for inv in r.inversions},
                     feature_error={inv.layer: round(inv.loss, 5) for inv in r.inversions})
