"""percept.gaze: data checks, splits, centre bias, DeepGaze densities, metrics on toy maps, training and resume.

Tiny sizes: the fixture data set (tests/data/gaze: 8 NUS stimuli at 80 px, 40 fixations each), AlexNet features of
96-px inputs, a few epochs.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from percept.errors import PerceptError
from percept.gaze import metrics as M
from percept.gaze.baselines import fit_gaussian_blob, uniform_log_density
from percept.gaze.centre_bias import fit_centre_bias
from percept.gaze.data import kfold, load_data, split_images
from percept.gaze.models import DeepGaze

DATA = Path(__file__).parent / "data" / "gaze"
TINY = {"feature_size": 96, "epochs": 3, "folds": 4, "val_fraction": 0.2, "lr": 0.005, "batch_size": 2,
        "device": "cpu"}


def copy_data(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA, tmp_path / "data"))


# ------------------------------------------------------------------------------------------------------- data


def test_fixture_loads_with_scaled_fixations():
    data = load_data(DATA)
    assert len(data.names) == 8 and data.count() == 320
    s = data.stimuli["003.jpg"]
    assert (s.width, s.height) == (80, 60) and s.grid == (256, 192)
    grid = data.grid_fixations("003.jpg")
    assert grid.min() >= 0 and (grid[:, 0] < 256).all() and (grid[:, 1] < 192).all()
    expected = np.floor(data.xy["003.jpg"] * 256 / 80).clip(0, [255, 191])
    assert (grid == expected).all()


def _edit(path: Path, line: int, text: str | None) -> None:
    lines = path.read_text().splitlines()
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("file, line, text, message", [
    ("fixations.csv", 5, "001.jpg,3,81.5,10", "fixations.csv line 5: fixation (81.5, 10) lies outside '001.jpg'"),
    ("fixations.csv", 7, "999.jpg,3,10,10", "fixations.csv line 7: image '999.jpg' is not in images.csv"),
    ("fixations.csv", 3, "001.jpg,3,abc,10", "fixations.csv line 3: x 'abc' is not a number"),
    ("fixations.csv", 4, "001.jpg,3,10", "fixations.csv line 4: expected 4 fields, got 3"),
    ("fixations.csv", 4, "001.jpg,3,10,nan", "fixations.csv line 4: y 'nan' is not a finite number"),
    ("images.csv", 1, "image,height", "images.csv line 1: missing column(s) width"),
    ("images.csv", 3, "002.jpg,80,81", "images.csv line 3: stimuli/002.jpg is 80x80 px, not 80x81"),
    ("images.csv", 3, "002.jpg,80,-4", "images.csv line 3: height '-4' is not a positive whole number"),
    ("images.csv", 4, "001.jpg,80,80", "images.csv line 4: '001.jpg' is listed twice (first on line 2)"),
])
def test_one_line_errors_name_the_file_and_line(tmp_path, file, line, text, message):
    root = copy_data(tmp_path)
    _edit(root / file, line, text)
    with pytest.raises(PerceptError) as err:
        load_data(root)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_images_missing_from_stimuli_or_from_the_csv(tmp_path):
    root = copy_data(tmp_path)
    (root / "stimuli" / "004.jpg").unlink()
    with pytest.raises(PerceptError, match=r"images.csv line 4: '004.jpg' is not in stimuli/"):
        load_data(root)
    root = copy_data(tmp_path / "b")
    shutil.copy(root / "stimuli" / "001.jpg", root / "stimuli" / "extra.jpg")
    with pytest.raises(PerceptError, match=r"stimuli/extra.jpg is missing from images.csv"):
        load_data(root)


def test_splits_are_by_image_and_seeded():
    names = [f"{i:03d}.jpg" for i in range(23)]
    folds = kfold(names, 5, seed=3)
    assert sorted(n for f in folds for n in f) == sorted(names)
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert folds == kfold(list(reversed(names)), 5, seed=3) and folds != kfold(names, 5, seed=4)
    tests = []
    for fold in range(5):
        s = split_images(names, folds=5, fold=fold, val_fraction=0.2, seed=3)
        assert not (set(s.train) & set(s.val)) and not (set(s.train) & set(s.test)) and not (set(s.val) & set(s.test))
        assert sorted(s.train + s.val + s.test) == sorted(names) and s.val
        tests += s.test
    assert sorted(tests) == sorted(names)  # each image is held out exactly once
    everything = split_images(names, folds=1, val_fraction=0.1)
    assert not everything.test and len(everything.val) == 2


# --------------------------------------------------------------------------------------- centre bias, models


def test_centre_bias_and_baselines_are_normalised_and_beat_uniform():
    data = load_data(DATA)
    cb = fit_centre_bias(data, data.names, folds=4)
    assert cb.scores and cb.bandwidth > 0
    for w, h in [(256, 256), (256, 192), (13, 7)]:
        for log_density in (cb.log_density(w, h), uniform_log_density(w, h),
                            fit_gaussian_blob(data.normalised("001.jpg")).log_density(w, h)):
            assert log_density.shape == (h, w)
            assert abs(float(torch.logsumexp(log_density.double().flatten(), 0))) < 1e-5
    # the fitted density is peaked at the centre and gains over uniform on its own fixations
    grid = cb.log_density(256, 256)
    assert grid[128, 128] > grid[5, 5]
    lls = [M.log_likelihoods(cb.log_density(*data.stimuli[n].grid).numpy(), data.grid_fixations(n)).mean()
           for n in data.names]
    assert np.mean(lls) > 0.2


@pytest.mark.parametrize("readout", [[1], [8, 16, 2, 1]])
def test_deepgaze_gives_a_normalised_log_density(readout):
    torch.manual_seed(0)
    net = DeepGaze(12, readout)
    for module in net.readout:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.5)
    log_cb = torch.log_softmax(torch.randn(40 * 30), 0).view(30, 40)
    out = net(torch.randn(3, 12, 5, 7), log_cb)
    assert out.shape == (3, 30, 40)
    assert torch.allclose(torch.logsumexp(out.flatten(1), 1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(out.exp().sum((1, 2)), torch.ones(3), atol=1e-5)
    assert out.std() > 0.1  # the features matter


def test_untrained_deepgaze_is_the_centre_bias():
    data = load_data(DATA)
    cb = fit_centre_bias(data, data.names, folds=4)
    net = DeepGaze(12, [1])  # the readout starts at zero: the density is the centre bias
    for name in data.names:
        grid, fix = data.stimuli[name].grid, data.grid_fixations(name)
        log_cb = cb.log_density(*grid)
        log_density = net(torch.randn(1, 12, 4, 4), log_cb)[0].detach()
        assert np.allclose(M.log_likelihoods(log_density.numpy(), fix), M.log_likelihoods(log_cb.numpy(), fix),
                           atol=1e-4)
        assert abs(M.information_gains(log_density.numpy(), log_cb.numpy(), fix).mean()) < 1e-4


# -------------------------------------------------------------------------------------------------- metrics

SMAP = np.array([[0.0, 1.0], [2.0, 3.0]])
TOP = np.array([[1, 1]])  # (column, row) of the pixel holding 3


def test_metrics_equal_hand_computed_values():
    assert M.auc(SMAP, TOP) == pytest.approx(3.5 / 4)  # above 3 pixels, ties with itself
    assert M.auc(SMAP, np.array([[1, 1], [0, 0]])) == pytest.approx((3.5 + 0.5) / 8)
    assert M.shuffled_auc(SMAP, TOP, np.array([[1, 0], [0, 1], [1, 1]])) == pytest.approx(2.5 / 3)
    assert M.nss(SMAP, TOP)[0] == pytest.approx(1.5 / math.sqrt(1.25))
    assert M.cc(SMAP, TOP, sigma=1e-3) == pytest.approx(1.5 / math.sqrt(5 * 0.75))
    p = np.log(np.array([[0.1, 0.2], [0.3, 0.4]]))
    assert M.log_likelihoods(p, TOP)[0] == pytest.approx(math.log2(0.4 * 4))
    assert M.information_gains(p, np.log(np.array([[0.4, 0.3], [0.2, 0.1]])), TOP)[0] == pytest.approx(2.0)
    flat = np.full((2, 2), 0.25)
    assert M.auc(flat, TOP) == 0.5 and M.nss(flat, TOP)[0] == 0.0 and M.cc(flat, TOP, sigma=1.0) == 0.0
    assert M.log_likelihoods(np.log(flat), TOP)[0] == pytest.approx(0.0)


def test_fixation_map_blur_is_scipys_gaussian_filter():
    from scipy.ndimage import gaussian_filter

    fix = np.array([[0, 0], [3, 2], [3, 2], [6, 4]])
    counts = M.fixation_map(fix, (5, 7))
    assert counts.sum() == 4 and counts[2, 3] == 2
    for sigma in (0.7, 2.0, 6.0):
        assert np.allclose(M.fixation_map(fix, (5, 7), sigma), gaussian_filter(counts, sigma, mode="reflect"))


def test_image_metrics_and_averages():
    rng = np.random.default_rng(0)
    log_density = np.log(rng.dirichlet(np.ones(30))).reshape(5, 6)
    base = np.full((5, 6), -math.log(30))
    fix = np.array([[0, 0], [5, 4], [2, 3]])
    row = M.image_metrics(log_density, base, fix, np.array([[1, 1]]), sigma=1.0)
    assert row["ll"] == pytest.approx(row["ig"]) and row["fixations"] == 3
    second = {**row, "ll": 0.0, "cc": 0.0, "fixations": 1}
    mean = M.average([row, second])
    assert mean["ll"] == pytest.approx(row["ll"] * 3 / 4) and mean["cc"] == pytest.approx(row["cc"] / 2)
    assert mean["fixations"] == 4 and mean["images"] == 2


# -------------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from percept.gaze import train_gaze

    folder = tmp_path_factory.mktemp("gaze")
    out = folder / "g.pt"
    record = train_gaze(DATA, out, cache_dir=folder / "cache", patience=10, **TINY)
    return out, record, folder


def test_training_lowers_the_nll_and_writes_a_model_file(trained):
    from percept.gaze import evaluate_gaze, load_gaze_model
    from percept.models import get_model

    out, record, folder = trained
    assert out.is_file() and not Path(f"{out}.ckpt").exists()
    split = record["split"]
    assert len(split["test"]) == 2 and len(split["val"]) == 1 and len(split["train"]) == 5
    history = record["history"]
    assert len(history) == 3 and history[-1]["train_ll"] > history[0]["train_ll"]
    model = get_model(out)  # the registry reads the file's format tag
    assert model.name == "deepgaze1" and model.training["split"] == split
    assert load_gaze_model(out).spec.layers == ("relu3", "relu4", "relu5")
    with pytest.warns(UserWarning, match="trained on"):
        result = evaluate_gaze(out, DATA, subset="all", cache_dir=folder / "cache", device="cpu")
    train = [row for row in result["images"] if row["image"] in split["train"]]
    gain = np.mean([row["deepgaze1"]["ll"] - row["centre bias"]["ll"] for row in train])
    assert gain > 0  # lower NLL than the centre bias it started from, on the images it was trained on
    held = evaluate_gaze(out, DATA, cache_dir=folder / "cache", device="cpu")
    assert held["subset"] == "held-out" and [r["image"] for r in held["images"]] == split["test"]
    assert list(held["rows"]) == ["uniform", "gaussian blob", "centre bias", "deepgaze1"]
    assert held["rows"]["uniform"]["ll"] == 0.0 and held["rows"]["centre bias"]["ig"] == 0.0


def test_resume_continues_and_refuses_changed_settings(tmp_path):
    from percept.gaze import train_gaze

    out = tmp_path / "r.pt"
    cache = tmp_path / "cache"
    first = train_gaze(DATA, out, cache_dir=cache, max_minutes=0, patience=10, **TINY)
    assert first["stopped"] == "time limit" and len(first["history"]) == 1 and Path(f"{out}.ckpt").is_file()
    with pytest.raises(PerceptError, match=r"holds a training run; add --resume"):
        train_gaze(DATA, out, cache_dir=cache, patience=10, **TINY)
    with pytest.raises(PerceptError, match=r"cannot resume .* \(lr 0.005 -> 0.01\)"):
        train_gaze(DATA, out, cache_dir=cache, resume=True, patience=10, **{**TINY, "lr": 0.01})
    done = train_gaze(DATA, out, cache_dir=cache, resume=True, patience=10, **TINY)
    assert done["resumed"] and done["stopped"] == "epochs" and len(done["history"]) == 3
    assert done["history"][0] == first["history"][0] and not Path(f"{out}.ckpt").exists()
    with pytest.raises(PerceptError, match="no interrupted run to resume .* already finished"):
        train_gaze(DATA, out, cache_dir=cache, resume=True, patience=10, **TINY)


def test_foreign_files_and_unused_options_are_refused(tmp_path):
    from percept.gaze import load_gaze_model, train_gaze

    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, plain)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    for path, message in [(plain, "is a plain state dict, not a percept gaze model"),
                          (text, "is not a PyTorch file"), (tmp_path / "none.pt", "not found")]:
        with pytest.raises(PerceptError, match=message):
            load_gaze_model(path)
    with pytest.raises(PerceptError, match="--model deepgaze1 does not use --readout"):
        train_gaze(DATA, tmp_path / "x.pt", readout=[4, 1])
    with pytest.raises(PerceptError, match="fold must be 0 .. 3"):
        train_gaze(DATA, tmp_path / "x.pt", folds=4, fold=4)
