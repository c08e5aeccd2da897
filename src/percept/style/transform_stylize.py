"""Stylise with a trained style network.

(:func:`stylize_with_model`): one forward pass per image, images of equal size batched, any
size; ``tile`` switches to seamless tiled inference (:mod:`percept.style.tiling`) for huge images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..device import is_out_of_memory
from ..errors import PerceptError
from ..image import fit_size, resize, to_tensor
from .optimize import ImageInput, _as_pil
from .tiling import DEFAULT_OVERLAP, tiled_forward
from .transform_files import load_transform_net
from .transformer import TransformNet


def style_vector(net: TransformNet, *, style_index: int | None = None,
                 blend: Sequence[float] | None = None) -> torch.Tensor:
    """Style weights ``(S,)`` for ``net``: one-hot for ``style_index``, ``blend`` normalised to sum 1, or the
    only style of a single-style network. Range, count and sign problems are one-line errors."""
    names = [s.get("name", "?") for s in net.metadata.get("styles", [])] or [str(i) for i in range(net.num_styles)]
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    if style_index is not None and blend is not None:
        raise PerceptError("give a style index or blend weights, not both")
    if style_index is not None:
        if not 0 <= style_index < net.num_styles:
            raise PerceptError(f"style index {style_index} out of range; this model has {net.num_styles} "
                               f"style(s): {listing}")
        return torch.nn.functional.one_hot(torch.tensor(style_index), net.num_styles).float()
    if blend is not None:
        weights = torch.tensor([float(w) for w in blend])
        if len(weights) != net.num_styles:
            raise PerceptError(f"blend has {len(weights)} weight(s) but this model has {net.num_styles} "
                               f"style(s): {listing}")
        if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise PerceptError(f"blend weights must be >= 0 with a positive sum, got {list(blend)}")
        return weights / weights.sum()
    if net.num_styles != 1:
        raise PerceptError(f"this model has {net.num_styles} styles ({listing}); choose one by index or blend them")
    return torch.ones(1)


def _content_tensor(content: ImageInput, size: int | None) -> torch.Tensor:
    """``(1, 3, H, W)`` float in [0, 1] on the CPU; a tensor is used as it is (no 8-bit round trip)."""
    if not isinstance(content, torch.Tensor):
        return to_tensor(_as_pil(content, "content image"), longest=size)
    image = content.detach().float().cpu()
    image = image.unsqueeze(0) if image.dim() == 3 else image
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise PerceptError(f"a content tensor must be (1, 3, H, W) or (3, H, W) RGB in [0, 1], got "
                           f"{tuple(content.shape)}")
    if size is not None:
        image = resize(image, fit_size(image.shape[-1], image.shape[-2], size)).clamp(0, 1)
    return image


def stylize_with_model(
    contents: ImageInput | Sequence[ImageInput],
    model: TransformNet | str | os.PathLike,
    *,
    style_index: int | None = None,
    blend: Sequence[float] | None = None,
    size: int | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    exact_statistics: bool = False,
    stats_size: int | None = None,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> list[torch.Tensor]:
    """Stylise images with a trained network: one forward pass per image.

    Args:
        contents: a path, PIL image or ``(1, 3, H, W)`` tensor in [0, 1], or a list of them.
        model: a :class:`TransformNet` (used on its own device) or a model file / training folder.
        style_index: which style of a multi-style network (0-based).
        blend: one weight per style (>= 0, normalised to sum 1): Dumoulin's style interpolation.
        size: resize each image so its longest side is ``size`` (default: keep its size).
        tile: stylise in overlapping tiles of this many pixels (for huge images; see
            :mod:`percept.style.tiling`), with ``overlap`` pixels shared by neighbours; the norm statistics come
            from the image downscaled to ``stats_size`` (default ``tile``), or with ``exact_statistics`` from the
            whole image at full resolution (about 7 times the work; the result then equals the untiled one).
        batch_size: images of equal size go through the network together, this many at a time.
        device: for a model file: where to run it.
        progress: show a progress bar over images (and tiles).

    Returns:
        One ``(1, 3, H, W)`` tensor in [0, 1] on the CPU per input, in order.
    """
    if isinstance(contents, (str, os.PathLike, Image.Image, torch.Tensor)):
        contents = [contents]
    if batch_size < 1:
        raise PerceptError(f"batch size must be >= 1, got {batch_size}")
    if size is not None and not 16 <= size <= 16384:
        raise PerceptError(f"size {size} out of range; use 16 to 16384 pixels")
    net = model if isinstance(model, TransformNet) else load_transform_net(model, device)
    style = style_vector(net, style_index=style_index, blend=blend).to(next(net.parameters()).device)
    images = [_content_tensor(c, size) for c in contents]
    results: list[torch.Tensor | None] = [None] * len(images)
    bar = tqdm(total=len(images), desc="stylize", unit="image", disable=not progress or len(images) == 1)
    try:
        if tile is not None:
            for i, image in enumerate(images):
                results[i] = tiled_forward(net, image, style, tile=tile, overlap=overlap, stats_size=stats_size,
                                           exact_statistics=exact_statistics, progress=progress)
                bar.update(1)
        else:
            by_size: dict[tuple[int, int], list[int]] = {}
            for i, image in enumerate(images):
                by_size.setdefault(tuple(image.shape[-2:]), []).append(i)
            dev = next(net.parameters()).device
            with torch.inference_mode():
                for indices in by_size.values():
                    for chunk in (indices[j : j + batch_size] for j in range(0, len(indices), batch_size)):
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
