"""Gradient ascent on the input: class images, feature inversion and DeepDream, on tiny known networks, with real
weights, and through `percept explain class-image|invert|dream`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from percept.cli import main
from percept.errors import PerceptError
from percept.image import load_image, read_metadata, to_tensor
from percept.models import get_model
from percept.understand import Classifier, class_image, dream, invert
from percept.understand.ascent import blur, psnr, roll
from percept.understand.hooks import layer_outputs


def tiny_net(seed: int = 0) -> nn.Sequential:
    """conv(3->16) ReLU conv(16->16, stride 2) ReLU avg-pool linear(16->4): frozen, in-place ReLUs."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
                        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    return net.eval().requires_grad_(False)


def colour_net() -> nn.Sequential:
    """Logit c = 10 x the mean of ReLU(colour c - mean of the other two), for c = red, green, blue; logit 3 = 0.
    Layer "1" holds the three colour-opponent maps."""
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(3, 4))
    with torch.no_grad():
        net[0].weight.copy_((10 * (1.5 * torch.eye(3) - 0.5)).view(3, 3, 1, 1))
        net[0].bias.zero_()
        net[4].weight.copy_(torch.cat([torch.eye(3), torch.zeros(1, 3)]))
        net[4].bias.zero_()
    return net.eval().requires_grad_(False)


def colour_classifier() -> Classifier:
    return Classifier(colour_net(), ["red", "green", "blue", "none"], 32, 32, "colours", lambda image: to_tensor(image))


def assert_untouched(model: nn.Module) -> None:
    """No hook left on any module and every in-place flag restored."""
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


@pytest.fixture(scope="module")
def lite0():
    return get_model("efficientnet_lite0", kind="classifier")


@pytest.fixture(scope="module")
def cat64(cat_tensor):
    return F.interpolate(cat_tensor, scale_factor=0.5, mode="area")  # (1, 3, 43, 64)


def test_shared_pieces_roll_back_blur_and_psnr():
    x = torch.rand(1, 3, 16, 20)
    assert torch.equal(roll(roll(x, (3, -5)), (-3, 5)), x)
    blurred = blur(x, 1.0)
    assert blurred.shape == x.shape and blurred.std() < x.std() and torch.equal(blur(x, 0), x)
    assert psnr(x, x) == float("inf") and abs(psnr(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)) - 20) < 1e-6
    with pytest.raises(PerceptError, match="unknown layer '9'"):
        layer_outputs(tiny_net(), x, ["9"])


def test_class_image_of_blue_is_blue_and_reproducible():
    clf = colour_classifier()
    r = class_image(clf, "blue", size=32, steps=40, seed=1)
    assert r.target == 2 and r.image.shape == (1, 3, 32, 32)
    assert 0 <= float(r.image.min()) and float(r.image.max()) <= 1
    with torch.no_grad():
        assert abs(float(clf.model(r.image)[0, 2]) - r.end_logit) < 1e-4  # the figures are those of the image
    assert r.start_logit < 0.5 and r.gain > 2 and r.rank == 1 and r.probability > 0.5
    red, green, blue = r.image.mean(dim=(0, 2, 3)).tolist()
    assert blue > max(red, green) + 0.2
    assert torch.equal(class_image(clf, 2, size=32, steps=40, seed=1).image, r.image)
    early = [class_image(clf, 2, size=32, steps=3, seed=seed).image for seed in (1, 2)]  # before saturating
    assert not torch.equal(*early)
    assert_untouched(clf.model)
    with pytest.raises(PerceptError, match="unknown class 'cow'"):
        class_image(clf, "cow")
    with pytest.raises(PerceptError, match="steps >= 1"):
        class_image(clf, "blue", steps=0)


def test_inversion_of_a_tiny_network_matches_the_features_and_nears_the_image(cat64):
    net = tiny_net()
    r = invert(net, cat64, ["1", "3"], steps=40, seed=0)
    assert [inv.layer for inv in r.inversions] == ["1", "3"]
    shallow, deep = r.inversions
    for inv in r.inversions:
        assert inv.image.shape == cat64.shape and 0 <= float(inv.image.min()) and float(inv.image.max()) <= 1
        assert inv.loss < 0.1 * inv.start_loss  # the feature error fell tenfold
    grey = psnr(torch.full_like(cat64, 0.5), cat64)
    assert shallow.psnr > grey + 5 and shallow.psnr > 20  # much closer to the photo than the grey start
    assert r.strip().shape == (1, 3, cat64.shape[2], 3 * 64)
    again = invert(net, cat64, ["1"], steps=40, seed=0)
    assert torch.equal(again.inversions[0].image, shallow.image)
    assert_untouched(net)
    with pytest.raises(PerceptError, match="unknown layer '7'"):
        invert(net, cat64, ["1", "7"])
    with pytest.raises(PerceptError, match="unknown optimizer 'sgd'"):
        invert(net, cat64, ["1"], optimizer="sgd")


