"""Adversarial examples with real weights: targeted PGD within an L-inf budget, FGSM, and one-line errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from percept.errors import PerceptError
from percept.image import load_image
from percept.models import get_model
from percept.understand.attack import attack


@pytest.fixture(scope="module")
def lite0():
    return get_model("efficientnet_lite0", kind="classifier")


def test_targeted_pgd_turns_the_cat_into_a_gibbon_within_4_levels(lite0, cat_path):
    x = lite0.prepare(load_image(cat_path))
    result = attack(lite0, x, target="gibbon", epsilon=4 / 255, steps=10)
    assert lite0.classes[result.original_class] in {"tabby", "tiger cat", "Egyptian cat"}
    assert result.success and lite0.classes[result.new_class] == "gibbon" and result.target == 368
    assert result.linf <= 4 / 255 + 1e-6 and 0 <= float(result.image.min()) and float(result.image.max()) <= 1
    assert torch.allclose(result.image, x.cpu() + result.perturbation, atol=1e-6)
    with torch.no_grad():  # the returned image really is classified as the target
        assert int(lite0.model(result.image).argmax()) == 368


def test_untargeted_fgsm_takes_one_full_step_against_the_true_class(lite0, rocket_path):
    x = lite0.prepare(load_image(rocket_path))
    result = attack(lite0, x, method="fgsm", epsilon=2 / 255)
    assert abs(result.linf - 2 / 255) < 1e-6 and result.target is None
    label = torch.tensor([result.original_class])
    with torch.no_grad():
        before = F.cross_entropy(lite0.model(x), label)
        after = F.cross_entropy(lite0.model(result.image), label)
    assert after > before  # the loss of the original class went up
    assert result.success == (result.new_class != result.original_class)


def test_attack_errors_are_one_line(lite0):
    x = torch.rand(1, 3, 64, 64)
    for kwargs, message in (({"method": "cw"}, "unknown attack 'cw'"), ({"epsilon": 4}, "epsilon must be in"),
                            ({"steps": 0}, "steps must be >= 1"), ({"target": "gibon"}, "did you mean 'gibbon'")):
        with pytest.raises(PerceptError, match=message) as err:
            attack(lite0, x, **kwargs)
        assert "\n" not in str(err.value)
