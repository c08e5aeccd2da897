"""A texture classification set built from the repository alone: patches of 17 texture images.

    .venv/bin/python benchmarks/texture_patches.py [-o data/texture_patches] [--train 24] [--val 12] [--seed 0]

Each image of ``benchmarks/data/texture/`` (see its SOURCES.md) is one class. Training patches are cropped at
seeded random positions from the LEFT half of the image, validation patches from the RIGHT half, so no pixel of a
validation patch was seen in training. A patch's side is 40 % of the image's shorter side (at least 96 px); the
patches are saved as they are (the classifiers resize them). Writes ``OUT/train/<class>/*.png`` and
``OUT/val/<class>/*.png`` (the folder layout ``percept train`` reads) and returns the folder; an existing set made
with the same settings is kept.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "benchmarks" / "data" / "texture"
DEFAULT_OUT = ROOT / "data" / "texture_patches"


def build(out: Path = DEFAULT_OUT, *, train: int = 24, val: int = 12, seed: int = 0) -> Path:
    """The patch set in ``out`` (made if missing or made with other settings)."""
    settings = {"train": train, "val": val, "seed": seed, "images": sorted(p.name for p in SOURCE.glob("*.jpg"))}
    stamp = out / "settings.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == settings:
        return out
    shutil.rmtree(out, ignore_errors=True)
    rng = random.Random(seed)
    for path in sorted(SOURCE.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        side = max(96, round(0.4 * min(w, h)))
        half = w // 2
        if side > half:  # narrow images: patches as wide as a half
            side = half
        for split, count, x0 in (("train", train, 0), ("val", val, half)):
            folder = out / split / path.stem
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                x = x0 + rng.randint(0, half - side)
                y = rng.randint(0, h - side)
                image.crop((x, y, x + side, y + side)).save(folder / f"{path.stem}_{i:02d}.png")
    stamp.write_text(json.dumps(settings, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--train", type=int, default=24, help="training patches per image")
    parser.add_argument("--val", type=int, default=12, help="validation patches per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = build(args.out, train=args.train, val=args.val, seed=args.seed)
    n = {split: len(list((out / split).glob("*/*.png"))) for split in ("train", "val")}
    print(f"{out}: {n['train']} training and {n['val']} validation patches of "
          f"{len(list((out / 'train').iterdir()))} textures")


if __name__ == "__main__":
    main()
