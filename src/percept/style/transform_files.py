"""Model files of trained style networks.

(``.pt``, :func:`save_transform_net`, :func:`load_transform_net`) are one dict, readable with
``torch.load(weights_only=True)``: ``format`` (:data:`FORMAT`), ``format_version``, ``architecture``
(:attr:`TransformNet.architecture <percept.style.transformer.TransformNet.architecture>`), ``styles`` (name, file name, sha256), ``training`` (every setting and the final
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
from ..models.tagged_file import build_from_tagged, mismatch_detail, read_tagged_file
from .transform_loss import FORMAT, FORMAT_VERSION
from .transformer import TransformNet


def save_transform_net(net: TransformNet, path: str | os.PathLike) -> Path:
    """Write ``net`` and its ``metadata`` (styles, training, loss network) as a model file, atomically."""
    path = Path(path)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **net.metadata,
        "architecture": net.architecture,
        "percept_version": __version__,
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }
    atomic_write(path, lambda tmp: torch.save(record, tmp))
    return path


def build_transform_net(architecture: dict) -> TransformNet:
    """An untrained :class:`TransformNet` as a model file's ``architecture`` describes it."""
    optional = {k: architecture[k] for k in ("up_channels", "residual_blocks", "out_norm", "bias") if k in architecture}
    return TransformNet(int(architecture["num_styles"]), architecture["channels"], **optional)


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
    net = build_from_tagged(raw, where, build_transform_net)
    net.requires_grad_(False)
    return net.eval().to(resolve_device(device))


def build_registered(weights, *, device: str | torch.device = "cpu") -> TransformNet:
    """The registry's builder of the trained style networks read from packages (``multistyle26``): ``weights``
    is their :class:`~percept.models.weights.Weights` entry, whose ``meta["architecture"]`` says which
    :class:`TransformNet` holds the tensors."""
    net = build_transform_net(weights.meta["architecture"])
    state = {k: v.clone() for k, v in weights.load_state_dict().items()}  # the decoded cache stays pristine
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise PerceptError(f"weights {weights.id} do not fit the network ({mismatch_detail(exc)})") from None
    net.metadata = {"styles": [{"name": f"style {i}"} for i in range(net.num_styles)],
                    "architecture": net.architecture, "weights_id": weights.id}
    net.requires_grad_(False)
    return net.eval().to(resolve_device(device))

