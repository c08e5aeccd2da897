"""Super-resolution (percept.sr): degradation, networks, tiling, training and resuming, the reference networks,
evaluation, records and the one-line errors of train-sr / upscale / evaluate-sr. Tiny sizes throughout."""

from __future__ import annotations

import json
import math

import pytest
import torch

from percept.cli import main
from percept.errors import PerceptError
from percept.image import load_image, read_metadata, save_image, to_tensor
from percept.sr.degrade import bicubic_upscale, crop_to_factor, degrade, gaussian_blur, gaussian_kernel
from percept.sr.network import SRNet
from percept.sr.tiles import axis_weights
from percept.sr.upscale import run_upscaler, upscale

CAT = "examples/content/chelsea_cat.jpg"
CONTENT = "examples/content"
TINY = {"crop": 32, "batch_size": 2, "log_every": 3, "checkpoint_every": 6, "warmup": 3, "blocks": 1,
        "device": "cpu"}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a - b).pow(2).mean()))


def _error(argv: list[str], capsys) -> str:
    """Run ``percept ARGV``; it must fail with one line on stderr, which is returned."""
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("percept: error: ") and "\n" not in err, err
    return err


# ------------------------------------------------------------------------------------------------ degradation


def test_blur_keeps_a_constant_image_and_the_kernel_sums_to_one():
    kernel = gaussian_kernel(1.0)
    assert kernel.numel() == 7 and math.isclose(float(kernel.sum()), 1.0, rel_tol=1e-6)
    image = torch.full((2, 3, 20, 17), 0.4)
    assert torch.allclose(gaussian_blur(image), image, atol=1e-6)
    lr, hr = degrade(image, 4)
    assert torch.allclose(lr, torch.full_like(lr, 0.4), atol=1e-6)
    lr, _ = degrade(image, 4, degradation="bicubic")
    assert torch.allclose(lr, torch.full_like(lr, 0.4), atol=1e-6)


def test_degrade_crops_to_the_factor_and_downsamples():
    hr = torch.rand(2, 3, 37, 50)
    for degradation in ("blur", "bicubic"):
        lr, cropped = degrade(hr, 4, degradation=degradation)
        assert cropped.shape == (2, 3, 36, 48) and lr.shape == (2, 3, 9, 12)
        assert torch.equal(cropped, hr[..., :36, :48])
        assert torch.equal(lr, (lr * 255).round() / 255) and lr.min() >= 0 and lr.max() <= 1  # 8-bit values
    assert degrade(hr, 8)[0].shape == (2, 3, 4, 6)
    with pytest.raises(PerceptError, match="smaller than the factor 8"):
        crop_to_factor(torch.rand(1, 3, 5, 40), 8)


def test_known_values_a_ramp_is_sampled_at_the_low_resolution_pixel_centres():
    """A linear ramp survives the (symmetric) blur inside the image, and bicubic downsampling without antialiasing
    samples it at the centre of each low-resolution pixel: x = 4 i + 1.5."""
    x = torch.arange(64, dtype=torch.float32) * 0.01
    ramp = x.view(1, 1, 1, -1).expand(1, 3, 16, 64).contiguous()
    assert torch.allclose(gaussian_blur(ramp)[..., 4:-4], ramp[..., 4:-4], atol=1e-6)
    lr, _ = degrade(ramp, 4)
    expected = (torch.arange(16) * 4 + 1.5) * 0.01
    inner = slice(2, 14)  # away from the reflected borders
    assert torch.allclose(lr[0, 0, 2, inner], expected[inner], atol=0.5 / 255 + 1e-6)
    assert torch.allclose(bicubic_upscale(torch.ones(1, 3, 3, 5), 4), torch.ones(1, 3, 12, 20), atol=1e-6)


# -------------------------------------------------------------------------------------------------- networks


