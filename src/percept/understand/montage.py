"""Composing figures: images side by side (saliency, attack, class images) and labelled grids, tiles with a
caption under each and an optional coloured frame (neighbours, patches)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..errors import PerceptError
from ..image import load_image

Colour = tuple[int, int, int]
GOOD: Colour = (40, 160, 60)
BAD: Colour = (210, 50, 40)
NEUTRAL: Colour = (150, 150, 150)


def side_by_side(*images: torch.Tensor) -> torch.Tensor:
    """Images ``(1, 3, H, W_i)`` of one height, left to right: ``(1, 3, H, sum W_i)`` on the CPU."""
    heights = {int(image.shape[-2]) for image in images}
    if not images or len(heights) != 1:
        raise PerceptError(f"side by side needs images of one height, got heights {sorted(heights)}")
    return torch.cat([image.detach().cpu() for image in images], dim=3)


def thumbnail(path: str | os.PathLike, size: int) -> torch.Tensor:
    """The centre square of an image, resized to ``size`` px: ``(3, size, size)`` in [0, 1]."""
    img = ImageOps.fit(load_image(path), (size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` px."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def labelled_grid(tiles: torch.Tensor, captions: Sequence[str | Sequence[str]], *, columns: int,
                  frames: Sequence[Colour | None] | None = None, font_size: int = 11, frame: int = 3,
                  gap: int = 4) -> torch.Tensor:
    """Tiles ``(N, 3, h, w)`` in [0, 1] in rows of ``columns``, each with its caption (one string or several
    lines) underneath and, where ``frames`` gives a colour, a ``frame``-px border: ``(1, 3, H, W)`` on white."""
    if tiles.dim() != 4 or tiles.shape[1] != 3 or len(tiles) == 0:
        raise PerceptError(f"tiles must be (N, 3, h, w) with N >= 1, got {tuple(tiles.shape)}")
    n, _, h, w = tiles.shape
    lines = [[c] if isinstance(c, str) else list(c) for c in captions]
    if len(lines) != n:
        raise PerceptError(f"{n} tiles but {len(lines)} captions")
    frames = list(frames) if frames is not None else [None] * n
    font = _font(font_size)
    line_h = font_size + 3
    text_h = line_h * max(len(c) for c in lines) + 2
    cell_w, cell_h = w + 2 * frame, h + 2 * frame + text_h
    rows = (n + columns - 1) // columns
    canvas = Image.new("RGB", (columns * cell_w + (columns + 1) * gap, rows * cell_h + (rows + 1) * gap), "white")
    draw = ImageDraw.Draw(canvas)
    arrays = (tiles.detach().float().cpu().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, columns)
        x, y = gap + c * (cell_w + gap), gap + r * (cell_h + gap)
        if frames[i] is not None:
            draw.rectangle([x, y, x + cell_w - 1, y + h + 2 * frame - 1], fill=frames[i])
        canvas.paste(Image.fromarray(arrays[i], "RGB"), (x + frame, y + frame))
        for j, text in enumerate(lines[i]):
            draw.text((x + 1, y + h + 2 * frame + 1 + j * line_h), _fit(draw, text, font, cell_w - 2), fill="black",
                      font=font)
    arr = np.asarray(canvas, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def robust_limit(heat: torch.Tensor | np.ndarray, percentile: float = 99.0) -> float:
    """The ``percentile`` of ``|heat|``: the top of a map's colour scale, so a few hot pixels do not wash it out
    (a positive number; 1.0 for an all-zero map)."""
    values = np.abs(np.asarray(heat.detach().cpu() if isinstance(heat, torch.Tensor) else heat, dtype=np.float64))
    limit = float(np.percentile(values, percentile)) if values.size else 0.0
    if not np.isfinite(limit) or limit <= 0:
        limit = float(values.max()) if values.size and np.isfinite(values.max()) and values.max() > 0 else 1.0
    return limit


def saliency_panel(image: torch.Tensor, maps: Sequence[torch.Tensor], titles: Sequence[str], *,
                   photo_title: str = "photo", percentile: float = 99.0, colormap: str = "inferno",
                   panel_inches: float = 2.6, dpi: int = 100):
    """The photo ``(1, 3, H, W)`` (or ``(3, H, W)``) in [0, 1] and each saliency map ``(H, W)`` on its own, side by
    side: a title per panel (``photo_title``, then ``titles``), a colour bar per map, each map scaled robustly
    (clipped at the ``percentile`` of its absolute value). Signed maps get a diverging scale around 0.
    Returns a matplotlib :class:`~matplotlib.figure.Figure` (not attached to pyplot); save it with ``savefig``."""
    from matplotlib.figure import Figure

    if len(maps) != len(titles):
        raise PerceptError(f"{len(maps)} maps but {len(titles)} titles")
    photo = image.detach().float().cpu()
    if photo.dim() == 4:
        photo = photo[0]
    if photo.dim() != 3 or photo.shape[0] != 3:
        raise PerceptError(f"image must be (1, 3, H, W) or (3, H, W), got {tuple(image.shape)}")
    h, w = photo.shape[-2:]
    n = len(maps) + 1
    aspect = h / w
    fig = Figure(figsize=(n * panel_inches, panel_inches * aspect + 0.6), dpi=dpi, layout="constrained")
    fig.get_layout_engine().set(wspace=0.12)  # room for each map's colour bar
    axes = fig.subplots(1, n, squeeze=False)[0]
    axes[0].imshow(photo.clamp(0, 1).permute(1, 2, 0).numpy())
    axes[0].set_title(photo_title)
    for ax, heat, title in zip(axes[1:], maps, titles):
        arr = np.asarray(heat.detach().float().cpu() if isinstance(heat, torch.Tensor) else heat, dtype=np.float32)
        if arr.ndim != 2:
            raise PerceptError(f"saliency maps must be (H, W), got {arr.shape} for {title!r}")
        limit = robust_limit(arr, percentile)
        if float(arr.min()) < 0:
            shown = ax.imshow(np.clip(arr, -limit, limit), cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            shown = ax.imshow(np.clip(arr, 0, limit), cmap=colormap, vmin=0, vmax=limit)
        ax.set_title(title)
        bar = fig.colorbar(shown, cax=ax.inset_axes((1.03, 0.0, 0.05, 1.0)))  # exactly as tall as the map
        bar.ax.tick_params(labelsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
