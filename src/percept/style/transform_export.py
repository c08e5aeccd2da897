"""Export a trained style network to ONNX, checked against PyTorch before it is kept."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import PerceptError
from ..image import atomic_write, check_writable
from .transform_loss import ONNX_TOLERANCE
from .transform_stylize import style_vector
from .transformer import TransformNet


class FixedStyleNet(nn.Module):
    """A :class:`TransformNet` with its style weights baked in: ``(B, 3, H, W)`` -> ``(B, 3, H, W)``."""

    def __init__(self, net: TransformNet, style: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("style", style.reshape(1, -1).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.style.expand(x.shape[0], -1))


def export_transform_net(
    model: TransformNet | str | os.PathLike,
    out: str | os.PathLike,
    *,
    style_index: int | None = None,
    style_blend_weights: Sequence[float] | None = None,
    opset: int | None = None,
) -> dict[str, Any]:
    """Write an ONNX file that stylises float32 RGB ``(B, 3, H, W)`` in [0, 1] (any batch, height and width >= 8)
    with the chosen style (``style_index`` or ``style_blend_weights``, baked in), and ``OUT.json`` describing it.

    Made with the TorchScript-based exporter (``dynamo=False``, as :mod:`percept.transfer.export`); before the
    file is renamed into place, onnxruntime's output on an image of another size (odd, not a multiple of 4,
    batch 2) must match PyTorch's within :data:`ONNX_TOLERANCE`. Returns the description.
    """
    for package in ("onnx", "onnxruntime"):
        try:
            __import__(package)
        except ImportError:
            raise PerceptError(f"ONNX export needs the {package} package; pip install onnx onnxruntime "
                               "(or pip install 'percept-cnn[export]')") from None
    import onnx
    import onnxruntime

    out = Path(out)
    sidecar = out.with_name(out.name + ".json")
    for target in (out, sidecar):
        check_writable(target, what="export file", image=False)
    if isinstance(model, TransformNet):
        net = model
    else:
        from ..models import get_model

        net = get_model(model, kind="style-net", device="cpu")  # a file, a training folder or multistyle26
    net = net.cpu().eval()
    style = style_vector(net, style_index=style_index, style_blend_weights=style_blend_weights)
    wrapped = FixedStyleNet(net, style).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(1, 3, 64, 64, generator=generator)
    check = torch.rand(2, 3, 45, 71, generator=generator)
    details: dict[str, Any] = {}

    def write(tmp: str) -> None:
        with warnings.catch_warnings():  # exporter deprecation, tracer notes on the size checks
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (example,), tmp, dynamo=False, input_names=["image"],
                              output_names=["stylized"], opset_version=opset, do_constant_folding=True,
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "stylized": {0: "batch", 2: "height", 3: "width"}})
        proto = onnx.load(tmp)
        onnx.checker.check_model(proto)
        session = onnxruntime.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = session.run(["stylized"], {"image": check.numpy()})[0]
        with torch.no_grad():
            expected = wrapped(check).numpy()
        diff = float(np.abs(expected - got).max()) if got.shape == expected.shape else float("inf")
        if not diff < ONNX_TOLERANCE:
            raise PerceptError(f"the exported ONNX model does not reproduce the network (max difference {diff:.3g}, "
                               f"shape {got.shape}); nothing was written")
        details.update(opset=int(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))),
                       verified_max_abs_diff=diff)

    atomic_write(out, write)
    record = {
        "format": "onnx",
        "file": out.name,
        "percept_version": __version__,
        "model": {k: v for k, v in net.metadata.items() if k in ("styles", "architecture", "loss_network")},
        "style_blend_weights": [round(float(w), 6) for w in style],
        "input": {"name": "image", "shape": ["B", 3, "H", "W"], "layout": "NCHW", "color": "RGB",
                  "dtype": "float32", "range": [0.0, 1.0], "min_side": 8},
        "output": {"name": "stylized", "shape": ["B", 3, "H", "W"], "range": [0.0, 1.0]},
        **details,
    }
    try:
        atomic_write(sidecar, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))
    except BaseException:
        out.unlink(missing_ok=True)  # no model file without its description
        raise
    return record
