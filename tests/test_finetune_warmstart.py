"""Fine-tuning on small data sets: the linear-probe head start, frozen BatchNorm, the input size, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from percept.errors import PerceptError

PHOTO_OR_PAINTING = Path(__file__).resolve().parents[1] / "examples" / "data" / "photo_or_painting"


def _probe_matches_head(data, backbone, tmp_path):
    import numpy as np
    import torch

    from percept.transfer.finetune_data import frozen_features, init_head_from_probe, prepare_training
    from percept.transfer.finetune_params import FinetuneParams
    from percept.transfer.linear import fit_classifier

    p = FinetuneParams(backbone=backbone, device="cpu", head_init="linear-probe")
    t = prepare_training(data, p)
    probe = init_head_from_probe(t, p.seed)
    x, y = frozen_features(t, t.split.train)
    pipeline, C, _ = fit_classifier("logreg", None, p.seed, x.numpy(), y.numpy())  # the same fit, deterministic
    assert C == probe["C"]
    t.model.eval()
    with torch.no_grad():
        logits = t.model.head(x).double().numpy()
    expected = pipeline.decision_function(x.numpy())
    if expected.ndim == 1:  # binary: the score of class 1 is the difference of the two logits
        logits = logits[:, 1] - logits[:, 0]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())
    assert (logits.reshape(len(x), -1).argmax(1) if expected.ndim > 1 else logits > 0).tolist() == \
        (pipeline.predict(x.numpy()) if expected.ndim > 1 else pipeline.predict(x.numpy()) == 1).tolist()
    return t, probe


def test_linear_probe_head_equals_the_fitted_classifier_binary(tmp_path):
    _probe_matches_head(PHOTO_OR_PAINTING, "efficientnet_lite0", tmp_path)


def test_linear_probe_head_equals_the_fitted_classifier_multiclass(tmp_path, cat_path, rocket_path, texture_path,
                                                                    crops):
    root = tmp_path / "data"
    for split, n, seed in (("train", 6, 0), ("val", 2, 1)):
        for i, (name, source) in enumerate((("cat", cat_path), ("rocket", rocket_path), ("texture", texture_path))):
            crops(source, root / split / name, n, seed + 10 * i)
    t, probe = _probe_matches_head(root, "alexnet", tmp_path)
    assert t.model.head[1].weight.shape[0] == 3 and 0 <= probe["val_accuracy"] <= 1


def test_the_probe_is_epoch_zero_and_is_kept_when_no_epoch_is_better(tmp_path, monkeypatch):
    import torch

    from percept.transfer import finetune as ft
    from percept.transfer.finetune_net import load_finetuned

    monkeypatch.setattr(ft, "accuracy", lambda model, loader, device: 0.0)  # every fine-tuning epoch "worse"
    record = ft.train_finetune(PHOTO_OR_PAINTING, tmp_path / "run", epochs=1, unfreeze=1, batch_size=8,
                               device="cpu", augment="none")
    assert record["params"]["head_epochs"] == 0 and record["params"]["head_init"] == "linear-probe"
    assert record["best_epoch"] == 0
    assert record["metrics"]["val_accuracy"] == record["linear_probe"]["val_accuracy"] > 0
    model = load_finetuned(tmp_path / "run", torch.device("cpu"))
    from percept.transfer.finetune_net import FinetuneNet

    fresh = FinetuneNet("efficientnet_lite0", 2).state_dict()
    saved = model.state_dict()
    assert all(torch.equal(saved[k], fresh[k]) for k in fresh if k.startswith("body."))  # the backbone untouched


def _bn_step(freeze_bn: bool):
    import torch
    from torch import nn

    from percept.transfer.finetune_net import FinetuneNet
    from percept.transfer.lr_groups import param_groups

    torch.manual_seed(0)
    model = FinetuneNet("efficientnet_lite0", 3, freeze_bn=freeze_bn)
    model.unfreeze_top(3)
    bns = [m for s in model.stages[-3:] for m in s.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), m.weight.detach().clone()) for m in bns]
    opt = torch.optim.SGD([g for g in param_groups(model, 0.1, 0.0)], lr=0.1)
    model.train()
    loss = nn.functional.cross_entropy(model(torch.rand(4, 3, 64, 64)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    stats_same = all(torch.equal(m.running_mean, b[0]) and torch.equal(m.running_var, b[1]) for m, b in zip(bns, before))
    weights_moved = any(not torch.equal(m.weight.detach(), b[2]) for m, b in zip(bns, before))
    return bool(bns), stats_same, weights_moved


def test_frozen_batchnorm_keeps_running_statistics_but_trains_scale_and_shift():
    has_bn, stats_same, weights_moved = _bn_step(freeze_bn=True)
    assert has_bn and stats_same and weights_moved
    _, stats_same, _ = _bn_step(freeze_bn=False)
    assert not stats_same  # updated BatchNorm: the step changed the running statistics


def test_image_size_sets_the_crop_and_is_kept_by_the_saved_model(tmp_path):
    import torch

    from percept.transfer import finetune as ft
    from percept.transfer.finetune_net import FinetuneNet, load_finetuned

    net = FinetuneNet("efficientnet_lite0", 2, image_size=256)
    assert (net.crop, net.resize) == (256, round(256 * 256 / 224))
    ft.train_finetune(PHOTO_OR_PAINTING, tmp_path / "run", epochs=1, unfreeze=1, batch_size=8, device="cpu",
                      augment="none", image_size=96, head_init="kaiming", head_epochs=0)
    model = load_finetuned(tmp_path / "run", torch.device("cpu"))
    assert model.crop == 96


@pytest.mark.parametrize("settings, message", [
    ({"head_init": "zeros"}, "unknown head init 'zeros'; use linear-probe, kaiming, xavier"),
    ({"image_size": 8}, "image-size must be between 32 and 1024 pixels, got 8"),
    ({"head_epochs": -1}, "head-epochs must be >= 0, got -1"),
    ({"head_epochs": 0, "epochs": 0}, "give at least one epoch (epochs + head-epochs >= 1)"),
])
def test_bad_fine_tuning_values_are_refused_in_one_line(settings, message):
    from percept.transfer.finetune_params import FinetuneParams

    with pytest.raises(PerceptError) as info:
        FinetuneParams(**settings)
    assert str(info.value) == message and "\n" not in str(info.value)


def test_head_epochs_default_follows_the_head_init():
    from percept.transfer.finetune_params import FinetuneParams

    assert FinetuneParams().resolved_head_epochs() == 0
    assert FinetuneParams(head_init="kaiming").resolved_head_epochs() == 2
    assert FinetuneParams(head_init="kaiming", head_epochs=1).resolved_head_epochs() == 1
