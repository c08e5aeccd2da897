"""Style transfer and texture synthesis end to end, at tiny sizes with the real Gatys VGG-19."""

from __future__ import annotations

import pytest
import torch

from percept import StyleParams, stylize, synthesize_texture
from percept.errors import PerceptError
from percept.image import load_image, rgb_to_yiq, to_tensor
from percept.params import to_record

TINY = dict(size=64, iterations=20)


def test_stylization_lowers_total_loss_by_half(cat_path, starry_path):
    result = stylize(cat_path, starry_path, **TINY)
    first, last = result.history[0], result.history[-1]
    assert len(result.history) == 20
    assert last["total"] <= 0.5 * first["total"], (first, last)
    assert last["style"] < first["style"]
    assert result.image.shape == (1, 3, 43, 64)  # 451x300 -> longest side 64
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_result_records_every_parameter(cat_path, starry_path):
    result = stylize(cat_path, starry_path, size=48, iterations=2, style_weight=50.0)
    assert result.record["params"] == to_record(StyleParams(size=48, iterations=2, style_weight=50.0))
    assert result.record["method"] == "optimize" and result.record["weights_id"] == "vgg19:gatys"
    assert len(result.record["inputs"]["content"]["sha256"]) == 64
    assert result.record["final_losses"]["total"] == result.history[-1]["total"]


def test_seed_makes_noise_init_repeatable(cat_path, starry_path):
    a = stylize(cat_path, starry_path, size=48, iterations=5, init="noise", seed=7).image
    b = stylize(cat_path, starry_path, size=48, iterations=5, init="noise", seed=7).image
    c = stylize(cat_path, starry_path, size=48, iterations=5, init="noise", seed=8).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_luminance_preservation_keeps_content_chroma(cat_path, starry_path):
    result = stylize(cat_path, starry_path, size=64, iterations=10, preserve_color="luminance")
    content = to_tensor(load_image(cat_path), size=(64, 43))
    out_iq, content_iq = rgb_to_yiq(result.image)[:, 1:], rgb_to_yiq(content)[:, 1:]
    assert (out_iq - content_iq).abs().mean() < 0.01
    plain = stylize(cat_path, starry_path, size=64, iterations=10)
    assert (rgb_to_yiq(plain.image)[:, 1:] - content_iq).abs().mean() > 0.03  # without it, colours change


def test_color_matching_moves_style_colours_to_content(cat_path, starry_path):
    from percept.image import match_color

    style = to_tensor(load_image(starry_path), longest=64)
    content = to_tensor(load_image(cat_path), longest=64)
    matched = match_color(style, content)
    for t in (matched, content):
        assert t.shape[1] == 3
    assert torch.allclose(matched.mean((2, 3)), content.mean((2, 3)), atol=0.03)
    result = stylize(cat_path, starry_path, size=48, iterations=3, preserve_color="match")
    assert result.image.shape == (1, 3, 32, 48)


def test_multiscale_runs_coarse_to_fine(cat_path, starry_path):
    stages = []
    result = stylize(cat_path, starry_path, size=64, iterations=4, scales="32",
                     callback=lambda it: stages.append((it.stage, it.image.shape[-1])))
    assert [s for s in stages if s[0] == 0][0][1] == 32 and stages[-1] == (1, 64)
    assert result.image.shape[-1] == 64
    assert StyleParams(size=1024).stage_sizes() == [256, 512, 1024]
    assert StyleParams(size=512).stage_sizes() == [512]
    assert StyleParams(size=800, scales="none").stage_sizes() == [800]


def test_several_styles_blend_and_options_apply(cat_path, starry_path, wave_path):
    result = stylize(cat_path, [starry_path, wave_path], size=64, iterations=3, style_blend_weights=[0.8, 0.2],
                     optimizer="adam", init="style", pooling="avg", style_scale=0.75)
    assert result.image.shape == (1, 3, 43, 64) and len(result.history) == 3
    with pytest.raises(PerceptError, match=r"style image is 24x13 px .* too small for relu5_1 of vgg19 \(needs >= 16"):
        stylize(cat_path, wave_path, size=48, iterations=1, style_scale=0.5)
    with pytest.raises(PerceptError, match="2 values for 1 style"):
        stylize(cat_path, starry_path, size=48, iterations=1, style_blend_weights=[1, 2])


def test_other_networks_and_layer_choices(cat_path, starry_path):
    result = stylize(cat_path, starry_path, size=64, iterations=10, network="alexnet",
                     content_layers=["relu3"], style_layers=["relu1", "relu2"], style_layer_weights=[2.0, 1.0])
    assert result.record["weights_id"] == "alexnet:imagenet1k_v1"
    assert result.history[-1]["total"] < result.history[0]["total"]


def test_init_from_file_and_frames(cat_path, starry_path, wave_path):
    result = stylize(cat_path, starry_path, size=48, iterations=6, init=str(wave_path), frame_every=2)
    assert len(result.frames) == 3 and result.frames[0].shape == result.image.shape


def test_texture_synthesis_has_requested_size_and_matches_statistics(texture_path):
    result = synthesize_texture(texture_path, size=48, iterations=20)
    assert result.image.shape == (1, 3, 48, 48)  # independent of the 256x256 source
    assert result.history[-1]["style"] < 0.5 * result.history[0]["style"]
    assert result.record["method"] == "texture"
    assert synthesize_texture(texture_path, size=40, iterations=1).image.shape == (1, 3, 40, 40)


def test_bad_settings_give_one_line_errors(cat_path, starry_path, texture_path):
    cases = [
        (dict(size=4), "size 4 out of range"),
        (dict(optimizer="sgd"), "unknown optimizer 'sgd'"),
        (dict(preserve_color="sepia"), "unknown preserve-color"),
        (dict(scales="512,256"), "must increase"),
        (dict(style_weight=-1), "style-weight must be >= 0"),
        (dict(bogus=1), "unknown setting"),
        (dict(style_layers=["relu9_1"]), "unknown layer 'relu9_1'"),
        (dict(init="missing.png"), "init image 'missing.png' not found"),
        (dict(network="resnet"), "unknown network 'resnet'"),
    ]
    for settings, message in cases:
        with pytest.raises(PerceptError, match=message):
            stylize(cat_path, starry_path, iterations=1, **settings)
    with pytest.raises(PerceptError, match="does not apply to texture"):
        synthesize_texture(texture_path, content_weight=1.0)
