"""Compare one reference image with one or more others on several metrics: what ``percept compare`` prints.

:func:`compare_images` loads the images (files, PIL images or tensors), checks that their sizes agree (or resizes them
when asked), computes each metric of :class:`~percept.metrics.params.CompareParams` and returns a
:class:`CompareResult` with the values and a record.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..device import resolve_device
from ..errors import PerceptError
from ..image import ImageInput, as_tensor, image_list, resize
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .params import HIGHER_IS_BETTER, CompareParams

#: How each metric is shown in a table: its column heading and number format.
COLUMNS = {"psnr": ("psnr (dB)", "{:.2f}"), "ssim": ("ssim", "{:.4f}"), "lpips": ("lpips", "{:.4f}"),
           "dists": ("dists", "{:.4f}"), "feature": ("feature", "{:.4g}")}


def _cell(metric: str, value: float) -> str:
    """``value`` as the table shows it; a rounding error below zero (DISTS of identical images) shows as 0."""
    text = COLUMNS[metric][1].format(value)
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def json_number(value: float) -> float | str:
    """``value``, or ``"inf"`` / ``"nan"`` for the values strict JSON cannot hold (PSNR of identical images)."""
    return value if math.isfinite(value) else str(value)


@dataclass
class CompareResult:
    """What :func:`compare_images` found.

    Attributes:
        reference: the reference's name (its path, or ``"tensor"``).
        images: the compared images' names, in order.
        values: ``{metric: [one value per image]}`` in the order of ``metrics``.
        record: the record (settings, inputs with their SHA-256, weights, device, seconds).
    """

    reference: str
    images: list[str]
    values: dict[str, list[float]]
    record: dict[str, Any]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per image: ``{"image": name, metric: value, ...}``."""
        return [{"image": name, **{m: v[i] for m, v in self.values.items()}} for i, name in enumerate(self.images)]

    def table(self) -> str:
        """An aligned text table, one row per image, and which direction is better."""
        heads = ["image", *(COLUMNS[m][0] for m in self.values)]
        cells = [[row["image"], *(_cell(m, row[m]) for m in self.values)] for row in self.rows()]
        widths = [max(len(r[i]) for r in [heads, *cells]) for i in range(len(heads))]
        lines = [f"reference: {self.reference}"]
        for r in [heads, *cells]:
            lines.append("  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))]))
        higher = [m for m in self.values if HIGHER_IS_BETTER[m]]
        lower = [m for m in self.values if not HIGHER_IS_BETTER[m]]
        lines.append("; ".join(f"{word} is more similar: {', '.join(ms)}" for word, ms in (("higher", higher),
                                                                                         ("lower", lower)) if ms))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: ``reference``, ``images`` (one row each), ``higher_is_better``, ``record``."""
        rows = [{k: json_number(v) if isinstance(v, float) else v for k, v in row.items()} for row in self.rows()]
        return {"reference": self.reference, "images": rows,
                "higher_is_better": {m: HIGHER_IS_BETTER[m] for m in self.values}, "record": self.record}


def settings_from_report(path: str | os.PathLike) -> dict[str, Any]:
    """The settings recorded in a report of ``percept compare --json`` (or in its bare record), one-line errors
    otherwise: what ``--params-from`` starts from."""
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except FileNotFoundError:
        raise PerceptError(f"--params-from report {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PerceptError(f"--params-from report {str(path)!r} is not JSON ({type(exc).__name__}); give the output "
                           "of percept compare --json") from None
    record = data.get("record", data) if isinstance(data, dict) else None
    if not isinstance(record, dict) or record.get("method") != "compare" or not isinstance(record.get("params"), dict):
        made = f"was made by {record.get('method')!r}" if isinstance(record, dict) and record.get("method") else \
            "is not a report of percept compare"
        raise PerceptError(f"{str(path)!r} {made}; --params-from here reads the output of percept compare --json")
    known = {f for f in CompareParams.__dataclass_fields__}
    return {k: v for k, v in record["params"].items() if k in known}

def _name(image: ImageInput, index: int | None = None) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return type(image).__name__.lower() if index is None else f"{type(image).__name__.lower()} {index + 1}"


def _sized(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], params: CompareParams) -> torch.Tensor:
    """``b`` at ``a``'s size: unchanged, resized when ``resize`` is on, else a one-line error."""
    if a.shape == b.shape:
        return b
    if params.resize:
        return resize(b, (a.shape[-1], a.shape[-2])).clamp(0, 1)
    (ha, wa), (hb, wb) = a.shape[-2:], b.shape[-2:]
    at = f" at --size {params.size}" if params.size else ""
    raise PerceptError(f"{names[1]!r} is {wb}x{hb} px but the reference {names[0]!r} is {wa}x{ha}{at}; compare "
                       "images of the same size, or pass --resize (resize=True) to resize it to the reference's size")


class _Metrics:
    """The chosen metrics, their networks built once, on one device."""

    def __init__(self, params: CompareParams, device: torch.device) -> None:
        self.params, self.device, self.ids = params, device, {}
        if "lpips" in params.metrics:
            from .lpips_net import lpips_model

            self.lpips = lpips_model(params.lpips_net, str(device))
            self.ids["lpips"] = self.lpips.id
        if "dists" in params.metrics:
            from .dists_net import dists_model

            self.dists = dists_model(str(device))
            self.ids["dists"] = self.dists.id
        if "feature" in params.metrics:
            from .feature import feature_model

            self.feature = feature_model(params.feature_model, str(device))
            self.feature.validate_layers([params.feature_layer])
            self.ids["feature"] = f"{self.feature.weights.id} {params.feature_layer}"

    def __call__(self, metric: str, x: torch.Tensor, y: torch.Tensor) -> float:
        p = self.params
        if metric in ("psnr", "ssim"):
            from .pixel import psnr
            from .structural import ssim

            return float((psnr if metric == "psnr" else ssim)(x, y, channel=p.channel, crop=p.crop)[0])
        if metric == "feature":
            feats = self.feature(torch.cat([x, y]), [p.feature_layer])[p.feature_layer]
            return float((feats[0] - feats[1]).pow(2).mean())
        return float(getattr(self, metric)(x, y)[0])


def compare_images(a: ImageInput, b: ImageInput | Sequence[ImageInput], *, progress: bool = False,
                   **settings: Any) -> CompareResult:
    """Compare the reference ``a`` with ``b`` (one image or a list) on the metrics of ``settings``.

    Args:
        a: the reference: a file path, a PIL image or a ``(1, 3, H, W)`` / ``(3, H, W)`` tensor in ``[0, 1]``.
        b: one image or a sequence of them, as ``a``.
        progress: a progress bar over the images (stderr).
        **settings: those of :class:`~percept.metrics.params.CompareParams`: ``metrics`` (default psnr, ssim,
            lpips, dists), ``lpips_net``, ``channel``, ``crop``, ``feature_model``, ``feature_layer``, ``size``,
            ``resize``, ``device``.

    Images of another size than the reference are refused in one line unless ``resize=True`` (each resized to the
    reference's size) or ``size`` brings them to the same size. Files are read as 8-bit RGB (EXIF orientation
    applied). Returns a :class:`CompareResult`; its record stores the settings, the inputs' SHA-256, the metric
    networks' weights, the device and the time taken.
    """
    from tqdm.auto import tqdm

    params = from_settings(CompareParams, settings)
    others = image_list(b)
    if not others:
        raise PerceptError("no image to compare with the reference; give at least one")
    start = time.perf_counter()
    ref_name = _name(a)
    ref = as_tensor(a, longest=params.size, what="reference image")
    names = [_name(image, i if len(others) > 1 else None) for i, image in enumerate(others)]
    images = [_sized(ref, as_tensor(image, longest=params.size, what="image"), (ref_name, name), params)
              for image, name in zip(others, names)]  # every file checked before any network is built
    device = resolve_device(params.device)
    metrics = _Metrics(params, device)
    values: dict[str, list[float]] = {m: [] for m in params.metrics}
    x = ref.to(device)
    with torch.inference_mode():
        for image in tqdm(images, desc="compare", unit="image", disable=not progress, leave=False):
            y = image.to(device)
            for metric in params.metrics:
                values[metric].append(metrics(metric, x, y))
    record = make_record("compare", to_record(params),
                         inputs={"reference": describe_input(a), "images": [describe_input(i) for i in others]},
                         values={m: [json_number(v) for v in vs] for m, vs in values.items()}, weights=metrics.ids,
                         device=str(device), size_px=[ref.shape[-1], ref.shape[-2]],
                         seconds=round(time.perf_counter() - start, 3))
    return CompareResult(ref_name, names, values, record)
