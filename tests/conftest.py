"""Shared fixtures. Tests run offline: PERCEPT_OFFLINE stops any download attempt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("PERCEPT_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
    from percept.models import get_feature_net

    return get_feature_net("vgg19", "gatys")
