"""Warping by optical flow, reliability masks, scene cuts and the temporal error of a stylised video.

One convention everywhere (see docs/dev/video.md): a flow ``(H, W, 2)`` holds ``(dx, dy)`` in pixels, x first;
``flow[y, x]`` says that pixel ``(x, y)`` of the frame it is defined on moves to ``(x + dx, y + dy)`` in the other
frame (OpenCV's convention, :func:`percept.video.flow.compute_flow`). Warping is *backward*: with the backward
flow of frame ``t`` (from ``t`` to ``t-1``), :func:`warp` samples frame ``t-1`` at ``x + flow(x)`` and so brings
it onto frame ``t``'s grid. Pixel centres are at integer coordinates, ``(0, 0)`` is the top-left pixel.

The reliability mask follows Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016).
Functions take numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Ruder et al. (2016), eq. (8) and (9): the disocclusion and motion-boundary tests.
DISOCCLUSION_RELATIVE, DISOCCLUSION_ABSOLUTE = 0.01, 0.5
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002
#: A frame pair is a scene cut when less than this share of the frame is reliable (measured on bikes.mp4's cuts,
#: docs/dev/video.md).
SCENE_CUT_RELIABLE = 0.32


def _as_batch(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``image`` as ``(B, C, H, W)`` and ``flow`` as ``(B, H, W, 2)``, both float on the image's device."""
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if flow.dim() == 3:
        flow = flow.unsqueeze(0)
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[-1] != 2:
        raise ValueError(f"warp expects an image (B, C, H, W) or (C, H, W) and a flow (B, H, W, 2) or (H, W, 2), "
                         f"got {tuple(image.shape)} and {tuple(flow.shape)}")
    if flow.shape[1:3] != image.shape[-2:]:
        raise ValueError(f"flow {tuple(flow.shape)} does not match the image size {tuple(image.shape[-2:])}")
    flow = flow.to(device=image.device, dtype=torch.float32)
    return image.float(), flow.expand(image.shape[0], -1, -1, -1)


