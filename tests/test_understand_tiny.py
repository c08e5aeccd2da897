"""Activation maps, Grad-CAM and attacks on tiny models whose answers are known (the real-weight tests are in
test_understand_foundation.py, test_saliency.py and test_attack.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from percept.image import to_tensor
from percept.understand import Classifier, activation_maps, attack, saliency


class ColourNet(nn.Module):
    """Channels: red, green, blue (a 1x1 conv with the identity), ReLU, then logits = 10 x the mean of each
    channel minus 5: the class is the dominant colour."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.conv.bias.zero_()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10 * self.relu(self.conv(x)).mean(dim=(2, 3)) - 5


@pytest.fixture()
def colours() -> Classifier:
    model = ColourNet().eval().requires_grad_(False)
    return Classifier(model, ["red", "green", "blue"], 16, 16, "colours", lambda img: to_tensor(img))


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_activation_maps_are_the_layer_output(colours):
    x = torch.rand(1, 3, 12, 10)
    maps = activation_maps(colours.model, x, "relu")
    assert torch.allclose(maps, x[0]) and _no_hooks(colours.model) and colours.model.relu.inplace


def test_gradcam_finds_the_red_square():
    """Grad-CAM weights each channel of the layer by its mean gradient: for 'red' only the red channel has one
    (10 / pixels), so the map is the image's red channel scaled by it."""
    model = ColourNet().eval().requires_grad_(False)
    clf = Classifier(model, ["red", "green", "blue"], 16, 16, "colours", lambda img: to_tensor(img))
    x = torch.full((1, 3, 16, 16), 0.2)
    x[0, 0, 4:8, 10:14] = 1.0  # a red square
    heat, index = saliency(clf, x, method="gradcam", target="red", layer="relu")
    assert index == 0 and torch.allclose(heat, x[0, 0] * 10 / 256, atol=1e-6) and _no_hooks(model)


def test_fgsm_moves_every_pixel_by_epsilon_against_the_true_class(colours):
    x = torch.full((1, 3, 8, 8), 0.5)
    x[0, 0] = 0.6  # red by a little
    r = attack(colours, x, method="fgsm", epsilon=0.08)
    # d loss / d x: red pixels push down (their class is the label), green and blue up: one step of the sign
    assert torch.allclose(r.perturbation[0, 0], torch.full((8, 8), -0.08), atol=1e-6)
    assert torch.allclose(r.perturbation[0, 1:], torch.full((2, 8, 8), 0.08), atol=1e-6)
    assert r.original_class == 0 and r.new_class != 0 and r.success and abs(r.linf - 0.08) < 1e-6


def test_targeted_pgd_reaches_blue_within_the_budget(colours):
    x = torch.full((1, 3, 8, 8), 0.5)
    x[0, 0] = 0.55
    r = attack(colours, x, method="pgd", epsilon=0.04, target="blue", steps=10)
    assert r.success and r.new_class == 2 and r.linf <= 0.04 + 1e-6 and _no_hooks(colours.model)
    assert float(r.image.min()) >= 0 and float(r.image.max()) <= 1
    failed = attack(colours, x, method="pgd", epsilon=0.01, target="blue", steps=10)  # 0.05 apart: out of reach
    assert not failed.success and failed.new_class == 0


def test_first_layer_filters_of_a_tiny_network_are_its_first_convolution():
    from percept.errors import PerceptError
    from percept.understand import first_layer_filters

    net = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.Conv2d(4, 2, 3))
    assert torch.equal(first_layer_filters(net), net[0].weight.detach())
    with pytest.raises(PerceptError) as err:
        first_layer_filters(nn.Sequential(nn.Linear(3, 2)))
    assert "\n" not in str(err.value)


def test_explain_settings_are_checked_in_one_line_before_any_loading():
    from percept.errors import PerceptError
    from percept.understand.params import (
        DreamParams,
        InvertParams,
        SaliencyParams,
        explain_settings,
    )

    cases = [(SaliencyParams, {"methd": "gradient"}, "unknown setting of explain saliency 'methd'"),
             (SaliencyParams, {"method": "gradient", "window": 20}, "window applies to occlusion only"),
             (SaliencyParams, {"method": "saliency"}, "unknown method 'saliency'"),
             (InvertParams, {"model": "resnet18"}, "give --layers for resnet18")]
    for cls, settings, message in cases:
        with pytest.raises(PerceptError, match=message) as err:
            params = explain_settings(cls, settings)
            params.resolved_layers()  # reached by InvertParams only
        assert "\n" not in str(err.value)
    assert InvertParams(layers="relu1_1, relu2_1").resolved_layers() == ["relu1_1", "relu2_1"]
    assert DreamParams(model="alexnet").resolved_layer() == "relu3"
    assert SaliencyParams(method="occlusion", window=8).method_options() == {"window": 8, "baseline": "zero"}
