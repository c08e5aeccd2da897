"""Top patches: the image patches of a folder that excite one channel of a layer most (Zeiler & Fergus 2014;
Girshick et al. 2014).

Every image is prepared as the network is evaluated (short side resized, centre crop) and run through the network
``batch_size`` images at a time, which bounds memory; for each image the ``per_image`` strongest positions of the
channel's map are kept (further ones at least half a patch away from those chosen), and the ``k`` strongest over
the folder win. Each winner's patch is the square window of the input that its unit sees, centred on the unit.

**Receptive field**, measured once per call with a gradient probe (:func:`receptive_field`): the gradient of the
layer's output at one unit (all channels summed) with respect to a random-noise input; its nonzero pixels span
the unit's window (its size), and the window of the diagonal neighbour unit is shifted by the layer's stride. The
probe image is the network's crop size, then twice that if the window does not fit. Where a ReLU or a max-pool
blocks every path to a border pixel the measured window can be a few pixels smaller than the theoretical one. A
patch is at most the network's crop (a deeper unit sees more than the whole image); when even the doubled probe
is too small, the stride is the input size over the map size and the windows are spread evenly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import PerceptError
from ..image import find_images, load_image
from ..models.classifier import Classifier
from .explanation import Explanation, explained, folder_input
from .layer_features import LayerOutput, Network, class_label, load_network
from .montage import labelled_grid
from .params import TopPatchesParams, explain_settings


@dataclass
class ReceptiveField:
    """Where a layer's units look in the input.

    Attributes:
        size: side of the square input window one unit depends on, px.
        stride: px between the windows of neighbouring units.
        origin: ``(y, x)`` centre, px, of the window of unit ``(0, 0)`` (can be negative: padding); unit ``(i, j)``'s
            window is centred at ``origin + stride * (i, j)``.
        clipped: the window did not fit in the largest probe image: ``size`` is a lower bound.
    """

    size: int
    stride: int
    origin: tuple[float, float]
    clipped: bool = False


def _extent(grad: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(top, left, bottom, right)`` (exclusive) of the nonzero pixels of ``grad`` ``(B, 3, H, W)``."""
    mask = grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def receptive_field(reader: LayerOutput, *, size: int = 224, growth: tuple[int, ...] = (1, 2), seed: int = 0
                    ) -> ReceptiveField:
    """Measure the receptive field of ``reader``'s layer (see the module docstring) with probe images of
    ``size * g`` px for ``g`` in ``growth``, stopping at the first where the window fits."""
    device = reader.device
    generator = torch.Generator().manual_seed(seed)
    for g in growth:
        side = size * g
        noise = torch.rand(1, 3, side, side, generator=generator)
        x = noise.repeat(2, 1, 1, 1).to(device).requires_grad_(True)
        out = reader(x)
        if out.dim() != 4:
            raise PerceptError(f"layer {reader.layer!r} gives a tensor of shape {tuple(out.shape)}, not a feature "
                               "map; choose a convolutional layer")
        h, w = out.shape[-2:]
        if min(h, w) < 2:
            continue
        y0, x0 = (h - 1) // 2, (w - 1) // 2
        score = out[0, :, y0, x0].sum() + out[1, :, y0 + 1, x0 + 1].sum()
        (grad,) = torch.autograd.grad(score, x)
        first, second = _extent(grad[:1]), _extent(grad[1:])
        if first is None or second is None:
            raise PerceptError(f"layer {reader.layer!r} does not depend on the input (zero gradient); choose another")
        inside = all(b[0] > 0 and b[1] > 0 and b[2] < side and b[3] < side for b in (first, second))
        if inside:
            extent = max(first[2] - first[0], first[3] - first[1])
            stride = max(1, round(((second[0] - first[0]) + (second[1] - first[1])) / 2))
            centre = ((first[0] + first[2] - 1) / 2, (first[1] + first[3] - 1) / 2)
            return ReceptiveField(extent, stride, (centre[0] - stride * y0, centre[1] - stride * x0))
    stride = max(1, round(side / h))  # the window outgrew every probe: a lower bound, centres spread evenly
    return ReceptiveField(side, stride, ((stride - 1) / 2, (stride - 1) / 2), clipped=True)


