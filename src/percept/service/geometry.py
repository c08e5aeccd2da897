"""Whether a job's images are big enough for the network that paints them, checked the same way at submission
(:meth:`percept.service.core.Service.submit`, a 422) and in the worker (:func:`percept.service.runner.paint`,
before any painting), so that an accepted job never fails inside the network.

A photo is painted at :func:`~percept.image.fit_size` of its stored size for the job's ``size`` (each
coarse-to-fine stage of ``quality`` too); a style image at the style size of the method. Every side of those
must reach the smallest input the network handles: for ``quality`` VGG-19 up to its deepest content and style
layer (16 px), for ``instant`` AdaIN's encoder up to relu4_1 with reflection padding (16 px), whose input is
first reflection-padded to a multiple of 8 (possible only when the padding is smaller than the side). A very
elongated image (1600 x 100 at size 64 becomes 64 x 4 px) is refused with one line naming the limit.
"""

from __future__ import annotations

import functools
from typing import Any

from ..image import fit_size
from ..models.feature_net import layer_names, smallest_input
from ..models.formats import ADAIN_ENCODER
from ..style.adain import STRIDE
from ..style.params import AdainParams, StyleParams
from .config import InvalidField

__all__ = ["TooSmall", "check_geometry", "min_side"]

Size = tuple[int, int]


class TooSmall(InvalidField):
    """An image that would be painted smaller than the network's minimum (the web layer answers 422)."""


@functools.lru_cache(maxsize=None)
def _need(arch: str, layers: tuple[str, ...], padding_mode: str) -> int:
    names = layer_names(arch)
    return smallest_input(arch, max(names.index(name) for name in layers), padding_mode)


def min_side(method: str) -> int:
    """The smallest side (px) a painted image may have for ``method`` (quality or instant)."""
    return max(need for _what, _size, need in _painted(method, 512, (512, 512), (512, 512)))


def _painted(method: str, size: int, photo: Size, style: Size) -> list[tuple[str, Size, int]]:
    """``(what, (w, h) as painted, smallest side the network needs)`` for every image the method feeds it."""
    if method == "instant":
        params = AdainParams(size=size)
        need = _need(ADAIN_ENCODER["encoder"].split(":")[0], (ADAIN_ENCODER["layer"],),
                     ADAIN_ENCODER["padding_mode"])
        return [("photo", fit_size(*photo, params.size), need),
                ("style image", fit_size(*style, params.style_size), need)]
    params = StyleParams(size=size)
    style_layers = tuple(params.resolved_style_layers())
    need_style = _need(params.network, style_layers, "zeros")
    need_photo = _need(params.network, tuple(params.resolved_content_layers()) + style_layers, "zeros")
    out: list[tuple[str, Size, int]] = []
    for longest in params.stage_sizes():
        out.append(("photo", fit_size(*photo, longest), need_photo))
        out.append(("style image", fit_size(*style, max(16, round(longest * params.style_scale))), need_style))
    return out


def check_geometry(params: dict[str, Any], photo: Size, style: Size) -> None:
    """Raise :class:`TooSmall` (one line naming the limit and the fix) unless every side of the photo and the
    style image, as ``params`` (a job's: method, size) paint them, reaches the network's minimum.

    ``photo`` and ``style``: ``(width, height)`` of the images as stored for the job (what the worker loads)."""
    method, size = params["method"], int(params["size"])
    for what, (w, h), need in _painted(method, size, photo, style):
        if min(w, h) < need:
            raise TooSmall(_message(what, (w, h), need, size))
        if method == "instant" and what == "photo" and (-h % STRIDE >= h or -w % STRIDE >= w):
            raise TooSmall(_message(what, (w, h), STRIDE, size))  # unreachable while need >= STRIDE


def _message(what: str, painted: Size, need: int, size: int) -> str:
    ratio = max(1, max(painted) // need)
    return (f"{what}: too elongated for size {size}: it would be painted at {painted[0]}x{painted[1]} px, but "
            f"every side needs at least {need} px; crop it to an aspect ratio of at most {ratio}:1 or choose a "
            "larger size")
