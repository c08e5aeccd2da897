"""Activation statistics and dead-ReLU diagnostics, e.g. to compare a network before and after fine-tuning.

:func:`activation_stats` runs one batch through a model with forward hooks on its activation modules and
records, per *call*, the mean, standard deviation and zero fraction of the output and, for ReLU and ReLU6,
the fraction of dead channels (never positive anywhere in the batch). A module called twice in one forward
(EfficientNet-Lite reuses one ReLU6 per block) gives two entries, ``name#1`` and ``name#2``. Only activation
*modules* are seen, not functional calls such as ``F.relu``::

    start = activation_stats(model, batch)
    ...                                                    # train
    report = compare(start, activation_stats(model, batch))
    print(format_summary(report))
    plot_diagnostics(report, Path("diagnostics.png"))
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import PerceptError
from ..image import atomic_write
from .plots import _figure

#: Module types whose outputs are recorded.
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish)
#: Of those, the ones whose channels can die (output exactly 0 for every input).
RELU_FAMILY = (nn.ReLU, nn.ReLU6)


def _output_stats(output: torch.Tensor, relu: bool) -> dict[str, Any]:
    """Floats describing one activation output ``(B, C, ...)``; channels are dim 1 (a 1-D output is one)."""
    y = output.detach().float()
    std, mean = torch.std_mean(y, correction=0)
    dead = None
    if relu:
        alive = y.amax(dim=[d for d in range(y.ndim) if d != 1]) > 0  # (C,): positive somewhere in the batch
        dead = 1.0 - alive.float().mean().item()
    return {
        "mean": mean.item(),
        "std": std.item(),
        "zero_fraction": (y <= 0).sum().item() / y.numel(),
        "dead_fraction": dead,
        "channels": y.shape[1] if y.ndim > 1 else 1,
    }


@contextlib.contextmanager
def _recording(model: nn.Module, calls: list[tuple[str, str, dict[str, Any]]]) -> Iterator[None]:
    """Forward hooks appending ``(name, kind, stats)`` to ``calls`` per activation call; always removed."""
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs, output: torch.Tensor) -> None:
            calls.append((name, type(module).__name__, _output_stats(output, isinstance(module, RELU_FAMILY))))

        return record

    try:
        for name, module in model.named_modules():
            if isinstance(module, ACTIVATIONS):
                handles.append(module.register_forward_hook(hook(name or type(module).__name__)))
        if not handles:
            kinds = ", ".join(a.__name__ for a in ACTIVATIONS)
            raise PerceptError(f"{type(model).__name__} has no activation modules ({kinds})")
        yield
    finally:
        for handle in handles:
            handle.remove()


def activation_stats(model: nn.Module, batch: torch.Tensor) -> list[dict[str, Any]]:
    """Statistics of every activation call in one eval-mode, no-grad forward pass of ``batch``.

    Returns one dict per call, in call order: ``layer`` (qualified module name, ``#k`` appended when the
    module ran more than once), ``kind`` (class name), ``mean`` and ``std`` (population) of the output,
    ``zero_fraction`` (share of output elements <= 0), ``dead_fraction`` (ReLU/ReLU6 only, else ``None``:
    share of channels, dim 1, that are <= 0 at every image and position of the batch) and ``channels``.
    Each module's train/eval mode is restored afterwards. Only floats are kept, never activations.
    """
    if not isinstance(model, nn.Module):
        raise PerceptError(f"activation_stats needs an nn.Module, not {type(model).__name__}")
    if not isinstance(batch, torch.Tensor) or batch.numel() == 0:
        raise PerceptError("activation_stats needs a non-empty batch tensor, e.g. of shape (B, 3, H, W)")
    modes = {m: m.training for m in model.modules()}
    calls: list[tuple[str, str, dict[str, Any]]] = []
    try:
        model.eval()
        with _recording(model, calls), torch.no_grad():
            model(batch)
    finally:
        for module, training in modes.items():
            module.training = training
    counts, seen = Counter(name for name, _, _ in calls), Counter()
    entries = []
    for name, kind, stats in calls:
        seen[name] += 1
        layer = f"{name}#{seen[name]}" if counts[name] > 1 else name
        entries.append({"layer": layer, "kind": kind, **stats})
    return entries


def _dead_mean(entries: list[dict[str, Any]]) -> float | None:
    """Channel-weighted mean dead fraction over the ReLU-family entries (``None`` without any)."""
    relus = [e for e in entries if e["dead_fraction"] is not None]
    channels = sum(e["channels"] for e in relus)
    return sum(e["dead_fraction"] * e["channels"] for e in relus) / channels if channels else None


def compare(start: list[dict[str, Any]], end: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair two :func:`activation_stats` results by layer name into a report.

    Returns ``{"layers": [{"layer", "kind", "start", "end"}], "summary": {"dead_fraction_start",
    "dead_fraction_end", "most_dead_layer_end", "layers"}}``; the dead fractions are channel-weighted means
    over ReLU/ReLU6 entries (``None`` without any), in ``start``'s layer order.
    """
    ends = {e["layer"]: e for e in end}
    starts = {e["layer"]: e for e in start}
    for name in [*starts, *ends]:
        if name not in starts or name not in ends:
            raise PerceptError(f"layer {name!r} is in only one of the two statistics; compare one model's runs")
    keep = ("mean", "std", "zero_fraction", "dead_fraction", "channels")
    layers = []
    for s in start:
        e = ends[s["layer"]]
        pair = {"start": {k: s[k] for k in keep}, "end": {k: e[k] for k in keep}}
        layers.append({"layer": s["layer"], "kind": s["kind"], **pair})
    relus = [e for e in end if e["dead_fraction"] is not None]
    most = max(relus, key=lambda e: e["dead_fraction"])["layer"] if relus else None
    summary = {
        "dead_fraction_start": _dead_mean(start),
        "dead_fraction_end": _dead_mean(end),
        "most_dead_layer_end": most,
        "layers": len(layers),
    }
    return {"layers": layers, "summary": summary}


