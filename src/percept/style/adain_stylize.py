"""Stylise with AdaIN: content-style trade-off, style interpolation, colour preservation, masks."""

from __future__ import annotations

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
    luminance,
    match_color,
    match_luminance,
    to_tensor,
)
from ..models.formats import ADAIN_ENCODER
from ..models.sources import UserFile
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .adain import STRIDE, adain, adain_target, pad_to_multiple, shared_adain
from .guided import load_masks, mask_record, resize_masks
from .optimize import StyleResult
from .params import AdainParams, check_blend_weights


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
            * ``mask``: spatial control: for two styles one mask, an image file, PIL image or tensor ``(H, W)``/
              ``(1, H, W)``/``(1, 1, H, W)`` in ``[0, 1]`` with the content's aspect ratio; white (1) gets style
              1, black (0) style 2; grey blends. For K styles K masks, one per style (a list, files
              comma-separated, or a ``(K, H, W)`` tensor); overlaps blend (see :mod:`percept.style.guided`).
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
    weights = None if mask is not None else check_blend_weights(params.style_blend_weights, len(styles))

    content_pil = as_pil(content, what="content image")
    style_pils = [as_pil(s, what="style image") for s in styles]
    out_size = fit_size(*content_pil.size, params.size)
    mask_t = resize_masks(load_masks(mask, len(styles), out_size), out_size) if mask is not None else None
    dev = resolve_device(params.device)
    decoder = str(params.decoder) if params.decoder else None
    decoder_file = Path(decoder) if decoder is not None and Path(decoder).is_file() else None
    stamp = (decoder_file.stat().st_mtime_ns, decoder_file.stat().st_size) if decoder_file else None
    net = shared_adain(decoder, stamp, dev)

    # Bilinear, as the decoder's training images were resized: Lanczos' sharper edges and ringing come out of the
    # decoder as fine streaks (docs/adain.md, "Clean results").
    content_t = to_tensor(content_pil, size=out_size, resample=Image.Resampling.BILINEAR)
    style_ts = [to_tensor(s, longest=params.style_size, resample=Image.Resampling.BILINEAR) for s in style_pils]
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
            if mask_t is not None:  # (1, K, h, w) on the relu4_1 grid
                feat_mask = F.interpolate(pad_to_multiple(mask_t.to(dev), STRIDE)[0],
                                          size=content_feat.shape[-2:], mode="area")
            if feat_mask is not None and feat_mask.shape[1] > 2:  # K regions, each normalised with its own stats
                target = sum(feat_mask[:, k : k + 1] * adain(content_feat, s, content_mask=feat_mask[:, k : k + 1])
                             for k, s in enumerate(style_feats))
                target = params.alpha * target + (1 - params.alpha) * content_feat
            else:
                target = adain_target(content_feat, style_feats, alpha=params.alpha, style_blend_weights=weights,
                                      mask=None if feat_mask is None else feat_mask[:, :1])
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
    mask_path = ""
    if mask is not None:
        mask_path, inputs["mask"] = mask_record(mask)
    recorded = {**to_record(AdainParams(**{**vars(params), "mask": ""})), "mask": mask_path, "decoder": decoder or ""}
    seconds = time.perf_counter() - started
    record = make_record("adain", recorded, inputs=inputs, weights_id=net.encoder.weights.id,
                         encoder=dict(ADAIN_ENCODER), decoder=decoder_record, device=str(dev),
                         size_px=[image.shape[-1], image.shape[-2]], seconds=round(seconds, 2))
    return StyleResult(image, record, seconds=seconds)
