"""Tiled inference for images too large to stylise in one pass, without seams.

The image is cut into overlapping tiles; each is stylised on its own and the results are blended with
feathered weights. Two things would otherwise draw seams:

1. **Instance-norm statistics.** Every norm layer of :class:`~percept.style.transformer.TransformNet`
   normalises with the mean and variance of what it sees, so a tile of sky and a tile of houses would each be
   normalised differently (visible steps at tile borders). Here every tile is normalised with the same,
   whole-image statistics, found in one of two ways:

   * *downscaled* (default): one ordinary forward pass over the image resized so its longest side is at most
     ``stats_size`` (:func:`downscaled_statistics`). Cheap; the result is seamless and looks like the untiled
     output, but not exactly (features are statistically a little different at another scale).
   * *exact* (``exact_statistics=True``): layer by layer, a pass over all tiles runs the network up to that
     layer and pools the layer's mean and variance over the tiles (:func:`tiled_statistics`). About 6 extra
     tiled passes; the result then equals the untiled output.

2. **Tile borders.** Near a tile's inner edge the network sees reflection padding instead of the neighbouring
   pixels, so its output differs from the untiled output within the receptive-field margin (at most
   :func:`receptive_margin` pixels, 57 for Johnson's network; in practice the difference is below 1e-3 beyond about 40 px). Adjacent
   tiles overlap by ``overlap`` pixels; across an overlap a tile's weight is 0 over the third nearest its edge,
   rises linearly over the middle third and is 1 beyond, mirrored for the neighbour, so the weights sum to 1
   and every output pixel comes from the tile(s) where it is far from an edge.

Memory: the network only ever sees one tile (or the ``stats_size`` image); the whole-image tensors are the
input, its padded copy and the output accumulator (``3 x H x W`` floats each, on the CPU). Measurements:
``docs/feedforward.md``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import PerceptError
from ..image import fit_size, resize
from ..params import defaults
from .params import NetworkParams
from .transformer import NormStatistics, TransformNet

def receptive_margin(residual_blocks: int = 5) -> int:
    """How far (pixels) one input pixel can change the output: the padding reach of every convolution in input
    pixels, ``4 + 1 + 2 + residual_blocks * 2 * 4 + 2 + 1 + 4``, plus up to 3 from the alignment on the stride-4
    grid (57 for Johnson's five residual blocks)."""
    return 4 + 1 + 2 + residual_blocks * 2 * 4 + 2 + 1 + 4 + 3


RECEPTIVE_MARGIN = receptive_margin()
DEFAULT_OVERLAP: int = defaults(NetworkParams)["overlap"]
MIN_TILE = 32


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start of each tile along an axis of ``length`` pixels: every ``tile - overlap`` pixels, the last tile
    ending at ``length`` (it may be shorter than ``tile``, but always longer than ``overlap``)."""
    starts = [0]
    while starts[-1] + tile < length:
        starts.append(starts[-1] + tile - overlap)
    return starts


def feather_ramp(overlap: int) -> torch.Tensor:
    """Weight ``(overlap,)`` of a tile across its first ``overlap`` pixels from an inner edge: 0 over the
    first third, rising linearly to 1 over the middle third, 1 over the last (mirrored: ``1 - ramp``)."""
    trim = overlap // 3
    positions = torch.arange(overlap, dtype=torch.float32) + 0.5
    return ((positions - trim) / max(1, overlap - 2 * trim)).clamp(0, 1)


def axis_weights(length: int, tile: int, overlap: int) -> list[tuple[int, torch.Tensor]]:
    """``(start, weights)`` of each tile along an axis; at every pixel the weights of all tiles sum to 1.

    A tile's weight ramps up from its inner edges (:func:`feather_ramp`; none at the image border). With
    ``overlap <= tile / 2`` two tiles meet at any pixel and their ramps already sum to 1; larger overlaps are
    normalised by the sum.
    """
    starts = tile_starts(length, tile, overlap)
    ramp = feather_ramp(overlap)
    raw = []
    for i, start in enumerate(starts):
        w = torch.ones(min(tile, length - start))
        if i > 0:
            w[:overlap] = torch.minimum(w[:overlap], ramp)
        if i < len(starts) - 1:
            w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
        raw.append((start, w))
    total = torch.zeros(length)
    for start, w in raw:
        total[start : start + len(w)] += w
    return [(start, w / total[start : start + len(w)]) for start, w in raw]


def _check(tile: int, overlap: int) -> tuple[int, int]:
    """Tile rounded down and overlap rounded up to multiples of 4 (the network's stride), validated."""
    tile, overlap = tile // 4 * 4, -(-overlap // 4) * 4
    if tile < MIN_TILE:
        raise PerceptError(f"tile size {tile} px is too small; use at least {MIN_TILE} (512 or more is typical)")
    if not 0 <= overlap < tile:
        raise PerceptError(f"tile overlap {overlap} px must be >= 0 and smaller than the tile ({tile} px)")
    return tile, overlap


def downscaled_statistics(net: TransformNet, image: torch.Tensor, style: torch.Tensor,
                           stats_size: int) -> NormStatistics:
    """Every norm layer's statistics on ``image`` ``(1, 3, H, W)`` resized (antialiased bicubic) so its longest
    side is at most ``stats_size``; computed on the network's device."""
    h, w = image.shape[-2:]
    if max(h, w) > stats_size:
        image = resize(image, fit_size(w, h, stats_size)).clamp(0, 1)
    device = next(net.parameters()).device
    with torch.inference_mode():
        return net.statistics(image.to(device), style)


def owned_windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Per tile ``(start, offset, size)``: the window of the tile it owns. The axis is split halfway (on the
    stride-4 grid) across every overlap, so the windows partition the axis and stay about ``overlap / 2``
    pixels away from the tiles' inner edges."""
    starts = tile_starts(length, tile, overlap)
    bounds = [0, *(start + overlap // 8 * 4 for start in starts[1:]), length]
    return [(start, bounds[i] - start, bounds[i + 1] - bounds[i]) for i, start in enumerate(starts)]


def tiled_statistics(net: TransformNet, padded: torch.Tensor, style: torch.Tensor, tile: int, overlap: int,
                     bar: tqdm | None = None) -> NormStatistics:
    """The statistics every norm layer computes on the whole ``padded`` ``(1, 3, H, W)`` image (sides multiples
    of 4), found tile by tile: layer by layer, one pass over the tiles runs the network up to that layer
    (normalising the layers before it with the statistics already found) and pools its mean and variance
    over the tiles' owned windows (:func:`owned_windows`). Costs about 6 tiled forward passes."""
    device = next(net.parameters()).device
    rows = owned_windows(padded.shape[-2], tile, overlap)
    cols = owned_windows(padded.shape[-1], tile, overlap)
    found: NormStatistics = []
    with torch.inference_mode():
        for layer in range(net.num_norms):
            mean_sum = square_sum = 0.0
            for top, dy, height in rows:
                for left, dx, width in cols:
                    crop = padded[..., top : top + tile, left : left + tile].to(device)
                    (mean, var), = net.statistics(crop, style, statistics=found, region=(dy, dx, height, width),
                                                  layer=layer)
                    mean_sum = mean_sum + mean.double() * (height * width)
                    square_sum = square_sum + (var.double() + mean.double() ** 2) * (height * width)
            area = padded.shape[-2] * padded.shape[-1]
            mean = mean_sum / area
            found.append((mean.float(), (square_sum / area - mean**2).clamp_min(0).float()))
            if bar is not None:
                bar.update(1)
    return found


def tiled_forward(
    net: TransformNet,
    image: torch.Tensor,
    style: torch.Tensor,
    *,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    exact_statistics: bool = False,
    stats_size: int | None = None,
    statistics: NormStatistics | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Stylise ``image`` ``(1, 3, H, W)`` in [0, 1] (on the CPU) tile by tile; returns ``(1, 3, H, W)`` on the CPU.

    Args:
        net: the network, on the device the tiles run on.
        style: style weights ``(S,)``.
        tile: tile side in pixels (rounded down to a multiple of 4).
        overlap: pixels shared by adjacent tiles (rounded up to a multiple of 4, less than ``tile``).
        exact_statistics: find the norm statistics of the whole image at full resolution
            (:func:`tiled_statistics`, about 7 times the work) instead of on a downscaled copy: the result then
            equals the untiled output.
        stats_size: longest side of the downscaled copy the statistics are computed on otherwise
            (default: ``tile``, so the network never sees more than a tile's pixels).
        statistics: use these (from :meth:`TransformNet.statistics`) instead.
        progress: show progress bars.
    """
    tile, overlap = _check(tile, overlap)
    device = next(net.parameters()).device
    h, w = image.shape[-2:]
    pad_h, pad_w = (4 - h % 4) % 4, (4 - w % 4) % 4  # as the network pads: tiles then start on its stride grid
    padded = F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image
    if statistics is None and exact_statistics:
        with tqdm(total=net.num_norms, desc="statistics", unit="layer", disable=not progress) as bar:
            statistics = tiled_statistics(net, padded, style, tile, overlap, bar)
    elif statistics is None:
        statistics = downscaled_statistics(net, image, style, stats_size or tile)
    rows = axis_weights(padded.shape[-2], tile, overlap)
    cols = axis_weights(padded.shape[-1], tile, overlap)
    out = torch.zeros_like(padded)
    with tqdm(total=len(rows) * len(cols), desc="tiles", unit="tile", disable=not progress) as bar, \
            torch.inference_mode():
        for top, wy in rows:
            for left, wx in cols:
                crop = padded[..., top : top + len(wy), left : left + len(wx)].to(device)
                styled = net(crop, style, statistics=statistics).float().cpu()
                out[..., top : top + len(wy), left : left + len(wx)] += styled * (wy[:, None] * wx[None, :])
                bar.update(1)
    return out[..., :h, :w]
