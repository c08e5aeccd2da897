"""Quality of a trained transform network against optimisation, on photos it never saw.

For each photo, at ``--size`` (longest side):

* **network**: one forward pass of the model (:func:`percept.style.transform_stylize.stylize_with_model`);
* **optimization**: :func:`percept.stylize` for ``--iterations`` L-BFGS iterations (default 300) with the
  loss the network was trained on, read from the model file: the same loss network, content and style layers,
  loss weights and style image (found by its SHA-256 in ``--style-dir``), at one scale, from the content.

Both outputs are scored by one function: the model's training loss (:class:`PerceptualLoss`) with the style
image at the same size, its style term also per layer (``style_layers``). A network trained with
``--style-layer-weights`` is scored like the optimisation, with equal layer weights (the plain loss). The
acceptance figure is ``style_ratio`` = network style loss / optimisation style loss (target: at most 2). With
``--figure`` it also writes rows of content | network | optimisation.

    .venv/bin/python benchmarks/feedforward_quality.py --model starry.pt --size 128 --figure docs/images/ff.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

import percept
from percept.image import load_image, save_image, to_tensor
from percept.losses import style_loss
from percept.models import get_model
from percept.style.transform_files import load_transform_net
from percept.style.transform_loss import PerceptualLoss
from percept.style.transform_stylize import stylize_with_model

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PHOTOS = ["tubingen_neckarfront", "golden_gate", "chicago_skyline", "swan", "astronaut", "coffee"]


def find_style(record: dict, folders: list[Path]) -> Path:
    """The style image a model was trained on, found by its SHA-256 in ``folders``."""
    for folder in folders:
        for path in sorted(folder.glob("*")):
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]:
                return path
    raise SystemExit(f"style image {record['file']} (sha256 {record['sha256'][:12]}...) not found in "
                     f"{', '.join(map(str, folders))}; pass --style-dir")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--photos", default=",".join(PHOTOS), help="names in --photo-dir (without .jpg)")
    parser.add_argument("--photo-dir", type=Path, default=DATA / "content")
    parser.add_argument("--style-dir", type=Path, action="append", default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    net = load_transform_net(args.model, "cpu")
    meta = net.metadata
    if net.num_styles != 1:
        raise SystemExit("give a single-style network")
    train, loss_net = meta["training"], meta["loss_network"]
    style_path = find_style(meta["styles"][0], args.style_dir or [DATA / "style", REPO / "examples" / "style"])
    vgg = get_model(loss_net["arch"], loss_net["weights_id"].split(":")[1], kind="features")
    style = to_tensor(load_image(style_path), longest=args.size)
    weights = {k: train[k] for k in ("content_weight", "style_weight", "tv_weight")}
    criterion = PerceptualLoss(vgg, [style], content_layers=loss_net["content_layers"],
                               style_layers=loss_net["style_layers"], **weights)

    def score(image: torch.Tensor, content: torch.Tensor) -> dict:
        """The training loss's terms, and the style term per layer (its mean is ``style``)."""
        with torch.no_grad():
            losses = {k: round(float(v), 5) for k, v in criterion(image, content, torch.tensor([0])).items()}
            feats = vgg(image, criterion.style_layers)
            losses["style_layers"] = {n: round(float(style_loss(feats[n], getattr(criterion, f"gram{i}")[0])), 5)
                                      for i, n in enumerate(criterion.style_layers)}
        return losses

    rows, figure = {}, []
    for name in args.photos.split(","):
        content = to_tensor(load_image(args.photo_dir / f"{name}.jpg"), longest=args.size)
        started = time.perf_counter()
        styled = stylize_with_model(content, net).image
        net_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = percept.stylize(content, str(style_path), size=args.size, iterations=args.iterations,
                                 network=loss_net["arch"], weights=loss_net["weights_id"].split(":")[1],
                                 content_layers=loss_net["content_layers"], style_layers=loss_net["style_layers"],
                                 scales="none", init="content", seed=0, device="cpu", **weights)
        opt_seconds = time.perf_counter() - started
        a, b = score(styled, content), score(result.image, content)
        rows[name] = {"network": {**a, "seconds": round(net_seconds, 3)},
                      "optimization": {**b, "seconds": round(opt_seconds, 1)},
                      "style_ratio": round(a["style"] / b["style"], 3)}
        print(f"{name}: style network {a['style']:.4f} vs optimisation {b['style']:.4f} "
              f"(ratio {rows[name]['style_ratio']:.2f})", file=sys.stderr, flush=True)
        figure.append(torch.cat([content, styled, result.image], dim=3) if content.shape[-1] >= content.shape[-2]
                      else None)
    ratios = [r["style_ratio"] for r in rows.values()]
    summary = {"model": str(args.model), "style": style_path.name, "size": args.size, "iterations": args.iterations,
               "training": {k: train.get(k) for k in ("steps", "size", "batch_size", "lr", "content_weight",
                                                     "style_weight", "tv_weight", "style_layer_weights", "amp",
                                                     "content_images")},
               "photos": rows, "mean_style_ratio": round(sum(ratios) / len(ratios), 3),
               "max_style_ratio": round(max(ratios), 3)}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.figure:
        save_image(torch.cat([f for f in figure if f is not None], dim=2), args.figure)  # landscape rows


if __name__ == "__main__":
    main()
