"""AdaIN acceptance at 512 px: every style of a folder, the content-style trade-off alpha, and a contact sheet.

For each style image, :func:`percept.stylize_adain` with the shipped decoder stylises the content photo at
``--size`` (default 512) for alpha = 0, 0.25, ..., 1. Each output is scored with two style losses against the
style image at the same size: the paper's (mean/std of VGG-19 relu1_1..relu4_1, :func:`adain_loss`'s style
term) and percept's Gram-matrix style loss (relu1_1..relu5_1, the loss of ``percept stylize``). Strength is
monotonic when both losses fall at every step of alpha.

Prints one JSON object (per style: losses per alpha, monotonic flags, seconds) and, with ``--sheet``, writes a
contact sheet: content, then each style and its alpha=1 result, downsized to ``--thumb`` px.

    .venv/bin/python benchmarks/adain_alpha.py --styles ../shared/data/style --sheet docs/images/adain_all_styles_512.jpg
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from percept import stylize_adain
from percept.image import load_image, save_image, to_tensor
from percept.losses import gram_matrix, style_loss
from percept.models import get_model
from percept.style.adain import mean_std
from percept.style.params import DEFAULT_STYLE_LAYERS

REPO = Path(__file__).resolve().parents[1]
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
ADAIN_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]


def scorer(style: torch.Tensor):
    """Both style losses of an image ``(1, 3, H, W)`` against ``style`` (same network, Gatys' VGG-19)."""
    net = get_model("vgg19")
    gram_layers = DEFAULT_STYLE_LAYERS["vgg19"]
    with torch.no_grad():
        target = net(style, sorted(set(ADAIN_LAYERS + gram_layers)))
    grams = {n: gram_matrix(target[n]) for n in gram_layers}
    stats = {n: mean_std(target[n]) for n in ADAIN_LAYERS}

    def score(image: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            feats = net(image, sorted(set(ADAIN_LAYERS + gram_layers)))
        gram = sum(float(style_loss(feats[n], grams[n])) for n in gram_layers) / len(gram_layers)
        moments = 0.0
        for n in ADAIN_LAYERS:
            mean, std = mean_std(feats[n])
            moments += float(torch.nn.functional.mse_loss(mean, stats[n][0], reduction="mean")
                             + torch.nn.functional.mse_loss(std, stats[n][1], reduction="mean"))
        return {"gram_style": round(gram, 5), "meanstd_style": round(moments, 4)}

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", type=Path, default=REPO / "examples" / "content" / "chelsea_cat.jpg")
    parser.add_argument("--styles", type=Path, default=REPO / "examples" / "style")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG here")
    parser.add_argument("--thumb", type=int, default=160, help="contact-sheet cell size, px (default: 160)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    styles = sorted(p for p in args.styles.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    content = load_image(args.content, what="content image")
    results, cells = {}, []
    for path in styles:
        style_pil = load_image(path, what="style image")
        score = scorer(to_tensor(style_pil, longest=args.size))
        rows, images = [], {}
        for alpha in ALPHAS:
            started = time.perf_counter()
            result = stylize_adain(content, style_pil, alpha=alpha, size=args.size)
            rows.append({"alpha": alpha, "seconds": round(time.perf_counter() - started, 2), **score(result.image)})
            images[alpha] = result.image
        falls = {k: all(b[k] < a[k] for a, b in zip(rows, rows[1:])) for k in ("gram_style", "meanstd_style")}
        results[path.stem] = {"size": list(images[1.0].shape[-2:][::-1]), "alphas": rows,
                              "monotonic": falls}
        print(f"{path.stem}: gram {[r['gram_style'] for r in rows]} monotonic {falls}", file=sys.stderr, flush=True)
        cells.append((to_tensor(style_pil, longest=args.thumb), images[1.0]))
    summary = {"content": str(args.content), "size": args.size, "styles": len(results),
               "all_monotonic": all(all(r["monotonic"].values()) for r in results.values()), "results": results}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.sheet:
        save_image(contact_sheet(to_tensor(content, longest=args.thumb), cells, args.thumb), args.sheet)


def contact_sheet(content: torch.Tensor, cells: list[tuple[torch.Tensor, torch.Tensor]], thumb: int) -> torch.Tensor:
    """Rows of (style, result) pairs, four pairs per row, white background; the content first, alone."""
    from percept.image import fit_size, resize

    def cell(image: torch.Tensor) -> torch.Tensor:
        w, h = fit_size(image.shape[-1], image.shape[-2], thumb)
        out = torch.ones(1, 3, thumb, thumb)
        top, left = (thumb - h) // 2, (thumb - w) // 2
        out[..., top : top + h, left : left + w] = resize(image, (w, h)).clamp(0, 1)
        return out

    per_row = 4
    blank = torch.ones(1, 3, thumb, thumb)
    rows = [torch.cat([cell(content)] + [blank] * (2 * per_row - 1), dim=3)]
    for i in range(0, len(cells), per_row):
        pairs = [t for style, result in cells[i : i + per_row] for t in (cell(style), cell(result))]
        pairs += [blank] * (2 * per_row - len(pairs))
        rows.append(torch.cat(pairs, dim=3))
    return torch.cat(rows, dim=2)


if __name__ == "__main__":
    main()
