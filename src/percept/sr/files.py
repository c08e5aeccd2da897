"""Model files of trained super-resolution networks (``SR.pt``, written by ``percept train-sr``).

One dict, readable with ``torch.load(weights_only=True)``: ``format`` (:data:`FORMAT`), ``format_version``,
``architecture`` (``factor``, ``blocks``, ``bicubic_skip``), ``training`` (every setting, steps done, the final
losses), ``loss_network`` (weights id and layer, for the feature loss), ``percept_version``, ``torch_version``
and ``state_dict``. :func:`load_sr_net` is the registry's builder of ``sr_net`` models
(``get_model("SR.pt", kind="upscaler")``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import __version__
from ..device import resolve_device
from ..image import atomic_write
from ..models.tagged_file import build_from_tagged, read_tagged_file
from .network import SRNet

FORMAT = "percept-sr-net"
FORMAT_VERSION = 1


def save_sr_net(net: SRNet, path: str | os.PathLike) -> Path:
    """Write ``net`` and its ``metadata`` (training, loss network) as a model file, atomically."""
    path = Path(path)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": net.architecture,
              **net.metadata, "percept_version": __version__, "torch_version": str(torch.__version__),
              "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}}
    atomic_write(path, lambda tmp: torch.save(record, tmp))
    return path


def load_sr_net(path: str | os.PathLike, device: str | torch.device = "cpu") -> SRNet:
    """Read a model file into an eval-mode, frozen :class:`SRNet` on ``device``.

    ``net.metadata`` holds everything the file records except the weights. Every problem (missing, not a PyTorch
    file, another kind of file, a newer format, weights that do not fit) is a one-line :class:`PerceptError`.
    """
    path = Path(path)
    raw = read_tagged_file(path, FORMAT, version=FORMAT_VERSION, noun="super-resolution network",
                           hint="give an SR.pt written by percept train-sr")
    where = f"super-resolution network {str(path)!r}"
    net = build_from_tagged(raw, where, lambda arch: SRNet(int(arch["factor"]), int(arch["blocks"]),
                                                           bicubic_skip=bool(arch["bicubic_skip"])))
    net.path = path  # type: ignore[attr-defined]
    net.requires_grad_(False)
    return net.eval().to(resolve_device(device))
