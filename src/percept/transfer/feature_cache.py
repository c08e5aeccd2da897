"""Feature vectors of images from a frozen backbone, cached on disk.

A cached vector is keyed by the backbone's :attr:`~percept.models.Backbone.cache_id` (network,
weights, layer, preprocessing), the view (centre crop, a test-time-augmentation view, or one seeded augmented
copy) and the SHA-256 of the image file's bytes, so it is reused across runs and invalidated as soon as the
image or anything about the backbone changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..image import load_image
from ..models.backbone import Backbone
from .augment import Augment, image_transform


def default_cache_dir() -> Path:
    """``$PERCEPT_CACHE`` or ``~/.cache/percept``, plus ``/features``."""
    base = os.environ.get("PERCEPT_CACHE") or Path.home() / ".cache" / "percept"
    return Path(base) / "features"


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_path(cache_dir: Path, backbone: Backbone, digest: str, view: str) -> Path:
    cache_id = backbone.cache_id if view == "center" else f"{backbone.cache_id}|{view}"
    key = hashlib.sha256(cache_id.encode()).hexdigest()[:16]
    return cache_dir / key / digest[:2] / f"{digest}.npy"


@torch.no_grad()
def embed_images(
    backbone: Backbone,
    paths: Sequence[Path],
    *,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: bool = False,
    view: str = "center",
    augment: Augment | None = None,
    copy: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Feature vectors ``(N, backbone.dim)`` (float32) of ``paths``, and how many came from the cache.

    ``cache_dir=None`` uses :func:`default_cache_dir`. Missing vectors are computed in batches of
    ``batch_size`` images (which bounds memory) and written to the cache atomically. ``view`` selects a
    test-time-augmentation view (see :func:`~percept.models.view_transform`); with ``augment``,
    the vectors are of augmented copy number ``copy`` instead, drawn from a random state seeded by the image's
    bytes, ``copy`` and ``seed`` (so the same copy is the same image every time, and cached).
    """
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    if augment is not None:
        settings = hashlib.sha256(json.dumps(augment.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
        view = f"augment-{settings}-seed{seed}-copy{copy}"
        transform = image_transform(backbone.crop, augment)
    else:
        transform = backbone.eval_transform(view)
    out = np.zeros((len(paths), backbone.dim), dtype=np.float32)
    todo: list[tuple[int, Path, str]] = []
    hits = 0
    for i, path in enumerate(paths):
        digest = _file_digest(Path(path))
        cached = _cache_path(cache_dir, backbone, digest, view)
        if cached.is_file():
            out[i] = np.load(cached)
            hits += 1
        else:
            todo.append((i, cached, digest))

    def prepare(i: int, digest: str) -> torch.Tensor:
        if augment is None:
            return transform(load_image(paths[i]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(digest[:12], 16) + 1_000_003 * copy + 7919 * seed)
            return transform(load_image(paths[i]))

    bar = tqdm(total=len(todo), desc=f"features ({backbone.name}{', augmented' if augment else ''})", unit="img",
               disable=not progress or not todo)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        batch = torch.stack([prepare(i, digest) for i, _, digest in chunk]).to(device)
        vectors = backbone.model(batch).float().cpu().numpy()
        for (i, cached, _), vector in zip(chunk, vectors):
            out[i] = vector
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vector)
            os.replace(tmp, cached)
        bar.update(len(chunk))
    bar.close()
    return out, hits
