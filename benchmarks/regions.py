"""Style by region, acceptance: does each region of the output take its own style?

The content photo (default: the cat) is stylised by optimisation at ``--size`` px (default 256, default
iterations) with two styles and a mask (default: examples/masks/chelsea_cat_face.png, white = the cat's face):
the first style inside the mask and the second outside, then (unless ``--no-swap``) the two swapped. Each output
is measured inside each region: the guided Gram error (:func:`percept.style.guided.region_errors`, relative, per
style layer of Gatys' VGG-19 and summed) to the region's own style and to the other style. The content photo
itself is measured the same way as a baseline (``content_baseline``). A region takes its style when its error to
its own style is the lower one (margin = other - own > 0, ratio = other / own > 1).

Prints the JSON, writes it to ``--out`` (default docs/regions_cpu.json) and the figure ``--figure`` (default
docs/images/stylize_regions.png: content, mask, each result, captioned)::

    .venv/bin/python benchmarks/regions.py
    .venv/bin/python benchmarks/tables.py        # the table in README.md is generated from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import percept
from percept import stylize
from percept.image import fit_size, load_image, to_tensor
from percept.losses import gram_matrix
from percept.models import get_model
from percept.style.guided import load_masks, region_errors, resize_masks
from percept.style.params import DEFAULT_STYLE_LAYERS, StyleParams
from percept.understand.montage import labelled_grid

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NAMES = {"hokusai_great_wave": "The Great Wave", "van_gogh_starry_night": "The Starry Night"}


def name(path: Path) -> str:
    return NAMES.get(path.stem, path.stem)


def measure(net, image: torch.Tensor, masks: torch.Tensor, grams: dict[str, torch.Tensor], layers: list[str],
            styles: list[Path], order: list[int], regions: list[str]) -> list[dict]:
    """Per region: its style, the error to it and to the other style per layer and summed, margin and ratio.

    ``order[k]`` is the style (index into ``styles``) that region ``k`` is given."""
    with torch.no_grad():
        errors = region_errors(net(image, layers), masks, grams)  # (layer, region, style)
    rows = []
    for k, region in enumerate(regions):
        own, other = order[k], order[1 - k]
        per_layer = {layer: {"own": round(float(errors[i, k, own]), 4), "other": round(float(errors[i, k, other]), 4)}
                     for i, layer in enumerate(layers)}
        own_sum, other_sum = float(errors[:, k, own].sum()), float(errors[:, k, other].sum())
        rows.append({"region": region, "share": round(float(masks[0, k].mean()), 4), "style": name(styles[own]),
                     "other_style": name(styles[other]), "own": round(own_sum, 4), "other": round(other_sum, 4),
                     "margin": round(other_sum - own_sum, 4), "ratio": round(other_sum / own_sum, 3),
                     "layers_own_lower": sum(v["own"] < v["other"] for v in per_layer.values()),
                     "layers": per_layer})
    return rows


def figure(content: Path, mask: Path, results: list[tuple[torch.Tensor, str]], out: Path, size: int) -> None:
    """Content, mask and each result side by side, captioned (a result's caption: one line per region)."""
    w, h = fit_size(*load_image(content).size, size)
    tiles = [to_tensor(load_image(content), size=(w, h)), to_tensor(load_image(mask), size=(w, h))]
    tiles += [image for image, _ in results]
    captions = [["content", ""], ["mask", "(white: the first style)"]] + [caption.split(", ") for _, caption in results]
    grid = labelled_grid(torch.cat(tiles), captions, columns=len(tiles), font_size=13, frame=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, default=EXAMPLES / "content" / "chelsea_cat.jpg")
    parser.add_argument("--mask", type=Path, default=EXAMPLES / "masks" / "chelsea_cat_face.png")
    parser.add_argument("--styles", type=Path, nargs=2, default=[EXAMPLES / "style" / "hokusai_great_wave.jpg",
                                                                  EXAMPLES / "style" / "van_gogh_starry_night.jpg"])
    parser.add_argument("--regions", nargs=2, default=["face", "background"], help="names of white and black")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=StyleParams.iterations)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-swap", action="store_true", help="only the first way round (half the time)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "regions_cpu.json")
    parser.add_argument("--figure", type=Path, default=REPO / "docs" / "images" / "stylize_regions.png")
    args = parser.parse_args()

    layers = DEFAULT_STYLE_LAYERS["vgg19"]
    net = get_model("vgg19", device="cpu")
    content = load_image(args.content, what="content image")
    out_size = fit_size(*content.size, args.size)
    masks = resize_masks(load_masks(args.mask, 2, out_size), out_size)
    with torch.no_grad():
        style_feats = [net(to_tensor(load_image(s), longest=args.size), layers) for s in args.styles]
    grams = {layer: torch.cat([gram_matrix(f[layer]) for f in style_feats]) for layer in layers}
    rel = {p: str(Path(p).resolve().relative_to(REPO)) if Path(p).resolve().is_relative_to(REPO) else str(p)
           for p in [args.content, args.mask, *args.styles]}

    runs, shown = [], []
    photo = to_tensor(content, size=out_size)
    for order in ([0, 1],) if args.no_swap else ([0, 1], [1, 0]):
        styles = [args.styles[i] for i in order]
        started = time.perf_counter()
        result = stylize(args.content, styles, mask=args.mask, size=args.size, iterations=args.iterations,
                         device=args.device)
        seconds = time.perf_counter() - started
        rows = measure(net, result.image, masks, grams, layers, args.styles, order, args.regions)
        caption = f"{args.regions[0]}: {name(styles[0])}, {args.regions[1]}: {name(styles[1])}"
        runs.append({"styles": [rel[s] for s in styles], "caption": caption, "seconds": round(seconds, 1),
                     "final_losses": {k: round(v, 5) for k, v in result.history[-1].items() if k != "stage"},
                     "regions": rows,
                     "content_baseline": measure(net, photo, masks, grams, layers, args.styles, order, args.regions)})
        shown.append((result.image, caption))
        print(f"{seconds:7.1f} s  {caption}: " + "; ".join(f"{r['region']} own {r['own']:.3f} other {r['other']:.3f}"
                                                         for r in rows), flush=True)

    report = {
        "benchmark": "style by region (guided Gram matrices)",
        "content": rel[args.content], "mask": rel[args.mask], "size": args.size, "size_px": list(out_size),
        "iterations": args.iterations, "layers": layers, "weights": "vgg19:gatys",
        "runs": runs,
        "checks": {"every_region_closer_to_its_own_style": all(r["margin"] > 0 for run in runs for r in run["regions"])},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__, "device": args.device,
                    "cuda_device": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                    "python": platform.python_version(), "percept_version": percept.__version__,
                    "load_average_1min": round(os.getloadavg()[0], 2)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    args.out.write_text(text + "\n")
    figure(args.content, args.mask, shown, args.figure, args.size)
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
