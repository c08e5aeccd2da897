"""Feature networks: layer names, truncation, pooling, every offline weight source, user files, errors."""

from __future__ import annotations

import pytest
import torch

from percept.errors import PerceptError, WeightsUnavailableError
from percept.models import FeatureNet, get_feature_net, get_weights, layer_names, list_weights


def test_vgg19_layer_names_follow_the_papers():
    names = layer_names("vgg19")
    assert len(names) == 37  # 16 convs, 16 relus, 5 pools: torchvision's vgg19().features
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[19:23] == ["conv4_1", "relu4_1", "conv4_2", "relu4_2"]
    assert names[-1] == "pool5" and "relu5_4" in names and "conv5_4" in names


def test_vgg16_and_alexnet_layer_names():
    assert len(layer_names("vgg16")) == 31 and "relu4_3" in layer_names("vgg16")
    assert "conv3_4" not in layer_names("vgg16")
    assert layer_names("alexnet") == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
        "conv4", "relu4", "conv5", "relu5", "pool5",
    ]  # fmt: skip


def test_forward_returns_requested_layers_and_stops_at_the_deepest():
    net = FeatureNet("vgg19")
    ran = []
    for name, module in net.layers.items():
        module.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
    out = net(torch.rand(1, 3, 32, 32), ["relu2_1", "relu1_1"])
    assert set(out) == {"relu1_1", "relu2_1"}
    assert out["relu1_1"].shape == (1, 64, 32, 32) and out["relu2_1"].shape == (1, 128, 16, 16)
    assert ran[-1] == "relu2_1" and "conv2_2" not in ran


def test_average_pooling_changes_features_but_not_shapes():
    x = torch.rand(1, 3, 32, 32)
    torch.manual_seed(0)
    mx = FeatureNet("vgg16", pooling="max")
    av = FeatureNet("vgg16", pooling="avg")
    av.load_state_dict(mx.state_dict())
    a, b = mx(x, ["relu2_1"])["relu2_1"], av(x, ["relu2_1"])["relu2_1"]
    assert a.shape == b.shape and not torch.allclose(a, b)
    assert isinstance(av.layers["pool1"], torch.nn.AvgPool2d)


def test_unknown_layer_names_the_layer_and_suggests_valid_ones():
    with pytest.raises(PerceptError, match=r"unknown layer 'relu9_9' for vgg19.*relu1_1"):
        FeatureNet("vgg19")(torch.rand(1, 3, 16, 16), ["relu9_9"])


OFFLINE = [w for w in list_weights() if w.is_available()]


@pytest.mark.parametrize("entry", OFFLINE, ids=[w.id for w in OFFLINE])
def test_offline_weights_decode_and_give_non_degenerate_features(entry, cat_tensor):
    net = get_feature_net(entry.arch, entry.name)
    assert net.weights is entry
    assert all(not p.requires_grad for p in net.parameters()) and not net.training
    relus = [n for n in net.layer_names if n.startswith("relu")]
    with torch.no_grad():
        feats = net(cat_tensor, relus)
    for name, f in feats.items():
        assert torch.isfinite(f).all(), name
        active = (f > 0).float().mean()
        assert 0.02 < active < 0.98, f"{entry.id} {name}: {active:.2f} of units active"
        assert f.flatten(2).std(-1).mean() > 0, name  # responses vary over the image
    # A random network responds very differently: the weights really were loaded.
    random = FeatureNet(entry.arch, net.preprocess)
    with torch.no_grad():
        r = random(cat_tensor, [relus[-1]])[relus[-1]]
    assert not torch.allclose(r, feats[relus[-1]], rtol=0.1)


def test_all_three_offline_packages_are_installed_here():
    """The Makefile installs them; percept must find each one without importing it."""
    available = {w.id for w in OFFLINE}
    assert {"vgg19:gatys", "vgg19:caffe", "vgg16:imagenet1k_v1", "alexnet:imagenet1k_v1"} <= available


def test_gatys_vgg19_has_the_normalisation_fingerprint(vgg19, cat_tensor):
    """Gatys rescaled every filter to mean activation ~1 over ImageNet; a random net gives ~0.06."""
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    with torch.no_grad():
        feats = vgg19(cat_tensor, layers)
    for name in layers:
        assert 0.3 < float(feats[name].mean()) < 3.0, name


