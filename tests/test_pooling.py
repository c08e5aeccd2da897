"""Orderless pooling (percept.models.pooling): values computed by hand, the sketch's inner products, determinism."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from percept.errors import PerceptError
from percept.models.names import POOLINGS
from percept.models.pooling import (
    COMPACT_DIM,
    FeaturePooling,
    gram_matrix,
    gram_triangle,
    l2_normalize,
    pooled_dim,
    signed_sqrt,
    sketch_hashes,
    tensor_sketch,
    triangle_indices,
)

#: A 2-channel 2x2 map: F0 = (1, 2, 3, 4), F1 = (0, -1, -1, 0).
MAP = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [-1.0, 0.0]]]])


def test_avg_and_max_by_hand():
    assert FeaturePooling("avg", 2)(MAP).tolist() == [[2.5, -0.5]]
    assert FeaturePooling("max", 2)(MAP).tolist() == [[4.0, 0.0]]


def test_gram_matrix_and_exact_gram_pooling_by_hand():
    # G00 = (1 + 4 + 9 + 16) / 4, G01 = (0 - 2 - 3 + 0) / 4, G11 = (0 + 1 + 1 + 0) / 4
    assert gram_matrix(MAP).tolist() == [[[7.5, -1.25], [-1.25, 0.5]]]
    triangle = [7.5, -1.25 * math.sqrt(2), 0.5]  # off-diagonal times sqrt(2)
    roots = [math.copysign(math.sqrt(abs(v)), v) for v in triangle]
    norm = math.sqrt(sum(r * r for r in roots))
    pool = FeaturePooling("gram", 2)
    assert pool.exact and pool.dim == 3
    torch.testing.assert_close(pool(MAP), torch.tensor([[r / norm for r in roots]]))


def test_signed_sqrt_and_l2_normalize_by_hand():
    roots = signed_sqrt(torch.tensor([[4.0, -9.0, 0.0]]))
    torch.testing.assert_close(roots, torch.tensor([[2.0, -3.0, 0.0]]))
    torch.testing.assert_close(l2_normalize(roots), torch.tensor([[2.0, -3.0, 0.0]]) / math.sqrt(13))
    assert l2_normalize(torch.zeros(1, 3)).tolist() == [[0.0, 0.0, 0.0]]


def test_triangle_keeps_the_frobenius_product():
    a, b = gram_matrix(torch.randn(2, 5, 3, 3)).unbind(0)
    index, weights = triangle_indices(5)
    ua, ub = (gram_triangle(g[None], index, weights)[0] for g in (a, b))
    torch.testing.assert_close(ua @ ub, (a * b).sum())


def test_compact_bilinear_approximates_the_full_bilinear_inner_product():
    """<sketch(G_x), sketch(G_y)> ~ <G_x, G_y>_F = <phi(x), phi(y)> of the full bilinear vectors."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 48, 6, 6, generator=g).relu()
    grams = gram_matrix(x)
    exact = float((grams[0] * grams[1]).sum())
    estimates = []
    for seed in range(4):
        index, signs = sketch_hashes(48, COMPACT_DIM, seed=seed)
        a, b = tensor_sketch(grams, index, signs, COMPACT_DIM)
        estimates.append(float(a @ b))
    assert abs(sum(estimates) / len(estimates) - exact) < 0.02 * exact
    assert all(abs(e - exact) < 0.05 * exact for e in estimates)


def test_gram_is_exact_up_to_128_channels_then_compact():
    assert pooled_dim("gram", 128) == 8256 and pooled_dim("gram", 129) == COMPACT_DIM
    assert pooled_dim("bilinear", 16) == COMPACT_DIM and pooled_dim("max", 7) == 7
    big = FeaturePooling("gram", 200)
    assert not big.exact and big(torch.rand(2, 200, 3, 3)).shape == (2, COMPACT_DIM)
    assert not FeaturePooling("bilinear", 16).exact
    assert "index" not in big.state_dict()  # nothing random is saved: the hashes are rebuilt from the seed


@pytest.mark.parametrize("pooling", ["gram", "bilinear"])
def test_vectors_are_unit_length(pooling):
    out = FeaturePooling(pooling, 200)(torch.rand(3, 200, 4, 4))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


_SNIPPET = """
import torch
from percept.models.pooling import FeaturePooling
x = torch.arange(2 * 150 * 9, dtype=torch.float32).reshape(2, 150, 3, 3).sin()
print(repr(FeaturePooling("bilinear", 150)(x).double().sum().item()), repr(FeaturePooling("gram", 150)(x)[0, :5].tolist()))
"""


def test_sketch_is_identical_across_calls_and_processes():
    assert all(torch.equal(a, b) for a, b in zip(sketch_hashes(150, 64), sketch_hashes(150, 64)))
    here = subprocess.run([sys.executable, "-c", _SNIPPET], capture_output=True, text=True, check=True).stdout
    x = torch.arange(2 * 150 * 9, dtype=torch.float32).reshape(2, 150, 3, 3).sin()
    expected = (f"{FeaturePooling('bilinear', 150)(x).double().sum().item()!r} "
                f"{FeaturePooling('gram', 150)(x)[0, :5].tolist()!r}\n")
    assert here == expected


def test_unknown_pooling_is_one_line():
    with pytest.raises(PerceptError, match="unknown pooling 'median'; use avg, max, gram, bilinear"):
        FeaturePooling("median", 4)
    assert POOLINGS == ("avg", "max", "gram", "bilinear")
