"""The documentation figures that are re-made by script, one sub-command each.

    .venv/bin/python benchmarks/figures.py saliency [--size 336] [--out docs/images/explain_saliency_methods.jpg]
    .venv/bin/python benchmarks/figures.py texture [--iterations 100] [--out docs/images/texture_zigzag.png]
    .venv/bin/python benchmarks/figures.py stylize [--size 512] [--out docs/images/stylize_cat_starry_512.png]

``saliency``: examples/content/chelsea_cat.jpg (whole photo, longest side ``--size``) explained by
EfficientNet-Lite0 with the five methods at the CLI defaults (as in benchmarks/saliency.py), drawn with
:func:`percept.understand.montage.saliency_panel`: the photo, then each map on its own with its title and colour
bar, scaled at the 99th percentile. ``texture``: examples/texture/colorful_zigzag_256.jpg (no watermark) and a
new 256 px texture from :func:`percept.synthesize_texture`, side by side; the PNG records how it was made.
Both run in well under 2 minutes on 2 CPU cores. ``stylize``: the same photo painted in the style of The Starry
Night by :func:`percept.stylize` with its defaults at ``--size`` (the full-size result of the gallery; about 8 minutes
at 512 px on 2 CPU cores); the PNG records how it was made.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
PHOTO = ROOT / "examples" / "content" / "chelsea_cat.jpg"
TEXTURE = ROOT / "examples" / "texture" / "colorful_zigzag_256.jpg"
TITLES = {"gradient": "gradient", "smoothgrad": "SmoothGrad", "guided": "guided backprop", "gradcam": "Grad-CAM",
          "occlusion": "occlusion"}


def saliency_figure(out: Path, *, size: int, model: str) -> None:
    from percept.image import load_image, to_tensor
    from percept.models import get_model
    from percept.understand.montage import saliency_panel
    from percept.understand.saliency import METHODS, saliency

    classifier = get_model(model, kind="classifier")
    x = to_tensor(load_image(PHOTO), longest=size)
    maps, titles = [], []
    for method in METHODS:
        started = time.perf_counter()
        heat, index = saliency(classifier, x, method=method)
        maps.append(heat)
        titles.append(TITLES.get(method, method))
        print(f"{method}: {time.perf_counter() - started:.1f} s")
    fig = saliency_panel(x, maps, titles, photo_title=f"photo ({classifier.classes[index]})", dpi=110)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", pad_inches=0.05, pil_kwargs={"quality": 90})


def texture_figure(out: Path, *, size: int, iterations: int, seed: int) -> None:
    import percept
    from percept.image import save_image
    from percept.understand.montage import side_by_side, thumbnail

    result = percept.synthesize_texture(str(TEXTURE), size=size, iterations=iterations, seed=seed)
    source = thumbnail(TEXTURE, size).unsqueeze(0)
    texture = result.image.detach().cpu().float().reshape(1, 3, size, size).clamp(0, 1)
    gap = torch.ones(1, 3, size, 8)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(side_by_side(source, gap, texture), out, result.record)


def stylize_figure(out: Path, *, size: int) -> None:
    import percept
    from percept.image import save_image

    style = ROOT / "examples" / "style" / "van_gogh_starry_night.jpg"
    result = percept.stylize(str(PHOTO), [str(style)], size=size, progress=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(result.image, out, result.record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    sal = sub.add_parser("saliency", help="photo and the five saliency maps, titled, with colour bars")
    sal.add_argument("--size", type=int, default=336)
    sal.add_argument("--model", default="efficientnet_lite0")
    sal.add_argument("--out", type=Path, default=IMAGES / "explain_saliency_methods.jpg")
    tex = sub.add_parser("texture", help="source | synthesised texture")
    tex.add_argument("--size", type=int, default=256)
    tex.add_argument("--iterations", type=int, default=100)
    tex.add_argument("--seed", type=int, default=1)
    tex.add_argument("--out", type=Path, default=IMAGES / "texture_zigzag.png")
    sty = sub.add_parser("stylize", help="a full-size result of style transfer by optimisation")
    sty.add_argument("--size", type=int, default=512)
    sty.add_argument("--out", type=Path, default=IMAGES / "stylize_cat_starry_512.png")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.figure == "saliency":
        saliency_figure(args.out, size=args.size, model=args.model)
    elif args.figure == "stylize":
        stylize_figure(args.out, size=args.size)
    else:
        texture_figure(args.out, size=args.size, iterations=args.iterations, seed=args.seed)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
