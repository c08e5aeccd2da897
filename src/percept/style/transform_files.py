"""Model files of trained style networks.

(``.pt``, :func:`save_transform_net`, :func:`load_transform_net`) are one dict, readable with
``torch.load(weights_only=True)``: ``format`` (:data:`FORMAT`), ``format_version``, ``architecture``
(``num_styles``, ``channels``), ``styles`` (name, file name, sha256), ``training`` (every setting and the final
losses), ``loss_network`` (architecture, weights id, layers), ``percept_version``, ``torch_version`` and
``state_dict``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from .. import __version__
from ..device import resolve_device
from ..errors import PerceptError
from ..image import atomic_write
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
    if not path.is_file():
        raise PerceptError(f"{where} not found" + (" (it is a folder without model.pt)" if path.is_dir() else ""))
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise PerceptError(f"{where} is not a PyTorch file; give a model.pt written by percept's transform-network "
                           "training")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses to rebuild arbitrary objects
        raise PerceptError(f"{where} holds pickled Python objects, not a percept transform network") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways
        raise PerceptError(f"{where} is a damaged PyTorch file ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        if isinstance(raw, dict) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            what = "a plain state dict"
        elif isinstance(raw, dict) and "format" in raw:
            what = f"a {raw['format']!r} file"
        else:
            what = f"a {type(raw).__name__} without percept's format tag"
        raise PerceptError(f"{where} is {what}, not a percept transform network ({FORMAT})")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise PerceptError(f"{where} has format version {version!r}, newer than this percept reads "
                           f"({FORMAT_VERSION}); upgrade percept")
    try:
        arch = raw["architecture"]
        net = TransformNet(int(arch["num_styles"]), arch["channels"])
        net.load_state_dict(raw["state_dict"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PerceptError(f"{where} is damaged (missing or invalid {exc})") from None
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise PerceptError(f"{where} does not match its recorded architecture ({detail.rstrip('.')})") from None
    net.metadata = {k: v for k, v in raw.items() if k != "state_dict"}
    net.requires_grad_(False)
    return net.eval().to(resolve_device(device))
