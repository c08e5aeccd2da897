"""Upscale an image with a trained network, a reference network or bicubic interpolation (:func:`upscale`).

Every upscaler is a module ``(1, 3, h, w)`` in ``[0, 1]`` -> ``(1, 3, f h, f w)`` with a ``factor``, a ``reach``
(see :mod:`percept.sr.tiles`) and a ``label``: :class:`Bicubic`, a model file of ``percept train-sr``
(:class:`~percept.sr.network.SRNet`, registry kind ``upscaler``, name ``sr_net``) or the registered reference
networks ``srresnet`` and ``srgan`` (:mod:`percept.sr.reference`). :func:`load_upscaler` builds one by name and
:func:`run_upscaler` runs it, whole or tiled, and clamps the output to ``[0, 1]``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..device import module_device, resolve_device
from ..errors import PerceptError
from ..image import ImageInput, as_tensor
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .degrade import bicubic_upscale
from .params import BICUBIC, PEERS, UpscaleParams
from .tiles import tiled


class Bicubic(nn.Module):
    """Bicubic interpolation as an upscaler: ``(B, 3, h, w)`` -> ``(B, 3, f h, f w)``."""

    reach = 2  # the cubic kernel reads two input pixels on each side

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.label = BICUBIC

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bicubic_upscale(x, self.factor)


def load_upscaler(model: str | os.PathLike, *, factor: int | None = None,
                  device: str | torch.device = "auto") -> nn.Module:
    """The upscaler ``model`` names: ``bicubic``, ``srresnet``, ``srgan`` or a model file of ``percept train-sr``.

    ``factor`` is bicubic's factor (default 4) and, for a network, a check: a network trained for another factor
    is a one-line error. The result has ``factor``, ``reach`` and ``label`` (``bicubic``, a registered name or the
    file's path), and ``weights_id`` for the registered networks.
    """
    from ..models import get_model

    dev = resolve_device(device)
    name = str(model)
    if name == BICUBIC:
        return Bicubic(4 if factor is None else factor).to(dev)
    net = get_model(model, kind="upscaler", device=dev)
    net.label = name
    if name in PEERS:
        net.weights_id = net.weights.id
    if factor is not None and factor != net.factor:
        what = name if name in PEERS else f"model file {name!r}"
        raise PerceptError(f"{what} upscales x{net.factor}, not x{factor}; use --factor {net.factor} with it, or a "
                           f"network trained for x{factor} (percept train-sr --factor {factor}), or bicubic")
    return net


def run_upscaler(net: nn.Module, lr: torch.Tensor, *, tile: int | None = None, overlap: int | None = None,
                 progress: bool = False) -> torch.Tensor:
    """``net`` on ``lr`` ``(1, 3, h, w)`` in ``[0, 1]`` (on the CPU), whole or in ``tile``-pixel tiles that overlap by
    ``overlap`` (default ``3 * net.reach``: equal to the whole image); returns ``(1, 3, f h, f w)`` in ``[0, 1]``
    on the CPU."""
    device = module_device(net) if any(True for _ in net.parameters()) else torch.device("cpu")

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return net(x.to(device)).float().cpu()

    if tile is None or tile >= max(lr.shape[-2:]):
        out = run(lr)
    else:
        out = tiled(run, lr, factor=net.factor, tile=tile, overlap=3 * net.reach if overlap is None else overlap,
                    progress=progress)
    return out.clamp(0, 1)


@dataclass
class UpscaleResult:
    """What :func:`upscale` returns: the image ``(1, 3, f h, f w)`` in ``[0, 1]`` (CPU), its record, the seconds."""

    image: torch.Tensor
    record: dict[str, Any]
    seconds: float


def upscale(image: ImageInput, *, model: str | os.PathLike = "srresnet", factor: int | None = None,
            tile: int | None = None, overlap: int | None = None, device: str = "auto",
            progress: bool = False) -> UpscaleResult:
    """Upscale ``image`` (a path, PIL image or ``(1, 3, h, w)`` tensor in ``[0, 1]``).

    Args:
        model: ``bicubic``, ``srresnet`` (SRGAN paper's SRResNet, pixel loss, x4), ``srgan`` (x4) or a model file
            of ``percept train-sr`` (its own factor).
        factor: bicubic's factor (4 or 8; default 4); for a network only a check of its factor.
        tile: upscale in tiles of ``tile x tile`` input pixels (``None``: the whole image at once).
        overlap: input pixels shared by adjacent tiles (``None``: three times the network's reach, so the result
            equals whole-image inference).
        device: ``auto``, ``cpu``, ``cuda``, ...
        progress: show a progress bar of the tiles.

    Returns an :class:`UpscaleResult` whose ``record`` (method ``upscale``) holds every setting, the input and
    model files (path and SHA-256), the factor, the sizes, the device and the time; save it with
    ``percept.image.save_image(result.image, "out.png", result.record)``.
    """
    started = time.perf_counter()
    explicit = {"model": str(model), "factor": factor, "tile": tile, "overlap": overlap, "device": device}
    p = from_settings(UpscaleParams, explicit, what="upscale setting")
    if p.model == BICUBIC and (p.tile is not None or p.overlap is not None):
        raise PerceptError("bicubic upscaling needs no tiles; drop --tile and --overlap")
    if p.tile is None and p.overlap is not None:
        raise PerceptError("--overlap is for tiled upscaling; give --tile N too, or drop --overlap")
    lr = as_tensor(image, what="input image")
    net = load_upscaler(p.model, factor=p.factor, device=p.device)
    out = run_upscaler(net, lr, tile=p.tile, overlap=p.overlap, progress=progress)
    inputs: dict[str, Any] = {"image": describe_input(image)}
    if p.model not in (BICUBIC, *PEERS):
        inputs["model"] = describe_input(Path(p.model))
    facts = {"factor": net.factor, "weights_id": getattr(net, "weights_id", None),
             "input_px": [lr.shape[-1], lr.shape[-2]], "size_px": [out.shape[-1], out.shape[-2]],
             "overlap_px": None if p.tile is None else (3 * net.reach if p.overlap is None else p.overlap),
             "device": str(resolve_device(p.device)), "seconds": round(time.perf_counter() - started, 3)}
    record = make_record("upscale", to_record(p), inputs=inputs, **facts)
    return UpscaleResult(out, record, facts["seconds"])
