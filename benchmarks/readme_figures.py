"""The README's pictures, made by running the README's own commands.

    .venv/bin/python benchmarks/readme_figures.py gallery [--model out/ff/starry.pt]
    .venv/bin/python benchmarks/readme_figures.py examples [--only style,adain,network,texture,transfer,explain]

``gallery``: full-size (512 px) results for the table at the top of the README, each written by the ``percept``
command itself (so every PNG records how it was made): optimisation is ``benchmarks/figures.py stylize``; here
AdaIN, a trained network (``--model``: a network trained as in docs/feedforward.md, 20 minutes on a CPU), texture
synthesis, DeepDream, and Grad-CAM at 512 px through the library. About 12 minutes on 2 CPU cores.

``examples``: the commands of each README section, at the sizes the README shows, into ``out/readme/``; their
outputs are then laid side by side with a caption each into ``docs/images/examples_SECTION.png``. About 25 minutes
on 2 CPU cores (the two 3-minute network trainings and four 256 px optimisations dominate).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
OUT = ROOT / "out" / "readme"
CAT = "examples/content/chelsea_cat.jpg"
ROCKET = "examples/content/rocket_launch.jpg"
STARRY = "examples/style/van_gogh_starry_night.jpg"
WAVE = "examples/style/hokusai_great_wave.jpg"
ZIGZAG = "examples/texture/colorful_zigzag_256.jpg"
DATA = "examples/data/photo_or_painting"

# Each section: the README's commands (``out/`` becomes ``out/readme/``), then the tiles (path, caption) to show.
SECTIONS: dict[str, tuple[list[str], list[tuple[str, str]]]] = {
    "style": ([
        f"stylize {CAT} {STARRY} -o out/cat_starry.png --size 256",
        f"stylize {CAT} {STARRY} -o out/cat_starry_colour.png --size 256 --preserve-color luminance",
        f"stylize {CAT} {WAVE} {STARRY} --style-blend-weights 0.7,0.3 -o out/cat_blend.png --size 256",
        f"stylize {CAT} {WAVE} -o out/cat_wave.png --size 256",
    ], [(CAT, "content"), (STARRY, "style"), ("out/cat_starry.png", "cat_starry.png"),
        ("out/cat_starry_colour.png", "cat_starry_colour.png"), ("out/cat_blend.png", "cat_blend.png (0.7 wave)"),
        ("out/cat_wave.png", "cat_wave.png")]),
    "adain": ([
        f"stylize {CAT} {WAVE} -o out/cat_wave_adain.png --method adain --alpha 0.8",
        f"stylize {CAT} {WAVE} {STARRY} -o out/cat_mix.png --method adain --style-blend-weights 0.5,0.5",
        f"stylize {CAT} {WAVE} {STARRY} -o out/cat_split.png --method adain --mask examples/masks/chelsea_cat_face.png",
    ], [("out/cat_wave_adain.png", "cat_wave_adain.png"), ("out/cat_mix.png", "cat_mix.png"),
        ("examples/masks/chelsea_cat_face.png", "the mask"), ("out/cat_split.png", "cat_split.png")]),
    "network": ([
        f"train-style {STARRY} --content-dir examples/content -o out/starry.pt --size 128 --amp --max-minutes 3",
        f"stylize {ROCKET} -o out/rocket_starry.png --model out/starry.pt",
        f"train-style {WAVE} {STARRY} --content-dir examples/content -o out/two.pt --size 128 --amp --max-minutes 3",
        f"stylize {CAT} -o out/cat_two.png --model out/two.pt --style-blend-weights 0.3,0.7",
    ], [(ROCKET, "content"), ("out/rocket_starry.png", "rocket_starry.png (3 min)"),
        ("out/cat_two.png", "cat_two.png (3 min, 2 styles)")]),
    "texture": ([
        f"texture {ZIGZAG} -o out/zigzag.png --size 256",
        f"texture {ZIGZAG} -o out/zigzag_fine.png --size 256 --style-scale 0.5 --seed 3",
    ], [(ZIGZAG, "source"), ("out/zigzag.png", "zigzag.png"), ("out/zigzag_fine.png", "zigzag_fine.png")]),
    "transfer": ([
        f"train {DATA} -o out/runs/finetune --strategy finetune --epochs 4",
        "evaluate out/runs/finetune --tta flip+crops --confusion-png out/confusion.png",
        f"lr-find {DATA} -o out/lr.png --steps 12",
    ], [("out/lr.png", "lr.png"), ("out/confusion.png", "confusion.png"),
        ("out/runs/finetune/learning_curves.png", "runs/finetune/learning_curves.png")]),
    "explain": ([
        f"explain saliency {CAT} --method gradcam --whole -o out/gradcam.png",
        f"explain saliency {CAT} --method occlusion --whole -o out/occlusion.png",
        "explain class-image --class goldfish,flamingo -o out/classes.png",
        f"explain invert {CAT} -o out/invert.png",
        f"explain attack {CAT} --target gibbon -o out/gibbon.png",
        f"explain neighbours {DATA} {CAT} -k 5 -o out/neighbours.png",
    ], [("out/gradcam.png", "gradcam.png"), ("out/occlusion.png", "occlusion.png"),
        ("out/classes.png", "classes.png"), ("out/invert.png", "invert.png"), ("out/gibbon.png", "gibbon.png"),
        ("out/neighbours.png", "neighbours.png")]),
}


def percept(command: str) -> None:
    """Run one ``percept`` command line (``out/`` paths redirected to ``out/readme/``) from the repository root."""
    args = [a.replace("out/", "out/readme/", 1) if a.startswith("out/") else a for a in command.split()]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "percept", *args, "-q"] if args[0] in {"stylize", "texture"}
                   else [sys.executable, "-m", "percept", *args], cwd=ROOT, check=True)
    print(f"{time.perf_counter() - started:6.0f} s  percept {command}", flush=True)


def strip(tiles: list[tuple[str, str]], out: Path, *, height: int) -> None:
    """Each image fitted into a ``height``-high box of its own aspect (at most 2:1), captioned, left to right."""
    from percept.understand.montage import labelled_grid

    images = [Image.open(ROOT / path.replace("out/", "out/readme/", 1) if path.startswith("out/") else ROOT / path)
              .convert("RGB") for path, _ in tiles]
    width = max(min(round(height * im.width / im.height), 2 * height) for im in images)
    boxes = [ImageOps.pad(im, (width, height), Image.Resampling.LANCZOS, color="white") for im in images]
    arrays = torch.from_numpy(np.stack([np.asarray(b, dtype=np.float32) / 255.0 for b in boxes])).permute(0, 3, 1, 2)
    grid = labelled_grid(arrays, [caption for _, caption in tiles], columns=len(tiles), font_size=13, frame=0)
    Image.fromarray((grid[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT)}")


def examples(sections: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sections:
        commands, tiles = SECTIONS[name]
        if name in {"network", "transfer"}:  # start from scratch, as a reader would
            for path in ("out/readme/starry.pt", "out/readme/two.pt", "out/readme/runs/finetune"):
                shutil.rmtree(ROOT / path, ignore_errors=True) if (ROOT / path).is_dir() else (ROOT / path).unlink(
                    missing_ok=True)
        for command in commands:
            percept(command)
        strip(tiles, IMAGES / f"examples_{name}.png", height=200)


def gradcam_512(out: Path) -> None:
    from percept.image import load_image, to_tensor
    from percept.models import get_model
    from percept.understand.montage import side_by_side
    from percept.understand.saliency import overlay, saliency

    classifier = get_model("efficientnet_lite0", kind="classifier")
    x = to_tensor(load_image(ROOT / CAT), longest=512)
    heat, index = saliency(classifier, x, method="gradcam")
    picture = side_by_side(overlay(x, heat, alpha=0.45))
    Image.fromarray((picture[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT)} (Grad-CAM of {classifier.classes[index]!r})")


def gallery(model: Path) -> None:
    if not model.is_file():
        sys.exit(f"error: no network at {model}; train one as in docs/feedforward.md, or pass --model FILE")
    IMAGES.mkdir(parents=True, exist_ok=True)
    if model.resolve().is_relative_to(ROOT):  # the record shows a path that works in any clone
        model = model.resolve().relative_to(ROOT)
    percept(f"stylize {CAT} {WAVE} -o docs/images/gallery_adain_512.png --method adain --size 512")
    percept(f"stylize {CAT} -o docs/images/gallery_network_512.png --model {model} --size 512")
    percept(f"texture {ZIGZAG} -o docs/images/gallery_texture_512.png --size 512")
    percept(f"explain dream {CAT} --size 512 -o docs/images/gallery_dream_512.png")
    gradcam_512(IMAGES / "gallery_gradcam_512.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    gal = sub.add_parser("gallery", help="512 px results for the README's gallery")
    gal.add_argument("--model", type=Path, default=ROOT / "out" / "ff" / "starry.pt",
                     help="a trained style network (docs/feedforward.md)")
    exa = sub.add_parser("examples", help="the outputs of the README's examples, one strip per section")
    exa.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.figure == "gallery":
        gallery(args.model)
    else:
        unknown = sorted(set(args.only.split(",")) - set(SECTIONS))
        if unknown:
            sys.exit(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        examples(args.only.split(","))
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
