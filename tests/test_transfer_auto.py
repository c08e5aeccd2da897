"""``--strategy auto``: the recipe is chosen on held-out training images only, and the better recipe wins."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageOps

from percept.cli import main
from percept.errors import PerceptError
from percept.transfer import auto
from percept.transfer.auto import holdout_folder, train_auto
from percept.transfer.data import scan_dataset


@pytest.fixture()
def upside_down(tmp_path, cat_path, crops):
    """Two classes that differ only by orientation: crops of the cat, upright and upside down."""
    root = tmp_path / "orient"
    for split, n, seed in (("train", 8, 0), ("val", 4, 1)):
        crops(cat_path, root / split / "up", n, seed)
        down = root / split / "down"
        down.mkdir(parents=True)
        for path in sorted((root / split / "up").glob("*.jpg")):
            ImageOps.flip(Image.open(path)).save(down / path.name, quality=90)
    return root


@pytest.fixture()
def feature_cache(tmp_path):
    """A private feature cache (not pytest's own ``cache`` fixture, whose object is no path)."""
    return tmp_path / "features-cache"

def test_holdout_comes_from_the_training_images_only(dataset, tmp_path):
    split = scan_dataset(dataset)
    n_fit, n_held = holdout_folder(split, tmp_path / "h", 0.25, seed=0)
    assert (n_fit, n_held) == (8, 4)  # 6 per class: 2 held out each
    linked = {p.resolve() for p in (tmp_path / "h").rglob("*.jpg")}
    assert linked == {p.resolve() for p, _ in split.train}  # no validation image is used for the choice
    assert len(list((tmp_path / "h" / "val" / "cat").iterdir())) == 2


def test_auto_picks_the_clearly_better_recipe(upside_down, tmp_path, feature_cache, monkeypatch):
    # "flipped" adds three vertically flipped copies of every training image with the original's label: the
    # only signal (orientation) is then mostly reversed, so the cross-validated accuracy collapses.
    recipes = {"flipped": {"augment_copies": 3, "augment": "light", "augment_overrides": {"vflip": 1.0}},
               "plain": {}}
    monkeypatch.setattr(auto, "FEATURE_RECIPES", recipes)
    monkeypatch.setattr(auto, "estimate_finetune_seconds", lambda *a: 1e9)  # fine-tuning does not fit
    record = train_auto(upside_down, tmp_path / "run", backbone="alexnet", cache_dir=feature_cache, device="cpu",
                        budget_minutes=10)
    scores = {c["name"]: c.get("cv_accuracy") for c in record["auto"]["candidates"]}
    assert scores["plain"] >= scores["flipped"] + 0.25, scores
    assert record["auto"]["chosen"] == "plain" and record["strategy"] == "features"
    assert "skipped" in next(c for c in record["auto"]["candidates"] if c["name"] == "finetune")
    saved = json.loads((tmp_path / "run" / "run.json").read_text())
    assert saved["auto"]["chosen"] == "plain" and not (tmp_path / "run" / ".auto").exists()
    assert saved["metrics"]["val_accuracy"] >= 0.75  # the final run is trained on all training images


def test_auto_settings_and_cli_refusals(upside_down, tmp_path, capsys):
    with pytest.raises(PerceptError, match="budget-minutes"):
        train_auto(upside_down, tmp_path / "r", budget_minutes=0)
    code = main(["train", str(upside_down), "-o", str(tmp_path / "r"), "--strategy", "auto", "--classifier", "svm"])
    err = capsys.readouterr().err
    assert code != 0 and "--classifier" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code = main(["train", str(upside_down), "-o", str(tmp_path / "r"), "--budget-minutes", "3"])
    err = capsys.readouterr().err
    assert code != 0 and "--strategy auto" in err


def test_auto_tries_finetuning_when_it_fits(upside_down, tmp_path, feature_cache, monkeypatch):
    monkeypatch.setattr(auto, "FEATURE_RECIPES", {"plain": {}})
    monkeypatch.setattr(auto, "FINETUNE_RECIPE", {"epochs": 1, "unfreeze": 1, "batch_size": 4})
    record = train_auto(upside_down, tmp_path / "run", backbone="alexnet", cache_dir=feature_cache, device="cpu",
                        budget_minutes=30)
    ft = next(c for c in record["auto"]["candidates"] if c["name"] == "finetune")
    assert 0.0 <= ft["holdout_accuracy"] <= 1.0 and 0.0 <= ft["features_holdout_accuracy"] <= 1.0
    assert ft["seconds"] > 0 and ft["estimated_seconds"] > 0 and ft["held_out_images"] == 4
    assert record["strategy"] == record["auto"]["strategy"]
    assert record["auto"]["chosen"] == ("finetune" if record["strategy"] == "finetune" else "plain")


def test_a_tiny_budget_keeps_the_first_recipe_only(upside_down, tmp_path, feature_cache):
    record = train_auto(upside_down, tmp_path / "run", backbone="alexnet", cache_dir=feature_cache, device="cpu",
                        budget_minutes=0.001)
    tried = [c["name"] for c in record["auto"]["candidates"] if "cv_accuracy" in c]
    skipped = {c["name"]: c["skipped"] for c in record["auto"]["candidates"] if "skipped" in c}
    assert tried == ["avg"] and record["auto"]["chosen"] == "avg" and record["params"]["pooling"] == "avg"
    assert set(skipped) == {"max", "gram", "bilinear", "finetune"} and skipped["max"] == "out of time"
