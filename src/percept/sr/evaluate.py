"""Compare upscalers against bicubic interpolation on high-resolution photos (:func:`evaluate_sr`).

Each photo is cropped to a multiple of the factor, degraded (:func:`percept.sr.degrade.degrade`: as in training)
and upscaled by every model and by bicubic interpolation; the outputs are compared with the original photo after
cutting ``border`` pixels (default: the factor) from every side, where upscalers see padding instead of image.
PSNR and SSIM (:mod:`percept.metrics`; RGB, or the luma with ``channel="y"``) are higher-is-better, LPIPS
(AlexNet, v0.1) lower-is-better.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..device import resolve_device
from ..errors import PerceptError
from ..image import as_tensor, find_images
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .degrade import degrade
from .params import BICUBIC, PEERS, EvaluateSrParams
from .upscale import load_upscaler, run_upscaler

#: Whether a larger value of each metric is better.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}
#: The smallest side (pixels) SSIM can measure.
SSIM_WINDOW = 11


@dataclass
class SrEvaluation:
    """What :func:`evaluate_sr` returns.

    Attributes:
        models: the upscalers' labels, ``bicubic`` first.
        metrics: the metrics measured.
        images: the photos' names.
        per_image: ``{model: {metric: [one value per image]}}``.
        means: ``{model: {metric: mean over the images}}``.
        record: the settings, the inputs (path and SHA-256 of every photo and model file) and the results.
    """

    models: list[str]
    metrics: list[str]
    images: list[str]
    per_image: dict[str, dict[str, list[float]]]
    means: dict[str, dict[str, float]] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    def best(self, metric: str) -> str:
        """The model with the best mean ``metric``."""
        pick = max if HIGHER_IS_BETTER[metric] else min
        return pick(self.models, key=lambda m: self.means[m][metric])

    def table(self) -> str:
        """An aligned text table: one row per model with the mean of each metric, the best marked with ``*``."""
        heads = [f"{m.upper()} ({'higher' if HIGHER_IS_BETTER[m] else 'lower'} is better)" for m in self.metrics]
        width = max(len(m) for m in self.models) + 2
        lines = ["model".ljust(width) + "  ".join(h.rjust(len(h)) for h in heads)]
        digits = {"psnr": 2, "ssim": 4, "lpips": 4}
        for model in self.models:
            cells = []
            for metric, head in zip(self.metrics, heads):
                mark = "*" if self.best(metric) == model and len(self.models) > 1 else " "
                cells.append(f"{self.means[model][metric]:.{digits[metric]}f}{mark}".rjust(len(head)))
            lines.append(model.ljust(width) + "  ".join(cells))
        return "\n".join(lines)


def _paths(images: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(images, (str, os.PathLike)):
        return find_images(images, "evaluation images") if Path(images).is_dir() else [Path(images)]
    paths = [Path(p) for p in images]
    if not paths:
        raise PerceptError("no evaluation images given; give a folder of photos or image files")
    return paths


def _measure(metric: str, sr: torch.Tensor, hr: torch.Tensor, channel: str, device: torch.device) -> float:
    from ..metrics import lpips, psnr, ssim

    if metric == "psnr":
        return float(psnr(sr, hr, channel=channel)[0])
    if metric == "ssim":
        return float(ssim(sr, hr, channel=channel)[0])
    return float(lpips(sr, hr, net="alex", device=device)[0])


def evaluate_sr(models: Sequence[str | os.PathLike], images: str | os.PathLike | Sequence[str | os.PathLike], *,
                progress: bool = False, **settings: Any) -> SrEvaluation:
    """Degrade each photo of ``images``, upscale it with each of ``models`` and with bicubic interpolation, measure.

    Args:
        models: ``srresnet``, ``srgan``, model files of ``percept train-sr`` (``bicubic`` is always compared and
            comes first).
        images: a folder (searched recursively) or image files: the high-resolution ground truth.
        progress: show a progress bar over the photos.
        **settings: any field of :class:`~percept.sr.params.EvaluateSrParams`: ``factor`` (4 or 8; a network trained
            for another factor is a one-line error), ``degradation``, ``metrics`` (``psnr``, ``ssim``, ``lpips``),
            ``border`` (pixels cut from every side before measuring; default the factor), ``channel`` (``rgb`` or
            ``y`` for PSNR and SSIM), ``device``.
    """
    started = time.perf_counter()
    p = from_settings(EvaluateSrParams, settings, what="evaluate-sr setting")
    paths = _paths(images)
    dev = resolve_device(p.device)
    labels = list(dict.fromkeys([BICUBIC, *map(str, models)]))
    nets = {label: load_upscaler(label, factor=p.factor, device=dev) for label in labels}
    need = max(p.factor, 2 * p.crop + (SSIM_WINDOW if "ssim" in p.metrics else 1))
    per_image: dict[str, dict[str, list[float]]] = {m: {k: [] for k in p.metrics} for m in labels}
    for path in tqdm(paths, desc="evaluate", unit="image", disable=not progress):
        hr = as_tensor(path, what="evaluation image")
        h, w = hr.shape[-2:]
        if min(h - h % p.factor, w - w % p.factor) < need:
            raise PerceptError(f"evaluation image {str(path)!r} ({w}x{h} px) is too small for x{p.factor} with a "
                               f"{p.crop} px border; give images of at least {need} px per side")
        lr, hr = degrade(hr, p.factor, degradation=p.degradation)
        inner = (..., slice(p.crop, hr.shape[-2] - p.crop), slice(p.crop, hr.shape[-1] - p.crop))
        for label, net in nets.items():
            sr = run_upscaler(net, lr)
            for metric in p.metrics:
                per_image[label][metric].append(_measure(metric, sr[inner], hr[inner], p.channel, dev))
    means = {m: {k: math.fsum(v) / len(v) for k, v in values.items()} for m, values in per_image.items()}
    inputs = {"images": [describe_input(path) for path in paths],
              "models": {label: describe_input(Path(label)) for label in labels if label not in (BICUBIC, *PEERS)}}
    weights = {label: nets[label].weights_id for label in labels if label in PEERS}
    record = make_record("evaluate-sr", to_record(p), inputs=inputs, models=labels, border_px=p.crop,
                         weights_ids=weights, means=means, per_image=per_image, image_names=[x.name for x in paths],
                         device=str(dev), seconds=round(time.perf_counter() - started, 2))
    return SrEvaluation(labels, list(p.metrics), [x.name for x in paths], per_image, means, record)