@pytest.mark.parametrize("factor", [4, 8])
def test_network_shapes_and_a_new_network_is_bicubic(factor):
    net = SRNet(factor, blocks=2).eval()
    lr = torch.rand(2, 3, 10, 12)
    with torch.no_grad():
        out = net(lr)
    assert out.shape == (2, 3, 10 * factor, 12 * factor)
    assert torch.equal(out, bicubic_upscale(lr, factor))  # the last conv starts at zero
    assert len(net.upsample) == int(math.log2(factor))
    paper = SRNet(factor, blocks=2, bicubic_skip=False).eval()
    with torch.no_grad():
        out = paper(lr)
    assert out.shape == (2, 3, 10 * factor, 12 * factor) and out.min() >= 0 and out.max() <= 1  # scaled tanh


def _random_net(blocks: int = 1) -> SRNet:
    """A network with random weights everywhere, batch-norm statistics included (eval mode)."""
    torch.manual_seed(0)
    net = SRNet(4, blocks)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2)
    torch.nn.init.normal_(net.tail.weight, std=0.02)
    return net.eval()


def test_tiled_upscaling_equals_whole_image_inference():
    net = _random_net()
    lr = torch.rand(1, 3, 52, 75)
    whole = run_upscaler(net, lr)
    tiled = run_upscaler(net, lr, tile=40)  # overlap 3 x reach = 27
    assert whole.shape == tiled.shape == (1, 3, 208, 300)
    assert (whole - tiled).abs().max() < 1e-5
    rough = run_upscaler(net, lr, tile=40, overlap=3)  # an overlap below the reach shows
    assert (whole - rough).abs().max() > 1e-3


def test_tile_weights_sum_to_one():
    for length, tile, overlap in [(93, 40, 27), (70, 40, 27), (100, 64, 20), (129, 32, 16), (41, 40, 12)]:
        total = torch.zeros(length * 4)
        for start, w in axis_weights(length, tile, overlap, 4):
            assert torch.isfinite(w).all() and w.min() >= 0
            total[start * 4 : start * 4 + len(w)] += w
        assert torch.allclose(total, torch.ones_like(total), atol=1e-6), (length, tile, overlap)


# -------------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 12-step pixel-loss network (x4), trained in one go."""
    from percept.sr.train import train_sr

    out = tmp_path_factory.mktemp("sr") / "whole.pt"
    record = train_sr(CONTENT, out, loss="pixel", steps=12, **TINY)
    return out, record


def test_a_resumed_run_equals_an_uninterrupted_one_bit_for_bit(trained, tmp_path):
    from percept.sr.files import load_sr_net
    from percept.sr.train import train_sr

    whole, record = trained
    assert record["steps"] == 12 and record["stopped"] == "steps" and len(record["history"]) == 4
    part = tmp_path / "part.pt"
    train_sr(CONTENT, part, loss="pixel", steps=6, **TINY)
    again = train_sr(CONTENT, part, loss="pixel", steps=12, resume=True, **TINY)
    assert again["history"] == record["history"]
    a, b = load_sr_net(whole).state_dict(), load_sr_net(part).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(PerceptError) as info:
        train_sr(CONTENT, part, loss="pixel", steps=30, resume=True, **{**TINY, "lr": 0.002})
    assert "cannot resume" in str(info.value) and "(lr 0.001 -> 0.002)" in str(info.value)
    with pytest.raises(PerceptError, match="holds a training run; add --resume"):
        train_sr(CONTENT, part, loss="pixel", steps=30, **TINY)


def test_the_model_file_loads_through_the_registry_with_its_record(trained):
    from percept.models import get_model

    path, _ = trained
    net = get_model(path)  # its kind is read from the file
    assert isinstance(net, SRNet) and not net.training and net.factor == 4 and net.blocks == 1
    training = net.metadata["training"]
    assert training["steps"] == 12 and training["params"]["loss"] == "pixel" and training["images"] == 2
    assert set(training["final_losses"]) == {"pixel", "total"}
    assert isinstance(get_model(str(path), kind="upscaler"), SRNet)
    from percept.models import catalog_json, describe

    assert "sr_net (upscaler)" in describe(str(path)) and "srresnet:div2k" in describe(kind="upscaler")
    assert catalog_json(str(path))["architecture"] == {"factor": 4, "blocks": 1, "bicubic_skip": True}


