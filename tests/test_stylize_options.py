"""Every ``percept stylize`` option against every method: an option the method uses is accepted and reaches the
library function; one it does not use is refused with one line that names the method, before any work.

The options come from the parser itself, so a new option fails here until it has a sample value below. The
library functions are replaced by stubs that only build the method's settings (the seam: parse, resolve the
settings, call the library once), so nothing slow runs.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

import percept.style
from percept.cli import build_parser, main
from percept.image import save_image
from percept.params import from_settings, to_record
from percept.record import make_record
from percept.style.optimize import StyleResult
from percept.style.params import METHODS, method_settings

#: The method each base command line selects (a method is chosen by ``--method``, or by ``--model``).
BASES = {
    "optimize": ["--method", "optimize"],
    "optimize (default)": [],
    "adain": ["--method", "adain"],
    "network": ["--method", "network", "--model", "{model}"],
}
#: Options that are not settings of a method, and the methods that use them (the selector --method is the base).
OUTPUT_OPTIONS = {"save_every": {"optimize"}, "timelapse": {"optimize"}, "quiet": {"optimize", "adain", "network"},
                  "params_from": {"optimize", "adain", "network"}}
#: A valid value for every option ({mask}, {model}, {tmp}, {record} are filled in per test).
SAMPLES: dict[str, list[str]] = {
    "size": ["--size", "32"], "iterations": ["--iterations", "1"], "content_weight": ["--content-weight", "2"],
    "style_weight": ["--style-weight", "50"], "tv_weight": ["--tv-weight", "1"],
    "content_layers": ["--content-layers", "relu3_1"], "content_layer_weights": ["--content-layer-weights", "1"],
    "style_layers": ["--style-layers", "relu1_1,relu2_1"],
    "style_layer_weights": ["--style-layer-weights", "1,2,1,1,1"],
    "style_blend_weights": ["--style-blend-weights", "0.3,0.7"], "mask": ["--mask", "{mask}"],
    "style_scale": ["--style-scale", "0.5"], "init": ["--init", "noise"], "optimizer": ["--optimizer", "adam"],
    "lr": ["--lr", "0.1"], "scales": ["--scales", "none"], "preserve_color": ["--preserve-color", "match"],
    "network": ["--network", "vgg16"], "weights": ["--weights", "gatys"], "preprocessing": ["--preprocessing", "caffe"],
    "pooling": ["--pooling", "avg"], "seed": ["--seed", "3"], "device": ["--device", "cpu"],
    "alpha": ["--alpha", "0.5"], "decoder": ["--decoder", "adain_decoder"], "model": ["--model", "{model}"],
    "style_index": ["--style-index", "1"], "tile": ["--tile", "64"], "overlap": ["--overlap", "32", "--tile", "64"],
    "exact_statistics": ["--exact-statistics", "--tile", "64"], "stats_size": ["--stats-size", "48", "--tile", "64"],
    "batch_size": ["--batch-size", "2"], "save_every": ["--save-every", "5"],
    "timelapse": ["--timelapse", "{tmp}/t.gif"], "quiet": ["-q"], "params_from": ["--params-from", "{record}"],
}
#: Not options of a method: the help, the positionals and the method selector itself.
NOT_OPTIONS = {"help", "content", "styles", "method", "output"}


def stylize_options() -> list[str]:
    parser = build_parser("stylize")
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return [a.dest for a in sub.choices["stylize"]._actions if a.dest not in NOT_OPTIONS]


def method_of(base: str) -> str:
    return base.split()[0]


def uses(method: str, option: str) -> bool:
    if option in OUTPUT_OPTIONS:
        return method in OUTPUT_OPTIONS[option]
    return option in {f.name for f in dataclasses.fields(METHODS[method])}


def test_every_option_has_a_sample_value():
    assert set(stylize_options()) == set(SAMPLES), "give each new stylize option a sample value in SAMPLES"


@pytest.fixture()
def stubs(monkeypatch):
    """Replace the three library functions by stubs that build the settings and return a tiny image."""
    calls: list[tuple[str, dict]] = []

    def result(method: str, settings: dict) -> StyleResult:
        params = from_settings(METHODS[method], settings)
        record = make_record(method, {k: v for k, v in to_record(params).items() if isinstance(v, (str, int, float,
                             list, type(None)))}, inputs={}, style_names=["a"], style_blend_weights_normalised=[1.0])
        return StyleResult(torch.zeros(1, 3, 8, 8), record)

    def stub(method: str):
        def run(*args, progress=False, frame_every=0, **settings):
            calls.append((method, settings))
            out = result(method, settings)
            return [out for _ in args[0]] if method == "network" else out

        return run

    monkeypatch.setattr(percept.style, "stylize", stub("optimize"))
    monkeypatch.setattr(percept.style, "stylize_adain", stub("adain"))
    monkeypatch.setattr(percept.style, "stylize_with_model", stub("network"))
    return calls


@pytest.fixture()
def files(tmp_path, cat_path, starry_path, wave_path):
    mask = tmp_path / "mask.png"
    Image.new("L", (451, 300), 255).save(mask)
    model = tmp_path / "m.pt"
    model.write_bytes(b"")
    records = {}
    for method in ("optimize", "adain", "network"):
        params = METHODS[method](**({"model": str(model)} if method == "network" else {}))
        recorded = {k: v for k, v in to_record(params).items() if k in method_settings(method)}
        records[method] = tmp_path / f"{method}_record.png"
        save_image(Image.new("RGB", (8, 8)), records[method], make_record(method, recorded, inputs={}))
    return {"mask": mask, "model": model, "tmp": tmp_path, "records": records, "content": cat_path,
            "styles": [starry_path, wave_path]}


def command(base: str, option: str, files: dict) -> list[str]:
    method = method_of(base)
    fill = {"mask": files["mask"], "model": files["model"], "tmp": files["tmp"], "record": files["records"][method]}
    words = ["stylize", str(files["content"])]
    if method != "network":
        words += [str(s) for s in files["styles"]]
    words += ["-o", str(files["tmp"] / "out.png")]
    return words + [w.format(**fill) for w in BASES[base] + SAMPLES[option]]


CASES = [(base, option) for base in BASES for option in SAMPLES
         if not (option == "model" and base == "optimize (default)")]  # --model selects the network method


@pytest.mark.parametrize(("base", "option"), CASES, ids=[f"{b}-{o}" for b, o in CASES])
def test_option_is_used_or_refused_in_one_line(base, option, stubs, files, capsys):
    method = method_of(base)
    code = main(command(base, option, files))
    err = capsys.readouterr().err
    if uses(method, option):
        assert code == 0, err
        assert [m for m, _ in stubs] == [method]
        if option not in OUTPUT_OPTIONS:
            assert option in stubs[0][1], f"{option} did not reach the {method} function"
    else:
        lines = err.strip().splitlines()
        assert code != 0 and not stubs, f"{option} was accepted by {method}"
        assert len(lines) == 1 and "Traceback" not in err, err
        assert method in lines[0] and ("--" + option.replace("_", "-")) in lines[0], lines[0]


@pytest.mark.parametrize(("extra", "message"), [
    (["--overlap", "32"], "--method network does not use --overlap without --tile"),
    (["--stats-size", "48", "--exact-statistics"], "does not use --exact-statistics, --stats-size without --tile"),
    (["--tile", "64", "--batch-size", "2"], "--method network does not use --batch-size with --tile"),
])
def test_tile_options_need_tiles(extra, message, stubs, files, capsys):
    argv = ["stylize", str(files["content"]), "-o", str(files["tmp"] / "o.png"), "--model", str(files["model"])]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not stubs
