"""`percept explain`: layers, filters, activations and saliency from the command line, and their errors."""

from __future__ import annotations

from percept.cli import main
from percept.image import load_image, read_metadata


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_layers_filters_and_activations(capsys, cat_path, tmp_path):
    code, out, _ = run(capsys, "explain", "layers", "--device", "cpu")
    assert code == 0 and "_blocks.3                               40x28x28" in out
    code, out, _ = run(capsys, "explain", "filters", "--model", "alexnet", "--device", "cpu", "-o", tmp_path / "f.png")
    assert code == 0 and "64 first-layer filters of alexnet (11x11 px, RGB)" in out
    assert load_image(tmp_path / "f.png").size == (8 * 34 + 2, 8 * 34 + 2)
    code, out, _ = run(capsys, "explain", "activations", cat_path, "--layer", "_blocks.3", "--channels", "8",
                       "--device", "cpu", "-o", tmp_path / "a.png")
    assert code == 0 and "the 8 strongest of 40 channels of _blocks.3" in out
    assert read_metadata(tmp_path / "a.png")["params"]["layer"] == "_blocks.3"


def test_saliency_writes_image_and_overlay(capsys, cat_path, tmp_path):
    out_png = tmp_path / "gc.png"
    code, out, _ = run(capsys, "explain", "saliency", cat_path, "--whole", "--device", "cpu", "-o", out_png)
    assert code == 0 and "(gradcam): explains 'Egyptian cat'" in out
    w, h = load_image(out_png).size
    assert (w, h) == (2 * 256, 170) and read_metadata(out_png)["class"] == "Egyptian cat"
    code, out, _ = run(capsys, "explain", "saliency", cat_path, "--method", "gradient", "--class", "tabby",
                       "--device", "cpu", "-o", tmp_path / "g.png")
    assert code == 0 and "explains 'tabby'" in out and load_image(tmp_path / "g.png").size == (448, 224)


def test_explain_errors_are_one_line(capsys, cat_path, tmp_path):
    cases = [
        (["activations", cat_path, "--layer", "_blok.3"], "unknown layer '_blok.3'"),
        (["saliency", cat_path, "--class", "dgo"], "did you mean 'dingo'"),
        (["saliency", tmp_path / "missing.jpg"], "not found"),
        (["filters", "--model", "resnet9000"], "unknown classifier 'resnet9000'"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "explain", *argv, "--device", "cpu", "-o", tmp_path / "x.png")
        assert code != 0 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x.png").exists()


def test_attack_writes_three_panels_and_reports_success(capsys, cat_path, tmp_path):
    out_png = tmp_path / "adv.png"
    code, out, _ = run(capsys, "explain", "attack", cat_path, "--target", "gibbon", "--steps", "10",
                       "--epsilon", "4/255", "--device", "cpu", "-o", out_png)
    assert code == 0 and "-> 'gibbon'" in out and "success; L-inf 4.00/255" in out
    assert load_image(out_png).size == (3 * 224, 224) and read_metadata(out_png)["success"] is True
    code, _, err = run(capsys, "explain", "attack", cat_path, "--epsilon", "1000", "--device", "cpu", "-o", out_png)
    assert code != 0 and "epsilon must be in" in err


def test_params_from_reproduces_saliency_and_invert_and_refuses_other_methods(capsys, cat_path, tmp_path):
    from PIL import Image

    first, again = tmp_path / "g1.png", tmp_path / "g2.png"
    code, _, err = run(capsys, "explain", "saliency", cat_path, "--method", "gradient", "--class", "tabby",
                       "--device", "cpu", "-o", first)
    assert code == 0, err
    record = read_metadata(first)
    assert record["method"] == "explain saliency" and record["params"]["method"] == "gradient"
    assert record["command"].startswith("percept explain saliency ") and "--class tabby" in record["command"]
    code, out, err = run(capsys, "explain", "saliency", cat_path, "--params-from", first, "-o", again)
    assert code == 0 and "(gradient): explains 'tabby'" in out, err
    assert read_metadata(again)["params"] == record["params"]
    assert Image.open(first).tobytes() == Image.open(again).tobytes()
    inv1, inv2, inv3 = tmp_path / "i1.png", tmp_path / "i2.png", tmp_path / "i3.png"
    code, _, err = run(capsys, "explain", "invert", cat_path, "--layers", "relu1_1", "--size", "24", "--steps", "3",
                       "--device", "cpu", "-q", "-o", inv1)
    assert code == 0, err
    assert run(capsys, "explain", "invert", cat_path, "--params-from", inv1, "-q", "-o", inv2)[0] == 0
    assert Image.open(inv1).tobytes() == Image.open(inv2).tobytes()
    code, out, _ = run(capsys, "explain", "invert", cat_path, "--params-from", inv1, "--steps", "4", "-q", "-o", inv3)
    params = read_metadata(inv3)["params"]
    assert code == 0 and params["steps"] == 4 and params["layers"] == ["relu1_1"] and params["size"] == 24
    code, _, err = run(capsys, "explain", "dream", cat_path, "--params-from", inv1, "-q", "-o", tmp_path / "d.png")
    assert code != 0 and "made by 'explain invert'" in err and err.count("\n") == 1
    assert not (tmp_path / "d.png").exists()


def test_an_option_the_method_does_not_use_is_refused(capsys, cat_path, tmp_path):
    code, _, err = run(capsys, "explain", "saliency", cat_path, "--method", "gradient", "--window", "20",
                       "--device", "cpu", "-o", tmp_path / "x.png")
    assert code != 0 and "window applies to occlusion only" in err and err.count("\n") == 1
