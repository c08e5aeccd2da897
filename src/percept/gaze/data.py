"""Eye-tracking data: a folder of stimuli with fixations, checked line by line, and splits by image.

A DATA folder holds::

    stimuli/NAME.jpg ...      the images shown to the observers
    images.csv                image,width,height[,...]   one row per stimulus (its size in px)
    fixations.csv             image,x,y[,subject,...]    one row per fixation, in the stimulus's pixels

Coordinates are continuous (pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``), origin top left. Every problem is one
line naming the file and the line: a malformed row, a fixation outside its image, an image missing from the csv or
from ``stimuli/``, a size that does not match the file.

Everything is evaluated on a **working grid**: the image resized so that its longer side is :data:`WORK_SIZE` px
(aspect kept), fixations scaled with it and rasterised by ``floor``. Splits are by image, never by fixation
(:func:`kfold`, :func:`split_images`), so no image is in two parts.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PerceptError

#: The longer side of the working grid, px: densities, metrics and training use this grid.
WORK_SIZE = 256
IMAGE_COLUMNS = ("image", "width", "height")
FIXATION_COLUMNS = ("image", "x", "y")


def work_size(width: int, height: int, longest: int = WORK_SIZE) -> tuple[int, int]:
    """``(W, H)`` of the working grid of a ``width`` x ``height`` image: longer side ``longest``, aspect kept."""
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class Stimulus:
    """One image of a data set: its name (as in the csv files), file, size in px and its row in images.csv."""

    name: str
    path: Path
    width: int
    height: int
    line: int = 0

    @property
    def grid(self) -> tuple[int, int]:
        """``(W, H)`` of its working grid."""
        return work_size(self.width, self.height)


@dataclass
class FixationData:
    """Stimuli and their fixations.

    Attributes:
        root: the DATA folder.
        stimuli: ``{name: Stimulus}`` in the order of images.csv (images without fixations left out).
        xy: ``{name: (n, 2) float64}`` fixation ``x, y`` in the stimulus's pixels.
        subjects: ``{name: [subject, ...]}`` (empty strings without a subject column).
        digest: SHA-256 of images.csv and fixations.csv (first 16 hex digits): the data's identity.
    """

    root: Path
    stimuli: dict[str, Stimulus]
    xy: dict[str, np.ndarray]
    subjects: dict[str, list[str]] = field(default_factory=dict)
    digest: str = ""

    @property
    def names(self) -> list[str]:
        return list(self.stimuli)

    def count(self, names: Iterable[str] | None = None) -> int:
        """Fixations on ``names`` (default: all images)."""
        return sum(len(self.xy[n]) for n in (self.names if names is None else names))

    def grid_fixations(self, name: str) -> np.ndarray:
        """``(n, 2)`` int64 ``(column, row)`` of the fixations on the working grid of ``name``."""
        s = self.stimuli[name]
        w, h = s.grid
        xy = self.xy[name]
        cols = np.clip(np.floor(xy[:, 0] * w / s.width), 0, w - 1)
        rows = np.clip(np.floor(xy[:, 1] * h / s.height), 0, h - 1)
        return np.stack([cols, rows], axis=1).astype(np.int64)

    def normalised(self, name: str) -> np.ndarray:
        """``(n, 2)`` fixations as fractions of the image's width and height, in ``[0, 1]``."""
        s = self.stimuli[name]
        return self.xy[name] / np.array([s.width, s.height], dtype=np.float64)


def _fail(file: Path, line: int, text: str) -> PerceptError:
    return PerceptError(f"{file.name} line {line}: {text}")


