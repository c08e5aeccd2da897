"""Saliency maps: one call signature; each method checked on a model whose answer is known, Grad-CAM on real weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from percept.errors import PerceptError
from percept.image import load_image, to_tensor
from percept.models import get_model
from percept.understand import Classifier
from percept.understand.saliency import saliency

BOXES = json.loads((Path(__file__).parent / "data" / "boxes.json").read_text())


class RegionModel(nn.Module):
    """Two logits: 10 x the mean of the red channel inside rows/cols 8..15, and 0. Only that region matters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 10 * torch.relu(self.conv(x))[:, 0, 8:16, 8:16].mean(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


@pytest.fixture()
def region():
    model = RegionModel().eval().requires_grad_(False)
    return Classifier(model, ["red", "none"], 32, 32, "region", lambda img: to_tensor(img))


def _inside(shape, box) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    return mask


def test_every_method_finds_the_region_the_model_reads(region):
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    inside = _inside((24, 24), (8, 8, 16, 16))
    near = _inside((24, 24), (4, 4, 20, 20))  # an occluding window of 4 px overlapping the region reaches here
    # (not Grad-CAM: it weights each channel by its spatially averaged gradient, so for this one-channel model
    # it returns the channel everywhere; it is checked on real weights below)
    for method, options in (("gradient", {}), ("smoothgrad", {"samples": 8, "noise": 0.05}),
                            ("occlusion", {"window": 4, "stride": 2, "baseline": "zero"})):
        heat, index = saliency(region, x, method=method, target="red", **options)
        assert index == 0 and heat.shape == (24, 24) and float(heat.min()) >= 0, method
        outside = ~near if method == "occlusion" else ~inside
        assert float(heat[outside].max()) < 0.05 * float(heat[inside].max()), method  # nothing outside


def test_gradient_is_the_input_gradient_and_smoothgrad_without_noise_equals_it(region):
    x = torch.rand(1, 3, 24, 24)
    heat, _ = saliency(region, x, method="gradient", target=0)
    expected = torch.zeros(24, 24)
    expected[8:16, 8:16] = 10 / 64 * (x[0, 0, 8:16, 8:16] > 0)  # d mean(relu(red)) / d red
    assert torch.allclose(heat, expected, atol=1e-6)
    smooth, _ = saliency(region, x, method="smoothgrad", target=0, samples=4, noise=0.0, batch_size=3)
    assert torch.allclose(smooth, heat, atol=1e-6)


class SignedModel(nn.Module):
    """Logit ``sign`` x 10 x the mean of relu(red) in rows/cols 8..15: the gradient reaching the ReLU has that sign."""

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.region, self.sign, self.relu = RegionModel(), sign, nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = self.sign * 10 * self.relu(self.region.conv(x))[:, 0, 8:16, 8:16].mean(dim=(1, 2))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def test_guided_backprop_passes_only_positive_gradients_and_removes_its_hooks():
    x = torch.rand(1, 3, 24, 24) + 0.1  # red > 0 everywhere: the ReLU is open
    maps = {}
    for sign in (1.0, -1.0):
        model = SignedModel(sign).eval().requires_grad_(False)
        clf = Classifier(model, ["red", "none"], 32, 32, "signed", lambda img: to_tensor(img))
        maps[sign] = (saliency(clf, x, method="guided", target=0)[0], saliency(clf, x, method="gradient", target=0)[0])
        assert sum(len(m._backward_hooks) for m in model.modules()) == 0 and model.relu.inplace
    guided, vanilla = maps[1.0]
    assert torch.allclose(guided, vanilla) and float(vanilla[8:16, 8:16].min()) > 0  # positive: unchanged
    guided, vanilla = maps[-1.0]
    assert float(guided.abs().max()) == 0 and float(vanilla[8:16, 8:16].min()) > 0  # negative: blocked


def test_guided_backprop_without_relu_modules_is_one_line(region):
    with pytest.raises(PerceptError, match="guided backprop needs ReLU modules; RegionModel has none"):
        saliency(region, torch.rand(1, 3, 24, 24), method="guided")


def _cat_box_mask(cat_path, x: torch.Tensor) -> torch.Tensor:
    """The committed cat box, scaled to the image ``x`` (the whole photo, resized)."""
    box = BOXES["chelsea_cat.jpg"]  # x0, y0, x1, y1 in the photo's pixels
    w, h = load_image(cat_path).size
    sx, sy = x.shape[-1] / w, x.shape[-2] / h
    return _inside(x.shape[-2:], [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)])


def test_occlusion_with_defaults_puts_its_mass_on_the_cat_with_real_weights(cat_path):
    classifier = get_model("efficientnet_lite0", kind="classifier")
    x = to_tensor(load_image(cat_path), longest=224)  # the whole photo: 224 x 149
    heat, index = saliency(classifier, x, method="occlusion")  # window 49, stride 12, black patches
    assert classifier.classes[index] in {"tabby", "tiger cat", "Egyptian cat"}
    inside = _cat_box_mask(cat_path, x)
    assert float(heat[inside].mean()) >= 2 * float(heat[~inside].mean())
    guided, _ = saliency(classifier, x, method="guided", target=index)  # shared in-place ReLU6 modules work
    assert guided.shape == heat.shape and float(guided.max()) > 0


def test_gradcam_puts_its_mass_on_the_cat_with_real_weights(cat_path):
    classifier = get_model("efficientnet_lite0", kind="classifier")
    x = to_tensor(load_image(cat_path), longest=336)  # the whole photo: the background strip stays in view
    heat, index = saliency(classifier, x, method="gradcam")
    assert classifier.classes[index] in {"tabby", "tiger cat", "Egyptian cat"}
    inside = _cat_box_mask(cat_path, x)
    assert float(heat[inside].mean()) >= 2 * float(heat[~inside].mean())
    assert sum(len(m._forward_hooks) for m in classifier.model.modules()) == 0


def test_bad_method_option_or_class_is_one_line(region):
    x = torch.rand(1, 3, 24, 24)
    cases = [({"method": "lime"}, "unknown saliency method 'lime'"),
             ({"method": "gradcam", "window": 3}, "has no option 'window'; its options: layer"),
             ({"method": "occlusion", "window": 40}, "window <= 24"),
             ({"method": "occlusion", "baseline": "noise"}, "unknown occlusion baseline"),
             ({"method": "gradient", "target": "blue"}, "unknown class 'blue'")]
    for kwargs, message in cases:
        with pytest.raises(PerceptError, match=message) as err:
            saliency(region, x, **kwargs)
        assert "\n" not in str(err.value)
