"""Image-classification datasets in ImageFolder layout, with checks and a seeded stratified split.

Two layouts are accepted::

    DATA/train/<class>/*.jpg  and  DATA/val/<class>/*.jpg      (used as given)
    DATA/<class>/*.jpg                                         (split by a seeded stratified split)

Every file is decoded once while scanning: corrupt or non-image files are skipped with one warning each and
counted, so training never stops half-way on a bad file.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PerceptError
from ..image import IMAGE_EXTENSIONS, load_image

Sample = tuple[Path, int]


@dataclass
class DatasetSplit:
    """Class names and ``(path, label)`` samples of a training and a validation set."""

    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason)
    layout: str = "train/val"

    def counts(self, which: str = "train") -> dict[str, int]:
        """Images per class in ``train`` or ``val``."""
        counter = Counter(label for _, label in getattr(self, which))
        return {name: counter.get(i, 0) for i, name in enumerate(self.classes)}

    def imbalance(self) -> float:
        """Largest over smallest training class size (1.0 = balanced)."""
        sizes = [n for n in self.counts("train").values()]
        return max(sizes) / max(1, min(sizes))

    def record(self, data: str | Path, val_fraction: float, seed: int) -> dict:
        """What a run records about its data: folder, layout, split settings, counts, skipped files."""
        return {
            "classes": self.classes,
            "data": str(Path(data).resolve()),
            "layout": self.layout,
            "val_fraction": val_fraction,
            "seed": seed,
            "counts": {"train": self.counts("train"), "val": self.counts("val")},
            "skipped": [[str(p), reason] for p, reason in self.skipped],
        }

    def summary(self) -> str:
        """A few lines for the user: sizes, imbalance, skipped files."""
        train, val = self.counts("train"), self.counts("val")
        lines = [f"{len(self.classes)} classes, {len(self.train)} training and {len(self.val)} validation images "
                 f"({self.layout})"]
        if len(self.classes) <= 12:
            lines += [f"  {name}: {train[name]} train, {val[name]} val" for name in self.classes]
        ratio = self.imbalance()
        if ratio >= 1.5:
            lines.append(f"  class imbalance: largest/smallest training class = {ratio:.1f}")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} unreadable file(s)")
        return "\n".join(lines)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    """Readable images below ``folder`` (recursively); unreadable ones are warned about and recorded."""
    good = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            reason = "not an image file extension"
        else:
            try:
                load_image(path)
                good.append(path)
                continue
            except PerceptError as exc:
                reason = str(exc)
        skipped.append((path, reason))
        warnings.warn(f"skipping {path}: {reason}", stacklevel=3)
    return good


def _samples(root: Path, classes: list[str], skipped: list[tuple[Path, str]]) -> list[Sample]:
    samples = []
    for label, name in enumerate(classes):
        folder = root / name
        if folder.is_dir():
            samples += [(path, label) for path in _images(folder, skipped)]
    return samples


def _check(classes: list[str], samples: list[Sample], root: Path, which: str) -> None:
    if not samples:
        raise PerceptError(f"no readable images found under {root}; expected {root}/<class>/*.jpg")
    if len(classes) < 2:
        raise PerceptError(f"{root} has {len(classes)} class folder(s); a classifier needs at least 2")
    counts = Counter(label for _, label in samples)
    empty = [name for i, name in enumerate(classes) if counts.get(i, 0) == 0]
    if empty:
        raise PerceptError(f"class folder(s) {', '.join(empty)} have no readable {which} images under {root}")


def scan_dataset(root: str | Path, *, val_fraction: float = 0.2, seed: int = 0) -> DatasetSplit:
    """Scan ``root`` (either layout above) and return the split; one-line errors for unusable data."""
    root = Path(root)
    if not root.is_dir():
        raise PerceptError(f"dataset folder {str(root)!r} not found")
    skipped: list[tuple[Path, str]] = []
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes = [p.name for p in _class_dirs(root / "train")]
        train = _samples(root / "train", classes, skipped)
        val = _samples(root / "val", classes, skipped)
        _check(classes, train, root / "train", "training")
        _check(classes, val, root / "val", "validation")
        extra = sorted({p.name for p in _class_dirs(root / "val")} - set(classes))
        if extra:
            raise PerceptError(f"{root}/val has classes missing from {root}/train: {', '.join(extra)}")
        return DatasetSplit(classes, train, val, skipped, "train/val folders")
    if not 0 < val_fraction < 1:
        raise PerceptError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    classes = [p.name for p in _class_dirs(root)]
    samples = _samples(root, classes, skipped)
    _check(classes, samples, root, "")
    train, val = stratified_split(samples, val_fraction, seed)
    return DatasetSplit(classes, train, val, skipped, f"one folder, seeded {val_fraction:.0%} stratified split")


def stratified_split(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Per class, a seeded shuffle puts ``val_fraction`` (at least one image, if the class has two) in val."""
    rng = random.Random(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted({lab for _, lab in samples}):
        members = [s for s in samples if s[1] == label]
        rng.shuffle(members)
        n_val = min(len(members) - 1, max(1, round(len(members) * val_fraction))) if len(members) > 1 else 0
        val += members[:n_val]
        train += members[n_val:]
    return train, val
