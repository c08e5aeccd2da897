"""The foundation of percept.understand: loading any classifier, class lookup, and hooks that never outlive a call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from percept.errors import PerceptError
from percept.image import load_image
from percept.models import get_model
from percept.transfer import predict, train_features
from percept.understand import capture, get_layer, no_inplace

IMAGENET_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}  # indices 281-285


@pytest.fixture(scope="module")
def lite0():
    return get_model("efficientnet_lite0", kind="classifier")


def _all_hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_imagenet_classifier_sees_the_cat(lite0, cat_path):
    assert lite0.id == "efficientnet_lite0:imagenet" and (lite0.resize, lite0.crop) == (256, 224)
    assert len(lite0.classes) == 1000 and lite0.classes[281] == "tabby"
    x = lite0.prepare(load_image(cat_path))
    assert x.shape == (1, 3, 224, 224) and 0 <= float(x.min()) and float(x.max()) <= 1
    top = lite0.top(x, k=3)[0]
    assert top[0][0] in IMAGENET_CATS and sum(p for c, p in top if c in IMAGENET_CATS) > 0.5, top
    assert not any(p.requires_grad for p in lite0.model.parameters())


def test_class_lookup_by_name_or_index_and_clear_errors(lite0):
    assert lite0.class_index("tabby") == 281 and lite0.class_index("TABBY") == 281
    assert lite0.class_index(285) == 285 and lite0.class_index("285") == 285
    with pytest.raises(PerceptError, match="class index 1000 out of range.*0..999"):
        lite0.class_index(1000)
    with pytest.raises(PerceptError, match=r"unknown class 'tabby kat'.*did you mean 'tabby'"):
        lite0.class_index("tabby kat")


def test_capture_records_layers_keeps_the_graph_and_removes_its_hooks(lite0, cat_path):
    x = lite0.prepare(load_image(cat_path)).requires_grad_(True)
    before = _all_hooks(lite0.model)
    with capture(lite0.model, ["_blocks.3", "_bn1"]) as acts:
        logits = lite0.model(x)
    assert acts["_blocks.3"].shape == (1, 40, 28, 28) and acts["_bn1"].shape == (1, 1280, 7, 7)
    # the head's ReLU6 is in place in the model; captured pre-activations must keep their negative values
    assert float(acts["_bn1"].detach().min()) < 0 and lite0.model.act.inplace is True
    # still in the graph: a layer's activation can be differentiated with respect to the input
    acts["_blocks.3"].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert _all_hooks(lite0.model) == before and logits.shape == (1, 1000)


def test_hooks_and_inplace_flags_are_restored_after_an_error(lite0):
    with pytest.raises(RuntimeError):
        with capture(lite0.model, ["_blocks.0"]), no_inplace(lite0.model):
            assert lite0.model.act.inplace is False
            lite0.model(torch.rand(1, 4, 32, 32))  # wrong channel count
    assert _all_hooks(lite0.model) == 0 and lite0.model.act.inplace is True


def test_bad_layer_or_classifier_names_are_one_line_errors(lite0, monkeypatch):
    with pytest.raises(PerceptError, match=r"unknown layer '_block.3'.*did you mean _blocks.3"):
        get_layer(lite0.model, "_block.3")
    with pytest.raises(PerceptError, match="unknown classifier 'resnet9000'.*efficientnet_lite0"):
        get_model("resnet9000", kind="classifier")
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("no internet")

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    with pytest.raises(PerceptError, match="cannot load torchvision's resnet18.*offline, use efficientnet_lite0") as err:
        get_model("resnet18", kind="classifier")
    assert "\n" not in str(err.value)


def test_a_trained_run_is_a_classifier_with_its_own_classes(tmp_path, crops, cat_path, rocket_path):
    data = tmp_path / "data"
    for split, n, seed in (("train", 4, 0), ("val", 2, 1)):
        crops(cat_path, data / split / "cat", n, seed)
        crops(rocket_path, data / split / "rocket", n, seed + 10)
    run = tmp_path / "run"
    train_features(data, run, backbone="alexnet", classifier="logreg", C=1.0, device="cpu", cache_dir=tmp_path / "c")
    classifier = get_model(run, kind="classifier")
    assert classifier.classes == ["cat", "rocket"] and classifier.id == str(run)
    images = sorted(data.glob("val/*/*.jpg"))
    expected = predict(run, images, top_k=2, device="cpu", cache_dir=tmp_path / "c")
    for path, result in zip(images, expected):
        probs = classifier.model(classifier.prepare(load_image(path))).softmax(dim=1)[0]
        np.testing.assert_allclose(probs.numpy(), [dict(result["top"])[c] for c in ("cat", "rocket")], atol=1e-4)


# ------------------------------------------------------------------------------------ filters, activations


def test_first_layer_filters_are_the_stem_in_rgb_order():
    from percept.models import get_model
    from percept.understand.filters import filter_grid, first_layer_filters

    alexnet = get_model("alexnet")  # torchvision weights, RGB
    filters = first_layer_filters(alexnet)
    assert filters.shape == (64, 3, 11, 11) and torch.equal(filters, alexnet.layers["conv1"].weight.detach())
    gatys = get_model("vgg19", "gatys")  # Caffe weights: BGR input, shown flipped back to RGB
    assert torch.equal(first_layer_filters(gatys), gatys.layers["conv1_1"].weight.detach().flip(1))
    grid = filter_grid(filters, columns=8, cell=22, padding=2)
    assert grid.shape == (1, 3, 8 * 24 + 2, 8 * 24 + 2) and 0 <= float(grid.min()) and float(grid.max()) <= 1
    # one shared scale around grey: the strongest weight of all reaches 0 or 1, a zero filter stays grey
    zero = filter_grid(torch.cat([filters[:1], torch.zeros(1, 3, 11, 11)]), columns=2, cell=11, padding=0)
    assert torch.allclose(zero[..., 11:], torch.full_like(zero[..., 11:], 0.5))
    with pytest.raises(PerceptError, match="filters must be"):
        filter_grid(torch.zeros(4, 1, 3, 3))


def test_activation_maps_of_a_layer_and_their_grid(lite0, cat_path):
    from percept.models import get_model
    from percept.understand.activations import (
        activation_maps,
        maps_grid,
        strongest_channels,
    )

    x = lite0.prepare(load_image(cat_path))
    maps = activation_maps(lite0.model, x, "_blocks.3")
    assert maps.shape == (40, 28, 28) and _all_hooks(lite0.model) == 0
    top = strongest_channels(maps, 8)
    assert len(top) == 8 and maps[top[0]].mean() >= maps[top[-1]].mean() >= maps.mean(dim=(1, 2)).median()
    grid = maps_grid(maps, top, columns=4, cell=56)
    assert grid.shape == (1, 3, 2 * 58 + 2, 4 * 58 + 2)
    vgg = get_model("vgg19", "gatys")
    assert activation_maps(vgg, x, "relu2_1").shape == (128, 112, 112)
    with pytest.raises(PerceptError, match="unknown layer 'relu9_1'"):
        activation_maps(vgg, x, "relu9_1")
    with pytest.raises(PerceptError, match="channel 99 out of range; the layer has 40"):
        maps_grid(maps, [99])