def test_lpips_weights_equal_published_torchvision_values():
    vgg16 = get_weights("vgg16").load_state_dict()
    assert torch.allclose(vgg16["conv1_1.weight"][0, 0, 0], torch.tensor([-0.5537, 0.1427, 0.5290]), atol=1e-4)
    alex = get_weights("alexnet").load_state_dict()
    assert torch.allclose(alex["conv1.weight"][0, 0, 0, :3], torch.tensor([1.1864e-01, 9.4069e-02, 9.5435e-02]), atol=1e-5)


def test_caffe_and_gatys_vgg19_use_caffe_preprocessing():
    assert get_weights("vgg19", "gatys").preprocessing == "caffe"
    assert get_weights("vgg19", "caffe").preprocessing == "caffe"
    assert get_weights("vgg16").preprocessing == "imagenet"
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red -> BGR (0, 0, 255) minus mean
    out = get_feature_net("vgg19", "gatys").preprocess(x)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_unavailable_weights_give_one_line_listing_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PERCEPT_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        get_feature_net("vgg19", "imagenet1k_v1")
    message = str(err.value)
    assert "\n" not in message
    assert "vgg19-dcbb9e9d.pth" in message and "tried" in message and str(tmp_path) in message


def test_unknown_weights_name_lists_the_choices():
    with pytest.raises(PerceptError, match="gatys, caffe, imagenet1k_v1"):
        get_weights("vgg19", "nonsense")
    with pytest.raises(PerceptError, match="unknown network"):
        get_weights("resnet9000")


def test_user_state_dict_in_torchvision_layout_round_trips(tmp_path, cat_tensor):
    """--weights FILE accepts torchvision's `features.N.weight` keys and percept's own names."""
    alex = get_feature_net("alexnet")
    tv_layout = {}
    for index, name in enumerate(alex.layer_names):
        if name.startswith("conv"):
            tv_layout[f"features.{index}.weight"] = alex.layers[name].weight
            tv_layout[f"features.{index}.bias"] = alex.layers[name].bias
    path = tmp_path / "alexnet_tv.pth"
    torch.save(tv_layout, path)
    mine = get_feature_net("alexnet", str(path), preprocessing="imagenet")
    with torch.no_grad():
        assert torch.equal(mine(cat_tensor, ["relu5"])["relu5"], alex(cat_tensor, ["relu5"])["relu5"])
    own = tmp_path / "alexnet_own.pth"
    torch.save(alex.layers.state_dict(), own)
    assert torch.equal(get_feature_net("alexnet", str(own)).layers.conv5.weight, alex.layers.conv5.weight)


def test_user_state_dict_with_wrong_shapes_names_the_tensor(tmp_path):
    state = {n: t.clone() for n, t in get_feature_net("alexnet").layers.state_dict().items()}
    state["conv3.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(PerceptError, match=r"conv3.weight has shape \(3, 3, 3, 3\)"):
        get_feature_net("alexnet", str(path))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PerceptError, match="cannot read as a PyTorch state dict"):
        get_feature_net("alexnet", str(tmp_path / "junk.pth"))
    with pytest.raises(WeightsUnavailableError, match="no such file"):
        get_feature_net("alexnet", str(tmp_path / "missing.pth"))


def test_feature_net_moves_to_requested_device():
    net = get_feature_net("alexnet", device="cpu")
    assert net.layers.conv1.weight.device.type == "cpu" and net.preprocess.mean.device.type == "cpu"


def test_torchvision_checkpoint_is_read_from_the_torch_hub_cache(tmp_path, monkeypatch, cat_tensor):
    """vgg19:imagenet1k_v1 loads a torchvision checkpoint (features.N.* keys) found in $TORCH_HOME."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PERCEPT_OFFLINE", "1")
    torch.manual_seed(0)
    features = torchvision.models.vgg19(weights=None).features
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, checkpoints / "vgg19-dcbb9e9d.pth")
    entry = get_weights("vgg19", "imagenet1k_v1")
    assert entry.availability() == "in torch cache"
    net = get_feature_net("vgg19", "imagenet1k_v1")
    x = net.preprocess(cat_tensor)
    with torch.no_grad():
        assert torch.allclose(net(cat_tensor, ["relu3_1"])["relu3_1"], features[:12](x), atol=1e-5)
