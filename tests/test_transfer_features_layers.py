"""Frozen features from several layers with orderless pooling: backbone layers, cache keys, runs, export, CLI."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from percept.cli import main
from percept.errors import PerceptError
from percept.models import get_model
from percept.models.backbone import _efficientnet_stage_ends, backbone_layers
from percept.transfer import evaluate, predict, train_features
from percept.transfer.export import export_run
from percept.transfer.feature_cache import _cache_path
from percept.transfer.runs import load_run

PHOTO_OR_PAINTING = Path(__file__).resolve().parents[1] / "examples" / "data" / "photo_or_painting"


def test_default_backbone_cache_id_is_unchanged():
    default = get_model("alexnet", kind="backbone")
    assert default.cache_id == "alexnet|alexnet:imagenet1k_v1@relu5|dim256|resize256|crop224|v1"
    assert get_model("alexnet", kind="backbone", layers=[], pooling="avg").cache_id == default.cache_id
    assert default.layers == () and default.pooling == "avg"


def test_cache_paths_differ_by_layers_and_pooling(tmp_path):
    ids = {(tuple(layers), pooling): get_model("alexnet", kind="backbone", layers=layers, pooling=pooling)
           for layers in ([], ["relu3"], ["relu3", "relu5"]) for pooling in ("avg", "max", "gram", "bilinear")}
    paths = {key: _cache_path(tmp_path, net, "ab" * 32, "center") for key, net in ids.items()}
    assert len(set(paths.values())) == len(paths)
    net = ids[(("relu3", "relu5"), "gram")]
    assert net.cache_id.endswith("|layers=relu3,relu5|pool=gram-v1")
    assert net.dim == 8192 + 8192  # relu3 (384) and relu5 (256 channels): more than 128, so sketched
    assert ids[(("relu3", "relu5"), "max")].dim == 384 + 256
    assert ids[((), "gram")].layers == ("relu5",)


def test_efficientnet_stage_names_follow_the_network_table():
    assert backbone_layers("efficientnet_lite0") == [f"stage{i}" for i in range(1, 8)] + ["head"]
    assert backbone_layers("vgg16")[-3:] == ["relu5_1", "relu5_2", "relu5_3"]
    assert backbone_layers("resnet18") == ["layer1", "layer2", "layer3", "layer4"]
    net = get_model("efficientnet_lite0", kind="classifier").model
    ends = _efficientnet_stage_ends(net)
    assert [ends[f"stage{i}"] for i in range(1, 8)] == [0, 2, 4, 7, 10, 14, 15]  # repeats 1, 2, 2, 3, 3, 4, 1
    bb = get_model("efficientnet_lite0", kind="backbone", layers=["stage2", "stage4", "head"], pooling="max")
    assert bb.dim == 24 + 80 + 1280
    with torch.no_grad():
        x = torch.rand(2, 3, 224, 224)
        maps = bb.model.extractor(x)
        assert [tuple(m.shape[1:]) for m in maps] == [(24, 56, 56), (80, 14, 14), (1280, 7, 7)]
        default = get_model("efficientnet_lite0", kind="backbone")
        torch.testing.assert_close(maps[-1].mean(dim=(2, 3)), default.model(x))  # head, averaged = today's vector


def test_unknown_layer_lists_the_valid_names():
    with pytest.raises(PerceptError, match=r"unknown layer 'stage9' for backbone efficientnet_lite0; choose from "
                       r"stage1, stage2, .*, stage7, head$"):
        get_model("efficientnet_lite0", kind="backbone", layers=["stage9"])
    with pytest.raises(PerceptError, match="unknown layer 'layer4' for backbone vgg19; choose from relu1_1, "):
        get_model("vgg19", kind="backbone", layers=["layer4"])


def test_torchvision_stage_layers_by_construction():
    """Random weights (nothing downloaded): the stage modules exist and give the documented widths."""
    bb = get_model("resnet18", kind="backbone", layers=["layer1", "layer4"], pooling="avg", pretrained=False)
    assert bb.dim == 64 + 512 and bb.weights_id == "random-init"
    with torch.no_grad():
        assert bb.model(torch.rand(2, 3, 224, 224)).shape == (2, 576)


@pytest.fixture(scope="module")
def gram_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    run, cache = root / "run", root / "cache"
    record = train_features(PHOTO_OR_PAINTING, run, backbone="efficientnet_lite0", features=["stage3", "stage5"],
                            pooling="gram", C=1.0, device="cpu", cache_dir=cache)
    return run, cache, record


def test_gram_run_trains_evaluates_predicts_and_exports(gram_run, tmp_path):
    run, cache, record = gram_run
    assert record["params"]["features"] == ["stage3", "stage5"] and record["params"]["pooling"] == "gram"
    assert record["cache_id"].endswith("|layers=stage3,stage5|pool=gram-v1") and "dim7148" in record["cache_id"]
    assert record["metrics"]["val_accuracy"] >= 0.5
    report = evaluate([run], device="cpu", cache_dir=cache)
    assert report["accuracy"] == record["metrics"]["val_accuracy"]
    images = sorted(PHOTO_OR_PAINTING.glob("val/*/*.jpg"))
    results = predict(run, images, top_k=2, device="cpu", cache_dir=cache)
    classes = load_run(run).classes
    expected = np.array([[dict(r["top"])[c] for c in classes] for r in results])

    out = tmp_path / "model.pt"
    spec = export_run(run, out, format="torchscript")
    assert spec["source"]["layers"] == ["stage3", "stage5"] and spec["source"]["pooling"] == "gram"
    net = load_run(run).backbone("cpu")
    x = torch.stack([net.eval_transform()(_rgb(p)) for p in images])
    with torch.no_grad():
        got = torch.jit.load(str(out), map_location="cpu")(x).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):  # the export extra
        import onnxruntime

        export_run(run, tmp_path / "model.onnx", format="onnx")
        session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], expected, atol=1e-4)


def _rgb(path):
    from percept.image import load_image

    return load_image(path)


def test_runs_made_before_layers_and_pooling_still_load(tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    train_features(PHOTO_OR_PAINTING, run, backbone="alexnet", C=1.0, device="cpu", cache_dir=cache)
    record = json.loads((run / "run.json").read_text())
    del record["params"]["features"], record["params"]["pooling"]
    (run / "run.json").write_text(json.dumps(record))
    assert evaluate([run], device="cpu", cache_dir=cache)["accuracy"] == record["metrics"]["val_accuracy"]


def test_cli_one_line_errors(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(PHOTO_OR_PAINTING, data)
    cases = [(["--features", "stage9", "--cache-dir", str(tmp_path / "cache")],
              "unknown layer 'stage9' for backbone efficientnet_lite0; choose from"),
             (["--strategy", "finetune", "--pooling", "gram"], "--pooling applies to --strategy features only"),
             (["--strategy", "finetune", "--features", "stage3"], "--features applies to --strategy features only")]
    for argv, message in cases:
        assert main(["train", str(data), "-o", str(tmp_path / "run"), "-q", "--device", "cpu", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "run").exists()
