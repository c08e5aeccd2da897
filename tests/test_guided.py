"""Style by region (guided Gram matrices, Gatys et al. 2017): the pure functions by hand, the mask format and its
one-line errors, and tiny end-to-end runs of the optimisation and of AdaIN with masks."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from percept import stylize, synthesize_texture
from percept.cli import main
from percept.errors import PerceptError
from percept.image import load_image, read_metadata, to_tensor
from percept.losses import gram_matrix, style_loss
from percept.models import get_model
from percept.style import stylize_adain
from percept.style.guided import (
    downsample_mask,
    guided_gram,
    load_masks,
    region_errors,
    region_style_loss,
    resize_masks,
)
from percept.style.params import DEFAULT_STYLE_LAYERS

CAT = (451, 300)  # chelsea_cat.jpg


def half_mask(w: int = 45, h: int = 30) -> torch.Tensor:
    """White left half (the first style), black right half (the second)."""
    mask = torch.zeros(h, w)
    mask[:, : w // 2] = 1
    return mask


# ------------------------------------------------------------------------------------------ pure functions


def test_a_mask_of_ones_gives_exactly_the_plain_gram_matrix():
    features = torch.randn(2, 4, 5, 6)
    assert torch.equal(guided_gram(features, torch.ones(2, 1, 5, 6)), gram_matrix(features))
    assert torch.equal(guided_gram(features, torch.ones(1, 1, 5, 6)), gram_matrix(features))  # broadcast batch


def test_a_binary_mask_gives_the_gram_matrix_of_its_positions():
    features = torch.randn(1, 3, 4, 6)
    mask = torch.zeros(1, 1, 4, 6)
    mask[..., :, 1:4] = 1
    assert torch.allclose(guided_gram(features, mask), gram_matrix(features[..., :, 1:4]), atol=1e-6)


def test_a_soft_mask_is_a_weighted_average_normalised_by_its_sum():
    features = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)
    mask = torch.tensor([1.0, 0.5, 0.0, 0.0]).reshape(1, 1, 2, 2)
    # (1 * 1^2 + 0.5 * 2^2) / (1 + 0.5) = 2
    assert torch.allclose(guided_gram(features, mask), torch.tensor([[[2.0]]]))


def test_downsampling_keeps_two_regions():
    # Region 1: columns 0-1 of a 4x4 mask; region 2: columns 2-3. On a 2x2 grid each cell averages 2x2 pixels.
    region = torch.zeros(1, 1, 4, 4)
    region[..., :2] = 1
    masks = torch.cat([region, 1 - region], 1)
    down = downsample_mask(masks, (2, 2))
    assert torch.equal(down[0, 0], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.equal(down[0, 1], torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    # A boundary inside a cell (column 0 only): that cell is half in each region, and the weights still sum to 1.
    region = torch.zeros(1, 1, 4, 4)
    region[..., :1] = 1
    down = downsample_mask(torch.cat([region, 1 - region], 1), (2, 2))
    assert torch.equal(down[0, 0], torch.tensor([[0.5, 0.0], [0.5, 0.0]]))
    assert torch.equal(down.sum(1), torch.ones(1, 2, 2))
    # One VGG stage further (4x4 -> 2x2 -> 1x1) is the mean of the whole mask.
    assert torch.allclose(downsample_mask(down, (1, 1))[0, :, 0, 0], torch.tensor([0.25, 0.75]))


def test_one_region_over_the_whole_image_is_the_plain_style_loss():
    features, target = torch.randn(1, 8, 6, 6), gram_matrix(torch.randn(1, 8, 5, 7))
    loss = region_style_loss(features, torch.ones(1, 1, 6, 6), target, [1.0])
    assert torch.allclose(loss, style_loss(features, target))


def test_a_gram_matrix_of_mismatched_size_is_refused():
    with pytest.raises(PerceptError, match="downsample it"):
        guided_gram(torch.randn(1, 2, 4, 4), torch.ones(1, 1, 8, 8))


# ------------------------------------------------------------------------------------------- mask format


def test_one_mask_for_two_styles_and_one_mask_per_style():
    two = load_masks(half_mask(), 2, CAT)
    assert two.shape == (1, 2, 30, 45) and torch.equal(two[0, 1], 1 - two[0, 0])
    grey = torch.full((30, 45), 0.25)
    overlapping = load_masks([grey, grey, torch.full((30, 45), 0.5)], 3, CAT)  # overlaps blend in proportion
    assert torch.allclose(overlapping[0, :, 0, 0], torch.tensor([0.25, 0.25, 0.5]))
    assert torch.allclose(overlapping.sum(1), torch.ones(1, 30, 45))
    stacked = load_masks(torch.stack([half_mask(), 1 - half_mask()]), 2, CAT)  # (K, H, W) tensor
    assert torch.equal(stacked, two)
    assert resize_masks(two, (90, 60)).shape == (1, 2, 60, 90)


def test_comma_separated_files(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray((half_mask().numpy() * 255).astype("uint8")).save(a)
    Image.fromarray(((1 - half_mask()).numpy() * 255).astype("uint8")).save(b)
    masks = load_masks(f"{a},{b}", 2, CAT)
    assert torch.equal(masks, load_masks(a, 2, CAT))


@pytest.mark.parametrize(
    ("mask", "styles", "message"),
    [
        (torch.ones(30, 30), 2, r"mask is 30x30 px but the content is 451x300: .* aspect ratio"),
        (torch.ones(30, 45), 2, r"style 2 has no pixels \(the mask is white everywhere\)"),
        (torch.zeros(30, 45), 2, r"style 1 has no pixels \(the mask is black everywhere\)"),
        ([half_mask(), 1 - half_mask(), torch.zeros(30, 45)], 3, r"style 3 has no pixels \(mask 3\)"),
        ([half_mask(), torch.zeros(30, 45)], 2, "black in every mask; every pixel needs a style"),
        ([half_mask(), half_mask(), half_mask()], 2, "3 masks for 2 style images"),
        (half_mask(), 3, "a mask needs exactly two style images .* got 3; for 3 styles give one mask per style"),
        (half_mask(), 1, "a mask needs exactly two style images"),
        (torch.ones(3, 30, 45), 2, r"mask tensor must have shape \(H, W\)"),
        ([half_mask(), torch.ones(20, 30)], 2, r"the masks differ in size \(45x30, 30x20 px\)"),
        ("a.png,,b.png", 2, "has an empty name"),
        ("missing_mask.png", 2, "mask 'missing_mask.png' not found"),
    ],
)
def test_bad_masks_give_one_line_errors(mask, styles, message):
    with pytest.raises(PerceptError, match=message) as err:
        load_masks(mask, styles, CAT)
    assert "\n" not in str(err.value)


def test_stylize_refuses_bad_masks_before_loading_anything(cat_path, starry_path, wave_path):
    with pytest.raises(PerceptError, match="3 masks for 2 style images"):
        stylize(cat_path, [starry_path, wave_path], mask=[half_mask()] * 3, size=32)
    with pytest.raises(PerceptError, match="cannot be combined"):
        stylize(cat_path, [starry_path, wave_path], mask=half_mask(), style_blend_weights=[1, 1], size=32)
    with pytest.raises(PerceptError, match="mask does not apply to texture synthesis"):
        synthesize_texture(starry_path, mask=half_mask(), size=32)


def test_the_command_line_refuses_a_mask_of_another_shape_in_one_line(tmp_path, cat_path, starry_path, wave_path,
                                                                      capsys):
    mask = tmp_path / "square.png"
    Image.new("L", (40, 40), 255).save(mask)
    out = tmp_path / "o.png"
    assert main(["stylize", str(cat_path), str(starry_path), str(wave_path), "-o", str(out), "--mask", str(mask),
                 "--size", "32", "--iterations", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "40x40" in err[0] and "aspect ratio" in err[0] and not out.exists()


# ------------------------------------------------------------------------------------------- end to end


def test_each_half_takes_its_own_style(cat_path, starry_path, wave_path):
    """64 px, 20 L-BFGS steps: inside each half the Gram error to its own style is below that to the other."""
    styles = [starry_path, wave_path]
    result = stylize(cat_path, styles, mask=half_mask(), size=64, iterations=20, device="cpu")
    image = result.image
    h, w = image.shape[-2:]
    net, layers = get_model("vgg19"), DEFAULT_STYLE_LAYERS["vgg19"]
    masks = resize_masks(load_masks(half_mask(), 2, CAT), (w, h))
    with torch.no_grad():
        feats = net(image, layers)
        style_feats = [net(to_tensor(load_image(s), longest=64), layers) for s in styles]
    grams = {n: torch.cat([gram_matrix(f[n]) for f in style_feats]) for n in layers}
    errors = region_errors(feats, masks, grams).sum(0)  # (region, style), summed over layers
    assert errors[0, 0] < errors[0, 1] and errors[1, 1] < errors[1, 0], errors
    assert result.record["params"]["mask"] == "" and result.record["inputs"]["mask"]["type"] == "Tensor"


def test_masks_work_with_scales_colour_preservation_and_the_record(tmp_path, cat_path, starry_path, wave_path,
                                                                   capsys):
    mask = tmp_path / "half.png"
    Image.fromarray((half_mask(451, 300).numpy() * 255).astype("uint8")).save(mask)
    out = tmp_path / "o.png"
    assert main(["stylize", str(cat_path), str(starry_path), str(wave_path), "-o", str(out), "--mask", str(mask),
                 "--size", "48", "--scales", "32", "--iterations", "2", "--preserve-color", "luminance",
                 "--style-layers", "relu1_1,relu3_1", "-q"]) == 0
    record = read_metadata(out)
    assert record["params"]["mask"] == str(mask) and record["inputs"]["mask"]["path"] == str(mask)
    assert f"--mask {mask}" in record["command"]
    assert Image.open(out).size == (48, 32)


def test_adain_takes_one_mask_per_style(cat_path, starry_path, wave_path):
    styles = [starry_path, wave_path, starry_path]
    thirds = torch.zeros(3, 30, 45)
    thirds[0, :, :15], thirds[1, :, 15:30], thirds[2, :, 30:] = 1, 1, 1
    image = stylize_adain(cat_path, styles, mask=thirds, size=48, device="cpu").image
    assert image.shape == (1, 3, 32, 48)
    one = stylize_adain(cat_path, styles[:2], mask=half_mask(), size=48, device="cpu").image
    both = stylize_adain(cat_path, styles[:2], mask=[half_mask(), 1 - half_mask()], size=48, device="cpu").image
    assert torch.allclose(one, both, atol=1e-5)
