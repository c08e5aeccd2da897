"""A texture classification set built from the repository alone: patches of 17 texture images.

    .venv/bin/python benchmarks/texture_patches.py [-o data/texture_patches] [--train 8] [--val 24] [--seed 0]

Each image of ``benchmarks/data/texture/`` (see its SOURCES.md) is one class. Training patches are cropped at
seeded random positions from the LEFT half of the image, validation patches from the RIGHT half, so no pixel of a
validation patch was seen in training. Whole clean crops make the set too easy (every recipe scores 1.000), so each
patch varies as photographs of one texture class do: its side is 10-30 % of the image's shorter side (a zoom
range of 3x; the classifiers resize patches to their input size), it is turned by a multiple of 90
degrees, its brightness, contrast and saturation are scaled by 0.6-1.4, and one in five is grey. Writes
``OUT/train/<class>/*.png`` and ``OUT/val/<class>/*.png`` (the folder layout ``percept train`` reads) and returns
the folder; an existing set made with the same settings is kept.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "benchmarks" / "data" / "texture"
DEFAULT_OUT = ROOT / "data" / "texture_patches"


VERSION = 2  # 1: clean crops of 40 % of the shorter side, 24 training and 12 validation patches per class


def _vary(patch: Image.Image, rng: random.Random) -> Image.Image:
    """A quarter turn, brightness, contrast and saturation changes, and sometimes no colour (see above)."""
    patch = patch.rotate(90 * rng.randrange(4))
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        patch = enhance(patch).enhance(rng.uniform(0.6, 1.4))
    return patch.convert("L").convert("RGB") if rng.random() < 0.2 else patch


def build(out: Path = DEFAULT_OUT, *, train: int = 8, val: int = 24, seed: int = 0) -> Path:
    """The patch set in ``out`` (made if missing or made with other settings)."""
    settings = {"train": train, "val": val, "seed": seed, "version": VERSION,
                "images": sorted(p.name for p in SOURCE.glob("*.jpg"))}
    stamp = out / "settings.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == settings:
        return out
    shutil.rmtree(out, ignore_errors=True)
    rng = random.Random(seed)
    for path in sorted(SOURCE.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        half = w // 2
        for split, count, x0 in (("train", train, 0), ("val", val, half)):
            folder = out / split / path.stem
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                side = min(round(rng.uniform(0.1, 0.3) * min(w, h)), half)  # narrow images: at most a half
                x = x0 + rng.randint(0, half - side)
                y = rng.randint(0, h - side)
                _vary(image.crop((x, y, x + side, y + side)), rng).save(folder / f"{path.stem}_{i:02d}.png")
    stamp.write_text(json.dumps(settings, indent=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--train", type=int, default=8, help="training patches per image")
    parser.add_argument("--val", type=int, default=24, help="validation patches per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = build(args.out, train=args.train, val=args.val, seed=args.seed)
    n = {split: len(list((out / split).glob("*/*.png"))) for split in ("train", "val")}
    print(f"{out}: {n['train']} training and {n['val']} validation patches of "
          f"{len(list((out / 'train').iterdir()))} textures")


if __name__ == "__main__":
    main()
