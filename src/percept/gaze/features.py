"""Feature maps of a frozen ImageNet network, per image and layer, cached on disk.

The readout of DeepGaze is trained on features that never change, so they are computed once per image and layer
and kept as float16 ``.npy`` files under ``CACHE/<key>/<sha[:2]>/<sha>.npy``: ``key`` names the network's weights,
the input size and the layer, ``sha`` is the SHA-256 of the image file's bytes (a changed image or network is
computed again; nothing else invalidates an entry). The network is :func:`percept.models.get_model` (``alexnet``,
``vgg19``, ``kind="features"``); it sees the image resized (Lanczos) so that its longer side is ``size`` px.

For the readout, the layers of an image are resampled (bilinear) to the grid of the largest and stacked into one
``(C, h, w)`` float16 tensor (:meth:`FeatureExtractor.maps`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from ..image import load_image, to_tensor


def default_cache_dir() -> Path:
    """``$PERCEPT_CACHE/gaze``, or ``~/.cache/percept/gaze``."""
    return Path(os.environ.get("PERCEPT_CACHE") or Path.home() / ".cache" / "percept") / "gaze"


@dataclass(frozen=True)
class FeatureSpec:
    """What the readout reads: network name, weights id (``alexnet:imagenet1k_v1``), layers, input size (px)."""

    backbone: str
    weights: str
    layers: tuple[str, ...]
    size: int

    def key(self, layer: str) -> str:
        """The cache folder of one layer."""
        text = f"{self.weights}|longest {self.size}|lanczos|{layer}"
        return f"{self.backbone}-{layer}-{self.size}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "weights": self.weights, "layers": list(self.layers), "size": self.size}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureSpec:
        return cls(str(state["backbone"]), str(state["weights"]), tuple(state["layers"]), int(state["size"]))


def stack_layers(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[(C_i, h_i, w_i), ...]`` -> ``(sum C_i, h, w)`` float16 on the grid of the largest map (bilinear)."""
    h, w = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
    out = [m if tuple(m.shape[-2:]) == (h, w) else
           F.interpolate(m[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0] for m in maps]
    return torch.cat([m.to(torch.float16) for m in out])


class FeatureExtractor:
    """Feature maps of images for a :class:`FeatureSpec`, through an optional disk cache.

    Args:
        backbone: ``alexnet`` or ``vgg19`` (or ``name:weights``).
        layers: layer names of the network (``relu5``, ``conv5_1``, ...).
        size: longer side of the network's input, px.
        device: where the network runs.
        cache_dir: the cache folder; ``None`` computes every map anew and writes nothing.
    """

    def __init__(self, backbone: str, layers: Sequence[str], size: int, *, device: str | torch.device = "cpu",
                 cache_dir: str | os.PathLike | None = None) -> None:
        from ..models import get_model

        self.net = get_model(backbone, kind="features", device=device)
        self.net.validate_layers(layers)
        self.spec = FeatureSpec(self.net.arch, self.net.weights.id, tuple(layers), int(size))
        self.device = device
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.computed = 0  # images run through the network (the others came from the cache)

    def _files(self, digest: str) -> dict[str, Path]:
        assert self.cache_dir is not None
        return {layer: self.cache_dir / self.spec.key(layer) / digest[:2] / f"{digest}.npy"
                for layer in self.spec.layers}

    @torch.no_grad()
    def compute(self, image: Image.Image) -> list[torch.Tensor]:
        """The layers of one RGB image, ``[(C, h, w) float16, ...]`` in the order of ``spec.layers``."""
        x = to_tensor(image, longest=self.spec.size).to(self.device)
        out = self.net(x, list(self.spec.layers))
        self.computed += 1
        return [out[layer][0].to("cpu", torch.float16) for layer in self.spec.layers]

    def layers_of(self, image: str | os.PathLike | Image.Image) -> list[torch.Tensor]:
        """The layers of one image (a file is looked up in the cache first, and its missing layers written)."""
        if isinstance(image, Image.Image) or self.cache_dir is None:
            return self.compute(image if isinstance(image, Image.Image) else load_image(image))
        digest = hashlib.sha256(Path(image).read_bytes()).hexdigest()
        files = self._files(digest)
        if all(f.is_file() for f in files.values()):
            try:
                return [torch.from_numpy(np.load(files[layer])) for layer in self.spec.layers]
            except (OSError, ValueError):  # a damaged entry: compute it again
                pass
        maps = self.compute(load_image(image))
        for layer, tensor in zip(self.spec.layers, maps):
            path = files[layer]
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, tensor.numpy())
            os.replace(tmp, path)
        return maps

    def maps(self, images: Sequence[str | os.PathLike | Image.Image], *, progress: bool = False,
             desc: str | None = None) -> list[torch.Tensor]:
        """``[(C, h, w) float16, ...]``: every image's layers stacked on one grid (:func:`stack_layers`)."""
        bar = tqdm(images, desc=desc or f"features ({self.spec.backbone})", unit="img", disable=not progress,
                   dynamic_ncols=True)
        return [stack_layers(self.layers_of(image)) for image in bar]