def test_feature_loss_uses_vgg16_relu2_2(tmp_path):
    from percept.sr.train import train_sr

    record = train_sr(CONTENT, tmp_path / "f.pt", loss="feature", steps=2, **{**TINY, "log_every": 1})
    assert set(record["history"][-1]) == {"step", "pixel", "feature", "total"}
    assert record["history"][-1]["feature"] == record["history"][-1]["total"]
    from percept.sr.files import load_sr_net

    assert load_sr_net(tmp_path / "f.pt").metadata["loss_network"] == {"weights_id": "vgg16:imagenet1k_v1",
                                                                        "layer": "relu2_2"}


# ----------------------------------------------------------------------------------------- reference networks


def test_the_reference_networks_load_and_beat_bicubic():
    """The Keras weights are mapped right: on inputs degraded as their training data (antialiased bicubic),
    SRResNet beats bicubic interpolation clearly (a wrong layer order, kernel layout or sub-pixel order would not)."""
    from percept.models import get_model

    hr = to_tensor(load_image(CAT))[..., 40:168, 150:278]
    lr, hr = degrade(hr, 4, degradation="bicubic")
    bicubic = _psnr(bicubic_upscale(lr, 4).clamp(0, 1), hr)
    srresnet = get_model("srresnet", device="cpu")
    assert srresnet.weights.id == "srresnet:div2k" and not srresnet.training
    with torch.no_grad():
        out = srresnet(lr)
    assert out.shape == hr.shape and out.min() >= 0 and out.max() <= 1
    assert _psnr(out, hr) > bicubic + 0.3
    srgan = get_model("srgan", kind="upscaler", device="cpu")
    with torch.no_grad():
        gan = srgan(lr)
    assert _psnr(gan, hr) > bicubic - 3 and not torch.allclose(gan, out, atol=1e-2)


# ---------------------------------------------------------------------------------------- upscale and records


