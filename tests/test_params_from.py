"""``--params-from``: every style output carries its record, and the record's method runs again with the same
pixels; a record of another method, or an option the method does not use, is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from percept.cli import main
from percept.errors import PerceptError
from percept.image import read_metadata, save_image
from percept.params import to_record
from percept.record import command_line, make_record
from percept.style.params import (
    AdainParams,
    NetworkParams,
    StyleParams,
    method_settings,
    reproducing_command,
    resolve_settings,
    unused_settings,
)

FAST = ["--size", "48", "--iterations", "3", "-q"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def assert_reproduced(first, again, method: str) -> None:
    a, b = read_metadata(first), read_metadata(again)
    assert a["method"] == b["method"] == method
    assert a["params"] == b["params"]
    assert np.array_equal(pixels(first), pixels(again))


@pytest.fixture()
def fake_output(tmp_path):
    """An image whose record says it was made by ``method`` with the default settings (nothing runs)."""

    def make(method: str, **params) -> str:
        cls = {"optimize": StyleParams, "texture": StyleParams, "adain": AdainParams, "network": NetworkParams}[method]
        recorded = {k: v for k, v in to_record(cls(**params)).items() if k in method_settings(method)}
        path = tmp_path / f"{method}.png"
        save_image(Image.new("RGB", (8, 8)), path, make_record(method, recorded, inputs={}))
        return str(path)

    return make


# ----------------------------------------------------------------------------------------------- the library


def test_each_method_names_the_settings_it_uses():
    assert "iterations" in method_settings("optimize") and "content_weight" not in method_settings("texture")
    assert method_settings("adain") == [f for f in AdainParams.__dataclass_fields__]
    assert unused_settings("adain", ["alpha", "size", "iterations", "seed"]) == ["iterations", "seed"]
    assert unused_settings("network", ["model", "style_blend_weights", "tile"]) == []
    with pytest.raises(PerceptError, match="unknown style method 'paint'"):
        method_settings("paint")


def test_the_record_decides_the_method_and_explicit_settings_win(fake_output):
    adain = fake_output("adain", alpha=0.3, style_blend_weights=[1, 3])
    method, settings = resolve_settings("stylize", {"size": 64}, params_from=adain)
    assert method == "adain" and settings["alpha"] == 0.3 and settings["style_blend_weights"] == [1, 3]
    assert settings["size"] == 64 and set(settings) == set(method_settings("adain"))
    assert resolve_settings("stylize", {"model": "m.pt"}) == ("network", {"model": "m.pt"})
    assert resolve_settings("stylize", {}) == ("optimize", {})
    texture = fake_output("texture", seed=4)
    assert resolve_settings("texture", {}, params_from=texture)[1]["seed"] == 4


@pytest.mark.parametrize(("command", "explicit", "method", "made_by", "message"), [
    ("texture", {}, None, "adain", r"made by 'adain'; --params-from here reproduces 'texture' outputs only"),
    ("stylize", {}, "adain", "optimize", r"made by 'optimize'; --params-from here reproduces 'adain' outputs only"),
    ("stylize", {"model": "m.pt"}, None, "adain", r"made by 'adain'; .* reproduces 'network' outputs only"),
    ("stylize", {}, None, "texture", r"made by 'texture'; .* 'optimize' or 'adain' or 'network' outputs only"),
    ("stylize", {"alpha": 0.5}, None, "optimize", r"--method optimize does not use --alpha; drop it"),
    ("stylize", {"iterations": 5, "seed": 1}, None, "adain", r"--method adain does not use --iterations, --seed"),
])
def test_a_contradicting_record_or_option_is_refused_in_one_line(fake_output, command, explicit, method, made_by,
                                                                 message):
    with pytest.raises(PerceptError, match=message) as err:
        resolve_settings(command, explicit, method=method, params_from=fake_output(made_by))
    assert "\n" not in str(err.value)


def test_the_reproducing_command_spells_out_every_setting():
    assert command_line(["stylize", "a b.jpg"], {"size": 48, "style_layers": ["relu1_1", "relu2_1"], "mask": "",
                                                "style_index": None, "exact_statistics": True, "tile": None}) == \
        "percept stylize 'a b.jpg' --size 48 --style-layers relu1_1,relu2_1 --exact-statistics"
    record = make_record("adain", to_record(AdainParams(alpha=0.5, size=96)),
                         inputs={"content": {"path": "cat.jpg"}, "styles": [{"path": "wave.jpg"}],
                                 "mask": {"path": None, "type": "Tensor"}})
    command = reproducing_command(record, "out.png")
    assert command.startswith("percept stylize cat.jpg wave.jpg -o out.png --method adain --alpha 0.5 --size 96 ")
    assert "--mask MASK.png" in command
    network = make_record("network", to_record(NetworkParams(style_index=1)),
                          inputs={"content": {"path": None, "type": "Tensor"}})
    assert reproducing_command(network, "o.png") == ("percept stylize CONTENT -o o.png --model MODEL.pt "
                                                     "--style-index 1 --overlap 96 --batch-size 4 --device auto")
    texture = make_record("texture", {"size": 40}, inputs={"source": {"path": "t.jpg"}})
    assert reproducing_command(texture, "t.png") == "percept texture t.jpg -o t.png --size 40"


# ------------------------------------------------------------------------------------- round trips (the CLI)


def test_optimisation_round_trip_and_an_explicit_option_overrides_the_record(capsys, tmp_path, cat_path,
                                                                             starry_path):
    first, again, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    code, _, err = run(capsys, "stylize", cat_path, starry_path, "-o", first, *FAST, "--init", "noise", "--seed", "2",
                       "--optimizer", "adam")
    assert code == 0, err
    assert run(capsys, "stylize", cat_path, starry_path, "-o", again, "-q", "--params-from", first)[0] == 0
    assert_reproduced(first, again, "optimize")
    assert run(capsys, "stylize", cat_path, starry_path, "-o", other, "-q", "--params-from", first,
               "--iterations", "2")[0] == 0
    recorded = read_metadata(other)["params"]
    assert recorded == {**read_metadata(first)["params"], "iterations": 2}


def test_texture_round_trip(capsys, tmp_path, texture_path):
    first, again = tmp_path / "a.png", tmp_path / "b.png"
    assert run(capsys, "texture", texture_path, "-o", first, "--size", "40", "--iterations", "3", "--seed", "4",
               "-q")[0] == 0
    assert run(capsys, "texture", texture_path, "-o", again, "-q", "--params-from", first)[0] == 0
    assert_reproduced(first, again, "texture")


def test_adain_round_trip_keeps_method_alpha_blend_weights_and_mask(capsys, tmp_path, cat_path, starry_path,
                                                                    wave_path):
    first, again = tmp_path / "a.png", tmp_path / "b.png"
    inputs = [cat_path, starry_path, wave_path]
    assert run(capsys, "stylize", *inputs, "-o", first, "--method", "adain", "--alpha", "0.3",
               "--style-blend-weights", "1,3", "--size", "64", "--device", "cpu")[0] == 0
    code, out, err = run(capsys, "stylize", *inputs, "-o", again, "--params-from", first)
    assert code == 0 and "AdaIN, alpha 0.3" in out, err
    assert_reproduced(first, again, "adain")
    assert read_metadata(again)["params"]["style_blend_weights"] == [1.0, 3.0]

    mask = tmp_path / "mask.png"  # the cat photo is 451 x 300: white left half, the first style
    image = Image.new("L", (451, 300), 0)
    image.paste(255, (0, 0, 225, 300))
    image.save(mask)
    masked, masked_again = tmp_path / "m.png", tmp_path / "m2.png"
    assert run(capsys, "stylize", *inputs, "-o", masked, "--method", "adain", "--mask", mask, "--size", "64")[0] == 0
    assert run(capsys, "stylize", *inputs, "-o", masked_again, "--params-from", masked)[0] == 0
    assert_reproduced(masked, masked_again, "adain")
    assert read_metadata(masked)["params"]["mask"] == str(mask)
    assert not np.array_equal(pixels(masked), pixels(first))


def test_network_round_trip(capsys, tmp_path, cat_path):
    import torch

    from percept.style.transform_files import save_transform_net
    from percept.style.transformer import TransformNet

    torch.manual_seed(0)
    net = TransformNet(2, (8, 16, 32))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.normal_(0.5, 0.3)
    model = save_transform_net(net, tmp_path / "net.pt")
    first, again = tmp_path / "a.png", tmp_path / "b.png"
    code, out, err = run(capsys, "stylize", cat_path, "-o", first, "--model", model, "--style-blend-weights", "1,3",
                         "--size", "40", "-q")
    assert code == 0 and "style: 0 0.25, 1 0.75" in out, err
    assert run(capsys, "stylize", cat_path, "-o", again, "-q", "--params-from", first)[0] == 0
    assert_reproduced(first, again, "network")
    record = read_metadata(first)
    assert record["inputs"]["model"]["path"] == str(model) and len(record["inputs"]["model"]["sha256"]) == 64


def test_mismatches_exit_nonzero_with_one_line(capsys, tmp_path, cat_path, starry_path, texture_path, fake_output):
    adain, optimised = fake_output("adain"), fake_output("optimize")
    cases = [
        (["texture", texture_path, "-o", tmp_path / "t.png", "--params-from", adain], "made by 'adain'"),
        (["stylize", cat_path, starry_path, "-o", tmp_path / "s.png", "--method", "adain", "--params-from",
          optimised], "made by 'optimize'"),
        (["stylize", cat_path, starry_path, "-o", tmp_path / "s.png", "--params-from", adain, "--iterations", "3"],
         "--method adain does not use --iterations"),
        (["stylize", cat_path, starry_path, "-o", tmp_path / "s.png", "--method", "adain", "--seed", "3"],
         "--method adain does not use --seed"),
        (["stylize", cat_path, starry_path, "-o", tmp_path / "s.png", "--alpha", "0.5"],
         "--method optimize does not use --alpha"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code != 0 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "t.png").exists() and not (tmp_path / "s.png").exists()


def test_info_prints_the_record_and_a_reproducing_command_for_every_method(capsys, tmp_path, fake_output):
    for method in ("optimize", "texture", "adain", "network"):
        code, out, _ = run(capsys, "info", fake_output(method))
        assert code == 0 and f"({method})" in out and "settings: " in out and "reproduce with:" in out
        assert ("percept texture" if method == "texture" else "percept stylize") in out