@dataclass
class TopPatches:
    """The ``K`` strongest units of one channel over a folder, strongest first.

    Attributes:
        patches: ``(K, 3, P, P)`` in [0, 1], the input windows the units see (mid-grey outside the image).
        paths, labels: the source image of each patch and its class folder.
        values: ``(K,)`` the channel's activation at the unit.
        positions: ``(K, 2)`` int, ``(row, column)`` of the unit in the layer's map.
        boxes: ``(K, 4)`` int, ``(top, left, bottom, right)`` of the patch in the prepared ``crop`` x ``crop`` image
            (can reach past its border).
        layer, channel: what was read; ``channels``: how many the layer has.
        receptive_field: the measured :class:`ReceptiveField`.
        images: how many images were scanned.
    """

    patches: torch.Tensor
    paths: list[Path]
    labels: list[str]
    values: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    layer: str
    channel: int
    channels: int
    receptive_field: ReceptiveField
    images: int


def _strongest(activation: torch.Tensor, count: int, radius: int) -> list[tuple[float, int, int]]:
    """Up to ``count`` ``(value, row, col)`` maxima of ``activation`` ``(h, w)``, each at least ``radius`` cells
    (Chebyshev) from those chosen before."""
    a = activation.clone().float()
    found = []
    for _ in range(count):
        flat = int(a.argmax())
        r, c = divmod(flat, a.shape[1])
        value = float(a[r, c])
        if value == float("-inf"):
            break
        found.append((value, r, c))
        a[max(0, r - radius + 1) : r + radius, max(0, c - radius + 1) : c + radius] = float("-inf")
    return found


def _window(image: torch.Tensor, top: int, left: int, side: int) -> torch.Tensor:
    """The ``side`` x ``side`` window of ``image`` ``(3, H, W)`` at ``(top, left)``, mid-grey outside it."""
    out = torch.full((3, side, side), 0.5)
    h, w = image.shape[-2:]
    t0, l0, t1, l1 = max(top, 0), max(left, 0), min(top + side, h), min(left + side, w)
    if t1 > t0 and l1 > l0:
        out[:, t0 - top : t1 - top, l0 - left : l1 - left] = image[:, t0:t1, l0:l1]
    return out


