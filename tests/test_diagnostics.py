"""Activation statistics and dead-ReLU diagnostics (percept.transfer.diagnostics)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from percept.errors import PerceptError
from percept.transfer.diagnostics import (
    activation_stats,
    compare,
    figure_size,
    format_summary,
    plot_diagnostics,
)


def _tiny() -> nn.Sequential:
    """Conv(3->8) ReLU Conv(8->4) ReLU(inplace); channels 2 and 5 of the first conv are dead (bias -1e3)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(inplace=True))  # fmt: skip
    with torch.no_grad():
        model[0].bias.zero_()
        model[0].bias[[2, 5]] = -1e3
    return model


def _manual(y: torch.Tensor) -> dict:
    return {"mean": y.mean().item(), "std": y.std(correction=0).item(),
            "zero_fraction": (y <= 0).float().mean().item(),
            "dead_fraction": (y.amax(dim=(0, 2, 3)) <= 0).float().mean().item(), "channels": y.shape[1]}  # fmt: skip


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_stats_match_a_manual_computation_and_dead_channels_are_found():
    model = _tiny()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first = model[0](x).relu()
        second = model[2](first).relu()
    stats = activation_stats(model, x)
    assert [(e["layer"], e["kind"]) for e in stats] == [("1", "ReLU"), ("3", "ReLU")]
    assert stats[0]["dead_fraction"] == 0.25  # exactly 2 of 8 channels
    assert stats[0]["zero_fraction"] > 0.25  # the live channels are negative somewhere too
    for entry, y in zip(stats, (first, second)):  # the second ReLU is in-place
        expected = _manual(y)
        assert entry["channels"] == expected.pop("channels")
        for key, value in expected.items():
            assert entry[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
        assert all(type(v) in (str, int, float) for v in entry.values())  # floats only, no tensors kept
    assert _no_hooks(model)


def test_a_module_called_twice_gives_two_numbered_entries():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.leaky = nn.Conv2d(2, 2, 1), nn.ReLU(), nn.LeakyReLU()

        def forward(self, x):
            return self.leaky(self.act(self.conv(self.act(x))))

    stats = activation_stats(Twice(), torch.randn(1, 2, 4, 4))
    assert [e["layer"] for e in stats] == ["act#1", "act#2", "leaky"]
    assert stats[2]["kind"] == "LeakyReLU" and stats[2]["dead_fraction"] is None
    assert stats[0]["mean"] >= 0 and stats[0]["dead_fraction"] is not None


def test_hooks_are_removed_and_modes_restored_even_when_forward_raises():
    seen = []

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.act, self.drop = nn.ReLU(), nn.Dropout()

        def forward(self, x):
            seen.append((self.drop.training, torch.is_grad_enabled()))
            self.act(x)
            raise RuntimeError("boom")

    model = Broken().train()
    model.act.eval()  # mixed modes are restored module by module
    with pytest.raises(RuntimeError, match="boom"):
        activation_stats(model, torch.randn(2, 3))
    assert seen == [(False, False)]  # the pass itself ran in eval mode, without autograd
    assert _no_hooks(model)
    assert model.training and model.drop.training and not model.act.training

    tiny = _tiny().train()
    activation_stats(tiny, torch.randn(1, 3, 4, 4))
    assert tiny.training and _no_hooks(tiny)


def test_bad_input_is_a_one_line_error():
    with pytest.raises(PerceptError, match="no activation modules"):
        activation_stats(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 2, 2))
    with pytest.raises(PerceptError, match="non-empty batch"):
        activation_stats(_tiny(), torch.empty(0, 3, 4, 4))
    with pytest.raises(PerceptError, match="only one of"):
        compare([{"layer": "a"}], [{"layer": "b"}])


def test_compare_plot_and_summary(tmp_path):
    model = _tiny()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    start = activation_stats(model, x)
    with torch.no_grad():
        model[0].bias[0] = -1e3  # "training" kills one more channel
    report = compare(start, activation_stats(model, x))
    summary = report["summary"]
    dead_second = start[1]["dead_fraction"] * 4
    assert summary["dead_fraction_start"] == pytest.approx((2 + dead_second) / 12)  # channel-weighted
    assert report["layers"][0]["end"]["dead_fraction"] == 0.375
    assert summary["most_dead_layer_end"] == "1" and summary["layers"] == 2
    line = format_summary(report)
    assert f"{summary['dead_fraction_start']:.1%} at start" in line and "(most: 1, 37.5%)" in line
    assert "\n" not in line

    path = tmp_path / "diagnostics.png"
    plot_diagnostics(report, path)
    width, height = figure_size(2)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (round(width * 100), round(height * 100))
    assert [p.name for p in tmp_path.iterdir()] == ["diagnostics.png"]  # written atomically

    many = {"layers": report["layers"] * 30, "summary": summary}  # ~60 layers: a wider figure
    plot_diagnostics(many, tmp_path / "many.png")
    with Image.open(tmp_path / "many.png") as image:
        assert image.size == (round(figure_size(60)[0] * 100), 640) and image.size[0] > 640


def test_alexnet_relus(cat_path):
    from percept.image import load_image, to_tensor
    from percept.models import get_model

    class Last(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x, [self.net.layer_names[-1]])

    x = to_tensor(load_image(cat_path), longest=96)
    stats = activation_stats(Last(get_model("alexnet")), x)
    assert [e["layer"] for e in stats] == [f"net.layers.relu{i}" for i in range(1, 6)]
    assert all(e["kind"] == "ReLU" and 0 <= e["dead_fraction"] <= 1 and e["mean"] > 0 for e in stats)
    assert [e["channels"] for e in stats] == [64, 192, 384, 256, 256]
