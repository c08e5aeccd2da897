"""Dense optical flow between video frames (OpenCV), and a disk cache of the flows of one video.

Convention (the same in :mod:`percept.video.warp`): ``flow[y, x] = (dx, dy)`` in pixels, x first, float32
``(H, W, 2)``; pixel ``(x, y)`` of frame ``a`` is found at ``(x + dx, y + dy)`` in frame ``b``.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import PerceptError
from ..image import atomic_write

#: The methods of :func:`compute_flow`: DIS (fast, default) and Farneback (the classic alternative).
METHODS = ("dis", "farneback")
#: Bumped when a method's settings change, so that old cache entries are not reused.
CACHE_VERSION = 1


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PerceptError("optical flow needs OpenCV: pip install 'percept-cnn[video]'") from None
    return cv2


def _gray(frame: np.ndarray, cv2) -> np.ndarray:
    """``(H, W)`` uint8 from an RGB ``(H, W, 3)`` or grey ``(H, W)`` frame (uint8, or float in [0, 1])."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    raise ValueError(f"a frame must be (H, W, 3) RGB or (H, W) grey, got {arr.shape}")


def compute_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense optical flow from frame ``a`` to frame ``b``.

    Args:
        a: ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8 (or float in [0, 1]); flow is computed on grey levels.
        b: the same shape as ``a``.
        method: ``"dis"`` (Dense Inverse Search, OpenCV preset MEDIUM) or ``"farneback"`` (5 pyramid levels,
            window 15).

    Returns:
        ``(H, W, 2)`` float32, ``(dx, dy)`` in pixels: pixel ``(x, y)`` of ``a`` is at ``(x + dx, y + dy)`` in ``b``.
    """
    if method not in METHODS:
        raise PerceptError(f"unknown optical flow method {method!r}; use one of {', '.join(METHODS)}")
    cv2 = _cv2()
    ga, gb = _gray(a, cv2), _gray(b, cv2)
    if ga.shape != gb.shape:
        raise ValueError(f"frames differ in size: {ga.shape} and {gb.shape}")
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(ga, gb, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=5, winsize=15, iterations=3,
                                            poly_n=5, poly_sigma=1.2, flags=0)
    return np.ascontiguousarray(flow, dtype=np.float32)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class FlowCache:
    """Forward and backward flows of consecutive frames of one video, kept on disk.

    Layout: ``folder/<sha256 of the video file>/<method>-<size>-v<version>/<index:06d>.npz``, one file per
    pair ``(t-1, t)`` holding ``forward`` (frame ``t-1`` to ``t``) and ``backward`` (``t`` to ``t-1``) as float16
    ``(H, W, 2)``. ``size`` is the longest side the frames were read at (``full`` for the file's own size);
    ``index`` is ``t``, counted from the video's first frame. Flows are returned as float32 after the float16
    round trip, so a computed and a cached result are identical. Entries are written atomically; an unreadable
    or mismatched entry is recomputed.

    Args:
        folder: the cache folder (created if missing).
        video: the video file whose frames are given (only its bytes are read, for the key).
        size: the longest side the frames were read at (``None``: the file's own size).
        method: ``"dis"`` or ``"farneback"`` (see :func:`compute_flow`).
    """

    def __init__(self, folder: str | os.PathLike, video: str | os.PathLike, *, size: int | None = None,
                 method: str = "dis") -> None:
        if method not in METHODS:
            raise PerceptError(f"unknown optical flow method {method!r}; use one of {', '.join(METHODS)}")
        video = Path(video)
        if not video.is_file():
            raise PerceptError(f"video {str(video)!r} not found")
        self.method, self.size = method, size
        self.key = file_sha256(video)
        self.folder = Path(folder) / self.key / f"{method}-{size or 'full'}-v{CACHE_VERSION}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PerceptError(f"cannot create the flow cache folder {str(self.folder)!r} ({exc.strerror}); "
                               "choose a writable folder") from None
        self.hits = self.misses = 0

    def path(self, index: int) -> Path:
        """The file of pair ``(index - 1, index)``."""
        return self.folder / f"{index:06d}.npz"

    def _read(self, index: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        path = self.path(index)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                forward, backward = data["forward"], data["backward"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
            return None
        if forward.shape != (*shape, 2) or backward.shape != (*shape, 2):
            return None
        return forward.astype(np.float32), backward.astype(np.float32)

    def flows(self, index: int, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(forward, backward)`` flows of frames ``index - 1`` (``previous``) and ``index`` (``current``).

        Args:
            index: the frame number ``t`` of ``current`` in the video (``>= 1``).
            previous: frame ``t-1``, ``(H, W, 3)`` uint8 RGB as :func:`percept.video.io.read_frames` gives it.
            current: frame ``t``, same shape.

        Returns:
            ``forward`` ``(H, W, 2)`` float32 from ``t-1`` to ``t`` and ``backward`` from ``t`` to ``t-1``.
        """
        shape = tuple(np.shape(current)[:2])
        cached = self._read(index, shape)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        forward = compute_flow(previous, current, self.method).astype(np.float16)
        backward = compute_flow(current, previous, self.method).astype(np.float16)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, forward=forward, backward=backward)

        try:
            atomic_write(self.path(index), write)
        except OSError as exc:
            raise PerceptError(f"cannot write the flow cache {str(self.folder)!r} ({exc.strerror}); free disk "
                               "space or choose another folder") from None
        return forward.astype(np.float32), backward.astype(np.float32)
