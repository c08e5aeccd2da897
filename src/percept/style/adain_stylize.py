"""Stylise with AdaIN: content-style trade-off, style interpolation, colour preservation, masks."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from .. import __version__
from ..device import is_out_of_memory, resolve_device
from ..errors import PerceptError
from ..image import (
    combine_luminance_chroma,
    fit_size,
    load_image,
    luminance,
    match_color,
    match_luminance,
    to_tensor,
)
from ..models.sources import ADAIN_ENCODER, UserFile
from .adain import (
    _STRIDE,
    PRESERVE_COLOR,
    _normalised_weights,
    _shared_adain,
    adain_target,
    pad_to_multiple,
)
from .optimize import ImageInput, StyleResult, _as_pil, _describe_input


def _mask_tensor(mask: ImageInput, out_size: tuple[int, int]) -> torch.Tensor:
    """``mask`` (file, PIL image or tensor in [0, 1], 1 = foreground) -> ``(1, 1, h, w)`` at ``out_size=(w, h)``."""
    if isinstance(mask, (str, os.PathLike, Image.Image)):
        pil = (mask if isinstance(mask, Image.Image) else load_image(mask, what="mask")).convert("L")
        m = to_tensor(pil.convert("RGB"))[:, :1]
    elif isinstance(mask, torch.Tensor):
        m = mask.detach().float().cpu()
        while m.dim() > 2 and m.shape[0] == 1:
            m = m[0]
        if m.dim() != 2:
            raise PerceptError(f"mask tensor must have shape (H, W), (1, H, W) or (1, 1, H, W), got "
                               f"{tuple(mask.shape)}")
        if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise PerceptError("mask tensor values must lie in [0, 1] (1 = foreground, style 1)")
        m = m[None, None]
    else:
        raise PerceptError(f"mask must be an image file, a PIL image or a tensor, not {type(mask).__name__}")
    (w, h), (mw, mh) = out_size, (m.shape[-1], m.shape[-2])
    if abs(math.log((mw / mh) / (w / h))) > 0.02:
        raise PerceptError(f"mask is {mw}x{mh} px but the content is {w}x{h}: give a mask with the content's "
                           "aspect ratio")
    return F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def stylize_adain(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    alpha: float = 1.0,
    style_weights: Sequence[float] | None = None,
    preserve_color: str = "none",
    mask: ImageInput | None = None,
    size: int = 512,
    style_size: int | None = None,
    decoder: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> StyleResult:
    """Paint ``content`` in the style of ``styles`` in one forward pass (AdaIN, Huang & Belongie 2017).

    Args:
        content: a path, a PIL image or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        styles: one style image or several (same kinds as ``content``).
        alpha: content-style trade-off in ``[0, 1]``: 0 reconstructs the content through the network, 1 is full
            style.
        style_weights: one weight per style (>= 0, normalised to sum 1) for style interpolation; default equal.
        preserve_color: ``none``; ``match`` (recolour each style to the content's colour mean and covariance
            first); or ``luminance`` (stylise the luminance only, keep the content's colours, YIQ).
        mask: spatial control with exactly two styles: an image file, PIL image or tensor ``(H, W)``/``(1, H,
            W)``/``(1, 1, H, W)`` in ``[0, 1]`` with the content's aspect ratio; white (1) gets style 1, black (0)
            style 2; grey blends.
        size: longest side of the output in pixels (aspect ratio kept; any size, padded internally to a
            multiple of 8).
        style_size: longest side the style images are resized to (default: ``size``); larger means smaller
            strokes relative to the output.
        decoder: a registered decoder name or a decoder file (from :func:`train_adain`); default the published
            decoder.
        device: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns:
        A :class:`~percept.style.optimize.StyleResult` whose ``image`` is ``(1, 3, H, W)`` in ``[0, 1]`` on the
        CPU and whose ``params`` record every setting, the inputs (with SHA-256 of files), the encoder and decoder.
        Deterministic: the same inputs give the same image on the same device.
    """
    started = time.perf_counter()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image, torch.Tensor)) else list(styles)
    if not styles:
        raise PerceptError("give at least one style image")
    if not 0.0 <= alpha <= 1.0:
        raise PerceptError(f"alpha must be between 0 (content) and 1 (full style), got {alpha}")
    if preserve_color not in PRESERVE_COLOR:
        raise PerceptError(f"unknown preserve-color {preserve_color!r}; use {', '.join(PRESERVE_COLOR)}")
    style_size = size if style_size is None else style_size
    for name, value in (("size", size), ("style size", style_size)):
        if not 16 <= value <= 16384:
            raise PerceptError(f"{name} {value} out of range; use 16 to 16384 pixels")
    if mask is not None and len(styles) != 2:
        raise PerceptError(f"a mask needs exactly two style images (foreground, background), got {len(styles)}")
    if mask is not None and style_weights is not None:
        raise PerceptError("style weights and a mask cannot be combined: the mask decides where each style goes")
    weights = None if mask is not None else _normalised_weights(style_weights, len(styles))

    content_pil = _as_pil(content, "content image")
    style_pils = [_as_pil(s, "style image") for s in styles]
    out_size = fit_size(*content_pil.size, size)
    mask_t = _mask_tensor(mask, out_size) if mask is not None else None
    dev = resolve_device(device)
    decoder_file = Path(decoder) if decoder is not None and Path(decoder).is_file() else None
    stamp = (decoder_file.stat().st_mtime_ns, decoder_file.stat().st_size) if decoder_file else None
    net = _shared_adain(None if decoder is None else str(decoder), stamp, dev)

    content_t = to_tensor(content_pil, size=out_size)
    style_ts = [to_tensor(s, longest=style_size) for s in style_pils]
    if preserve_color == "match":
        style_ts = [match_color(s, content_t) for s in style_ts]
    elif preserve_color == "luminance":
        style_ts = [match_luminance(luminance(s), luminance(content_t)) for s in style_ts]
    source = luminance(content_t) if preserve_color == "luminance" else content_t
    try:
        with torch.inference_mode():
            padded, (h, w) = pad_to_multiple(source.to(dev), _STRIDE)
            content_feat = net.encode(padded)
            style_feats = [net.encode(s.to(dev)) for s in style_ts]
            feat_mask = None
            if mask_t is not None:
                feat_mask = F.interpolate(pad_to_multiple(mask_t.to(dev), _STRIDE)[0],
                                          size=content_feat.shape[-2:], mode="area")
            target = adain_target(content_feat, style_feats, alpha=alpha, weights=weights, mask=feat_mask)
            image = net.decode(target)[..., :h, :w].clamp(0, 1).cpu()
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise PerceptError(f"out of memory on {dev} at {size} px; lower the size or use device cpu") from None
    if preserve_color == "luminance":
        image = combine_luminance_chroma(image, content_t)

    entry = net.decoder.weights
    source_file = entry.locate()
    decoder_record = {"id": entry.id, **{k: v for k, v in net.decoder.meta.items() if k != "history"}}
    if isinstance(source_file[0], UserFile):
        decoder_record.update(_describe_input(source_file[1]))
    record = {
        "percept_version": __version__,
        "torch_version": torch.__version__,
        "kind": "adain",
        "params": {"alpha": alpha, "style_weights": weights, "preserve_color": preserve_color, "size": size,
                   "style_size": style_size, "decoder": None if decoder is None else str(decoder),
                   "device": str(device)},
        "weights_id": net.encoder.weights.id,
        "encoder": dict(ADAIN_ENCODER),
        "decoder": decoder_record,
        "device": str(dev),
        "content": _describe_input(content),
        "styles": [_describe_input(s) for s in styles],
        "mask": _describe_input(mask) if mask is not None else None,
        "size_px": [image.shape[-1], image.shape[-2]],
    }
    return StyleResult(image, record, seconds=time.perf_counter() - started)