def top_patches(network: str | os.PathLike | Network | Classifier, folder: str | os.PathLike, *, layer: str,
                channel: int, k: int = 16, per_image: int = 1, patch: int | None = None, batch_size: int = 16,
                device: str | torch.device = "auto", progress: bool = False) -> TopPatches:
    """The ``k`` patches of the images under ``folder`` that activate ``channel`` of ``layer`` most.

    ``network``: anything :func:`~percept.understand.layer_features.load_network` takes (a classifier name, a run folder,
    vgg19/vgg16/alexnet, or a loaded model, whose device is used). ``patch``: the window side in px (default: the
    measured receptive field, at most the network's crop size). ``batch_size`` images go through the network at
    once. A channel out of range or a layer without a spatial map is a one-line error.
    """
    from ..models.views import view_transform

    if k < 1 or per_image < 1 or batch_size < 1:
        raise PerceptError(f"k, per-image and batch size must be >= 1, got {k}, {per_image}, {batch_size}")
    if patch is not None and patch < 1:
        raise PerceptError(f"patch size must be >= 1 px, got {patch}")
    root = Path(folder)
    paths = find_images(root, "image")
    net = load_network(network, device=device)
    reader = LayerOutput(net.model, layer, probe_size=net.crop)
    if len(reader.probe_shape) != 3:
        raise PerceptError(f"layer {layer!r} gives a tensor of shape (B, {', '.join(map(str, reader.probe_shape))}), "
                           "not a feature map (B, C, h, w); choose a convolutional layer")
    channels = reader.probe_shape[0]
    if not 0 <= channel < channels:
        raise PerceptError(f"channel {channel} out of range; layer {layer!r} has {channels} channels "
                           f"(0..{channels - 1})")
    rf = receptive_field(reader, size=net.crop)
    side = patch if patch is not None else min(rf.size, net.crop)
    radius = max(1, math.ceil(side / (2 * rf.stride)))
    transform = view_transform(net.resize, net.crop)
    candidates: list[tuple[float, int, int, int]] = []  # (value, image, row, col)
    bar = tqdm(total=len(paths), desc=f"top patches ({layer}, channel {channel})", unit="img", disable=not progress)
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            batch = torch.stack([transform(load_image(p)) for p in chunk]).to(net.device)
            maps = reader(batch)[:, channel].float().cpu()
            for i, activation in enumerate(maps):
                candidates += [(v, start + i, r, c) for v, r, c in _strongest(activation, per_image, radius)]
            bar.update(len(chunk))
    bar.close()
    winners = sorted(candidates, key=lambda t: -t[0])[:k]
    patches, boxes = [], []
    for value, i, r, c in winners:
        cy, cx = rf.origin[0] + rf.stride * r, rf.origin[1] + rf.stride * c
        top, left = round(cy - (side - 1) / 2), round(cx - (side - 1) / 2)
        patches.append(_window(transform(load_image(paths[i])), top, left, side))
        boxes.append((top, left, top + side, left + side))
    return TopPatches(torch.stack(patches), [paths[i] for _, i, _, _ in winners],
                      [class_label(paths[i], root) for _, i, _, _ in winners],
                      np.array([w[0] for w in winners], dtype=np.float32),
                      np.array([(w[2], w[3]) for w in winners], dtype=np.int64).reshape(-1, 2),
                      np.array(boxes, dtype=np.int64).reshape(-1, 4), layer, channel, channels, rf, len(paths))


def patches_grid(result: TopPatches, *, columns: int = 8, cell: int = 96, font_size: int = 11) -> torch.Tensor:
    """The patches strongest first, enlarged or reduced to ``cell`` px, captioned with class folder and activation:
    ``(1, 3, H, W)`` in [0, 1]."""
    tiles = torch.nn.functional.interpolate(result.patches, size=(cell, cell), mode="bilinear", align_corners=False,
                                            antialias=result.patches.shape[-1] > cell).clamp(0, 1)
    captions = [[label, f"{value:.2f}"] for label, value in zip(result.labels, result.values)]
    return labelled_grid(tiles, captions, columns=min(columns, len(tiles)), font_size=font_size)


def explain_top_patches(folder: str | os.PathLike, *, progress: bool = False, **settings: Any
                        ) -> Explanation[TopPatches]:
    """The strongest patches of ``folder`` for the network, layer and channel of ``settings``
    (:class:`~percept.understand.params.TopPatchesParams`), drawn strongest first (:func:`patches_grid`)."""
    params = explain_settings(TopPatchesParams, settings)
    if not params.layer or params.channel is None:
        raise PerceptError("give the layer and the channel to show (--layer LAYER --channel N; `percept explain "
                           "layers` lists the layers)")
    r = top_patches(params.model, folder, layer=params.layer, channel=params.channel, k=params.k,
                    per_image=params.per_image, patch=params.patch or None, batch_size=params.batch_size,
                    device=params.device, progress=progress)
    rf = r.receptive_field
    return explained(params, patches_grid(r, columns=params.columns, cell=params.cell), r,
                     inputs={"folder": folder_input(folder)}, sources=[str(p) for p in r.paths], classes=r.labels,
                     activations=[round(float(v), 4) for v in r.values], boxes=r.boxes.tolist(),
                     receptive_field=rf.size, stride=rf.stride)