def warp_tensor(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward warping of tensors: ``out(x) = image(x + flow(x))``, bilinear.

    Args:
        image: ``(B, C, H, W)`` or ``(C, H, W)`` float (any range), e.g. the stylised frame ``t-1``.
        flow: ``(B, H, W, 2)`` or ``(H, W, 2)``, x then y in pixels, e.g. the backward flow of frame ``t``.

    Returns:
        ``(warped, valid)``: ``warped`` shaped like ``image`` (``(B, C, H, W)`` when a batch was given), ``valid``
        ``(B, H, W)`` (or ``(H, W)``) float 1 where ``x + flow(x)`` lies inside the image, else 0 (and there
        ``warped`` is 0).
    """
    batched = image.dim() == 4
    img, flw = _as_batch(image, flow)
    _, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=img.device, dtype=torch.float32),
                            torch.arange(w, device=img.device, dtype=torch.float32), indexing="ij")
    sx, sy = xs + flw[..., 0], ys + flw[..., 1]
    eps = 1e-3  # a coordinate a rounding error beyond the last pixel centre still samples it
    valid = (sx >= -eps) & (sx <= w - 1 + eps) & (sy >= -eps) & (sy <= h - 1 + eps)
    grid = torch.stack([2 * sx / max(w - 1, 1) - 1, 2 * sy / max(h - 1, 1) - 1], dim=-1)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
    out = out * valid.unsqueeze(1)
    valid = valid.float()
    return (out, valid) if batched else (out[0], valid[0])


def warp(image, flow):
    """Backward warping (:func:`warp_tensor`) of a numpy image or a tensor; returns ``(warped, valid)``.

    Args:
        image: numpy ``(H, W)`` or ``(H, W, C)`` (any dtype; computed in float32), or a tensor
            ``(B, C, H, W)`` / ``(C, H, W)``.
        flow: ``(H, W, 2)`` numpy or tensor (or ``(B, H, W, 2)`` with a batched tensor image).

    Returns:
        numpy in, numpy out: ``warped`` float32 ``(H, W)`` / ``(H, W, C)`` and ``valid`` float32 ``(H, W)``;
        tensors in, tensors out (see :func:`warp_tensor`).
    """
    if isinstance(image, torch.Tensor):
        return warp_tensor(image, torch.as_tensor(flow))
    arr = np.asarray(image, dtype=np.float32)
    chw = torch.from_numpy(arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1)))
    out, valid = warp_tensor(chw, torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)))
    out = out[0].numpy() if arr.ndim == 2 else out.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out), valid.numpy()


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where frame ``t`` can be trusted to continue frame ``t-1`` (Ruder et al. 2016), float32 ``(H, W)`` in {0, 1}.

    Args:
        forward: ``(H, W, 2)`` flow from frame ``t-1`` to frame ``t`` (defined on frame ``t-1``).
        backward: ``(H, W, 2)`` flow from frame ``t`` to frame ``t-1`` (defined on frame ``t``), written ŵ.

    A pixel ``x`` of frame ``t`` is 0 when it is disoccluded, ``|w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5`` with
    ``w̃(x) = forward(x + ŵ(x))`` the forward flow warped onto frame ``t``; when it lies on a motion boundary,
    ``|∇ŵ_x|² + |∇ŵ_y|² > 0.01 |ŵ|² + 0.002`` (central differences); or when ``x + ŵ(x)`` leaves the image.
    1 elsewhere.
    """
    forward = np.asarray(forward, dtype=np.float32)
    backward = np.asarray(backward, dtype=np.float32)
    if forward.shape != backward.shape or forward.ndim != 3 or forward.shape[-1] != 2:
        raise ValueError(f"forward and backward flows must both be (H, W, 2), got {forward.shape} and "
                         f"{backward.shape}")
    warped_forward, valid = warp(forward, backward)
    total = warped_forward + backward
    disoccluded = (total ** 2).sum(-1) > (DISOCCLUSION_RELATIVE * ((warped_forward ** 2).sum(-1) +
                                                                   (backward ** 2).sum(-1)) + DISOCCLUSION_ABSOLUTE)
    gy_u, gx_u = np.gradient(backward[..., 0])
    gy_v, gx_v = np.gradient(backward[..., 1])
    boundary = (gx_u ** 2 + gy_u ** 2 + gx_v ** 2 + gy_v ** 2) > (BOUNDARY_RELATIVE * (backward ** 2).sum(-1) +
                                                                  BOUNDARY_ABSOLUTE)
    return ((valid > 0) & ~disoccluded & ~boundary).astype(np.float32)


def reliable_share(mask) -> float:
    """The share of the frame marked reliable, in [0, 1] (``mask`` ``(H, W)`` numpy or tensor)."""
    return float(mask.float().mean()) if isinstance(mask, torch.Tensor) else float(np.mean(mask))


def is_scene_cut(mask, threshold: float = SCENE_CUT_RELIABLE) -> bool:
    """True when frame ``t`` does not continue frame ``t-1``: less than ``threshold`` of its pixels are reliable.

    Args:
        mask: ``(H, W)`` from :func:`consistency_mask` (numpy or tensor).
        threshold: share of reliable pixels below which the pair is a cut (default
            :data:`SCENE_CUT_RELIABLE`, measured on the cuts of bikes.mp4: docs/dev/video.md).
    """
    return reliable_share(mask) < threshold


def temporal_error(stylised_t, stylised_prev, backward_flow, mask) -> float:
    """Mean absolute difference between frame ``t`` and the previous frame warped onto it, inside ``mask``.

    Args:
        stylised_t: frame ``t``, numpy ``(H, W, C)`` or tensor ``(C, H, W)`` / ``(1, C, H, W)``.
        stylised_prev: frame ``t-1``, same shape and units as ``stylised_t``.
        backward_flow: ``(H, W, 2)`` flow from frame ``t`` to ``t-1``.
        mask: ``(H, W)`` reliable pixels of frame ``t`` (:func:`consistency_mask`); pixels whose warp leaves the
            image are left out too.

    Returns:
        The mean over masked pixels and channels, in the images' units (uint8 inputs give 0-255 values, float
        images in [0, 1] give [0, 1] values); NaN when no pixel is reliable (e.g. at a scene cut).
    """
    warped, valid = warp(stylised_prev, backward_flow)
    if isinstance(warped, torch.Tensor):
        current = stylised_t.float().reshape(warped.shape)
        weight = torch.as_tensor(mask, dtype=torch.float32, device=warped.device) * valid
        diff = (current - warped).abs().mean(dim=-3)
        total = float(weight.expand_as(diff).sum())
        return float((diff * weight).sum()) / total if total > 0 else float("nan")
    current = np.asarray(stylised_t, dtype=np.float32).reshape(warped.shape)
    weight = np.asarray(mask, dtype=np.float32) * valid
    diff = np.abs(current - warped)
    diff = diff.mean(axis=-1) if diff.ndim == 3 else diff
    total = float(weight.sum())
    return float((diff * weight).sum()) / total if total > 0 else float("nan")
