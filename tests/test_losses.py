"""Losses: hand-computed values and the size portability of the style loss."""

from __future__ import annotations

import torch

from percept.image import load_image, to_tensor
from percept.losses import (
    ContentLoss,
    StyleLoss,
    TVLoss,
    content_loss,
    gram_matrix,
    outer_products,
    style_loss,
    tv_loss,
)


def test_gram_matrix_matches_hand_computation():
    # 2 channels, 2x2 positions: F = [[1, 2, 3, 4], [0, 1, 0, 1]]
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])
    expected = torch.tensor([[1 + 4 + 9 + 16, 0 + 2 + 0 + 4], [0 + 2 + 0 + 4, 0 + 1 + 0 + 1]]) / 4.0
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_gram_matrix_is_batched_and_symmetric():
    f = torch.randn(3, 5, 4, 6, generator=torch.Generator().manual_seed(0))
    g = gram_matrix(f)
    assert g.shape == (3, 5, 5)
    assert torch.allclose(g, g.transpose(1, 2), atol=1e-6)  # float32 sums in another order near 0
    assert torch.allclose(g[1], f[1].reshape(5, -1) @ f[1].reshape(5, -1).T / 24, atol=1e-6)


def test_outer_products_gradients_match_autograd_and_differentiate_twice():
    gen = torch.Generator().manual_seed(1)
    flat = torch.randn(2, 3, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    weights = torch.rand(2, 1, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(outer_products, (flat,))
    assert torch.autograd.gradcheck(outer_products, (flat, weights))
    assert torch.autograd.gradgradcheck(outer_products, (flat, weights))
    shared = torch.rand(1, 1, 7, dtype=torch.float64, generator=gen, requires_grad=True)  # one mask, a batch
    assert torch.autograd.gradcheck(lambda f, w: outer_products(f, w.expand(2, 1, 7)), (flat, shared))


def test_gram_matrix_gradient_is_the_autograd_one_and_no_grad_gives_the_same_values():
    features = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(2), requires_grad=True)
    target = torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(3))
    (gram_matrix(features) * target).sum().backward()
    flat = features.detach().reshape(2, 4, 30).requires_grad_(True)
    (torch.bmm(flat, flat.transpose(1, 2)) / 30 * target).sum().backward()
    assert torch.allclose(features.grad.reshape(2, 4, 30), flat.grad, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(gram_matrix(features), gram_matrix(features.detach()))
    assert torch.allclose(gram_matrix(features).detach(), gram_matrix(features.detach()))


def test_gram_matrix_backward_under_autocast_matches_autograd():
    features = torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(4), requires_grad=True)
    flat = features.detach().reshape(2, 8, 25).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as mixed-precision training runs Gram pooling
        ours = gram_matrix(features)
        theirs = torch.bmm(flat, flat.transpose(1, 2)) / 25
    assert ours.dtype == theirs.dtype == torch.bfloat16
    (ours.float() ** 2).sum().backward()
    (theirs.float() ** 2).sum().backward()
    assert features.grad.dtype == torch.float32
    assert torch.allclose(features.grad.reshape(2, 8, 25), flat.grad, rtol=0.05, atol=0.05)


def test_tv_loss_matches_hand_computation():
    img = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]]])
    # vertical diffs: 0.5, -0.5 -> mean sq 0.25 ; horizontal diffs: 1.0, 0.0 -> mean sq 0.5
    assert torch.isclose(tv_loss(img), torch.tensor(0.75))
    assert tv_loss(torch.full((1, 3, 8, 8), 0.3)) == 0
    assert torch.isclose(TVLoss()(img), tv_loss(img))


def test_content_and_style_loss_are_relative_errors():
    target = torch.rand(1, 8, 5, 5)
    assert content_loss(target, target) == 0
    assert torch.isclose(content_loss(torch.zeros_like(target), target), torch.tensor(1.0), atol=1e-5)
    assert torch.isclose(ContentLoss(target)(2 * target), torch.tensor(1.0), atol=1e-5)
    gram = gram_matrix(target)
    assert style_loss(target, gram) < 1e-10
    assert torch.isclose(StyleLoss(gram)(torch.zeros_like(target)), torch.tensor(1.0), atol=1e-5)


def test_blended_style_target_is_weighted_gram_mean():
    a, b = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 3, 3)
    blended = StyleLoss.from_features([a, b], [3.0, 1.0]).target
    assert torch.allclose(blended, 0.75 * gram_matrix(a) + 0.25 * gram_matrix(b))
    one_hot = StyleLoss.from_features([a, b], [1.0, 0.0]).target
    assert torch.allclose(one_hot, gram_matrix(a))


LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def _style_losses(net, x: torch.Tensor, s: torch.Tensor) -> tuple[float, float]:
    """(percept's style loss, an unnormalised Gram loss) between images ``x`` and ``s``."""
    with torch.no_grad():
        fx, fs = net(x, LAYERS), net(s, LAYERS)
    ours = sum(style_loss(fx[n], gram_matrix(fs[n])) for n in LAYERS) / len(LAYERS)
    naive = sum(
        (fx[n].flatten(2) @ fx[n].flatten(2).transpose(1, 2) - fs[n].flatten(2) @ fs[n].flatten(2).transpose(1, 2))
        .pow(2).sum()
        for n in LAYERS
    )
    return float(ours), float(naive)


def test_style_loss_is_size_independent_for_the_same_texture(vgg19, texture_path, wave_path):
    """A 2x2 tiling (4x the pixels, same statistics) gives the same loss; an unnormalised Gram grows 16x."""
    tex = to_tensor(load_image(texture_path), size=(128, 128))
    wave = to_tensor(load_image(wave_path), size=(128, 128))
    tile = lambda t: t.repeat(1, 1, 2, 2)  # noqa: E731
    ours_1, naive_1 = _style_losses(vgg19, tex, wave)
    ours_2, naive_2 = _style_losses(vgg19, tile(tex), tile(wave))
    assert abs(ours_2 / ours_1 - 1) < 0.15, (ours_1, ours_2)  # only zero-padding borders differ
    assert naive_2 / naive_1 > 10


def test_style_loss_stays_in_range_when_images_are_resized(vgg19, texture_path, starry_path):
    """Resizing both images 128 -> 256 px keeps the loss within 2x (the naive loss changes > 8x)."""
    tex, style = load_image(texture_path), load_image(starry_path)
    ours_small, naive_small = _style_losses(vgg19, to_tensor(tex, longest=128), to_tensor(style, longest=128))
    ours_big, naive_big = _style_losses(vgg19, to_tensor(tex, longest=256), to_tensor(style, longest=256))
    assert 0.5 < ours_big / ours_small < 2.0, (ours_small, ours_big)
    assert naive_big / naive_small > 8


def test_range_loss_penalises_only_pixels_outside_0_1():
    from percept.losses import range_loss

    assert range_loss(torch.rand(1, 3, 8, 8)) == 0
    img = torch.zeros(1, 1, 1, 4)
    img[..., 0], img[..., 1] = -0.5, 1.5  # two of four pixels out by 0.5
    assert torch.isclose(range_loss(img), torch.tensor(0.125))