def test_inversion_with_adam_also_converges(cat64):
    inv = invert(tiny_net(), cat64, ["1"], steps=30, optimizer="adam", seed=0).inversions[0]
    assert inv.loss < 0.2 * inv.start_loss and 0 <= float(inv.image.min()) and float(inv.image.max()) <= 1


def test_dream_of_colour_opponent_maps_saturates_the_colours(cat64):
    net = colour_net()
    r = dream(net, cat64, "1", octaves=2, steps=5, jitter=4, seed=0)
    assert r.image.shape == cat64.shape and 0 <= float(r.image.min()) and float(r.image.max()) <= 1
    with torch.no_grad():
        measured = float(net[:2](r.image).pow(2).mean().sqrt())
    assert abs(measured - r.norm_after) < 1e-4 and r.ratio > 1.5
    saturation = lambda x: float((x.amax(dim=1) - x.amin(dim=1)).mean())  # noqa: E731
    assert saturation(r.image) > saturation(cat64) + 0.05
    assert torch.equal(dream(net, cat64, "1", octaves=2, steps=5, jitter=4, seed=0).image, r.image)
    assert_untouched(net)
    with pytest.raises(PerceptError, match="octave_scale > 1"):
        dream(net, cat64, "1", octave_scale=1.0)
    with pytest.raises(PerceptError, match=r"must be \(1, 3, H, W\)"):
        dream(net, cat64[0], "1")


def test_class_image_with_efficientnet_lite0(lite0):
    r = class_image(lite0, "goldfish", size=64, steps=20, lr=0.05)
    assert r.start_logit < 2 and r.gain > 3 and r.image.shape == (1, 3, 64, 64)
    assert_untouched(lite0.model)


def test_inversion_with_vgg19_and_a_classifier_s_module(vgg19, lite0, cat64):
    inv = invert(vgg19, cat64, ["relu1_2"], steps=30).inversions[0]
    assert inv.psnr > 20 and inv.loss < 0.01
    inv = invert(lite0, cat64, ["_blocks.0"], steps=20).inversions[0]
    assert inv.loss < 0.2 * inv.start_loss and inv.psnr > 15
    assert_untouched(lite0.model)


def test_dream_with_vgg19(vgg19, cat_tensor):
    r = dream(vgg19, cat_tensor[..., :64, :96], "relu2_2", octaves=2, steps=4)
    assert r.ratio > 1.5 and r.image.shape == (1, 3, 64, 96)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_class_image_invert_and_dream_write_pngs(capsys, cat_path, tmp_path):
    out = tmp_path / "class.png"
    code, text, _ = run(capsys, "explain", "class-image", "--class", "goldfish,1", "--size", "48", "--steps", "3",
                        "--device", "cpu", "-q", "-o", out)
    assert code == 0 and "'goldfish' logit" in text and text.count("rank") == 2
    meta = read_metadata(out)
    assert meta["method"] == "explain class-image" and meta["classes"] == ["goldfish", "goldfish"]
    assert load_image(out).size == (96, 48)
    out = tmp_path / "invert.png"
    code, text, _ = run(capsys, "explain", "invert", cat_path, "--layers", "relu1_1,relu2_1", "--size", "32",
                        "--steps", "5", "--device", "cpu", "-q", "-o", out)
    assert code == 0 and "PSNR relu1_1" in text and "(original | relu1_1 | relu2_1, 32x21 px)" in text
    meta = read_metadata(out)
    assert meta["layers"] == ["relu1_1", "relu2_1"] and set(meta["psnr"]) == {"relu1_1", "relu2_1"}
    assert load_image(out).size == (3 * 32, 21)
    out = tmp_path / "dream.png"
    code, text, _ = run(capsys, "explain", "dream", cat_path, "--layer", "relu2_1", "--size", "48", "--octaves", "2",
                        "--steps", "2", "--device", "cpu", "-q", "-o", out)
    assert code == 0 and "relu2_1 RMS activation" in text
    meta = read_metadata(out)
    assert meta["layer"] == "relu2_1" and meta["norm_after"] > meta["norm_before"] > 0
    assert load_image(out).size == (48, 32)


def test_cli_errors_are_one_line(capsys, cat_path, tmp_path):
    out = tmp_path / "x.png"
    cases = [
        (["class-image", "--class", "goldfsh"], "did you mean 'goldfish'"),
        (["invert", cat_path, "--layers", "relu1_2,relu9_9"], "unknown layer 'relu9_9'"),
        (["dream", cat_path, "--model", "efficientnet_lite0", "--layer", "_blok.3"], "unknown layer '_blok.3'"),
        (["dream", tmp_path / "missing.jpg"], "not found"),
        (["invert", tmp_path / "missing.jpg"], "not found"),
        (["invert", cat_path, "--model", "resnet18"], "give --layers for resnet18"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "explain", *argv, "--steps", "1", "--device", "cpu", "-q", "-o", out)
        assert code != 0 and message in err and err.count("\n") == 1, (argv, err)
    assert not out.exists()
    code, _, err = run(capsys, "explain", "dream", cat_path, "-o", tmp_path / "no_such_folder" / "d.png")
    assert code != 0 and "does not exist" in err
