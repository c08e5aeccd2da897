"""GAZE.pt: a trained fixation-density model in one file, and the object it loads into.

The file is one dict readable with ``torch.load(weights_only=True)``: ``format`` (:data:`FORMAT`),
``format_version``, ``model`` (``deepgaze1`` / ``deepgaze2``), ``architecture`` (feature channels, readout
channels), ``features`` (network, weights id, layers, input size: a :class:`~percept.gaze.features.FeatureSpec`),
``centre_bias`` and ``blob`` (the baselines fitted on the same training images), ``training`` (the record of the
run: settings, split, history, scores), ``percept_version``, ``torch_version`` and ``state_dict``. The model
registry knows it as kind ``gaze`` (``get_model("GAZE.pt")``); the model that ships with percept is
``get_model("deepgaze2")`` (:func:`build_shipped`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..device import module_device, resolve_device
from ..errors import PerceptError
from ..image import atomic_write
from ..models.tagged_file import mismatch_detail, read_tagged_file
from .baselines import GaussianBlob
from .centre_bias import CentreBias
from .features import FeatureExtractor, FeatureSpec
from .models import DeepGaze

FORMAT = "percept-gaze"
FORMAT_VERSION = 1


@dataclass
class GazeModel:
    """A trained DeepGaze model with the baselines fitted on its training images.

    Attributes:
        name: ``deepgaze1`` or ``deepgaze2``.
        net: the readout network (:class:`~percept.gaze.models.DeepGaze`), eval mode.
        spec: the features it reads.
        centre_bias: the kernel-density centre bias (:class:`~percept.gaze.centre_bias.CentreBias`).
        blob: the Gaussian-blob baseline.
        training: the training record (settings, split by image, history, data digest).
        path: the file it was loaded from (``None`` in memory).
        weights_id: ``deepgaze2:nus500`` for the model that ships with percept, else ``None``.
    """

    name: str
    net: DeepGaze
    spec: FeatureSpec
    centre_bias: CentreBias
    blob: GaussianBlob
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    weights_id: str | None = None  # the registered name of a model that ships with percept (``deepgaze2:nus500``)

    @property
    def device(self) -> torch.device:
        return module_device(self.net)

    def extractor(self, cache_dir: str | os.PathLike | None = None) -> FeatureExtractor:
        """The feature extractor of the features it reads, on its device (``cache_dir=None``: no disk cache)."""
        return FeatureExtractor(self.spec.weights, self.spec.layers, self.spec.size, device=self.device,
                                cache_dir=cache_dir)

    @torch.no_grad()
    def log_density(self, maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(C, h, w)`` feature maps -> ``(H, W)`` float32 log-density on the grid ``(W, H)``, on the CPU."""
        log_cb = self.centre_bias.log_density(*grid).to(self.device)
        return self.net(maps[None].to(self.device), log_cb)[0].float().cpu()


def save_gaze_model(model: GazeModel, path: str | os.PathLike) -> Path:
    """Write ``model`` as a GAZE.pt file, atomically."""
    path = Path(path)
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "architecture": {"channels": model.net.channels, "readout": list(model.net.outputs)},
        "features": model.spec.to_dict(),
        "centre_bias": model.centre_bias.to_dict(),
        "blob": model.blob.to_dict(),
        "training": model.training,
        "percept_version": __version__,
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()},
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_gaze_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> GazeModel:
    """Read a GAZE.pt file; every problem (missing, not a PyTorch file, another kind of file, a newer format,
    weights that do not fit) is one line naming the file."""
    path = Path(path)
    raw = read_tagged_file(path, FORMAT, version=FORMAT_VERSION, noun="gaze model",
                           hint="give a GAZE.pt written by percept gaze-train")
    try:
        arch = raw["architecture"]
        net = DeepGaze(int(arch["channels"]), [int(c) for c in arch["readout"]])
        net.load_state_dict(raw["state_dict"])
        model = GazeModel(str(raw["model"]), net, FeatureSpec.from_dict(raw["features"]),
                          CentreBias.from_dict(raw["centre_bias"]), GaussianBlob(**raw["blob"]),
                          dict(raw.get("training") or {}), path)
    except (KeyError, TypeError, ValueError) as exc:
        raise PerceptError(f"gaze model {str(path)!r} is damaged (missing or invalid {exc})") from None
    except RuntimeError as exc:
        raise PerceptError(f"gaze model {str(path)!r} does not match its recorded architecture "
                           f"({mismatch_detail(exc)})") from None
    net.requires_grad_(False)
    net.eval().to(resolve_device(device))
    return model


def build_shipped(weights, *, device: str | torch.device = "cpu") -> GazeModel:
    """The registry's builder of the gaze models that ship with percept (``deepgaze2``): ``weights`` is their
    :class:`~percept.models.weights.Weights` entry, a GAZE.pt file inside the package."""
    _source, path = weights.locate()
    model = load_gaze_model(path, device=device)
    model.weights_id = weights.id
    return model
