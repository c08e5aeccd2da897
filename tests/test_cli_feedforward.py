"""The command line of feed-forward style transfer: train-style, stylize --model, info and export of a network."""

from __future__ import annotations

import json

import pytest
import torch

from percept.cli import main
from percept.image import load_image, read_metadata, to_tensor
from percept.style.transform_files import load_transform_net


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory, cat_path, rocket_path, starry_path, wave_path):
    """A two-style network trained for 4 steps through the CLI, and the folder it came from."""
    root = tmp_path_factory.mktemp("cli_ff")
    photos = root / "photos"
    photos.mkdir()
    for photo in (cat_path, rocket_path):
        (photos / photo.name).write_bytes(photo.read_bytes())
    model = root / "two.pt"
    code = main(["train-style", str(starry_path), str(wave_path), "--content-dir", str(photos), "-o", str(model),
                 "--size", "48", "--steps", "4", "--batch-size", "2", "--sample-every", "2", "--device", "cpu", "-q"])
    assert code == 0
    return {"root": root, "model": model, "photos": photos}


def test_train_style_writes_model_samples_and_record(cli_model, capsys):
    model, folder = cli_model["model"], cli_model["root"] / "two_training"
    assert model.is_file() and (folder / "checkpoint.pt").is_file()
    assert sorted(p.name for p in (folder / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    record = json.loads((folder / "train.json").read_text())
    assert record["model"] == str(model) and record["training"]["steps"] == 4 and record["stopped"] == "steps"
    assert [s["name"] for s in record["styles"]] == ["van_gogh_starry_night", "hokusai_great_wave"]
    code, out, _ = run(capsys, "info", model)
    assert code == 0 and "style 0: van_gogh_starry_night" in out and "style 1: hokusai_great_wave" in out
    assert "trained 4 steps of 2 crops of 48 px from 2 photos" in out and "--style-index K" in out


def test_train_style_resumes_and_refuses_to_overwrite(cli_model, capsys, starry_path, wave_path):
    args = [starry_path, wave_path, "--content-dir", cli_model["photos"], "-o", cli_model["model"], "--size", "48",
            "--batch-size", "2", "--sample-every", "2", "--device", "cpu", "-q"]
    code, _, err = run(capsys, "train-style", *args, "--steps", "6")
    assert code != 0 and "holds a training run" in err and "\n" not in err.strip()
    code, out, _ = run(capsys, "train-style", *args, "--steps", "6", "--resume")
    assert code == 0 and "trained 6 steps" in out
    assert load_transform_net(cli_model["model"]).metadata["training"]["steps"] == 6


def test_stylize_with_model_file_and_folder(cli_model, capsys, cat_path, tmp_path):
    out = tmp_path / "cat.png"
    code, stdout, _ = run(capsys, "stylize", cat_path, "-o", out, "--model", cli_model["model"], "--style-index", "1",
                          "--size", "40", "-q")
    assert code == 0 and "trained network; style: hokusai_great_wave 1.00" in stdout
    record = read_metadata(out)
    assert record["style_blend_weights_normalised"] == [0.0, 1.0] and record["params"]["size"] == 40
    assert "--model" in record["command"] and "--style-index 1" in record["command"]
    image = to_tensor(load_image(out))
    assert image.shape == (1, 3, 27, 40)
    net = load_transform_net(cli_model["model"])
    with torch.no_grad():
        expected = net(to_tensor(load_image(cat_path), longest=40), [0.0, 1.0])
    assert (image - expected).abs().max() < 1.5 / 255  # 8-bit rounding only

    folder = tmp_path / "styled"
    code, stdout, _ = run(capsys, "stylize", cli_model["photos"], "-o", folder, "--model", cli_model["model"],
                          "--style-blend-weights", "1,1", "--size", "40", "-q")
    assert code == 0 and "wrote 2 images" in stdout
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["chelsea_cat.png", "rocket_launch.png"]
    assert read_metadata(folder / names[0])["style_blend_weights_normalised"] == [0.5, 0.5]


def test_stylize_with_model_bad_input_is_one_line(cli_model, capsys, cat_path, starry_path, tmp_path):
    cases = [
        (["stylize", cat_path, starry_path, "-o", tmp_path / "a.png", "--model", cli_model["model"]],
         "drop the STYLE image"),
        (["stylize", cat_path, "-o", tmp_path / "a.png", "--model", cli_model["model"]], "choose one by index"),
        (["stylize", cat_path, "-o", tmp_path / "a.png", "--model", cli_model["model"], "--style-index", "7"],
         "style index 7 out of range"),
        (["stylize", cat_path, "-o", tmp_path / "a.png", "--model", cli_model["model"], "--style-blend-weights",
          "1,2,3"], "style-blend-weights has 3 values"),
        (["stylize", cat_path, "-o", tmp_path / "a.png", "--model", starry_path], "not a PyTorch file"),
        (["stylize", cat_path, "-o", tmp_path / "a.png", "--model", tmp_path / "missing.pt"], "not found"),
        (["stylize", cli_model["photos"], "-o", cat_path, "--model", cli_model["model"], "--style-index", "0"],
         "-o must be a folder"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code != 0 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "a.png").exists()


def test_export_style_network_to_onnx(cli_model, capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "wave.onnx"
    code, stdout, _ = run(capsys, "export", cli_model["model"], "-o", out, "--style-index", "1")
    assert code == 0 and out.is_file() and "style weights [0.0, 1.0]" in stdout
    spec = json.loads((tmp_path / "wave.onnx.json").read_text())
    assert spec["style_blend_weights"] == [0.0, 1.0] and spec["model"]["styles"][1]["name"] == "hokusai_great_wave"
