"""Saliency on the committed cat box: mean saliency inside / outside for every method, with the CLI defaults.

    .venv/bin/python benchmarks/saliency.py [--size 336] [--out result.json] [--figure docs/images/x.jpg]

EfficientNet-Lite0 on the whole photo examples/content/chelsea_cat.jpg (longest side ``--size``, so the
background strip right of the cat stays in view), cat box from tests/data/boxes.json. Prints JSON: per method the
ratio, the seconds, and whether it reaches the issue's 2x. ``--figure`` writes photo | one overlay per method.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from percept.image import load_image, save_image, to_tensor
from percept.models import get_model
from percept.understand import saliency
from percept.understand.saliency import METHODS, overlay

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "content" / "chelsea_cat.jpg"


def box_mask(x: torch.Tensor, photo_size: tuple[int, int]) -> torch.Tensor:
    """The committed cat box ``(H, W)`` (bool) scaled from the photo's pixels to ``x``."""
    x0, y0, x1, y1 = json.loads((ROOT / "tests" / "data" / "boxes.json").read_text())["chelsea_cat.jpg"]
    sx, sy = x.shape[-1] / photo_size[0], x.shape[-2] / photo_size[1]
    mask = torch.zeros(x.shape[-2:], dtype=torch.bool)
    mask[round(y0 * sy) : round(y1 * sy), round(x0 * sx) : round(x1 * sx)] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=336)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()

    classifier = get_model(args.model, kind="classifier")
    pil = load_image(PHOTO)
    x = to_tensor(pil, longest=args.size)
    inside = box_mask(x, pil.size)
    rows, panels = {}, [x]
    for method in METHODS:
        started = time.perf_counter()
        heat, index = saliency(classifier, x, method=method)
        ratio = float(heat[inside].mean() / heat[~inside].mean())
        rows[method] = {"inside_over_outside": round(ratio, 2), "meets_2x": ratio >= 2,
                        "seconds": round(time.perf_counter() - started, 2)}
        panels.append(overlay(x, heat))
    summary = {"model": classifier.id, "photo": PHOTO.name, "input": list(x.shape[-2:]),
               "class": classifier.classes[index], "box_fraction": round(float(inside.float().mean()), 3),
               "methods": rows}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.figure:
        save_image(torch.cat(panels, dim=3), args.figure)  # .jpg keeps the docs light


if __name__ == "__main__":
    main()
