"""What every metric checks and shares: a pair of image batches, the luma channel, the border crop.

Images are float batches ``(B, 3, H, W)`` in ``[0, 1]`` (a single ``(3, H, W)`` image is taken as a batch of one).
"""

from __future__ import annotations

import torch

from ..errors import PerceptError

#: ITU-R BT.601 luma as MATLAB's ``rgb2ycbcr`` computes it (the super-resolution literature's "Y channel"):
#: ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` for ``R, G, B`` in ``[0, 1]``; ``Y`` lies in ``[16/255,
#: 235/255]``.
Y_WEIGHTS = (65.481 / 255, 128.553 / 255, 24.966 / 255)
Y_OFFSET = 16 / 255

#: The channels a pixel metric can compare.
CHANNELS = ("rgb", "y")


def as_batch(x: torch.Tensor, what: str = "image") -> torch.Tensor:
    """``x`` as a ``(B, 3, H, W)`` float batch; ``(3, H, W)`` becomes a batch of one; anything else is one line."""
    if not isinstance(x, torch.Tensor):
        raise PerceptError(f"the {what} must be a tensor (B, 3, H, W) in [0, 1], got {type(x).__name__}; load files "
                           "with percept.image.as_tensor or use compare_images")
    x = x.unsqueeze(0) if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[1] != 3:
        raise PerceptError(f"the {what} must be (B, 3, H, W) RGB in [0, 1], got shape {tuple(x.shape)}")
    return x if x.is_floating_point() else x.float()


def image_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches checked (same shape, RGB); ``y`` moved to ``x``'s device and dtype."""
    x, y = as_batch(x, "first image"), as_batch(y, "second image")
    if x.shape != y.shape:
        raise PerceptError(f"the images differ in shape: {tuple(x.shape)} and {tuple(y.shape)}; compare images of the "
                           "same size (resize one first)")
    return x, y.to(device=x.device, dtype=x.dtype)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, 1, H, W)`` BT.601 luma in ``[16/255, 235/255]`` (see
    :data:`Y_WEIGHTS`)."""
    weights = torch.tensor(Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True) + Y_OFFSET


def prepare(x: torch.Tensor, y: torch.Tensor, *, channel: str = "rgb", crop: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair as a pixel metric compares it: checked, ``crop`` pixels cut at every border, and the luma only for
    ``channel="y"``: ``(B, C, H - 2 crop, W - 2 crop)`` with ``C`` 3 or 1."""
    if channel not in CHANNELS:
        raise PerceptError(f"unknown channel {channel!r}; use {' or '.join(CHANNELS)}")
    x, y = image_pair(x, y)
    if crop < 0 or 2 * crop >= min(x.shape[-2:]):
        raise PerceptError(f"cannot crop {crop} px from each border of a {x.shape[-1]}x{x.shape[-2]} image; use a "
                           "crop between 0 and less than half the shorter side")
    if crop:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    if channel == "y":
        x, y = rgb_to_y(x), rgb_to_y(y)
    return x, y
