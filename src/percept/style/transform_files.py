"""Model files of trained style networks.

(``.pt``, :func:`save_transform_net`, :func:`load_transform_net`) are one dict, readable with
``torch.load(weights_only=True)``: ``format`` (:data:`FORMAT`), ``format_version``, ``architecture``
(``num_styles``, ``channels``), ``styles`` (name, file name, sha256), ``training`` (every setting and the final
losses), ``loss_network`` (architecture, weights id, layers), ``percept_version``, ``torch_version`` and
``state_dict``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import __version__
from ..device import resolve_device
from ..errors import PerceptError
from ..image import atomic_write
from ..models.tagged_file import build_from_tagged, read_tagged_file
from .transform_loss import FORMAT, FORMAT_VERSION
from .transformer import TransformNet


def save_transform_net(net: TransformNet, path: str | os.PathLike) -> Path:
    """Write ``net`` and its ``metadata`` (styles, training, loss network) as a model file, atomically."""
    path = Path(path)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": {"num_styles": net.num_styles, "channels": list(net.channels)},
        **net.metadata,
        "percept_version": __version__,
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }
    atomic_write(path, lambda tmp: torch.save(record, tmp))
    return path


def load_transform_net(path: str | os.PathLike, device: str | torch.device = "cpu") -> TransformNet:
    """Read a model file (or the ``model.pt`` of a training folder) into an eval-mode :class:`TransformNet`.

    ``net.metadata`` holds everything the file records except the weights. Every problem (missing, not a
    PyTorch file, another kind of file, a newer format, weights that do not fit) is a one-line
    :class:`PerceptError` naming the file.
    """
    path = Path(path)
    if path.is_dir() and (path / "model.pt").is_file():
        path = path / "model.pt"
    where = f"model file {str(path)!r}"
    if not path.is_file() and path.is_dir():
        raise PerceptError(f"{where} not found (it is a folder without model.pt)")
    raw = read_tagged_file(path, FORMAT, version=FORMAT_VERSION, noun=f"transform network ({FORMAT})",
                           hint="give a model.pt written by percept's transform-network training", where=where)
    net = build_from_tagged(raw, where, lambda arch: TransformNet(int(arch["num_styles"]), arch["channels"]))
    net.requires_grad_(False)
    return net.eval().to(resolve_device(device))
