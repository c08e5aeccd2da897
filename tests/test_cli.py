"""The command line: help, models, outputs with metadata, reproduction, and every kind of bad input."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image

from percept.cli import main
from percept.image import read_metadata

FAST = ["--size", "48", "--iterations", "3", "-q"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_help_explains_options_with_defaults(capsys):
    for command in ("stylize", "texture", "models", "info"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        text = capsys.readouterr().out
        assert "default" in text, command
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    text = capsys.readouterr().out
    for option in ("--style-weight", "--preserve-color", "--scales", "--timelapse", "--seed", "--device", "--init"):
        assert option in text
    assert "(default: 100.0)" in text and "(default: lbfgs)" in text
    assert run(capsys, )[0] == 0  # bare `percept` prints help


def test_models_lists_weights_availability_and_layers(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for text in ("vgg19:gatys", "vgg19:caffe", "vgg16:imagenet1k_v1", "alexnet:imagenet1k_v1", "installed",
                 "relu4_2", "pool5", "(default)", "efficientnet_lite0:imagenet", "resnet18"):
        assert text in out
    assert "downloads on first use" in out or "in torch cache" in out  # vgg19:imagenet1k_v1


def test_stylize_writes_png_with_parameters_frames_and_timelapse(capsys, tmp_path, cat_path, starry_path):
    out = tmp_path / "out.png"
    code, stdout, err = run(capsys, "stylize", cat_path, starry_path, "-o", out, *FAST, "--save-every", "1",
                            "--timelapse", tmp_path / "t.gif", "--seed", "3")
    assert code == 0, err
    assert f"wrote {out}" in stdout and "losses: content" in stdout
    record = read_metadata(out)
    assert record["params"]["seed"] == 3 and record["params"]["size"] == 48
    assert record["command"].startswith("percept stylize ")
    assert len(list((tmp_path / "out_frames").glob("step*.png"))) == 3
    with Image.open(tmp_path / "t.gif") as gif:  # Pillow merges frames identical in 8 bits
        assert 2 <= gif.n_frames <= 4 and gif.info["loop"] == 0
    code, stdout, _ = run(capsys, "info", out)
    assert code == 0 and "reproduce with" in stdout and "--seed 3" in stdout


def test_params_from_reproduces_a_result_exactly(capsys, tmp_path, cat_path, starry_path):
    first, again = tmp_path / "a.png", tmp_path / "b.png"
    assert run(capsys, "stylize", cat_path, starry_path, "-o", first, *FAST, "--init", "noise", "--seed", "5")[0] == 0
    assert run(capsys, "stylize", cat_path, starry_path, "-o", again, "-q", "--params-from", first)[0] == 0
    assert read_metadata(again)["params"] == read_metadata(first)["params"]
    assert Image.open(first).tobytes() == Image.open(again).tobytes()


def test_texture_command(capsys, tmp_path, texture_path):
    out = tmp_path / "tex.png"
    code, stdout, err = run(capsys, "texture", texture_path, "-o", out, "--size", "40", "--iterations", "3", "-q")
    assert code == 0, err
    assert Image.open(out).size == (40, 40)
    assert read_metadata(out)["method"] == "texture"


def _bad_inputs(tmp_path: Path, cat: Path) -> dict[str, tuple[list, str]]:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(cat.read_bytes()[: cat.stat().st_size // 3])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    huge = tmp_path / "huge.png"  # a valid PNG header claiming 100000 x 100000 pixels (a decompression bomb)
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b""))
    out = tmp_path / "out" / "o.png"  # default output for the cases below
    return {
        "missing file": (["stylize", tmp_path / "nope.jpg", cat, "-o", out], "content image .*nope.jpg' not found"),
        "not an image": (["stylize", text, cat, "-o", out], "not an image file"),
        "zero-size file": (["stylize", cat, empty, "-o", out], "style image .*empty.png' is empty"),
        "huge image": (["stylize", cat, huge, "-o", out], "huge.png' is too large"),
        "truncated image": (["stylize", truncated, cat, "-o", out], "corrupt or truncated"),
        "corrupt image": (["stylize", corrupt, cat, "-o", out], "not an image file|corrupt or truncated"),
        "unknown layer": (["stylize", cat, cat, "-o", out, "--style-layers", "relu1_1,relu7_1"],
                          "unknown layer 'relu7_1'"),
        "unavailable weights": (["stylize", cat, cat, "-o", out, "--weights", "imagenet1k_v1"],
                                "weights vgg19:imagenet1k_v1 unavailable; tried"),
        "unwritable output": (["stylize", cat, cat, "-o", tmp_path / "no" / "such" / "dir" / "o.png"],
                              "does not exist"),
        "output is a folder": (["stylize", cat, cat, "-o", tmp_path], "is a directory"),
        "bad size": (["stylize", cat, cat, "-o", out, "--size", "0"], "size 0 out of range"),
        "too small for the network": (["stylize", cat, cat, "-o", out, "--size", "16"], "too small"),
        "texture from a missing file": (["texture", tmp_path / "nope.png", "-o", out], "texture source .*nope.png. not found"),
    }


def test_every_bad_input_gives_one_line_and_no_output(capsys, tmp_path, cat_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    (tmp_path / "out").mkdir()
    for case, (argv, message) in _bad_inputs(tmp_path, cat_path).items():
        code, out, err = run(capsys, argv[0], *FAST, *argv[1:])  # the case's options win
        assert code != 0, case
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("percept: error: "), (case, err)
        assert pytest.importorskip("re").search(message, lines[0]), (case, lines[0])
        assert "Traceback" not in out + err
        assert list((tmp_path / "out").iterdir()) == [], case  # no partial or temporary file


def test_console_script_exits_nonzero_without_traceback(tmp_path, cat_path):
    """The installed `percept` command, as a user runs it."""
    exe = shutil.which("percept", path=os.path.dirname(sys.executable)) or "percept"
    proc = subprocess.run([exe, "stylize", str(tmp_path / "missing.jpg"), str(cat_path), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"percept: error: content image '{tmp_path / 'missing.jpg'}' not found"
    assert not (tmp_path / "o.png").exists()


def test_interrupted_run_leaves_no_output(capsys, tmp_path, cat_path, starry_path, monkeypatch):
    import percept.style.optimize as optimize

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(optimize, "_optimise", interrupt)
    code, _, err = run(capsys, "stylize", cat_path, starry_path, "-o", tmp_path / "o.png", *FAST)
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


def test_outputs_are_written_whole_with_the_usual_permissions(tmp_path):
    import os

    from percept.image import read_metadata, save_image

    umask = os.umask(0o022)
    try:
        path = save_image(torch.full((1, 3, 8, 8), 0.5), tmp_path / "grey.png", {"seed": 1})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, like any file the user writes
    assert read_metadata(path) == {"seed": 1} and [p.name for p in tmp_path.iterdir()] == ["grey.png"]


@pytest.mark.parametrize("error", [MemoryError, torch.OutOfMemoryError])
def test_out_of_memory_is_one_line_with_a_fix(monkeypatch, capsys, error):
    import percept.cli as cli
    import percept.cli.models as models_cli

    def explode(args):
        raise error("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(models_cli, "_cmd_models", explode)
    assert cli.main(["models"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of" in err[0] and "--batch-size" in err[0]


def test_stylize_with_adain_records_how_to_reproduce_it(tmp_path, cat_path, wave_path, starry_path, capsys):
    out = tmp_path / "adain.png"
    assert main(["stylize", str(cat_path), str(wave_path), "-o", str(out), "--method", "adain", "--size", "96",
                 "--alpha", "0.5", "--device", "cpu"]) == 0
    record = read_metadata(out)
    assert record["method"] == "adain" and record["params"]["alpha"] == 0.5
    assert "--method adain --alpha 0.5 --size 96" in record["command"]
    assert max(Image.open(out).size) == 96
    assert main(["stylize", str(cat_path), "-o", str(out), "--method", "adain"]) == 2
    assert "at least one STYLE" in capsys.readouterr().err
    assert main(["stylize", str(cat_path), str(wave_path), str(starry_path), "-o", str(tmp_path / "m.png"),
                 "--method", "adain", "--mask", str(tmp_path / "missing.png"), "--size", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.png" in err[0] and not (tmp_path / "m.png").exists()


def test_each_command_is_built_by_the_module_the_table_names():
    """`percept --help` lists commands from percept.cli.commands without building them; running a command builds
    its module in full. The table must name the right module for each command, and miss none."""
    import argparse

    from percept.cli import build_parser
    from percept.cli.commands import COMMANDS

    def commands(parser):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return sub.choices

    assert set(commands(build_parser())) == set(COMMANDS)  # the full parser
    stubs = commands(build_parser(None))
    assert set(stubs) == set(COMMANDS) and all(len(p._actions) == 1 for p in stubs.values())  # names only
    for name in COMMANDS:
        built = commands(build_parser(name))[name]
        assert len(built._actions) > 1, f"{name}: its module ({COMMANDS[name][0]}) does not register it"
