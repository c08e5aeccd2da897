"""Transfer learning with frozen features: data checks, feature cache, training, evaluation, prediction, CLI."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageOps

from percept.cli import main
from percept.errors import PerceptError
from percept.transfer import evaluate, predict, scan_dataset, train_features


@pytest.fixture()
def cache(tmp_path):
    return tmp_path / "cache"


def test_scan_train_val_layout_and_class_counts(dataset):
    split = scan_dataset(dataset)
    assert split.classes == ["cat", "rocket"]
    assert split.counts("train") == {"cat": 6, "rocket": 6} and split.counts("val") == {"cat": 3, "rocket": 3}
    assert split.imbalance() == 1.0


def test_single_folder_gets_a_seeded_stratified_split(dataset):
    root = dataset / "train"
    a, b = scan_dataset(root, val_fraction=0.34, seed=1), scan_dataset(root, val_fraction=0.34, seed=1)
    assert a.counts("val") == {"cat": 2, "rocket": 2} and a.counts("train") == {"cat": 4, "rocket": 4}
    assert a.val == b.val
    assert scan_dataset(root, val_fraction=0.34, seed=2).val != a.val


def test_corrupt_and_non_image_files_are_skipped_with_a_warning(dataset):
    (dataset / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (dataset / "train" / "cat" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match="skipping .*broken.jpg"):
        split = scan_dataset(dataset)
    assert len(split.skipped) == 2 and split.counts("train")["cat"] == 6
    assert "skipped 2 unreadable" in split.summary()


def test_unusable_datasets_give_clear_errors(tmp_path, dataset, crops):
    with pytest.raises(PerceptError, match="not found"):
        scan_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PerceptError, match="no readable images"):
        scan_dataset(tmp_path / "empty")
    one = tmp_path / "one"
    crops(dataset / "train" / "cat" / "00.jpg", one / "only", 3, 0)
    with pytest.raises(PerceptError, match="1 class folder"):
        scan_dataset(one)
    (one / "hollow").mkdir()
    with pytest.raises(PerceptError, match="hollow have no readable"):
        scan_dataset(one)


def test_train_evaluate_predict_with_feature_cache(dataset, tmp_path, cache, cat_path):
    run = tmp_path / "run"
    record = train_features(dataset, run, backbone="alexnet", cache_dir=cache, device="cpu")
    assert record["metrics"]["val_accuracy"] == 1.0 and record["features_from_cache"] == 0
    assert json.loads((run / "run.json").read_text())["classes"] == ["cat", "rocket"]
    assert 0 < record["C"] <= 10  # chosen by cross-validation

    again = train_features(dataset, tmp_path / "run2", backbone="alexnet", cache_dir=cache, device="cpu")
    assert again["features_from_cache"] == 18  # every image reused
    ImageOps.flip(Image.open(dataset / "val" / "cat" / "00.jpg")).save(dataset / "val" / "cat" / "00.jpg")
    third = train_features(dataset, tmp_path / "run3", backbone="alexnet", cache_dir=cache, device="cpu")
    assert third["features_from_cache"] == 17  # the changed image was recomputed

    report = evaluate([run], cache_dir=cache, device="cpu")
    assert report["accuracy"] == 1.0 and report["n_images"] == 6
    assert report["confusion_matrix"] == [[3, 0], [0, 3]]
    ensemble = evaluate([run, tmp_path / "run2"], dataset, cache_dir=cache, device="cpu")
    assert 0.0 <= ensemble["accuracy"] <= 1.0 and len(ensemble["runs"]) == 2

    top = predict(run, [cat_path], top_k=2, cache_dir=cache, device="cpu")[0]["top"]
    assert top[0][0] == "cat" and abs(sum(p for _, p in top) - 1) < 1e-6


def test_efficientnet_lite0_backbone_end_to_end(dataset, tmp_path, cache):
    record = train_features(dataset, tmp_path / "run", backbone="efficientnet_lite0", classifier="svm",
                            cache_dir=cache, device="cpu")
    assert record["metrics"]["val_accuracy"] == 1.0
    assert record["weights_id"] == "efficientnet_lite0:imagenet"


def test_bad_runs_and_inputs_give_one_line_errors(dataset, tmp_path, cache, capsys):
    run = tmp_path / "run"
    train_features(dataset, run, backbone="alexnet", cache_dir=cache, device="cpu")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(PerceptError, match="not an image file"):
        predict(run, [text], cache_dir=cache, device="cpu")
    with pytest.raises(PerceptError, match="not a percept run folder"):
        predict(tmp_path / "missing", [text])
    record = json.loads((run / "run.json").read_text())
    record["cache_id"] = "vgg16|other"
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(PerceptError, match=r"was trained on vgg16\|other, but this machine's alexnet is"):
        predict(run, [dataset / "val" / "cat" / "00.jpg"], cache_dir=cache, device="cpu")
    assert main(["predict", str(tmp_path / "missing"), str(text)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("percept: error:")
    assert main(["train", str(dataset), "-o", str(tmp_path / "r"), "--backbone", "resnet18", "-q"]) == 2
    assert "torchvision weights for resnet18 unavailable" in capsys.readouterr().err


def test_cli_train_evaluate_predict(dataset, tmp_path, cache, capsys, cat_path):
    run = tmp_path / "run"
    common = ["--cache-dir", str(cache), "--device", "cpu", "-q"]
    assert main(["train", str(dataset), "-o", str(run), "--backbone", "alexnet", *common]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy 1.000" in out and "wrote run" in out
    assert main(["evaluate", str(run), "--json", "--confusion-png", str(tmp_path / "cm.png"), *common]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
    assert Image.open(tmp_path / "cm.png").format == "PNG"
    assert main(["predict", str(run), str(cat_path), "--format", "csv", "--top-k", "1", *common]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[2] == "cat"


def test_cli_refuses_options_the_strategy_does_not_use(dataset, tmp_path, capsys):
    cases = [(["--epochs", "3"], "--epochs applies to --strategy finetune only"),
             (["--strategy", "finetune", "--classifier", "svm", "--C", "2"], "--classifier, --C apply to --strategy "
              "features only"),
             (["--augment", "strong"], "--augment applies to fine-tuning or to augmented copies"),
             (["--vflip", "0.5"], "augmentation settings apply to augmented copies only")]
    for argv, message in cases:
        assert main(["train", str(dataset), "-o", str(tmp_path / "run"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "run").exists()
    with pytest.raises(PerceptError, match="unknown setting 'classifer'"):
        train_features(dataset, tmp_path / "run", classifer="svm")


def test_finetune_freezes_trains_head_and_restores_best_epoch(dataset, tmp_path, monkeypatch):
    import torch

    from percept.transfer import finetune as ft
    from percept.transfer.finetune_net import FinetuneNet, load_finetuned

    seen_groups = []
    real_adamw = torch.optim.AdamW

    def spy_adamw(groups, *args, **kwargs):
        seen_groups.append([(g["name"], g["lr"], len(g["params"])) for g in groups])
        return real_adamw(groups, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", spy_adamw)
    pretrained = FinetuneNet("alexnet", 2).state_dict()
    record = ft.train_finetune(dataset, tmp_path / "run", backbone="alexnet", epochs=2, head_epochs=1, unfreeze=2,
                               lr=1e-3, batch_size=4, device="cpu", head_init="kaiming")
    # head phase: only the head's group; fine-tune phase: lr/9, lr/3 and lr reach the optimizer
    assert seen_groups[0] == [("head", 1e-3, 2)]
    assert [(n, round(lr, 6)) for n, lr, _ in seen_groups[1]] == [("early", round(1e-3 / 9, 6)),
                                                                  ("late", round(1e-3 / 3, 6)), ("head", 1e-3)]
    model = load_finetuned(tmp_path / "run", torch.device("cpu"))
    state = model.state_dict()
    for name in ("conv1", "conv2", "conv3"):  # below the top 2 stages: unchanged
        key = f"body.net.layers.{name}.weight"
        assert torch.equal(state[key], pretrained[key]), name
    assert not torch.equal(state["body.net.layers.conv5.weight"], pretrained["body.net.layers.conv5.weight"])
    best = max(h["val_accuracy"] for h in record["history"])
    assert record["metrics"]["val_accuracy"] == best
    assert record["history"][record["best_epoch"] - 1]["val_accuracy"] == best
    report = evaluate([tmp_path / "run"], device="cpu")
    assert report["accuracy"] == best  # the restored (best) weights were saved
    rows = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,phase,train_loss,val_accuracy" and len(rows) == 1 + len(record["history"])
    assert Image.open(tmp_path / "run" / "learning_curves.png").size == (640, 400)


def test_early_stopping_restores_the_best_weights(dataset, tmp_path, monkeypatch):
    import torch

    from percept.transfer import finetune as ft

    scores = iter([0.5, 0.9, 0.6, 0.4, 0.3, 0.2])
    snapshots = {}

    def fake_accuracy(model, loader, device):
        value = next(scores)
        snapshots[value] = {k: v.clone() for k, v in model.state_dict().items()}
        return value

    monkeypatch.setattr(ft, "accuracy", fake_accuracy)
    record = ft.train_finetune(dataset, tmp_path / "run", backbone="alexnet", epochs=5, head_epochs=1, unfreeze=1,
                               patience=2, batch_size=6, device="cpu", augment="none", head_init="kaiming")
    assert [h["val_accuracy"] for h in record["history"]] == [0.5, 0.9, 0.6, 0.4]  # stopped after 2 worse epochs
    assert record["best_epoch"] == 2 and record["metrics"]["val_accuracy"] == 0.9
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in snapshots[0.9].items())


def test_tta_averages_probabilities_over_views(dataset, tmp_path, cache):
    import numpy as np

    from percept.transfer.runs import load_run

    train_features(dataset, tmp_path / "run", backbone="alexnet", cache_dir=cache, device="cpu")
    run = load_run(tmp_path / "run")
    paths = [p for p, _ in scan_dataset(dataset).val]
    kw = dict(batch_size=4, device="cpu", cache_dir=cache, progress=False)
    plain = run.probabilities(paths, views=("center",), **kw)
    flipped = run.probabilities(paths, views=("center_flip",), **kw)
    both = run.probabilities(paths, views=("center", "center_flip"), **kw)
    assert np.allclose(both, (plain + flipped) / 2) and not np.allclose(plain, flipped)
    report = evaluate([tmp_path / "run"], tta="flip+crops", cache_dir=cache, device="cpu")
    assert report["tta"] == "flip+crops" and 0 <= report["accuracy"] <= 1
    with pytest.raises(PerceptError, match="unknown test-time augmentation"):
        evaluate([tmp_path / "run"], tta="rotate", cache_dir=cache, device="cpu")


def test_mixup_and_cutmix_mix_labels_as_they_mix_pixels():
    import torch

    from percept.transfer.augment import batch_mixer, get_augment

    torch.manual_seed(0)
    x = torch.stack([torch.zeros(3, 32, 32), torch.ones(3, 32, 32)])  # image 0 all black, image 1 all white
    y = torch.tensor([0, 1])
    for setting in ({"mixup": 1.0}, {"cutmix": 1.0}):
        mixer = batch_mixer(get_augment("none", **setting), num_classes=2)
        for _ in range(5):
            mixed, soft = mixer(x.clone(), y.clone())
            assert soft.shape == (2, 2) and torch.allclose(soft.sum(1), torch.ones(2))
            # the share of white pixels in each image equals the weight of label 1 (white's class)
            assert torch.allclose(mixed.mean(dim=(1, 2, 3)), soft[:, 1], atol=1e-5), setting
    assert batch_mixer(get_augment("light"), 2) is None
    with pytest.raises(PerceptError, match="unknown augmentation preset"):
        get_augment("extreme")


def test_strong_augmentation_trains_and_preview_draws_a_grid(dataset, tmp_path):
    from percept.transfer.finetune import train_finetune

    record = train_finetune(dataset, tmp_path / "run", backbone="alexnet", epochs=1, head_epochs=1, batch_size=4,
                            augment="strong", augment_overrides={"vflip": 0.5}, device="cpu")
    assert record["params"]["augmentation"]["vflip"] == 0.5 and record["params"]["augmentation"]["cutmix"] == 1.0
    grid = tmp_path / "grid.png"
    assert main(["augment-preview", str(dataset), "-o", str(grid), "--images", "2", "--per-image", "3",
                 "--size", "64"]) == 0
    assert Image.open(grid).size == (3 * 64 + 4 * 4, 2 * 64 + 3 * 4)


def test_reuse_head_copies_imagenet_rows_for_matching_class_names():
    import torch

    from percept.models.imagenet import imagenet_categories
    from percept.transfer.finetune_net import FinetuneNet

    model = FinetuneNet("efficientnet_lite0", 3)
    matched = model.reuse_imagenet_rows(["daisy", "my_own_class", "Tiger_cat"])
    assert matched == ["daisy", "Tiger_cat"]
    fc = model.body.net._fc
    daisy = imagenet_categories().index("daisy")
    assert torch.equal(model.head[1].weight[0], fc.weight[daisy]) and model.head[1].bias[0] == fc.bias[daisy]
    assert not torch.equal(model.head[1].weight[1], fc.weight[0])
    with pytest.raises(PerceptError, match="needs a backbone with an ImageNet classifier"):
        FinetuneNet("alexnet", 2).reuse_imagenet_rows(["daisy", "rose"])