def test_upscale_writes_the_record_and_params_from_reproduces_it(trained, tmp_path, capsys):
    small = tmp_path / "small.png"
    save_image(to_tensor(load_image(CAT))[..., :48, :64], small)
    model, _ = trained
    first = tmp_path / "first.png"
    assert main(["upscale", str(small), "-o", str(first), "--model", str(model), "--tile", "40", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    record = read_metadata(first)
    assert record["method"] == "upscale" and record["params"]["tile"] == 40 and record["factor"] == 4
    assert record["inputs"]["model"]["path"] == str(model) and len(record["inputs"]["image"]["sha256"]) == 64
    assert record["size_px"] == [256, 192] and f"--model {model}" in record["command"]
    again = tmp_path / "again.png"
    assert main(["upscale", str(small), "-o", str(again), "--params-from", str(first), "-q"]) == 0
    assert read_metadata(again)["params"] == record["params"]
    assert torch.equal(to_tensor(load_image(again)), to_tensor(load_image(first)))
    whole = upscale(small, model=model)  # tiles overlapping by 3 x the reach give the whole-image result
    assert (whole.image - to_tensor(load_image(first))).abs().max() <= 1 / 255 + 1e-6
    err = _error(["upscale", str(small), "-o", str(tmp_path / "x.png"), "--params-from", str(small)], capsys)
    assert "holds no percept parameters" in err


def test_evaluate_sr_table_and_json(trained, tmp_path, capsys):
    from percept.sr.evaluate import evaluate_sr

    photos = tmp_path / "photos"
    photos.mkdir()
    cat = to_tensor(load_image(CAT))
    save_image(cat[..., :96, :128], photos / "a.png")
    save_image(cat[..., 100:196, 200:300], photos / "b.png")
    model, _ = trained
    result = evaluate_sr([str(model)], photos, metrics=["psnr", "ssim"], device="cpu")
    assert result.models == ["bicubic", str(model)] and result.images == ["a.png", "b.png"]
    hr = to_tensor(load_image(photos / "a.png"))
    lr, hr = degrade(hr, 4)
    expected = _psnr(bicubic_upscale(lr, 4).clamp(0, 1)[..., 4:-4, 4:-4], hr[..., 4:-4, 4:-4])
    assert math.isclose(result.per_image["bicubic"]["psnr"][0], expected, abs_tol=1e-3)
    assert "bicubic" in result.table() and "SSIM" in result.table()
    assert main(["evaluate-sr", "srresnet", str(photos), "--json", "--metrics", "psnr,lpips"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "evaluate-sr" and record["models"] == ["bicubic", "srresnet"]
    assert set(record["means"]["srresnet"]) == {"psnr", "lpips"} and record["border_px"] == 4
    assert record["weights_ids"] == {"srresnet": "srresnet:div2k"}


# ------------------------------------------------------------------------------------------- one-line errors


def test_one_line_errors(trained, tmp_path, capsys):
    model, _ = trained
    small = tmp_path / "small.png"
    save_image(torch.rand(1, 3, 20, 20), small)
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    save_image(torch.rand(1, 3, 3, 3), tiny / "t.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "o.png")
    assert "factor 3 is not supported; use 4 or 8" in _error(["train-sr", "--images", CONTENT, "-o", "x.pt",
                                                              "--factor", "3"], capsys)
    assert "--loss pixel does not use --feature-weight" in _error(
        ["train-sr", "--images", CONTENT, "-o", str(tmp_path / "x.pt"), "--loss", "pixel", "--feature-weight", "1"],
        capsys)
    assert "is at least 512 px on each side (the training crop); lower --crop" in _error(
        ["train-sr", "--images", str(tiny), "-o", str(tmp_path / "x.pt"), "--crop", "512"], capsys)
    assert "no images under training images folder" in _error(
        ["train-sr", "--images", str(empty), "-o", str(tmp_path / "x.pt")], capsys)
    assert "must end in .pt" in _error(["train-sr", "--images", CONTENT, "-o", str(tmp_path / "x.pth")], capsys)
    assert f"model file {str(model)!r} upscales x4, not x8" in _error(
        ["upscale", str(small), "-o", out, "--model", str(model), "--factor", "8"], capsys)
    assert "srgan upscales x4, not x8" in _error(["upscale", str(small), "-o", out, "--model", "srgan", "--factor",
                                                  "8"], capsys)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "percept-transform-net", "state_dict": {}}, foreign)
    assert "is a 'percept-transform-net' file, not a percept super-resolution network" in _error(
        ["upscale", str(small), "-o", out, "--model", str(foreign)], capsys)
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, plain)
    assert "is a plain state dict, not a percept super-resolution network" in _error(
        ["upscale", str(small), "-o", out, "--model", str(plain)], capsys)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all")
    assert "is not a PyTorch file" in _error(["upscale", str(small), "-o", out, "--model", str(garbage)], capsys)
    assert "unknown upscaler 'srgn' (did you mean srgan" in _error(["upscale", str(small), "-o", out, "--model",
                                                                    "srgn"], capsys)
    assert "bicubic upscaling needs no tiles" in _error(["upscale", str(small), "-o", out, "--model", "bicubic",
                                                         "--tile", "64"], capsys)
    assert "is too small for x4" in _error(["evaluate-sr", str(tiny), "-q"], capsys)
    assert "no images under evaluation images folder" in _error(["evaluate-sr", str(empty), "-q"], capsys)
    assert "unknown metric 'fid'" in _error(["evaluate-sr", str(tiny), "--metrics", "psnr,fid"], capsys)