def _rows(file: Path, required: Sequence[str]):
    """``(line, row)`` of a csv file with a header; one line for a missing file, column or a malformed row."""
    if not file.is_file():
        raise PerceptError(f"{str(file)!r} not found; a DATA folder holds stimuli/, images.csv and fixations.csv")
    with open(file, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise _fail(file, 1, f"missing column(s) {', '.join(missing)}; the header needs {', '.join(required)}")
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                got = len(header) + len(row.get(None) or []) - sum(v is None for v in row.values())
                raise _fail(file, reader.line_num, f"expected {len(header)} fields, got {got}")
            yield reader.line_num, row


def _number(file: Path, line: int, column: str, text: str, *, whole: bool = False) -> float:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        noun = "a positive whole number" if whole else "a number"
        raise _fail(file, line, f"{column} {text!r} is not {noun}") from None
    if not math.isfinite(value) or (whole and value < 1):
        noun = "a positive whole number" if whole else "a finite number"
        raise _fail(file, line, f"{column} {text!r} is not {noun}")
    return value


def _read_images(root: Path) -> dict[str, Stimulus]:
    from PIL import Image

    file, folder = root / "images.csv", root / "stimuli"
    if not folder.is_dir():
        raise PerceptError(f"{str(folder)!r} not found; a DATA folder holds stimuli/, images.csv and fixations.csv")
    stimuli: dict[str, Stimulus] = {}
    for line, row in _rows(file, IMAGE_COLUMNS):
        name = row["image"].strip()
        if not name:
            raise _fail(file, line, "the image name is empty")
        if name in stimuli:
            raise _fail(file, line, f"{name!r} is listed twice (first on line {stimuli[name].line})")
        width = int(_number(file, line, "width", row["width"], whole=True))
        height = int(_number(file, line, "height", row["height"], whole=True))
        path = folder / name
        if not path.is_file():
            raise _fail(file, line, f"{name!r} is not in stimuli/; add the image or remove the row")
        try:
            with Image.open(path) as img:
                size = img.size
        except (OSError, SyntaxError, ValueError):
            raise _fail(file, line, f"stimuli/{name} is not an image file Pillow can read") from None
        if size != (width, height):
            raise _fail(file, line, f"stimuli/{name} is {size[0]}x{size[1]} px, not {width}x{height}; fix width "
                        "and height")
        stimuli[name] = Stimulus(name, path, width, height, line)
    if not stimuli:
        raise PerceptError(f"{str(file)!r} lists no images")
    listed = {s.path.resolve() for s in stimuli.values()}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.resolve() not in listed:
            raise PerceptError(f"stimuli/{path.relative_to(folder).as_posix()} is missing from images.csv; add a "
                               "row for it (image,width,height) or move the file out of stimuli/")
    return stimuli


def load_data(root: str | os.PathLike) -> FixationData:
    """Read and check a DATA folder (see the module docstring); one-line errors naming the file and the line.

    Images listed without any fixation are left out (with a warning): they can neither be trained on nor scored.
    """
    root = Path(root)
    if not root.is_dir():
        raise PerceptError(f"data folder {str(root)!r} not found")
    stimuli = _read_images(root)
    file = root / "fixations.csv"
    xy: dict[str, list[tuple[float, float]]] = {name: [] for name in stimuli}
    subjects: dict[str, list[str]] = {name: [] for name in stimuli}
    for line, row in _rows(file, FIXATION_COLUMNS):
        name = row["image"].strip()
        if name not in stimuli:
            raise _fail(file, line, f"image {name!r} is not in images.csv; add it there or remove its fixations")
        x = _number(file, line, "x", row["x"])
        y = _number(file, line, "y", row["y"])
        s = stimuli[name]
        if not (0 <= x <= s.width and 0 <= y <= s.height):
            raise _fail(file, line, f"fixation ({x:g}, {y:g}) lies outside {name!r} ({s.width}x{s.height} px)")
        xy[name].append((x, y))
        subjects[name].append(str(row.get("subject") or ""))
    empty = [name for name in stimuli if not xy[name]]
    if len(empty) == len(stimuli):
        raise PerceptError(f"{str(file)!r} holds no fixations")
    if empty:
        warnings.warn(f"{len(empty)} image(s) of images.csv have no fixations and are left out "
                      f"({', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''})", stacklevel=2)
    digest = hashlib.sha256()
    for name in ("images.csv", "fixations.csv"):
        digest.update((root / name).read_bytes())
    kept = {name: s for name, s in stimuli.items() if xy[name]}
    return FixationData(root, kept, {n: np.asarray(xy[n], dtype=np.float64) for n in kept},
                        {n: subjects[n] for n in kept}, digest.hexdigest()[:16])


# ----------------------------------------------------------------------------------------------------- splits


def kfold(names: Sequence[str], folds: int, seed: int = 0) -> list[list[str]]:
    """``folds`` disjoint lists of image names covering ``names``: a seeded shuffle of the sorted names cut into
    parts whose sizes differ by at most one. The same names, folds and seed give the same folds."""
    if not 1 <= folds <= len(names):
        raise PerceptError(f"cannot split {len(names)} images into {folds} folds; use 1 .. {len(names)}")
    order = sorted(names)
    random.Random(seed).shuffle(order)
    return [list(part) for part in np.array_split(np.array(order, dtype=object), folds)]


@dataclass(frozen=True)
class Split:
    """Images by role: ``train`` (fitted on), ``val`` (early stopping), ``test`` (the held-out fold)."""

    train: list[str]
    val: list[str]
    test: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def split_images(names: Sequence[str], *, folds: int = 5, fold: int = 0, val_fraction: float = 0.1,
                 seed: int = 0) -> Split:
    """Fold ``fold`` of :func:`kfold` is held out (``test``; none when ``folds`` is 1); of the rest, a seeded
    ``val_fraction`` (at least one image) is kept for early stopping and the others are trained on."""
    if len(names) < 2:
        raise PerceptError(f"training needs at least 2 images with fixations, got {len(names)}")
    parts = kfold(names, folds, seed) if folds > 1 else [list(names)]
    test = parts[fold] if folds > 1 else []
    rest = sorted(n for i, part in enumerate(parts) if folds == 1 or i != fold for n in part)
    if len(rest) < 2:
        raise PerceptError(f"{len(rest)} image(s) left for training after holding out fold {fold}; use fewer folds")
    random.Random(seed + 1).shuffle(rest)
    n_val = min(len(rest) - 1, max(1, round(val_fraction * len(rest))))
    return Split(sorted(rest[n_val:]), sorted(rest[:n_val]), sorted(test))
