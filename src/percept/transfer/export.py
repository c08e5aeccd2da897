"""Export a trained run as one self-contained model file (ONNX or TorchScript) that runs without percept.

The exported module maps a float32 batch ``(B, 3, crop, crop)`` of RGB pixels in ``[0, 1]`` (the image resized
so its shorter side is ``resize``, then centre-cropped) to class probabilities ``(B, K)``, exactly as
:meth:`percept.transfer.runs.Run.probabilities` computes them for the centre view. The network's own
normalisation is inside the model. For a ``features`` run the scikit-learn pipeline (StandardScaler -> linear
model) is folded into one ``nn.Linear`` after the frozen backbone; a ``finetune`` run is its network plus a
softmax. A sidecar ``OUTPUT.json`` records the classes, the input and the preprocessing.

Exporter choice: ONNX files are written by the TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``): with torch 2.14 it exports percept's backbones in seconds and needs only ``onnx``,
while the torch.export-based (dynamo) exporter needs the extra ``onnxscript`` package and took about 7 s
instead of 0.4 s for AlexNet. TorchScript files are made by tracing (``torch.jit.trace``); our
modules use Python control flow on shapes that scripting cannot compile. Every file is reloaded and checked
against the PyTorch module on a random batch of a different size (so the dynamic batch axis is exercised)
before it is renamed into place.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import PerceptError
from ..image import atomic_write, check_writable
from ..params import from_settings, to_record
from .linear import backbone_options
from .params import ExportParams, network_only
from .runs import Run, load_run

#: Largest difference between the saved file's and the PyTorch module's probabilities that passes the check.
TOLERANCE = 1e-4
INSTALL_HINT = "pip install onnx onnxruntime (or pip install 'percept-cnn[export]')"
INPUT_NAME, OUTPUT_NAME = "image", "probabilities"


class ExportedClassifier(nn.Module):
    """``body`` (images -> features or logits) then ``head`` (-> logits), then a softmax over classes."""

    def __init__(self, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).softmax(dim=1)


def linear_head(pipeline: Any) -> nn.Linear:
    """One ``nn.Linear`` whose softmax equals :func:`percept.transfer.linear.probabilities` of ``pipeline``.

    The StandardScaler is folded in (``W' = W / scale``, ``b' = b - W' @ mean``). A binary model has a single
    score ``s``: logistic regression's probabilities are ``[1 - sigmoid(s), sigmoid(s)] = softmax([0, s])``,
    the SVM's are ``softmax([-s, s])``; both become a two-row layer.
    """
    try:
        scaler, model = pipeline[0], pipeline[-1]
        coef = np.asarray(model.coef_, dtype=np.float64)
        intercept = np.broadcast_to(np.asarray(model.intercept_, dtype=np.float64), coef.shape[:1])
    except (AttributeError, IndexError, TypeError, KeyError):
        raise PerceptError(f"cannot export classifier {type(pipeline).__name__}: expected a fitted "
                           "StandardScaler -> LogisticRegression/LinearSVC pipeline") from None
    mean = np.zeros(coef.shape[1]) if getattr(scaler, "mean_", None) is None else scaler.mean_
    scale = np.ones(coef.shape[1]) if getattr(scaler, "scale_", None) is None else scaler.scale_
    weight = coef / scale
    bias = intercept - weight @ mean
    if weight.shape[0] == 1:  # binary: one score for the positive class
        if hasattr(model, "predict_proba"):  # logistic regression: softmax([0, s])
            weight, bias = np.concatenate([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
        else:  # SVM: softmax([-s, s]), as percept.transfer.linear.probabilities
            weight, bias = np.concatenate([-weight, weight]), np.concatenate([-bias, bias])
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(bias))
    return layer


def run_network(run: Run) -> tuple[nn.Module, nn.Module, int, int]:
    """The run as networks on the CPU: ``(body, head, resize, crop)``; ``head(body(x))`` are the class logits of
    RGB ``x`` in [0, 1] ``(B, 3, crop, crop)``, evaluated after resizing the short side to ``resize``."""
    if run.record["strategy"] == "features":
        net = run.backbone("cpu")  # with the run's layers and pooling
        return net.model, linear_head(run.predictor), net.resize, net.crop
    model = run.predictor
    return model.body, model.head, model.resize, model.crop


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _require_onnx() -> None:
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            raise PerceptError(f"ONNX export needs the {name} package; {INSTALL_HINT}") from None


def _check_opset(opset: int | None) -> None:
    from torch.onnx import _constants

    low, high = _constants.ONNX_MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    if opset is not None and not low <= opset <= high:
        raise PerceptError(f"ONNX opset {opset} is not supported by this torch; use {low}..{high} "
                           f"(default: {_constants.ONNX_DEFAULT_OPSET})")


def _compare(expected: torch.Tensor, got: np.ndarray, what: str) -> float:
    diff = float(np.abs(expected.numpy() - got).max()) if got.shape == tuple(expected.shape) else float("inf")
    if not diff < TOLERANCE:
        raise PerceptError(f"the exported {what} does not reproduce the model (max difference {diff:.3g}, shape "
                           f"{tuple(got.shape)}); nothing was written")
    return diff


def _write_onnx(model: nn.Module, example: torch.Tensor, check: torch.Tensor, tmp: str,
                opset: int | None) -> dict[str, Any]:
    import onnx
    import onnxruntime

    with warnings.catch_warnings():  # deprecation of this exporter, tracer notes on constant shapes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), tmp, dynamo=False, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=opset, do_constant_folding=True,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load(tmp)
    onnx.checker.check_model(proto)
    used = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    session = onnxruntime.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: check.numpy()})[0]
    with torch.no_grad():
        diff = _compare(model(check), got, "ONNX model")
    return {"opset": int(used), "verified_max_abs_diff": diff}


def _write_torchscript(model: nn.Module, example: torch.Tensor, check: torch.Tensor, tmp: str) -> dict[str, Any]:
    with warnings.catch_warnings(), torch.no_grad():  # tracer notes on shapes, constant for a fixed crop size
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, tmp)
        loaded = torch.jit.load(tmp, map_location="cpu")
        diff = _compare(model(check), loaded(check).numpy(), "TorchScript model")
    return {"verified_max_abs_diff": diff}


def export_run(run_path: str | os.PathLike, output: str | os.PathLike, **settings: Any) -> dict[str, Any]:
    """Write ``run_path``'s classifier to ``output`` (ONNX or TorchScript) and its description to
    ``OUTPUT.json``; return that description.

    The file takes float32 ``(B, 3, crop, crop)`` RGB in [0, 1] (any batch size) and returns class
    probabilities ``(B, K)`` in the order of ``classes``. ``settings`` are fields of
    :class:`~percept.transfer.params.ExportParams`: ``format`` (``onnx`` or ``torchscript``) and ``opset`` (the
    ONNX opset; default: torch's).
    """
    params = from_settings(ExportParams, settings)
    format, opset = params.format, params.opset
    used = [name for name in network_only() if getattr(params, name) not in (None, [])]
    if used:
        names = " and ".join("--" + name.replace("_", "-") for name in used)
        raise PerceptError(f"{names} {'applies' if len(used) == 1 else 'apply'} to style networks (MODEL.pt from "
                           "train-style), not to runs")
    if format == "onnx":
        _require_onnx()
        _check_opset(opset)
    elif opset is not None:
        raise PerceptError("--opset applies to ONNX only")
    output = Path(output)
    for target in (output, _sidecar(output)):
        check_writable(target, image=False)
    run = load_run(run_path, "cpu")
    body, head, resize, crop = run_network(run)
    model = ExportedClassifier(body, head).cpu().eval()
    model.requires_grad_(False)
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, crop, crop, generator=generator)
    check = torch.rand(3, 3, crop, crop, generator=generator)  # another batch size: the batch axis is dynamic

    details: dict[str, Any] = {}

    def write(tmp: str) -> None:
        if format == "onnx":
            details.update(_write_onnx(model, example, check, tmp, opset))
        else:
            details.update(_write_torchscript(model, example, check, tmp))

    classes = list(run.classes)
    record = {
        "format": format,
        "file": output.name,
        "percept_version": __version__,
        "classes": classes,
        "input": {"name": INPUT_NAME, "shape": ["B", 3, crop, crop], "layout": "NCHW", "color": "RGB",
                  "dtype": "float32", "range": [0.0, 1.0]},
        "preprocessing": {
            "resize": resize, "crop": crop,
            "steps": ["convert to RGB (EXIF orientation applied)",
                      f"resize the shorter side to {resize} px (bilinear; longer side int({resize} * long / short))",
                      f"centre crop {crop}x{crop} (top = round((height - {crop}) / 2), likewise left)",
                      "scale pixel values to [0, 1] (divide by 255), HWC -> CHW, add a batch axis"],
            "normalization": "inside the model (do not subtract a mean or divide by a std)",
        },
        "output": {"name": OUTPUT_NAME, "shape": ["B", len(classes)],
                   "meaning": "class probabilities (each row sums to 1), columns in the order of classes"},
        "source": {"run": str(run.path.resolve()), "strategy": run.record["strategy"],
                   "backbone": run.record.get("backbone"), "weights_id": run.record.get("weights_id"),
                   **({"classifier": run.record.get("classifier"),
                       **backbone_options(run.record.get("params", {}))}
                      if run.record["strategy"] == "features" else {})},
        "params": to_record(params),
    }
    atomic_write(output, write)
    record.update(details)
    try:
        atomic_write(_sidecar(output), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))
    except BaseException:
        output.unlink(missing_ok=True)  # no model file without its description
        raise
    return record
