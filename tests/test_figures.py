"""The saliency comparison figure: one titled panel per map plus the photo, a colour bar per map, robust scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from percept.errors import PerceptError
from percept.understand.montage import robust_limit, saliency_panel


def test_saliency_panel_titles_colour_bars_and_size(tmp_path):
    image = torch.rand(1, 3, 16, 24)
    maps = [torch.rand(16, 24), torch.rand(16, 24) - 0.5]
    fig = saliency_panel(image, maps, ["gradient", "Grad-CAM"], dpi=50)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["photo", "gradient", "Grad-CAM"]
    assert len(fig.axes) == 3
    assert [len(ax.child_axes) for ax in fig.axes] == [0, 1, 1]  # a colour bar beside each map
    out = tmp_path / "panel.png"
    fig.savefig(out)
    from PIL import Image

    width, height = Image.open(out).size
    assert width == pytest.approx(3 * 2.6 * 50, abs=1)
    assert height == pytest.approx((2.6 * 16 / 24 + 0.6) * 50, abs=1)


def test_robust_limit_ignores_a_few_hot_pixels():
    heat = torch.ones(100, 100)
    heat[0, :5] = 1000.0
    assert robust_limit(heat) == pytest.approx(1.0)
    assert robust_limit(np.zeros((4, 4))) == 1.0
    fig = saliency_panel(torch.rand(3, 8, 8), [heat[:8, :8]], ["hot"])
    image = fig.axes[1].images[0]
    assert image.get_clim()[1] == pytest.approx(robust_limit(heat[:8, :8]))


def test_saliency_panel_checks_its_inputs():
    with pytest.raises(PerceptError):
        saliency_panel(torch.rand(1, 3, 8, 8), [torch.rand(8, 8)], ["a", "b"])
