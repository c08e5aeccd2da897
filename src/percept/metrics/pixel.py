"""PSNR: the peak signal-to-noise ratio of two images, in dB (higher is better; identical images give ``inf``)."""

from __future__ import annotations

import torch

from .inputs import prepare


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, channel: str = "rgb", crop: int = 0
         ) -> torch.Tensor:
    """``10 log10(data_range^2 / MSE)`` per image: ``(B, 3, H, W)`` twice -> ``(B,)`` float64, in dB.

    Convention: the mean squared error is taken over every pixel of all three RGB channels together (not a mean of
    per-channel PSNRs), on the values as given (no rounding to 8 bits). ``channel="y"`` compares the BT.601 luma
    instead (:func:`~percept.metrics.inputs.rgb_to_y`, as MATLAB's ``rgb2ycbcr``), and ``crop`` cuts that many
    pixels at every border first: the usual super-resolution protocol. Identical images give ``inf``.
    """
    x, y = prepare(x, y, channel=channel, crop=crop)
    mse = (x.double() - y.double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range**2 / mse)  # mse == 0 -> inf, by IEEE division
