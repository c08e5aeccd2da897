"""Export of trained runs to ONNX and TorchScript: the files reproduce percept's predictions without percept."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from percept.cli import main
from percept.errors import PerceptError
from percept.transfer import export as export_module
from percept.transfer import predict, train_features, train_finetune
from percept.transfer.export import export_run, linear_head
from percept.transfer.linear import make_classifier, probabilities

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, crops, cat_path, rocket_path):
    """A features run and a fine-tuned run (AlexNet) on DATA/{train,val}/{cat,rocket}, 10 test images and
    percept's own probabilities for them (columns in class order)."""
    root = tmp_path_factory.mktemp("export")
    data, cache = root / "data", root / "cache"
    for split, n, seed in (("train", 6, 0), ("val", 3, 1)):
        crops(cat_path, data / split / "cat", n, seed)
        crops(rocket_path, data / split / "rocket", n, seed + 10)
    runs = {"features": root / "features", "finetune": root / "finetune"}
    train_features(data, runs["features"], backbone="alexnet", classifier="logreg", C=1.0, device="cpu",
                   cache_dir=cache)
    train_finetune(data, runs["finetune"], backbone="alexnet", epochs=1, head_epochs=1, batch_size=4,
                   device="cpu", augment="none")
    images = sorted(data.glob("*/cat/*.jpg"))[:5] + sorted(data.glob("*/rocket/*.jpg"))[:5]
    expected = {}
    for strategy, run in runs.items():
        results = predict(run, images, top_k=2, device="cpu", cache_dir=cache)
        expected[strategy] = np.array([[dict(r["top"])[c] for c in ("cat", "rocket")] for r in results])
    return SimpleNamespace(runs=runs, images=images, expected=expected)


def _preprocess(path, spec) -> np.ndarray:
    """The sidecar's recipe with PIL and NumPy only: shorter side to ``resize``, centre crop, [0, 1], CHW."""
    r, c = spec["preprocessing"]["resize"], spec["preprocessing"]["crop"]
    img = Image.open(path).convert("RGB")
    img = img.resize((r * img.width // min(img.size), r * img.height // min(img.size)), Image.BILINEAR)
    left, top = round((img.width - c) / 2), round((img.height - c) / 2)
    return np.asarray(img.crop((left, top, left + c, top + c)), np.float32).transpose(2, 0, 1) / 255


def _check_against_percept(probs: np.ndarray, expected: np.ndarray) -> None:
    assert probs.shape == expected.shape == (10, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == expected.argmax(axis=1)).all()
    assert np.abs(probs - expected).max() < 1e-4


@pytest.mark.parametrize("strategy", ["features", "finetune"])
def test_onnx_file_reproduces_percept_predict(trained, tmp_path, strategy):
    out = tmp_path / "model.onnx"
    record = export_run(trained.runs[strategy], out, format="onnx")
    spec = json.loads((tmp_path / "model.onnx.json").read_text())
    assert spec == json.loads(json.dumps(record))
    assert spec["classes"] == ["cat", "rocket"] and spec["format"] == "onnx" and spec["opset"] >= 7
    assert spec["input"]["shape"] == ["B", 3, 224, 224] and spec["input"]["color"] == "RGB"
    assert spec["preprocessing"]["resize"] == 256 and spec["preprocessing"]["crop"] == 224
    assert spec["source"]["strategy"] == strategy and spec["source"]["backbone"] == "alexnet"
    assert spec["source"]["weights_id"] and spec["percept_version"]

    x = np.stack([_preprocess(p, spec) for p in trained.images])  # one batch of 10: the batch axis is dynamic
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [spec["input"]["name"]]
    probs = session.run([spec["output"]["name"]], {spec["input"]["name"]: x})[0]
    _check_against_percept(probs, trained.expected[strategy])


TORCHSCRIPT_WITHOUT_PERCEPT = """
import sys
sys.modules["percept"] = None  # any import of percept now fails
try:
    import percept  # noqa: F401
    sys.exit("percept could be imported")
except ImportError:
    pass
import numpy as np
import torch

for model_file, inputs, outputs in zip(*[iter(sys.argv[1:])] * 3):
    model = torch.jit.load(model_file, map_location="cpu")
    with torch.no_grad():
        np.save(outputs, model(torch.from_numpy(np.load(inputs))).numpy())
"""


def test_torchscript_files_load_without_percept(trained, tmp_path):
    args = []
    for strategy in ("features", "finetune"):
        out = tmp_path / f"{strategy}.pt"
        record = export_run(trained.runs[strategy], out, format="torchscript")
        assert record["format"] == "torchscript" and "opset" not in record
        spec = json.loads((tmp_path / f"{strategy}.pt.json").read_text())
        np.save(tmp_path / f"{strategy}_x.npy", np.stack([_preprocess(p, spec) for p in trained.images]))
        args += [str(out), str(tmp_path / f"{strategy}_x.npy"), str(tmp_path / f"{strategy}_p.npy")]
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(TORCHSCRIPT_WITHOUT_PERCEPT), *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for strategy in ("features", "finetune"):
        _check_against_percept(np.load(tmp_path / f"{strategy}_p.npy"), trained.expected[strategy])


@pytest.mark.parametrize("kind", ["logreg", "svm"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_folded_linear_head_equals_percept_probabilities(kind, n_classes):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(60, 8)) * rng.uniform(0.1, 10, size=8) + rng.normal(size=8) * 5).astype(np.float32)
    y = np.arange(60) % n_classes
    pipeline = make_classifier(kind, 1.0, 0).fit(x, y)
    with torch.no_grad():
        got = linear_head(pipeline)(torch.from_numpy(x)).softmax(dim=1).numpy()
    np.testing.assert_allclose(got, probabilities(pipeline, x), atol=1e-5)


def test_cli_export_writes_model_and_sidecar(trained, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", str(trained.runs["features"]), "-o", str(out), "--format", "onnx"]) == 0
    assert out.is_file() and (tmp_path / "model.onnx.json").is_file()
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(out) in printed[0] and "model.onnx.json" in printed[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]


def test_export_errors_are_one_line_and_leave_no_file(trained, tmp_path, capsys, monkeypatch):
    run, out = str(trained.runs["features"]), tmp_path / "model.onnx"
    with pytest.raises(SystemExit) as exc:
        main(["export", run, "-o", str(out), "--format", "tflite"])
    assert exc.value.code == 2
    capsys.readouterr()

    (tmp_path / "not_a_run").mkdir()
    assert main(["export", str(tmp_path / "not_a_run"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("percept: error: ") and "not a percept run folder" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

    with pytest.raises(PerceptError, match="unknown export format"):
        export_run(run, out, format="tflite")
    with pytest.raises(PerceptError, match="does not exist"):
        export_run(run, tmp_path / "missing" / "model.onnx")
    with pytest.raises(PerceptError, match="opset 99"):
        export_run(run, out, opset=99)
    with pytest.raises(PerceptError, match="ONNX only"):
        export_run(run, out, format="torchscript", opset=17)
    with pytest.raises(PerceptError, match="--style-index applies to style networks"):
        export_run(run, out, style_index=1)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(PerceptError, match=r"pip install onnx onnxruntime"):
        export_run(run, out)
    monkeypatch.undo()

    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # the check after writing fails
    with pytest.raises(PerceptError, match="does not reproduce"):
        export_run(run, tmp_path / "model.pt", format="torchscript")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_run"]
