"""Stylise with AdaIN: content-style trade-off, style interpolation, colour preservation, masks."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ..device import is_out_of_memory, resolve_device
from ..errors import PerceptError
from ..image import (
    ImageInput,
    as_pil,
    combine_luminance_chroma,
    fit_size,
    image_list,
    load_image,
    luminance,
    match_color,
    match_luminance,
    to_tensor,
)
from ..models.formats import ADAIN_ENCODER
from ..models.sources import UserFile
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .adain import STRIDE, adain_target, pad_to_multiple, shared_adain
from .optimize import StyleResult
from .params import AdainParams, check_blend_weights


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
    **settings: Any,
) -> StyleResult:
    """Paint ``content`` in the style of ``styles`` in one forward pass (AdaIN, Huang & Belongie 2017).

    Args:
        content: a path, a PIL image or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        styles: one style image or several (same kinds as ``content``).
        **settings: any field of :class:`~percept.style.params.AdainParams`:

            * ``alpha``: content-style trade-off in ``[0, 1]``: 0 reconstructs the content through the network,
              1 is full style.
            * ``size``: longest side of the output in pixels (aspect ratio kept; padded internally to a multiple
              of 8); ``style_scale``: style image size relative to it (larger means smaller strokes).
            * ``style_blend_weights``: one weight per style (>= 0, normalised to sum 1) for style interpolation.
            * ``preserve_color``: ``none``; ``match`` (recolour each style to the content's colour mean and
              covariance first); or ``luminance`` (stylise the luminance only, keep the content's colours, YIQ).
            * ``mask``: spatial control with exactly two styles: an image file, PIL image or tensor ``(H, W)``/
              ``(1, H, W)``/``(1, 1, H, W)`` in ``[0, 1]`` with the content's aspect ratio; white (1) gets style
              1, black (0) style 2; grey blends.
            * ``decoder``: a registered decoder name or a decoder file (from :func:`train_adain`); empty: the
              published decoder. ``device``: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

    Returns:
        A :class:`~percept.style.optimize.StyleResult` whose ``image`` is ``(1, 3, H, W)`` in ``[0, 1]`` on the
        CPU and whose ``record`` (method ``adain``) holds every setting, the inputs (with SHA-256 of files), the
        encoder and the decoder. Deterministic: the same inputs give the same image on the same device.
    """
    started = time.perf_counter()
    params = from_settings(AdainParams, settings)
    styles = image_list(styles)
    if not styles:
        raise PerceptError("give at least one style image")
    mask = params.mask if params.has_mask else None
    if mask is not None and len(styles) != 2:
        raise PerceptError(f"a mask needs exactly two style images (foreground, background), got {len(styles)}")
    weights = None if mask is not None else check_blend_weights(params.style_blend_weights, len(styles))

    content_pil = as_pil(content, what="content image")
    style_pils = [as_pil(s, what="style image") for s in styles]
    out_size = fit_size(*content_pil.size, params.size)
    mask_t = _mask_tensor(mask, out_size) if mask is not None else None
    dev = resolve_device(params.device)
    decoder = str(params.decoder) if params.decoder else None
    decoder_file = Path(decoder) if decoder is not None and Path(decoder).is_file() else None
    stamp = (decoder_file.stat().st_mtime_ns, decoder_file.stat().st_size) if decoder_file else None
    net = shared_adain(decoder, stamp, dev)

    content_t = to_tensor(content_pil, size=out_size)
    style_ts = [to_tensor(s, longest=params.style_size) for s in style_pils]
    if params.preserve_color == "match":
        style_ts = [match_color(s, content_t) for s in style_ts]
    elif params.preserve_color == "luminance":
        style_ts = [match_luminance(luminance(s), luminance(content_t)) for s in style_ts]
    source = luminance(content_t) if params.preserve_color == "luminance" else content_t
    try:
        with torch.inference_mode():
            padded, (h, w) = pad_to_multiple(source.to(dev), STRIDE)
            content_feat = net.encode(padded)
            style_feats = [net.encode(s.to(dev)) for s in style_ts]
            feat_mask = None
            if mask_t is not None:
                feat_mask = F.interpolate(pad_to_multiple(mask_t.to(dev), STRIDE)[0],
                                          size=content_feat.shape[-2:], mode="area")
            target = adain_target(content_feat, style_feats, alpha=params.alpha, style_blend_weights=weights,
                                  mask=feat_mask)
            image = net.decode(target)[..., :h, :w].clamp(0, 1).cpu()
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise PerceptError(f"out of memory on {dev} at {params.size} px; lower the size or use device cpu") from None
    if params.preserve_color == "luminance":
        image = combine_luminance_chroma(image, content_t)

    entry = net.decoder.weights
    source_file = entry.locate()
    decoder_record = {"id": entry.id, **{k: v for k, v in net.decoder.meta.items() if k != "history"}}
    if isinstance(source_file[0], UserFile):
        decoder_record.update(describe_input(source_file[1]))
    inputs = {"content": describe_input(content), "styles": [describe_input(s) for s in styles]}
    if mask is not None:
        inputs["mask"] = describe_input(mask)
    mask_path = str(mask) if isinstance(mask, (str, os.PathLike)) else ""
    recorded = {**to_record(AdainParams(**{**vars(params), "mask": ""})), "mask": mask_path, "decoder": decoder or ""}
    seconds = time.perf_counter() - started
    record = make_record("adain", recorded, inputs=inputs, weights_id=net.encoder.weights.id,
                         encoder=dict(ADAIN_ENCODER), decoder=decoder_record, device=str(dev),
                         size_px=[image.shape[-1], image.shape[-2]], seconds=round(seconds, 2))
    return StyleResult(image, record, seconds=seconds)
