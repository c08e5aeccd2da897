"""Feature networks: layer names, truncation, pooling, every offline weight source, user files, errors."""

from __future__ import annotations

import pytest
import torch

from percept.errors import PerceptError, WeightsUnavailableError
from percept.models import FeatureNet, get_model, get_weights, layer_names, list_weights


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


OFFLINE = [w for w in list_weights(kind="features") if w.is_available()]


@pytest.mark.parametrize("entry", OFFLINE, ids=[w.id for w in OFFLINE])
def test_offline_weights_decode_and_give_non_degenerate_features(entry, cat_tensor):
    net = get_model(entry.arch, entry.name)
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
    out = get_model("vgg19", "gatys").preprocess(x)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_unavailable_weights_give_one_line_listing_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("PERCEPT_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        get_model("vgg19", "imagenet1k_v1")
    message = str(err.value)
    assert "\n" not in message
    assert "vgg19-dcbb9e9d.pth" in message and "tried" in message and str(tmp_path) in message


def test_unknown_weights_name_lists_the_choices():
    with pytest.raises(PerceptError, match="gatys, caffe, imagenet1k_v1"):
        get_weights("vgg19", "nonsense")
    with pytest.raises(PerceptError, match="unknown network"):
        get_weights("resnet9000", kind="features")


def test_user_state_dict_in_torchvision_layout_round_trips(tmp_path, cat_tensor):
    """--weights FILE accepts torchvision's `features.N.weight` keys and percept's own names."""
    alex = get_model("alexnet")
    tv_layout = {}
    for index, name in enumerate(alex.layer_names):
        if name.startswith("conv"):
            tv_layout[f"features.{index}.weight"] = alex.layers[name].weight
            tv_layout[f"features.{index}.bias"] = alex.layers[name].bias
    path = tmp_path / "alexnet_tv.pth"
    torch.save(tv_layout, path)
    mine = get_model("alexnet", str(path), preprocessing="imagenet")
    with torch.no_grad():
        assert torch.equal(mine(cat_tensor, ["relu5"])["relu5"], alex(cat_tensor, ["relu5"])["relu5"])
    own = tmp_path / "alexnet_own.pth"
    torch.save(alex.layers.state_dict(), own)
    assert torch.equal(get_model("alexnet", str(own)).layers.conv5.weight, alex.layers.conv5.weight)


def test_user_state_dict_with_wrong_shapes_names_the_tensor(tmp_path):
    state = {n: t.clone() for n, t in get_model("alexnet").layers.state_dict().items()}
    state["conv3.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(PerceptError, match=r"conv3.weight has shape \(3, 3, 3, 3\)"):
        get_model("alexnet", str(path))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PerceptError, match="cannot read as a PyTorch state dict"):
        get_model("alexnet", str(tmp_path / "junk.pth"))
    with pytest.raises(WeightsUnavailableError, match="no such file"):
        get_model("alexnet", str(tmp_path / "missing.pth"))


def test_feature_net_moves_to_requested_device():
    net = get_model("alexnet", device="cpu")
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
    net = get_model("vgg19", "imagenet1k_v1")
    x = net.preprocess(cat_tensor)
    with torch.no_grad():
        assert torch.allclose(net(cat_tensor, ["relu3_1"])["relu3_1"], features[:12](x), atol=1e-5)


# ------------------------------------------------------------------------------------------- the registry


def _frozen(module: torch.nn.Module) -> bool:
    return not module.training and not any(p.requires_grad for p in module.parameters())


def test_get_model_builds_each_kind_frozen_in_eval_mode(tmp_path):
    from percept.models import Backbone, Classifier
    from percept.style.decoder import Decoder
    from percept.style.transform_files import save_transform_net
    from percept.style.transformer import TransformNet

    net = get_model("vgg16")
    assert isinstance(net, FeatureNet) and net.weights.id == "vgg16:imagenet1k_v1" and _frozen(net)
    clf = get_model("efficientnet_lite0")
    assert isinstance(clf, Classifier) and clf.id == "efficientnet_lite0:imagenet" and _frozen(clf.model)
    assert (clf.resize, clf.crop, len(clf.classes)) == (256, 224, 1000)
    backbone = get_model("alexnet", kind="backbone")
    assert isinstance(backbone, Backbone) and _frozen(backbone.model)
    assert backbone.cache_id == "alexnet|alexnet:imagenet1k_v1@relu5|dim256|resize256|crop224|v1"
    assert get_model("efficientnet_lite0", kind="backbone").cache_id == \
        "efficientnet_lite0|efficientnet_lite0:imagenet|dim1280|resize256|crop224|v1"
    assert get_model("alexnet", kind="backbone", pretrained=False).weights_id == "random-init"
    decoder = get_model("adain_decoder")
    assert isinstance(decoder, Decoder) and decoder.weights.id == "adain_decoder:coco_wikiart" and _frozen(decoder)
    style = TransformNet(2)
    style.metadata = {"styles": [{"name": "a"}, {"name": "b"}]}
    path = save_transform_net(style, tmp_path / "model.pt")
    for loaded in (get_model(path), get_model(str(path), kind="style-net"), get_model("transform_net", path),
                   get_model(tmp_path)):  # a file, by kind, by name, a training folder (model.pt)
        assert isinstance(loaded, TransformNet) and loaded.num_styles == 2 and _frozen(loaded)
    assert get_model("vgg19:caffe").weights.id == "vgg19:caffe"  # "name:weights"


def test_torchvision_models_wrap_the_network_in_one_normalisation(monkeypatch):
    """Offline: torchvision's builder is replaced by a random network; the registry's wrapping is what is tested."""
    import torchvision

    from percept.models import Normalized

    build = torchvision.models.get_model
    asked = []

    def offline(name, weights=None):
        asked.append(str(weights))
        return build(name, weights=None)

    monkeypatch.setattr(torchvision.models, "get_model", offline)
    clf = get_model("resnet50")
    assert isinstance(clf.model, Normalized) and clf.id == "resnet50:imagenet1k_v2" and _frozen(clf.model)
    assert (clf.resize, clf.crop, clf.classes[281]) == (232, 224, "tabby")
    backbone = get_model("resnet18", kind="backbone")
    assert backbone.cache_id == "resnet18|torchvision:ResNet18_Weights.IMAGENET1K_V1|dim512|resize256|crop224|v1"
    assert backbone.model(torch.rand(1, 3, 64, 64)).shape == (1, 512)
    assert asked == ["ResNet50_Weights.IMAGENET1K_V2", "ResNet18_Weights.IMAGENET1K_V1"]


def test_torchvision_entries_name_torchvisions_default_weights():
    import torchvision

    for entry in list_weights(kind="classifier"):
        if "torchvision_weights" not in entry.meta:
            continue
        weights = torchvision.models.get_model_weights(entry.arch).DEFAULT
        assert weights.name == entry.meta["torchvision_weights"] and entry.name == weights.name.lower()
        assert entry.sources[0].url == weights.url, entry.id
        preset = weights.transforms()
        assert (entry.resize_size, entry.input_size) == (preset.resize_size[0], preset.crop_size[0]), entry.id
        assert (tuple(preset.mean), tuple(preset.std)) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_list_models_lists_every_registered_name():
    from percept.models import list_entries, list_models
    from percept.models.names import (
        BACKBONES,
        FEATURE_NETWORKS,
        IMAGENET_CLASSIFIERS,
        KINDS,
        GAZE_MODELS,
        METRIC_NETWORKS,
        SR_NETWORKS,
        STYLE_NETWORKS,
    )

    names = list_models()
    assert names == list(dict.fromkeys(e.name for e in list_entries())) and len(names) == len(set(names))
    assert {*FEATURE_NETWORKS, *IMAGENET_CLASSIFIERS, *BACKBONES, *METRIC_NETWORKS, *SR_NETWORKS, *GAZE_MODELS,
            *STYLE_NETWORKS, "train_run",
            "adain_decoder", "transform_net", "sr_net", "gaze_model"} == set(names)
    assert list_models("backbone") == list(BACKBONES) and list_models("features") == list(FEATURE_NETWORKS)
    assert {e.kind for e in list_entries()} == set(KINDS)
    from percept.models import describe

    text = describe()
    assert all(name in text for name in names)


@pytest.mark.parametrize("call, message", [
    (lambda: get_model("vgg91"), r"unknown model 'vgg91' \(did you mean vgg19 or vgg16\?\)"),
    (lambda: get_model("resnet51", kind="classifier"), r"unknown classifier 'resnet51' \(did you mean resnet50"),
    (lambda: get_model("vgg19", "gatis"), r"unknown weights 'gatis' for vgg19 \(did you mean gatys\?\)"),
    (lambda: get_model("vgg19", kind="featurs"), r"unknown kind 'featurs' \(did you mean features\?\)"),
    (lambda: get_model("vgg19", kind="decoder"), "vgg19 is a features and backbone model, not a decoder; decoders: "
                                                 "adain_decoder"),
    (lambda: get_model("resnet18", kind="features"), "resnet18 is a classifier and backbone model, not a features"),
    (lambda: get_model("vgg19", poolng="avg"), "vgg19 .features. takes no option poolng; its options: pooling"),
    (lambda: get_model("missing/model.pt"), "'missing/model.pt' not found: no such model file or folder"),
    (lambda: get_model("transform_net"), "transform_net is a model.pt written by percept train-style: give its path"),
])  # fmt: skip
def test_errors_are_one_line_with_suggestions(call, message):
    with pytest.raises(PerceptError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_a_file_of_another_kind_is_refused_in_one_line(tmp_path):
    from percept.style.decoder import Decoder, save_decoder

    path = save_decoder(Decoder(), tmp_path / "decoder.pt", params={})
    assert get_model(path).weights.id == f"adain_decoder:{path}"  # its kind is read from the file
    with pytest.raises(PerceptError, match="a 'percept-adain-decoder' file, not a percept transform network"):
        get_model(path, kind="style-net")
    with pytest.raises(PerceptError, match=r"a network is chosen by name \(vgg19, vgg16, alexnet\)"):
        get_model(path, kind="features")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(PerceptError, match="cannot tell which kind of model .*plain.pt.* is"):
        get_model(tmp_path / "plain.pt")


def test_normalized_equals_manual_normalisation():
    from percept.models import Normalized
    from percept.models.preprocess import CAFFE_BGR_MEAN, IMAGENET_MEAN, IMAGENET_STD

    x = torch.rand(2, 3, 5, 7)
    identity = torch.nn.Identity()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(Normalized(identity)(x), (x - mean) / std)
    assert torch.allclose(Normalized(identity, "tf")(x), (x * 255 - 127) / 128)
    bgr = x[:, [2, 1, 0]] * 255 - torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(Normalized(identity, "caffe")(x), bgr)
    assert list(dict(Normalized(torch.nn.Conv2d(3, 4, 1)).state_dict())) == ["net.weight", "net.bias"]
    with pytest.raises(PerceptError, match="unknown preprocessing 'bgr'"):
        Normalized(identity, "bgr")


def test_the_registry_imports_no_capability_package():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import percept.models.names, percept.models.params, percept.transfer.names\n"
        "assert 'torch' not in sys.modules, 'names import torch'\n"
        "from percept.models import describe, get_entry, list_models\n"
        "list_models(); get_entry('vgg19'); describe()\n"
        "bad = [m for m in sys.modules if m.startswith(('percept.style', 'percept.transfer.', 'percept.understand',"
        " 'percept.service', 'percept.cli', 'torchvision'))]\n"
        "assert bad == ['percept.transfer.names'], bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_describe_shows_one_model_and_a_style_network_file(tmp_path):
    from percept.models import catalog_json, describe
    from percept.style.transform_files import save_transform_net
    from percept.style.transformer import TransformNet

    text = describe("vgg19")
    assert "vgg19 (features)" in text and "vgg19:caffe" in text and "relu5_4" in text and "vgg19 (backbone)" in text
    assert "vgg19 (backbone)" not in describe("vgg19", kind="features")
    assert "resnet18" not in describe(kind="decoder")
    net = TransformNet(1)
    net.metadata = {"styles": [{"name": "wave", "file": "wave.jpg", "sha256": "ab" * 32}]}
    path = save_transform_net(net, tmp_path / "wave.pt")
    text = describe(path)
    assert "1 style(s)" in text and "style 0: wave" in text and f"--model {path}" in text
    assert catalog_json(path)["styles"][0]["name"] == "wave"
    assert [m["name"] for m in catalog_json(kind="decoder")["models"]] == ["adain_decoder"]
    with pytest.raises(PerceptError, match="unknown setting 'knd'"):
        describe(knd="features")


def test_a_truncated_network_equals_the_full_one_up_to_its_last_layer(cat_tensor):
    full = get_model("vgg19", "gatys", kind="features", padding_mode="reflect")
    short = get_model("vgg19", "gatys", kind="features", padding_mode="reflect", last="relu4_1")
    assert list(short.layers)[-1] == "relu4_1" and "conv4_2" not in short.layers
    assert sum(p.numel() for p in short.parameters()) < 0.4 * sum(p.numel() for p in full.parameters())
    x = torch.nn.functional.interpolate(cat_tensor, size=(64, 96), mode="area")
    with torch.no_grad():
        assert torch.equal(short(x, ["relu4_1"])["relu4_1"], full(x, ["relu4_1"])["relu4_1"])
    with pytest.raises(PerceptError, match="past the last layer"):
        short(x, ["relu5_1"])
    with pytest.raises(PerceptError, match="unknown layer 'relu9_9'"):
        get_model("vgg19", "gatys", kind="features", last="relu9_9")


def test_registered_weights_are_decoded_once_into_a_memory_mapped_cache(tmp_path, monkeypatch):
    from percept.models import weights as W

    monkeypatch.setenv("PERCEPT_CACHE", str(tmp_path))
    entry = get_weights("vgg19", "gatys")
    source, path = entry.locate()
    stamp = (path.stat().st_mtime_ns, path.stat().st_size)
    W._decode_cached.cache_clear()
    first = entry.load_state_dict()
    cached = W.decoded_cache_file(path, "vgg19", stamp)
    assert cached.parent == tmp_path / "weights" and cached.is_file()
    W._decode_cached.cache_clear()
    again = entry.load_state_dict()  # read from the cache file
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)
    cached.write_bytes(b"not a torch file")  # damaged: decoded again and replaced
    W._decode_cached.cache_clear()
    assert torch.equal(entry.load_state_dict()["conv1_1.weight"], first["conv1_1.weight"])
    assert torch.load(cached, weights_only=True).keys() == first.keys()
    monkeypatch.setenv("PERCEPT_WEIGHTS_CACHE", "0")
    assert W.decoded_cache_file(path, "vgg19", stamp) is None
    W._decode_cached.cache_clear()
