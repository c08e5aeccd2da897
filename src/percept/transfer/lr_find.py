"""Learning-rate range test (L. Smith 2015, "Cyclical Learning Rates"; fastai's ``lr_find``).

The learning rate grows exponentially from ``start_lr`` to ``end_lr``, one mini-batch per step, while the
training loss is recorded; the run stops early once the loss diverges. The loss is smoothed (exponential
moving average, bias-corrected, beta 0.98) and the *suggestion* is the lr where it falls fastest per decade
of lr. With several parameter groups (discriminative learning rates) every group is scaled so that the ratios
between groups are kept; the recorded lr is the largest group's. The model and optimizer are left exactly as
they were found (weights, buffers, gradients, optimizer state, group lrs, train/eval mode), even on error.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import PerceptError
from ..image import atomic_write
from .plots import _figure

BETA = 0.98  # smoothing of the loss, as in fastai
from .finetune_params import LR_FIND_SETTINGS, LrFindParams

_RANGE = LrFindParams()  # the default range: 100 mini-batches from 1e-7 to 1

StepFn = Callable[[nn.Module, Any, Any], torch.Tensor]


@dataclass
class LRFinderResult:
    """One range test: per step the base lr (largest group's) and the training loss.

    ``losses`` are smoothed (EMA, bias-corrected), ``raw_losses`` the mini-batch losses. ``suggestion`` is the
    lr of steepest descent of the smoothed loss (per log10 lr); ``min_loss_lr`` the lr of its minimum (a
    common, more conservative choice is ``min_loss_lr / 10``). ``diverged``: the run stopped early because
    the loss blew up.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    min_loss_lr: float
    diverged: bool
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain, strict-JSON data (non-finite losses become ``None``)."""
        def clean(values: list[float]) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values]

        return {
            "lrs": list(self.lrs), "losses": clean(self.losses), "raw_losses": clean(self.raw_losses),
            "suggestion": self.suggestion, "min_loss_lr": self.min_loss_lr, "diverged": self.diverged,
            "steps_run": len(self.lrs), "params": dict(self.params),
        }  # fmt: skip


def _to_cpu_copy(obj: Any) -> Any:
    """Deep copy with every tensor copied to the CPU (keeps accelerator memory free during the test)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


@contextmanager
def _restored(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any = None) -> Iterator[None]:
    """Undo everything a training run does to ``model``, ``optimizer`` (and ``scaler``) on exit, however it exits."""
    model_state = _to_cpu_copy(model.state_dict())
    optim_state = _to_cpu_copy(optimizer.state_dict())
    scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
    grads = [None if p.grad is None else p.grad.detach().to("cpu", copy=True) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)  # also restores every group's hyperparameters (lr, ...)
        if scaler is not None:
            scaler.load_state_dict(scaler_state)
        for p, g in zip(model.parameters(), grads):
            p.grad = None if g is None else g.to(p.device)
        for m, training in modes:
            m.training = training


def _set_lr(group: dict[str, Any], lr: float) -> None:
    if isinstance(group["lr"], torch.Tensor):  # e.g. capturable / fused optimizers
        group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def _batches(loader: Iterable) -> Iterator[Any]:
    """Cycle through ``loader``; stop if a new pass yields nothing (a one-shot iterable)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


def _suggest(lrs: list[float], losses: list[float], window: int) -> tuple[float, float]:
    """(steepest-descent lr, min-loss lr) of the smoothed loss.

    The slope is taken against log10(lr) over ``window`` steps either side (a few tenths of a decade, which
    averages out mini-batch noise), only between the first 10% of the steps (at most 10, where the average is
    still noisy) and the minimum (so never in the diverged tail), and only where the loss has already fallen
    by a fifth of its total drop (so noise on the initial plateau is not mistaken for the descent).
    """
    values = np.array([v if math.isfinite(v) else np.inf for v in losses])
    best = int(np.argmin(values))
    min_lr = lrs[best]
    start = min(10, len(lrs) // 10)
    if best - start < 2:  # the minimum comes very early: use the first steps too
        start = 0
    if best - start < 2:
        return min_lr / 10, min_lr  # no descent to speak of: the usual rule of thumb
    log_lrs = np.log10(np.array(lrs))
    top = values[start : best + 1].max()
    threshold = top - 0.2 * (top - values[best])
    slopes = {}
    for i in range(start, best + 1):
        if values[i] <= threshold:
            a, c = max(start, i - window), min(best, i + window)
            slopes[i] = (values[c] - values[a]) / (log_lrs[c] - log_lrs[a])
    return lrs[min(slopes, key=slopes.__getitem__)], min_lr


def lr_range_test(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    *,
    start_lr: float = _RANGE.start_lr,
    end_lr: float = _RANGE.end_lr,
    steps: int = _RANGE.steps,
    diverge_factor: float = 4.0,
    device: str | torch.device = "cpu",
    step_fn: StepFn | None = None,
    scaler: torch.amp.GradScaler | None = None,
    progress: bool = False,
) -> LRFinderResult:
    """Train ``steps`` mini-batches with the lr growing geometrically from ``start_lr`` to ``end_lr``.

    ``loader`` yields ``(x, y)`` batches and is cycled if shorter than ``steps``. Every param group's lr is
    ``(its initial lr / the largest initial lr) * base lr``. Stops early once the smoothed loss exceeds
    ``diverge_factor`` times its best value or is not finite. ``step_fn(model, x, y) -> loss`` replaces the
    default ``loss_fn(model(x.to(device)), y.to(device))`` (it gets the batch as the loader yields it); this
    function then calls ``backward()`` and ``optimizer.step()``, through ``scaler`` (float16 loss scaling)
    when one is given. The model is put in train mode and must already be on ``device``. Model, optimizer,
    scaler and modes are restored afterwards, also on error.
    """
    if not (math.isfinite(start_lr) and math.isfinite(end_lr) and 0 < start_lr < end_lr):
        raise PerceptError(f"need 0 < start_lr < end_lr (finite), got start_lr={start_lr}, end_lr={end_lr}")
    if steps < 5:
        raise PerceptError(f"steps must be >= 5, got {steps}")
    if not diverge_factor > 1:
        raise PerceptError(f"diverge_factor must be > 1, got {diverge_factor}")
    if step_fn is None and loss_fn is None:
        raise PerceptError("give a loss_fn, or a step_fn that computes the loss")
    if not optimizer.param_groups:
        raise PerceptError("the optimizer has no parameter groups")
    initial = [float(g["lr"]) for g in optimizer.param_groups]
    top = max(initial)
    if not top > 0:
        raise PerceptError(f"the optimizer's largest group lr must be > 0 to keep the groups' ratios, got {top}")
    ratios = [lr / top for lr in initial]
    try:
        if len(loader) == 0:  # type: ignore[arg-type]
            raise PerceptError("the data loader is empty: no batches to run the lr range test on")
    except TypeError:  # no len(): checked on the first batch below
        pass

    from tqdm.auto import tqdm

    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    diverged = False
    avg, best = 0.0, math.inf
    with _restored(model, optimizer, scaler), tqdm(total=steps, desc="lr range test", unit="batch", disable=not progress) as bar:
        model.train()
        batches = _batches(loader)
        for i in range(steps):
            batch = next(batches, None)
            if batch is None:
                if i == 0:
                    raise PerceptError("the data loader is empty: no batches to run the lr range test on")
                break
            lr = start_lr * growth**i
            for group, ratio in zip(optimizer.param_groups, ratios):
                _set_lr(group, ratio * lr)
            x, y = batch
            optimizer.zero_grad(set_to_none=True)
            loss = step_fn(model, x, y) if step_fn is not None else loss_fn(model(x.to(device)), y.to(device))
            value = float(loss.detach())
            if not math.isfinite(value):
                pass  # diverged: stop below without stepping
            elif scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)  # skipped when the scaled gradients overflow
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            avg = BETA * avg + (1 - BETA) * value
            smooth = avg / (1 - BETA ** (i + 1))
            lrs.append(lr)
            raw.append(value)
            losses.append(smooth)
            bar.update(1)
            bar.set_postfix(lr=f"{lr:.2e}", loss=f"{smooth:.4g}", refresh=False)
            if not math.isfinite(smooth) or smooth > diverge_factor * best:
                diverged = True
                break
            best = min(best, smooth)
    suggestion, min_loss_lr = _suggest(lrs, losses, window=max(1, round(0.05 * steps)))
    params = {"start_lr": start_lr, "end_lr": end_lr, "steps": steps, "diverge_factor": diverge_factor,
              "group_ratios": ratios}
    return LRFinderResult(lrs=lrs, losses=losses, raw_losses=raw, suggestion=suggestion, min_loss_lr=min_loss_lr,
                          diverged=diverged, params=params)


def find_learning_rate(data: str | Path, *, unfreeze: int | str = _RANGE.unfreeze, start_lr: float = _RANGE.start_lr,
                       end_lr: float = _RANGE.end_lr, steps: int = _RANGE.steps, progress: bool = False,
                       **settings: Any) -> LRFinderResult:
    """Learning-rate range test (Smith 2015) for fine-tuning on ``data``.

    ``unfreeze=0`` tests the head phase (new head, frozen backbone); ``K`` or ``"all"`` also trains the top
    stages with the discriminative ratios lr/9 : lr/3 : lr, so the reported lrs (and the suggestion) are the
    head's, the value to pass as ``lr``. ``settings``: the fields of
    :class:`~percept.transfer.finetune_params.FinetuneParams` named in :data:`LR_FIND_SETTINGS` (``backbone``,
    ``optimizer``, ``batch_size``, ...). Nothing is written; returns a :class:`LRFinderResult`.
    """
    from ..device import amp_dtype
    from ..params import from_settings
    from .finetune_data import prepare_training
    from .finetune_params import FinetuneParams, parse_unfreeze
    from .lr_groups import make_optimizer, param_groups

    unused = sorted(set(settings) - set(LR_FIND_SETTINGS))
    if unused:
        raise PerceptError(f"the lr range test does not use {', '.join(unused)}; drop "
                           f"{'it' if len(unused) == 1 else 'them'}")
    # a random (Kaiming) head, as the head phase of a random-head run starts; no probe is fitted for a range test
    p = from_settings(FinetuneParams, {"head_init": "kaiming", **settings}, what="fine-tuning setting")
    t = prepare_training(data, p)
    t.model.unfreeze_top(parse_unfreeze(unfreeze))
    opt = make_optimizer(p.optimizer, param_groups(t.model, 1.0, p.resolved_weight_decay()), p.momentum)
    dtype = amp_dtype(p.amp, t.device)
    scaler = torch.amp.GradScaler(t.device.type, enabled=dtype == torch.float16)

    def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if t.mixer is not None:
            x, y = t.mixer(x, y)
        with torch.autocast(t.device.type, dtype=dtype) if dtype is not None else nullcontext():
            return t.loss_fn(model(x.to(t.device)), y.to(t.device))

    return lr_range_test(t.model, t.train_loader, None, opt, start_lr=start_lr, end_lr=end_lr, steps=steps,
                         device=t.device, step_fn=step, scaler=scaler, progress=progress)


def plot_lr_finder(result: LRFinderResult, path: str | Path, *, title: str | None = None) -> None:
    """Smoothed loss vs lr (log axis) with the suggestion and the min-loss lr marked; 640x400 px PNG."""
    plt = _figure()
    lrs = np.array(result.lrs)
    smooth = np.array([v if math.isfinite(v) else np.nan for v in result.losses])
    raw = np.array([v if math.isfinite(v) else np.nan for v in result.raw_losses])
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(lrs, raw, color="0.75", linewidth=0.8, label="mini-batch loss")
    ax.plot(lrs, smooth, color="tab:red", label="smoothed loss")
    ax.set_xscale("log")
    if np.isfinite(smooth).any():
        best = int(np.nanargmin(smooth))
        lo, hi = smooth[best], np.nanmax(smooth[: best + 1])
        span = (hi - lo) or abs(lo) * 0.1 or 1.0
        ax.set_ylim(lo - 0.15 * span, hi + 0.5 * span)  # the diverged tail runs off the top
        s = int(np.argmin(np.abs(np.log(lrs / result.suggestion))))
        if np.isclose(lrs[s], result.suggestion):
            ax.plot(lrs[s], smooth[s], "o", color="tab:green", markersize=8, zorder=3)
        ax.plot(lrs[best], smooth[best], "v", color="tab:blue", markersize=8, zorder=3,
                label=f"min loss at {result.min_loss_lr:.2e}")
    ax.axvline(result.suggestion, color="tab:green", linestyle="--", label=f"suggestion {result.suggestion:.2e}")
    ax.set_xlabel("learning rate (largest group)")
    ax.set_ylabel("training loss")
    ax.set_title(title or ("learning-rate range test" + (" (stopped: diverged)" if result.diverged else "")))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