def format_summary(report: dict[str, Any]) -> str:
    """One line, e.g. ``dead ReLU channels: 1.2% at start -> 3.4% at end (most: layer X, 12.0%)``."""
    summary = report["summary"]
    if summary["dead_fraction_end"] is None:
        return f"dead ReLU channels: no ReLU layers among {summary['layers']} activation layers"
    most = next(e for e in report["layers"] if e["layer"] == summary["most_dead_layer_end"])
    return (
        f"dead ReLU channels: {summary['dead_fraction_start']:.1%} at start -> {summary['dead_fraction_end']:.1%} "
        f"at end (most: {most['layer']}, {most['end']['dead_fraction']:.1%})"
    )


def figure_size(layers: int) -> tuple[float, float]:
    """Figure size in inches (100 dpi) for a report of ``layers`` entries: wider for more layers."""
    return min(16.0, max(6.4, 2.0 + 0.2 * layers)), 6.4


def plot_diagnostics(report: dict[str, Any], path: str | Path) -> None:
    """PNG of two panels over the layers: dead-channel fraction and mean ± std, each at start and end.

    Layers without a dead fraction (non-ReLU activations) have no bar; at most ~40 layer names are shown.
    """
    layers = report["layers"]
    if not layers:
        raise PerceptError("the diagnostics report has no layers to plot")
    plt = _figure()
    n = len(layers)
    x = list(range(n))
    fig, (dead_ax, act_ax) = plt.subplots(2, 1, sharex=True, figsize=figure_size(n), dpi=100)
    colors = {"start": "tab:blue", "end": "tab:red"}
    for offset, when in ((-0.2, "start"), (0.2, "end")):
        dead = [e[when]["dead_fraction"] for e in layers]
        dead_ax.bar([i + offset for i in x], [math.nan if d is None else d for d in dead], width=0.4,
                    color=colors[when], label=when)  # fmt: skip
        mean = [e[when]["mean"] for e in layers]
        std = [e[when]["std"] for e in layers]
        act_ax.plot(x, mean, "o-", markersize=3, color=colors[when], label=f"mean at {when}")
        act_ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=colors[when], alpha=0.15, label=f"± std at {when}")  # fmt: skip
    dead_ax.set_ylabel("dead-channel fraction")
    dead_ax.set_ylim(0, 1)
    dead_ax.legend(loc="best", fontsize=8)
    act_ax.set_ylabel("activation")
    act_ax.legend(loc="best", fontsize=8, ncol=2)
    step = max(1, math.ceil(n / 40))
    act_ax.set_xticks(x[::step], [e["layer"] for e in layers[::step]], rotation=90, fontsize=7)
    act_ax.set_xlim(-0.6, n - 0.4)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
