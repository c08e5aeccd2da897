"""Feed-forward style transfer: the transform network, tiling, training, model files, inference and ONNX export.

Tiny sizes throughout; training uses the real (offline) VGG-16 loss network on the repository's example photos.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from percept.errors import PerceptError
from percept.image import load_image, to_tensor
from percept.models import get_model
from percept.style import tiling
from percept.style.transform_export import export_transform_net
from percept.style.transform_files import load_transform_net, save_transform_net
from percept.style.transform_loss import FORMAT, PerceptualLoss
from percept.style.transform_stylize import style_vector, stylize_with_model
from percept.style.transform_train import train_transform_net
from percept.style.transformer import TransformNet

TRAIN = dict(size=48, batch_size=2, sample_every=6, checkpoint_every=6, device="cpu")
NARROW = (8, 16, 32)  # fast random networks where the width does not matter


def _randomised(num_styles: int, channels=NARROW) -> TransformNet:
    """A network whose norm layers have distinct random (gamma, beta) per style, so styles differ."""
    torch.manual_seed(0)
    net = TransformNet(num_styles, channels)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                p.normal_(1.0, 0.3)
            elif name.endswith("beta"):
                p.normal_(0.0, 0.3)
    return net.eval()


# ----------------------------------------------------------------------------------------------- network


def test_layer_shapes_follow_johnson_table_1():
    net = TransformNet().eval()
    shapes = {}
    named = {"conv1": net.conv1, "conv2": net.conv2, "conv3": net.conv3, "up1": net.up1, "up2": net.up2,
             "out": net.out, **{f"res{i + 1}": block for i, block in enumerate(net.res)}}
    for name, module in named.items():
        module.register_forward_hook(lambda m, args, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
    with torch.no_grad():
        y = net(torch.rand(1, 3, 256, 256))
    assert shapes == {"conv1": (1, 32, 256, 256), "conv2": (1, 64, 128, 128), "conv3": (1, 128, 64, 64),
                      **{f"res{i}": (1, 128, 64, 64) for i in range(1, 6)},
                      "up1": (1, 64, 128, 128), "up2": (1, 32, 256, 256), "out": (1, 3, 256, 256)}
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [9, 3, 3] + [3] * 10 + [3, 3, 9]
    assert [c.stride[0] for c in convs] == [1, 2, 2] + [1] * 13
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules()) == len(convs)
    assert y.shape == (1, 3, 256, 256) and 0 <= y.min() and y.max() <= 1


def test_single_image_norm_equals_the_batched_formula():
    """One image takes the fused instance norm; it must equal the general (batched) computation."""
    from percept.style.transformer import conditional_instance_norm

    torch.manual_seed(0)
    x, gamma, beta = torch.randn(1, 6, 9, 7), torch.randn(3, 6), torch.randn(3, 6)
    style = torch.tensor([[0.2, 0.5, 0.3]])
    fused = conditional_instance_norm(x, gamma, beta, style)
    batched = conditional_instance_norm(torch.cat([x, x]), gamma, beta, torch.cat([style, style]))
    mean, var = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True, correction=0)
    expected = (x - mean) / (var + 1e-5).sqrt() * (style @ gamma)[:, :, None, None] + (style @ beta)[:, :, None, None]
    assert torch.allclose(fused, expected, atol=1e-5) and torch.allclose(batched[:1], expected, atol=1e-5)


def test_any_size_is_padded_and_cropped_back():
    net = TransformNet().eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 37, 50)).shape == (2, 3, 37, 50)
        with pytest.raises(PerceptError, match="too small"):
            net(torch.rand(1, 3, 6, 50))


def test_one_hot_equals_single_style_network_and_half_blend_differs(cat_path):
    multi = _randomised(2)
    x = to_tensor(load_image(cat_path), longest=64)
    single = TransformNet(1, NARROW).eval()  # a one-style network holding style 1's (gamma, beta)
    state = {k: v[1:2] if k.endswith(("gamma", "beta")) else v for k, v in multi.state_dict().items()}
    single.load_state_dict(state)
    with torch.no_grad():
        one_hot = multi(x, [0.0, 1.0])
        other = multi(x, [1.0, 0.0])
        half = multi(x, [0.5, 0.5])
        assert torch.allclose(one_hot, single(x), atol=1e-6)
        assert torch.allclose(one_hot, stylize_with_model(x, multi, style_blend_weights=[0, 3]).image, atol=1e-6)
        assert (half - one_hot).abs().mean() > 0.01 and (half - other).abs().mean() > 0.01
        # Dumoulin's blending is linear in (gamma, beta): the 50/50 mix is the network with averaged parameters
        mixed = TransformNet(1, NARROW).eval()
        mixed.load_state_dict({k: v.mean(0, keepdim=True) if k.endswith(("gamma", "beta")) else v
                               for k, v in multi.state_dict().items()})
        assert torch.allclose(half, mixed(x), atol=1e-5)
        per_sample = multi(x.expand(2, -1, -1, -1), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        assert torch.allclose(per_sample[0], one_hot[0], atol=1e-6)
        assert torch.allclose(per_sample[1], other[0], atol=1e-6)


def test_style_choice_errors_are_one_line():
    net = _randomised(2)
    net.metadata = {"styles": [{"name": "starry"}, {"name": "wave"}]}
    for kwargs, match in [({"style_index": 2}, "out of range.*0=starry, 1=wave"),
                          ({"style_blend_weights": [1, 2, 3]}, "3 values.*2 style"),
                          ({"style_blend_weights": [1, -1]}, ">= 0"),
                          ({}, "2 styles"),
                          ({"style_index": 0, "style_blend_weights": [1, 1]}, "not both")]:
        with pytest.raises(PerceptError, match=match) as info:
            style_vector(net, **kwargs)
        assert "\n" not in str(info.value)
    assert style_vector(net, style_blend_weights=[1, 3]).tolist() == [0.25, 0.75]


# ----------------------------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("blocks", [5, 2])  # Johnson's five residual blocks; fewer, as other networks have
def test_receptive_field_is_the_tiling_margin(blocks):
    torch.manual_seed(0)
    net = TransformNet(1, NARROW, residual_blocks=blocks).eval()
    x, style = torch.rand(1, 3, 160, 160), torch.ones(1)
    with torch.no_grad():
        stats = net.statistics(x, style)  # fixed statistics: a pixel acts only through the convolutions
        base = net(x, style, statistics=stats)
        reach = []
        for c in (80, 81, 82, 83):  # every alignment on the stride-4 grid
            poked = x.clone()
            poked[..., c, c] += 1.0
            changed = ((net(poked, style, statistics=stats) - base).abs().amax(dim=(0, 1, 3)) > 0).nonzero()
            reach += [c - int(changed.min()), int(changed.max()) - c]
    assert max(reach) == tiling.receptive_margin(blocks)
    assert tiling.receptive_margin(5) == tiling.RECEPTIVE_MARGIN == 57


def test_tiled_output_equals_untiled_without_seams(cat_path):
    net = _randomised(1)  # the receptive field (what tiling must respect) does not depend on the width
    x = to_tensor(load_image(cat_path), longest=200)  # 200 x 133
    style = torch.ones(1)
    with torch.inference_mode():
        plain = net(x, style)
    exact = tiling.tiled_forward(net, x, style, tile=96, overlap=80, exact_statistics=True)
    assert exact.shape == plain.shape
    err = (exact - plain).abs()
    assert err.max() < 0.01 and err.mean() < 1e-3, (err.max(), err.mean())
    # statistics of a copy as large as the image are the exact ones too
    assert (tiling.tiled_forward(net, x, style, tile=96, overlap=80, stats_size=200) - exact).abs().max() < 1e-4
    # a smaller copy gives other statistics: the same tiling still equals the untiled pass with those statistics
    with torch.inference_mode():
        small = tiling.downscaled_statistics(net, x, style, 100)
        untiled_small = net(x, style, statistics=small)
    tiled_small = tiling.tiled_forward(net, x, style, tile=96, overlap=80, stats_size=100)
    assert (tiled_small - untiled_small).abs().max() < 0.01 and (tiled_small - plain).abs().mean() > 1e-3
    # no step at tile borders: the jump between neighbouring columns/rows is the untiled one
    for axis, length in ((3, 200), (2, 136)):
        for start in tiling.tile_starts(length, 96, 80)[1:]:
            if start < x.shape[axis]:
                step = exact.narrow(axis, start, 1) - exact.narrow(axis, start - 1, 1)
                ref = plain.narrow(axis, start, 1) - plain.narrow(axis, start - 1, 1)
                assert (step - ref).abs().max() < 0.01
    # the same tiles with each tile's own statistics (naive tiling) are far off: the test can see seams
    with torch.inference_mode():
        naive = x.clone()
        for top in (0, 37):
            for left in (0, 104):
                naive[..., top : top + 96, left : left + 96] = net(x[..., top : top + 96, left : left + 96], style)
    assert (naive - plain).abs().mean() > 10 * err.mean()


def test_tile_weights_sum_to_one_and_bad_tiles_are_rejected():
    for length, tile, overlap in ((200, 96, 80), (1000, 512, 96), (136, 96, 32), (96, 96, 48)):
        total = torch.zeros(length)
        for start, w in tiling.axis_weights(length, tile, overlap):
            total[start : start + len(w)] += w
        assert torch.allclose(total, torch.ones(length))
    net = TransformNet(1, NARROW).eval()
    with pytest.raises(PerceptError, match="too small"):
        tiling.tiled_forward(net, torch.rand(1, 3, 64, 64), torch.ones(1), tile=16)
    with pytest.raises(PerceptError, match="overlap"):
        tiling.tiled_forward(net, torch.rand(1, 3, 64, 64), torch.ones(1), tile=64, overlap=64)


# ----------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cat_path, rocket_path, starry_path, wave_path):
    """Two-style runs on the example photos: 12 steps at once, and 6 steps then resumed to 12."""
    root = tmp_path_factory.mktemp("train")
    content = root / "photos" / "nested"  # found recursively
    content.mkdir(parents=True)
    for photo in (cat_path, rocket_path):
        (content / photo.name).write_bytes(photo.read_bytes())
    steps_seen = []
    full = train_transform_net([starry_path, wave_path], root / "photos", root / "full", steps=12,
                               callback=lambda s: steps_seen.append((s.step, s.style_index)), **TRAIN)
    train_transform_net([starry_path, wave_path], root / "photos", root / "part", steps=6, **TRAIN)
    resumed = train_transform_net([starry_path, wave_path], root / "photos", root / "part", steps=12, resume=True,
                                  **TRAIN)
    return {"root": root, "full": full, "resumed": resumed, "steps_seen": steps_seen}


def test_training_lowers_the_loss(trained, cat_path, rocket_path, starry_path, wave_path):
    vgg = get_model("vgg16")
    photos = torch.cat([to_tensor(load_image(p), size=(48, 48)) for p in (cat_path, rocket_path)])
    styles = [to_tensor(load_image(p), longest=48) for p in (starry_path, wave_path)]
    loss = PerceptualLoss(vgg, styles, content_layers=["relu2_2"],
                          style_layers=["relu1_2", "relu2_2", "relu3_3", "relu4_3"],
                          content_weight=1.0, style_weight=3.0, tv_weight=10.0)  # the training defaults
    torch.manual_seed(0)
    before = TransformNet(2).eval()  # the initialisation training starts from (seed 0)
    after = load_transform_net(trained["root"] / "full")
    index = torch.tensor([0, 1])
    with torch.no_grad():
        start = loss(before(photos, torch.eye(2)), photos, index)
        end = loss(after(photos, torch.eye(2)), photos, index)
    # the first steps mostly teach the network to keep the content (style follows over hundreds of steps)
    assert end["content"] < 0.8 * start["content"] and end["total"] < 0.97 * start["total"], (start, end)
    assert trained["steps_seen"] == [(i, [0, 1]) for i in range(1, 13)]  # each sample of a batch: next style
    assert len(trained["full"]["history"]) == 12


def test_style_layer_weights_weight_the_style_term(cat_path, starry_path):
    vgg = get_model("vgg16")
    photo = to_tensor(load_image(cat_path), size=(48, 48))
    style = [to_tensor(load_image(starry_path), longest=48)]
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]

    def style_term(weights):
        loss = PerceptualLoss(vgg, style, content_layers=["relu2_2"], style_layers=layers, content_weight=1.0,
                              style_weight=3.0, tv_weight=10.0, style_layer_weights=weights)
        with torch.no_grad():
            return float(loss(photo, photo, torch.tensor([0]))["style"])

    per_layer = [style_term([float(i == j) for j in range(4)]) for i in range(4)]
    assert len(set(per_layer)) == 4  # each one-hot weighting picks another layer's loss
    assert style_term(None) == pytest.approx(sum(per_layer) / 4, rel=1e-5)
    assert style_term([0.5, 0.5, 1, 2]) == pytest.approx(
        (0.5 * per_layer[0] + 0.5 * per_layer[1] + per_layer[2] + 2 * per_layer[3]) / 4, rel=1e-5)
    for bad in ([1.0, 2.0], [1, 1, 1, -1], [0, 0, 0, 0]):
        with pytest.raises(PerceptError, match="give 4 style layer weights.*relu1_2, relu2_2, relu3_3, relu4_3"):
            style_term(bad)


def test_resume_continues_exactly(trained, starry_path, wave_path):
    root = trained["root"]
    full = torch.load(root / "full" / "checkpoint.pt", weights_only=True)
    part = torch.load(root / "part" / "checkpoint.pt", weights_only=True)
    assert part["step"] == full["step"] == 12
    for key, value in full["model"].items():
        assert torch.equal(value, part["model"][key]), key
    assert [h["total"] for h in trained["resumed"]["history"]] == [h["total"] for h in trained["full"]["history"]]
    assert trained["resumed"]["resumed"] is True
    assert sorted(p.name for p in (root / "part" / "samples").iterdir()) == ["step_000006.png", "step_000012.png"]
    with pytest.raises(PerceptError, match="different settings.*size 48 -> 64"):
        train_transform_net([starry_path, wave_path], root / "photos", root / "part", steps=14, resume=True,
                            **{**TRAIN, "size": 64})
    with pytest.raises(PerceptError, match="holds a training run"):
        train_transform_net([starry_path, wave_path], root / "photos", root / "part", steps=14, **TRAIN)


def test_model_file_round_trips_with_metadata(trained, tmp_path):
    path = trained["root"] / "full" / "model.pt"
    net = load_transform_net(path)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["format_version"] == 1
    assert raw["architecture"] == {"num_styles": 2, "channels": [32, 64, 128]}
    assert [s["name"] for s in raw["styles"]] == ["van_gogh_starry_night", "hokusai_great_wave"]
    assert all(len(s["sha256"]) == 64 for s in raw["styles"])
    assert raw["loss_network"] == {"arch": "vgg16", "weights_id": "vgg16:imagenet1k_v1",
                                   "content_layers": ["relu2_2"],
                                   "style_layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]}
    assert raw["training"]["steps"] == 12 and raw["training"]["lr"] == 1e-3 and raw["training"]["size"] == 48
    assert raw["training"]["content_images"] == 2 and "percept_version" in raw
    assert net.metadata["styles"] == raw["styles"]
    copy = save_transform_net(net, tmp_path / "copy.pt")
    again = load_transform_net(copy)
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(net(x, [0.0, 1.0]), again(x, [0.0, 1.0]))
    assert json.loads((trained["root"] / "full" / "train.json").read_text())["model"].endswith("model.pt")


def test_foreign_or_corrupt_model_files_give_one_line_errors(trained, tmp_path):
    good = torch.load(trained["root"] / "full" / "model.pt", weights_only=True)
    cases = {
        "missing.pt": (None, "not found"),
        "text.pt": ("not a model", "not a PyTorch file"),
        "plain.pt": (good["state_dict"], "plain state dict"),
        "adain.pt": ({"format": "percept-adain-decoder", "state_dict": {}}, "'percept-adain-decoder' file"),
        "newer.pt": ({**good, "format_version": 99}, "format version 99.*upgrade"),
        "shapes.pt": ({**good, "architecture": {"num_styles": 3, "channels": [32, 64, 128]}}, "does not match"),
        "object.pt": (torch.nn.Linear(2, 2), "pickled Python objects"),
        "truncated.pt": (b"", "damaged PyTorch file"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        elif isinstance(content, bytes):  # the first half of a real model file
            data = (trained["root"] / "full" / "model.pt").read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif content is not None:
            torch.save(content, path)
        with pytest.raises(PerceptError, match=match) as info:
            load_transform_net(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value), str(info.value)


# ----------------------------------------------------------------------------------------------- inference


def test_stylize_with_model_batches_equal_sizes_and_keeps_order(trained, cat_path, rocket_path):
    model = trained["root"] / "full"
    outs = [r.image for r in stylize_with_model([cat_path, rocket_path, cat_path], model, style_index=1, size=40,
                                                batch_size=2)]
    assert [tuple(o.shape) for o in outs] == [(1, 3, 27, 40), (1, 3, 27, 40), (1, 3, 27, 40)]
    net = load_transform_net(model)
    with torch.no_grad():
        single = net(to_tensor(load_image(rocket_path), longest=40), [0.0, 1.0])
    assert torch.allclose(outs[1], single, atol=1e-5)
    assert torch.allclose(outs[0], outs[2], atol=1e-5) and not torch.allclose(outs[0], outs[1])
    with pytest.raises(PerceptError, match="out of range"):
        stylize_with_model(cat_path, model, style_index=5)


def test_onnx_export_matches_torch(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    net = _randomised(2)
    record = export_transform_net(net, tmp_path / "net.onnx", style_blend_weights=[1, 3])
    assert record["verified_max_abs_diff"] < 1e-4 and record["style_blend_weights"] == [0.25, 0.75]
    x = torch.rand(1, 3, 58, 83)
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        expected = net(x, [0.25, 0.75]).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    assert json.loads((tmp_path / "net.onnx.json").read_text())["input"]["shape"] == ["B", 3, "H", "W"]


def test_time_limit_stops_saves_and_resumes(tmp_path, cat_path, starry_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / cat_path.name).write_bytes(cat_path.read_bytes())
    record = train_transform_net([starry_path], photos, tmp_path / "run", steps=50, max_minutes=1e-6, **TRAIN)
    assert record["stopped"] == "time limit" and record["training"]["steps"] == 1  # stops after the first step
    assert load_transform_net(tmp_path / "run").metadata["training"]["steps"] == 1
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == ["step_000001.png"]
    # a run saved before the settings lr_schedule and style_layer_weights existed resumes with their defaults
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    for key in ("lr_schedule", "style_layer_weights"):
        del saved["params"][key]
    torch.save(saved, tmp_path / "run" / "checkpoint.pt")
    again = train_transform_net([starry_path], photos, tmp_path / "run", steps=3, resume=True, **TRAIN)
    assert again["stopped"] == "steps" and [h["step"] for h in again["history"]] == [1, 2, 3]
    with pytest.raises(PerceptError, match="different settings.*style_layer_weights None -> \\[1.0, 1.0, 1.0, 2.0\\]"):
        train_transform_net([starry_path], photos, tmp_path / "run", steps=4, resume=True,
                            style_layer_weights=[1, 1, 1, 2], **TRAIN)
    with pytest.raises(PerceptError, match="max-minutes must be > 0"):
        train_transform_net([starry_path], photos, tmp_path / "other", steps=3, max_minutes=0, **TRAIN)


def test_mixed_precision_training_on_cpu(tmp_path, cat_path, starry_path):
    """amp=True on the CPU: bfloat16 autocast and channels-last, finite float32 losses, recorded in the model."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / cat_path.name).write_bytes(cat_path.read_bytes())
    record = train_transform_net([starry_path], photos, tmp_path / "run", steps=3, amp=True, **TRAIN)
    assert record["training"]["amp"] == "bfloat16"
    assert all(np.isfinite(h["total"]) for h in record["history"])
    net = load_transform_net(tmp_path / "run")
    assert net.metadata["training"]["amp"] == "bfloat16" and net(torch.rand(1, 3, 32, 32)).dtype == torch.float32
