"""Stylise with a trained style network.

(:func:`stylize_with_model`): one forward pass per image, images of equal size batched, any
size; ``tile`` switches to seamless tiled inference (:mod:`percept.style.tiling`) for huge images.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..device import is_out_of_memory, resolve_device
from ..errors import PerceptError
from ..image import ImageInput, as_tensor, image_list
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .optimize import StyleResult
from .params import NetworkParams, check_blend_weights
from .tiling import tiled_forward
from .transform_files import load_transform_net
from .transformer import TransformNet


def style_names(net: TransformNet) -> list[str]:
    """The names of the styles ``net`` was trained on (their indices if it does not record them)."""
    return [s.get("name", "?") for s in net.metadata.get("styles", [])] or [str(i) for i in range(net.num_styles)]


def style_vector(net: TransformNet, *, style_index: int | None = None,
                 style_blend_weights: Sequence[float] | None = None) -> torch.Tensor:
    """Style weights ``(S,)`` for ``net``: one-hot for ``style_index``, ``style_blend_weights`` normalised to sum
    1, or the only style of a single-style network. Range, count and sign problems are one-line errors."""
    names = style_names(net)
    numbered = all(n in (str(i), f"style {i}") for i, n in enumerate(names))  # no names: the range says it all
    listing = f"0 to {len(names) - 1}" if numbered else ", ".join(f"{i}={n}" for i, n in enumerate(names))
    if style_index is not None and style_blend_weights:
        raise PerceptError("give a style index or style-blend-weights, not both")
    if style_index is not None:
        if not 0 <= style_index < net.num_styles:
            raise PerceptError(f"style index {style_index} out of range; this model has {net.num_styles} "
                               f"style(s): {listing}")
        return torch.nn.functional.one_hot(torch.tensor(style_index), net.num_styles).float()
    if style_blend_weights:
        return torch.tensor(check_blend_weights(list(style_blend_weights), net.num_styles,
                                                what=f"style(s) of this model ({listing})"))
    if net.num_styles != 1:
        raise PerceptError(f"this model has {net.num_styles} styles ({listing}); choose one by index or blend them")
    return torch.ones(1)


@overload
def stylize_with_model(contents: ImageInput, model: TransformNet | str | os.PathLike = ..., *,
                       progress: bool = ..., **settings: Any) -> StyleResult: ...
@overload
def stylize_with_model(contents: Sequence[ImageInput], model: TransformNet | str | os.PathLike = ..., *,
                       progress: bool = ..., **settings: Any) -> list[StyleResult]: ...


def stylize_with_model(
    contents: ImageInput | Sequence[ImageInput],
    model: TransformNet | str | os.PathLike = "",
    *,
    progress: bool = False,
    **settings: Any,
) -> StyleResult | list[StyleResult]:
    """Stylise images with a trained network: one forward pass per image.

    Args:
        contents: a path, PIL image or ``(1, 3, H, W)`` tensor in [0, 1], or a list of them.
        model: a :class:`TransformNet` (used on its own device), a model file / training folder, or a network
            registered by name (``multistyle26``; ``percept models`` lists them).
        progress: show a progress bar over images (and tiles).
        **settings: any field of :class:`~percept.style.params.NetworkParams`: ``style_index`` (which style of a
            multi-style network, 0-based); ``style_blend_weights`` (one weight per style, >= 0, normalised to sum
            1: Dumoulin's style interpolation); ``size`` (resize each image so its longest side is ``size``;
            default: keep it); ``tile`` (stylise in overlapping tiles of this many pixels, for huge images, with
            ``overlap`` pixels shared by neighbours; the norm statistics come from the image downscaled to
            ``stats_size`` (default ``tile``), or with ``exact_statistics`` from the whole image at full
            resolution: about 7 times the work, and the result then equals the untiled one, see
            :mod:`percept.style.tiling`); ``batch_size`` (images of equal size go through the network together);
            ``device`` (for a model file: where to run it).

    Returns:
        For one input a :class:`~percept.style.optimize.StyleResult` (``image`` ``(1, 3, H, W)`` in [0, 1] on the
        CPU; ``record`` with method ``network``, the model file and its SHA-256, the styles and their weights);
        for a list, one per input, in order.
    """
    single = isinstance(contents, (str, os.PathLike, Image.Image, torch.Tensor))
    contents = image_list(contents)
    started = time.perf_counter()
    model_path = "" if isinstance(model, TransformNet) else str(model)
    params = from_settings(NetworkParams, {**settings, "model": model_path})
    if not isinstance(model, TransformNet) and not model_path:
        raise PerceptError("give a trained network: a model file from `percept train-style` (--model MODEL.pt) or "
                           "multistyle26")
    net = model if isinstance(model, TransformNet) else _shared_net(model_path, params.device)
    style = style_vector(net, style_index=params.style_index, style_blend_weights=params.style_blend_weights)
    images = [as_tensor(c, longest=params.size, what="content image") for c in contents]
    outputs = _forward(net, images, style.to(next(net.parameters()).device), params, progress)
    seconds = (time.perf_counter() - started) / max(1, len(images))
    facts = {
        "style_names": style_names(net), "style_blend_weights_normalised": [round(float(w), 6) for w in style],
        "model": {k: net.metadata.get(k) for k in ("styles", "architecture", "loss_network")},
        "device": str(next(net.parameters()).device), "seconds": round(seconds, 3),
    }
    model_input = describe_model(model_path) if model_path else describe_input(model)
    results = [
        StyleResult(image, make_record("network", to_record(params), inputs={"content": describe_input(content),
                                                                                 "model": model_input},
                                       size_px=[image.shape[-1], image.shape[-2]], **facts), seconds=seconds)
        for content, image in zip(contents, outputs)
    ]
    return results[0] if single else results


def _shared_net(path: str, device: str) -> TransformNet:
    """The network ``path`` names (:func:`load_transform_net` for a file), kept between calls (a folder stylised in chunks loads the file once); a
    rewritten file loads again."""
    file = _model_file(path)
    stamp = (file.stat().st_mtime_ns, file.stat().st_size) if file.is_file() else None
    return _cached_net(path, stamp, str(resolve_device(device)))


def describe_model(model: str) -> dict[str, Any]:
    """What a record says of the network ``model`` names: the file's path and SHA-256 (a training folder's
    ``model.pt``), and for a network registered by name (``multistyle26``) also its weights id."""
    from ..models import get_weights, list_models

    if model in list_models("style-net"):  # a registered name wins over a file of that name, as in get_model
        weights = get_weights(model, kind="style-net")
        return {"name": weights.id, **describe_input(weights.locate()[1])}
    return describe_input(_model_file(model))


def _model_file(path: str) -> Path:
    """The model file itself: ``path``, or the ``model.pt`` of a training folder."""
    return Path(path) / "model.pt" if Path(path).is_dir() else Path(path)


@functools.lru_cache(maxsize=2)
def _cached_net(path: str, stamp: tuple[int, int] | None, device: str) -> TransformNet:
    """A model file or training folder, or a network registered by name (``multistyle26``)."""
    from ..models import get_model

    return get_model(path, kind="style-net", device=device)


def _forward(net: TransformNet, images: list[torch.Tensor], style: torch.Tensor, params: NetworkParams,
             progress: bool) -> list[torch.Tensor]:
    """Each image through ``net`` (tiled, or batched by size); ``(1, 3, H, W)`` on the CPU each, in order."""
    results: list[torch.Tensor | None] = [None] * len(images)
    bar = tqdm(total=len(images), desc="stylize", unit="image", disable=not progress or len(images) == 1)
    try:
        if params.tile is not None:
            for i, image in enumerate(images):
                results[i] = tiled_forward(net, image, style, tile=params.tile, overlap=params.overlap,
                                           stats_size=params.stats_size, exact_statistics=params.exact_statistics,
                                           progress=progress)
                bar.update(1)
        else:
            by_size: dict[tuple[int, int], list[int]] = {}
            for i, image in enumerate(images):
                by_size.setdefault(tuple(image.shape[-2:]), []).append(i)
            dev = next(net.parameters()).device
            size = params.batch_size
            with torch.inference_mode():
                for indices in by_size.values():
                    for chunk in (indices[j : j + size] for j in range(0, len(indices), size)):
                        batch = torch.cat([images[i] for i in chunk]).to(dev)
                        for i, styled in zip(chunk, net(batch, style).float().cpu()):
                            results[i] = styled.unsqueeze(0)
                        bar.update(len(chunk))
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise PerceptError("out of memory; lower the batch size, use tiles (e.g. tile 512) or a smaller size") \
            from None
    finally:
        bar.close()
    return results  # type: ignore[return-value]
