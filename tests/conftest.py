"""Shared fixtures. Tests run offline: PERCEPT_OFFLINE stops any download attempt."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageOps

os.environ.setdefault("PERCEPT_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _unused_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """The function that finds an unused loopback port (for servers the tests start)."""
    return _unused_port


@pytest.fixture(scope="session")
def cat_path() -> Path:
    return EXAMPLES / "content" / "chelsea_cat.jpg"


@pytest.fixture(scope="session")
def rocket_path() -> Path:
    return EXAMPLES / "content" / "rocket_launch.jpg"


@pytest.fixture(scope="session")
def starry_path() -> Path:
    return EXAMPLES / "style" / "van_gogh_starry_night.jpg"


@pytest.fixture(scope="session")
def wave_path() -> Path:
    return EXAMPLES / "style" / "hokusai_great_wave.jpg"


@pytest.fixture(scope="session")
def texture_path() -> Path:
    return EXAMPLES / "texture" / "colorful_zigzag_256.jpg"


@pytest.fixture(scope="session")
def cat_tensor(cat_path):
    from percept.image import load_image, to_tensor

    return to_tensor(load_image(cat_path), longest=128)


@pytest.fixture(scope="session")
def vgg19():
    from percept.models import get_model

    return get_model("vgg19", "gatys")


def _crops(source, folder, n, seed):
    """``n`` random crops (some mirrored) of ``source`` saved as JPEGs in ``folder``."""
    rng = random.Random(seed)
    img = Image.open(source).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.6, 0.9)), int(h * rng.uniform(0.6, 0.9))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = img.crop((x, y, x + cw, y + ch)).resize((96, 96))
        (ImageOps.mirror(crop) if i % 2 else crop).save(folder / f"{i:02d}.jpg", quality=90)


@pytest.fixture(scope="session")
def crops():
    """The function that writes ``n`` random crops of an image into a folder."""
    return _crops


@pytest.fixture()
def dataset(tmp_path, cat_path, rocket_path):
    """DATA/train/{cat,rocket} (6 each) and DATA/val/{cat,rocket} (3 each)."""
    root = tmp_path / "data"
    for split, n, seed in (("train", 6, 0), ("val", 3, 1)):
        _crops(cat_path, root / split / "cat", n, seed)
        _crops(rocket_path, root / split / "rocket", n, seed + 10)
    return root
