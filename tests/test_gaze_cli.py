"""percept gaze-train / gaze / gaze-eval on the tiny fixture data set (tests/data/gaze)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from percept.cli import main
from percept.image import load_image, read_metadata

DATA = Path(__file__).parent / "data" / "gaze"
TINY = ["--feature-size", "96", "--epochs", "2", "--folds", "4", "--val-fraction", "0.2", "--lr", "0.005",
        "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gaze_cli")
    out = folder / "g.pt"
    assert main(["gaze-train", str(DATA), "-o", str(out), "--cache-dir", str(folder / "cache"), *TINY]) == 0
    return out, folder


def test_gaze_train_reports_and_writes_the_model(model, capsys):
    out, folder = model
    assert out.is_file()
    raw = torch.load(out, weights_only=True)
    assert raw["format"] == "percept-gaze" and raw["training"]["params"]["backbone"] == "alexnet"


def test_gaze_writes_heat_maps_and_overlays_with_their_record(model, tmp_path, capsys):
    out, _ = model
    image = DATA / "stimuli" / "003.jpg"
    heat = tmp_path / "heat.png"
    assert main(["gaze", str(image), "-o", str(heat), "--model", str(out), "--device", "cpu", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert load_image(heat).size == (80, 60)  # the image's own size
    record = read_metadata(heat)
    assert record["method"] == "gaze" and record["params"]["model"] == str(out) and not record["params"]["overlay"]
    assert record["command"].startswith("percept gaze ")
    over = tmp_path / "over.png"
    assert main(["gaze", str(image), "-o", str(over), "--params-from", str(heat), "--overlay", "-q"]) == 0
    assert read_metadata(over)["params"]["overlay"] and load_image(over).tobytes() != load_image(heat).tobytes()
    folder = tmp_path / "maps"
    images = [str(DATA / "stimuli" / n) for n in ("001.jpg", "207.jpg")]
    assert main(["gaze", *images, "-o", str(folder), "--model", str(out), "-q"]) == 0
    assert load_image(folder / "207.jpg".replace(".jpg", ".png")).size == (79, 80)
    assert main(["gaze", str(image), "-o", str(tmp_path / "x.png"), "--model", "deepgaze3", "-q"]) == 2
    assert "unknown gaze model 'deepgaze3' (did you mean deepgaze2?); choose one of deepgaze2 or a GAZE.pt" in \
        capsys.readouterr().err


def test_gaze_uses_the_model_that_ships_with_percept_by_default(tmp_path, capsys):
    image = DATA / "stimuli" / "003.jpg"
    heat = tmp_path / "heat.png"
    assert main(["gaze", str(image), "-o", str(heat), "--device", "cpu", "-q"]) == 0
    assert "fixation density of deepgaze2" in capsys.readouterr().out
    record = read_metadata(heat)
    assert record["params"]["model"] == "deepgaze2" and record["inputs"]["model"] == "deepgaze2:nus500"
    assert "--model deepgaze2" in record["command"]
    again = tmp_path / "again.png"
    assert main(["gaze", str(image), "-o", str(again), "--params-from", str(heat), "-q"]) == 0
    assert load_image(again).tobytes() == load_image(heat).tobytes()


def test_the_shipped_model_is_a_trained_deepgaze2_that_is_not_the_centre_bias():
    from percept.gaze import predict_gaze
    from percept.models import get_model

    gm = get_model("deepgaze2", kind="gaze")
    assert gm.name == "deepgaze2" and gm.weights_id == "deepgaze2:nus500" and gm.spec.weights == "vgg19:gatys"
    assert gm.training["images"] == 500 and not gm.training["split"]["test"]  # every image trained, none held out
    (prediction,) = predict_gaze(DATA / "stimuli" / "207.jpg", device="cpu")
    assert abs(float(torch.logsumexp(prediction.log_density.double().flatten(), 0))) < 1e-6
    grid = prediction.log_density.shape
    centre = gm.centre_bias.log_density(grid[1], grid[0])
    density, prior = prediction.log_density.exp(), centre.exp()
    assert float((density - prior).abs().sum()) > 0.2  # the image's content moves the prediction off the prior


def test_predicted_density_is_normalised_at_image_size(model):
    from percept.gaze import predict_gaze

    out, _ = model
    (prediction,) = predict_gaze(DATA / "stimuli" / "207.jpg", out, device="cpu")
    assert prediction.log_density.shape == (80, 79)
    assert abs(float(torch.logsumexp(prediction.log_density.double().flatten(), 0))) < 1e-6


def test_gaze_eval_prints_a_table_with_the_baselines_and_json(model, capsys):
    out, folder = model
    cache = ["--cache-dir", str(folder / "cache")]
    assert main(["gaze-eval", str(out), str(DATA), *cache, "-q"]) == 0
    text = capsys.readouterr().out
    assert "held-out images" in text
    for row in ("uniform", "gaussian blob", "centre bias", "deepgaze1"):
        assert f"\n{row} " in text
    assert main(["gaze-eval", str(out), str(DATA), *cache, "--json", "--cc-sigma", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["subset"] == "held-out" and result["record"]["params"]["cc_sigma"] == 4.0
    assert set(result["rows"]["deepgaze1"]) >= {"ll", "ig", "auc", "sauc", "nss", "cc"}


def test_gaze_cli_errors_are_one_line(model, tmp_path, capsys):
    out, _ = model
    assert main(["gaze-train", str(DATA), "-o", str(tmp_path / "x.pt"), "--readout", "4,1", "-q"]) == 2
    assert "does not use --readout" in capsys.readouterr().err
    assert main(["gaze-train", str(DATA), "-o", str(tmp_path / "x.png"), "-q"]) == 2
    assert "must end in .pt" in capsys.readouterr().err
    assert main(["gaze-eval", str(DATA / "images.csv"), str(DATA), "-q"]) == 2
    err = capsys.readouterr().err
    assert "not a PyTorch file" in err and len(err.strip().splitlines()) == 1


def test_deepgaze2_trains_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "g2.pt"
    argv = ["gaze-train", str(DATA), "-o", str(out), "--model", "deepgaze2", "--layers", "relu5_4", "--readout",
            "4,2,1", "--feature-size", "64", "--epochs", "1", "--folds", "4", "--device", "cpu", "-q",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    assert "trained deepgaze2 on vgg19 features" in capsys.readouterr().out
    raw = torch.load(out, weights_only=True)
    assert raw["architecture"]["readout"] == [4, 2, 1] and raw["features"]["layers"] == ["relu5_4"]
