"""``percept export``: a trained run (or a trained style network) as one model file that runs without percept.

Options come from :class:`percept.transfer.params.ExportParams`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PerceptError
from ..transfer.params import ExportParams, network_only
from .commands import HELP
from .options import add_settings, settings_from_args

EPILOG_EXPORT = """\
examples:
  percept export runs/ants_bees -o ants_bees.onnx
  percept export runs/ants_bees_ft -o ants_bees.pt --format torchscript
  percept export three.pt -o wave.onnx --style-index 1            # a style network from train-style

The file maps float32 (B, 3, crop, crop) RGB in [0, 1] to class probabilities (B, K); the sidecar
FILE.json names the classes and the preprocessing (resize shorter side, centre crop). Run it without percept:
  import json, numpy as np, onnxruntime as ort; from PIL import Image
  spec = json.load(open("ants_bees.onnx.json")); r, c = spec["preprocessing"]["resize"], spec["preprocessing"]["crop"]
  img = Image.open("photo.jpg").convert("RGB"); img = img.resize((r * img.width // min(img.size), r * img.height // min(img.size)), Image.BILINEAR)
  left, top = round((img.width - c) / 2), round((img.height - c) / 2)
  x = np.asarray(img.crop((left, top, left + c, top + c)), np.float32).transpose(2, 0, 1)[None] / 255
  print(dict(zip(spec["classes"], ort.InferenceSession("ants_bees.onnx").run(None, {"image": x})[0][0])))
"""


def _cmd_export(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, ExportParams)
    from ..models import list_models

    if Path(args.run).is_file() or args.run in list_models("style-net"):
        return _export_style_net(args, settings)  # a style network: a file of train-style, or multistyle26
    from ..transfer.export import export_run

    record = export_run(args.run, args.output, **settings)
    fmt = record["format"] + (f" opset {record['opset']}" if "opset" in record else "")
    shape = "x".join(map(str, record["input"]["shape"]))
    pre = record["preprocessing"]
    print(f"wrote {args.output} ({fmt}; {len(record['classes'])} classes; input {shape} RGB in [0, 1] after resize "
          f"{pre['resize']} + centre crop {pre['crop']}; output probabilities) and {args.output}.json")
    return 0


def _export_style_net(args: argparse.Namespace, settings: dict) -> int:
    from ..style.transform_export import export_transform_net

    if settings.get("format", "onnx") != "onnx":
        raise PerceptError("style networks export to ONNX only; drop --format torchscript")
    record = export_transform_net(args.run, args.output, opset=settings.get("opset"),
                                  **{name: settings[name] for name in network_only() if name in settings})
    print(f"wrote {args.output} (onnx opset {record['opset']}; float32 (B, 3, H, W) RGB in [0, 1] -> stylised, any "
          f"size >= 8 px; style weights {record['style_blend_weights']}; max difference to PyTorch "
          f"{record['verified_max_abs_diff']:.1e}) and {args.output}.json")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "export", help=HELP["export"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export RUN (either strategy) as one model: float32 (B, 3, crop, crop) RGB in [0, 1] -> class "
        "probabilities (B, K), with the backbone's normalisation inside and a features run's scaler and linear "
        "classifier folded into one layer. Writes FILE and FILE.json (classes, input, preprocessing); the file "
        "is reloaded and checked against percept's model before it is renamed into place. A style network "
        "(MODEL.pt from train-style) exports to ONNX with one style, or a blend, baked in.",
        epilog=EPILOG_EXPORT,
    )
    p.add_argument("run", metavar="RUN|MODEL.pt", help="run folder (from percept train) or style network (from "
                   "percept train-style)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="model file to write, e.g. model.onnx or model.pt; FILE.json is written beside it (required)")
    add_settings(p, ExportParams)
    p.set_defaults(func=_cmd_export)
