"""Tiled upscaling for images too large for one pass, equal to whole-image inference when the overlap suffices.

The low-resolution image is cut into ``tile x tile`` tiles that overlap by ``overlap`` pixels; each is upscaled
on its own and the results are blended with weights that sum to 1. Near a tile's inner edge the network sees
zero padding instead of the neighbouring pixels, so its output differs there from the whole-image output, but
only within the network's *reach* (how far an input pixel can change the output, ``net.reach`` input pixels).
Across an overlap a tile's weight is 0 over the third nearest its edge, rises linearly over the middle third and
is 1 beyond (mirrored for the neighbour). With ``overlap >= 3 * reach`` every output pixel therefore comes only
from tiles in which it is at least ``reach`` pixels from an edge, and the result equals whole-image inference
(up to float rounding; batch norm in eval mode is a per-pixel affine map). Memory: the network only ever sees one
tile; the whole-image tensors are the input and the output accumulator, on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from ..errors import PerceptError


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along an axis of ``length`` pixels: every ``tile - overlap`` pixels, the last tile
    ending at ``length``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def feather_ramp(overlap: int) -> torch.Tensor:
    """Weight ``(overlap,)`` of a tile across the ``overlap`` pixels from its inner edge: 0 over the first third,
    rising linearly to 1 over the middle third, 1 over the last."""
    trim = overlap // 3
    positions = torch.arange(overlap, dtype=torch.float32) + 0.5
    return ((positions - trim) / max(1, overlap - 2 * trim)).clamp(0, 1)


def axis_weights(length: int, tile: int, overlap: int, scale: int) -> list[tuple[int, torch.Tensor]]:
    """``(start, weights)`` of each tile along an axis, the weights ``(scale * tile_length,)`` at the output
    resolution; at every output pixel the weights of all tiles sum to 1."""
    starts = tile_starts(length, tile, overlap)
    raw = []
    for i, start in enumerate(starts):
        size = min(tile, length - start) * scale
        w = torch.ones(size)
        if i > 0:  # the overlap with the previous tile, at the output resolution
            shared = (starts[i - 1] + tile - start) * scale
            w[:shared] = torch.minimum(w[:shared], feather_ramp(shared))
        if i < len(starts) - 1:
            shared = (start + tile - starts[i + 1]) * scale
            w[-shared:] = torch.minimum(w[-shared:], feather_ramp(shared).flip(0))
        raw.append((start, w))
    total = torch.zeros(length * scale)
    for start, w in raw:
        total[start * scale : start * scale + len(w)] += w
    return [(start, w / total[start * scale : start * scale + len(w)]) for start, w in raw]


def check_tiles(tile: int, overlap: int) -> None:
    """One line for a tile and overlap that cannot work."""
    if tile < 8:
        raise PerceptError(f"tile {tile} px is too small; use at least 8 input pixels (128 or more is typical)")
    if not 0 <= overlap < tile:
        raise PerceptError(f"tile overlap {overlap} px must be >= 0 and smaller than the tile ({tile} px); lower "
                           "--overlap or raise --tile")


def tiled(run: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, *, factor: int, tile: int,
          overlap: int, progress: bool = False) -> torch.Tensor:
    """Upscale ``image`` ``(1, 3, h, w)`` (on the CPU) tile by tile; returns ``(1, 3, factor h, factor w)`` on the
    CPU.

    Args:
        run: the network on one tile: ``(1, 3, th, tw)`` -> ``(1, 3, factor th, factor tw)`` (any device).
        tile: tile side in input pixels.
        overlap: input pixels shared by adjacent tiles (see the module docstring for exact results).
        progress: show a progress bar of the tiles.
    """
    check_tiles(tile, overlap)
    h, w = image.shape[-2:]
    rows = axis_weights(h, tile, overlap, factor)
    cols = axis_weights(w, tile, overlap, factor)
    out = torch.zeros(1, 3, h * factor, w * factor)
    with tqdm(total=len(rows) * len(cols), desc="tiles", unit="tile", disable=not progress) as bar:
        for top, wy in rows:
            for left, wx in cols:
                crop = image[..., top : top + len(wy) // factor, left : left + len(wx) // factor]
                piece = run(crop).float().cpu()
                y, x = top * factor, left * factor
                out[..., y : y + len(wy), x : x + len(wx)] += piece * (wy[:, None] * wx[None, :])
                bar.update(1)
    return out
