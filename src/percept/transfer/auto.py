"""``--strategy auto``: choose a transfer-learning recipe within a time budget, from the training images only.

1. Each frozen-features recipe of :func:`feature_recipes` (average, max, Gram and bilinear pooling) is scored by
   cross-validation on the training images: the same k-fold cross-validation that chooses the classifier's C,
   whose mean accuracy at the chosen C is the recipe's score. The validation images are never used for the
   choice. Each recipe costs one pass of the backbone over the images (cached).
2. Fine-tuning (:data:`FINETUNE_RECIPE`) is tried when its estimated time, for the comparison and the final run
   together, fits in what is left of ``budget_minutes`` (the estimate is counted in inference passes of the
   backbone, timed on this device): a stratified, seeded share (``holdout``) of the training images is held out, the
   best features recipe and fine-tuning are both fitted on the rest, and fine-tuning wins only if the accuracy it
   ends with on the held-out images (its last epoch, not its best, so that choosing an epoch on those images does
   not flatter it) is higher.
3. The winner is the run: a features recipe's run (already trained on all training images), or fine-tuning
   trained on all training images. The run folder is an ordinary ``features`` or ``finetune`` run; its
   ``run.json`` keeps the comparison under ``auto``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

from ..device import resolve_device
from ..errors import PerceptError
from ..image import atomic_write
from ..params import from_settings, to_record
from .auto_params import AutoParams
from .data import scan_dataset

#: Per backbone, a mid-level and a deeper layer whose orderless (Gram, bilinear) pooling describes texture and
#: parts better than the average of the last layer (Cimpoi et al. 2015; Lin et al. 2015).
TEXTURE_LAYERS = {
    "efficientnet_lite0": ("stage3", "stage5"), "efficientnet_lite2": ("stage3", "stage5"),
    "efficientnet_b0": ("stage3", "stage5"), "mobilenet_v3_large": ("stage3", "stage5"),
    "vgg16": ("relu3_1", "relu4_1"), "vgg19": ("relu3_1", "relu4_1"), "alexnet": ("relu3", "relu5"),
    "resnet18": ("layer2", "layer3"), "resnet50": ("layer2", "layer3"), "convnext_tiny": ("stage2", "stage3"),
}
#: Frozen-features recipes compared by ``auto`` (settings of :class:`~percept.transfer.params.FeaturesParams`);
#: ``None``: those of :func:`feature_recipes` for the backbone.
FEATURE_RECIPES: dict[str, dict[str, Any]] | None = None


def feature_recipes(backbone: str) -> dict[str, dict[str, Any]]:
    """The frozen-features recipes ``auto`` compares for ``backbone``: average pooling of the last layer (the
    default of ``--strategy features``), max pooling, and Gram and bilinear pooling of :data:`TEXTURE_LAYERS`."""
    recipes: dict[str, dict[str, Any]] = {"avg": {}, "max": {"pooling": "max"}}
    if backbone in TEXTURE_LAYERS:
        mid, deep = TEXTURE_LAYERS[backbone]
        recipes["gram"] = {"features": [mid, deep], "pooling": "gram"}
        recipes["bilinear"] = {"features": [deep], "pooling": "bilinear"}
    return recipes
#: The fine-tuning recipe compared by ``auto`` (settings of :class:`~percept.transfer.finetune_params.FinetuneParams`).
FINETUNE_RECIPE: dict[str, Any] = {}
#: The comparison run plus the final run, in units of one fine-tuning run on all training images.
FINETUNE_RUNS = 1.0 + 0.75


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src.resolve(), dst)
    except OSError:  # no symlinks (some Windows setups): copy
        shutil.copy2(src, dst)


def holdout_folder(split, folder: Path, share: float, seed: int) -> tuple[int, int]:
    """A ``train/val`` data folder of links: ``share`` of each class's training images (at least one, none of a
    class with a single image) as ``val``, the rest as ``train``. Returns (train, held-out) counts."""
    shutil.rmtree(folder, ignore_errors=True)
    rng = random.Random(seed)
    by_class: dict[int, list[Path]] = {}
    for path, label in split.train:
        by_class.setdefault(label, []).append(Path(path))
    counts = [0, 0]
    for label, paths in sorted(by_class.items()):
        paths = sorted(paths)
        rng.shuffle(paths)
        n_out = 0 if len(paths) < 2 else max(1, round(share * len(paths)))
        for i, path in enumerate(paths):
            which = "val" if i < n_out else "train"
            _link(path, folder / which / split.classes[label] / f"{i:05d}_{path.name}")
            counts[which == "val"] += 1
    if counts[1] == 0:
        raise PerceptError("--strategy auto needs at least two training images in some class; "
                           "use --strategy features")
    return counts[0], counts[1]


#: Fine-tuning's cost in units of one inference pass of an image, measured on the three data sets of
#: ``benchmarks/transfer_recipes.py`` with EfficientNet-Lite0 on a CPU: a training image per epoch (forward, backward
#: through the unfrozen stages, augmentation, loading), a validation image per epoch, and the fixed cost in seconds
#: (building the network, writing the run and its diagnostics).
TRAIN_PASS, VAL_PASS, FIXED_SECONDS = 1.6, 0.9, 30.0


def seconds_per_image(backbone: str, device) -> tuple[float, int]:
    """Seconds for one inference pass of one image through ``backbone`` (a batch of 16, after a warm-up), and the
    input size it was measured at."""
    import torch

    from ..models import get_model

    net = get_model(backbone, kind="backbone", device=device)
    x = torch.rand(16, 3, net.crop, net.crop, device=device)
    timings = []
    with torch.inference_mode():
        for _ in range(2):
            started = time.perf_counter()
            net.model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timings.append(time.perf_counter() - started)
    return timings[-1] / len(x), net.crop


def estimate_finetune_seconds(n_train: int, n_val: int, per_image: float, crop: int = 224) -> float:
    """Seconds for one fine-tuning run with :data:`FINETUNE_RECIPE`, from ``per_image`` (one inference pass at the
    input size ``crop``): every epoch passes the training images (:data:`TRAIN_PASS`) and the validation images
    (:data:`VAL_PASS`); a linear-probe start adds one pass over both; plus :data:`FIXED_SECONDS`."""
    from .finetune_params import FinetuneParams

    ft = FinetuneParams(**FINETUNE_RECIPE)
    epochs = ft.epochs + ft.resolved_head_epochs()
    probe = n_train + n_val if ft.head_init == "linear-probe" else 0.0
    passes = epochs * (TRAIN_PASS * n_train + VAL_PASS * n_val) + probe
    scale = 1.0 if ft.image_size is None else (ft.image_size / crop) ** 2
    return FIXED_SECONDS + per_image * passes * scale


def train_auto(data: str | Path, out: str | Path, *, progress: bool = False, **settings: Any) -> dict[str, Any]:
    """Choose a recipe (see the module docstring) and train it on ``data`` into the run folder ``out``.

    ``settings`` are fields of :class:`~percept.transfer.auto_params.AutoParams`. Returns the final run's record,
    with ``auto``: the budget, every candidate's score and seconds (or why it was skipped), the chosen recipe,
    and the total seconds.
    """
    from .finetune import train_finetune
    from .linear import train_features

    started = time.perf_counter()
    p = from_settings(AutoParams, settings)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"run folder {str(out)!r} exists and is a file")
    split = scan_dataset(data, val_fraction=p.val_fraction, seed=p.seed)
    work = out / ".auto"
    shared = {"backbone": p.backbone, "seed": p.seed, "device": p.device}
    features_shared = {**shared, "batch_size": p.batch_size, "cache_dir": p.cache_dir}
    budget = 60.0 * p.budget_minutes
    candidates: list[dict[str, Any]] = []

    def report(line: str) -> None:
        if progress:
            print(line, flush=True)

    recipes = FEATURE_RECIPES if FEATURE_RECIPES is not None else feature_recipes(p.backbone)
    for name, recipe in recipes.items():  # each costs about as much as the one before (one backbone pass)
        spent = time.perf_counter() - started
        last = next((c["seconds"] for c in reversed(candidates) if "seconds" in c), 0.0)
        if candidates and spent + last > budget:
            candidates.append({"name": name, "strategy": "features", "recipe": recipe, "skipped": "out of time"})
            continue
        t0 = time.perf_counter()
        run = train_features(data, work / name, progress=progress, val_fraction=p.val_fraction,
                             **features_shared, **recipe)
        score = run["metrics"]["cv_accuracy"]
        candidates.append({"name": name, "strategy": "features", "recipe": recipe, "cv_accuracy": score,
                           "seconds": round(time.perf_counter() - t0, 1)})
        report(f"auto: {name}: cross-validated accuracy on the training images "
               + ("n/a (too few images per class)" if score is None else f"{score:.3f}"))
    tried = [c for c in candidates if "seconds" in c]
    # ties go to the earlier, simpler recipe (the default first), not to the one that happened to run faster
    best = max(tried, key=lambda c: (c["cv_accuracy"] or 0.0, -tried.index(c)))

    per_image, crop = seconds_per_image(p.backbone, resolve_device(p.device))
    estimate = estimate_finetune_seconds(len(split.train), len(split.val), per_image, crop)
    left = budget - (time.perf_counter() - started)
    ft: dict[str, Any] = {"name": "finetune", "strategy": "finetune", "recipe": FINETUNE_RECIPE,
                          "estimated_seconds": round(estimate, 1)}
    if FINETUNE_RUNS * estimate > left:
        ft["skipped"] = (f"estimated {FINETUNE_RUNS * estimate / 60:.1f} min for comparing and training, "
                         f"{max(0.0, left) / 60:.1f} min left of the budget")
        report(f"auto: fine-tuning skipped: {ft['skipped']}")
    else:  # against the best features recipe, both fitted on the same part of the training images
        t0 = time.perf_counter()
        n_fit, n_held = holdout_folder(split, work / "holdout", p.holdout, p.seed)
        ref = train_features(work / "holdout", work / "holdout_features", **features_shared, **best["recipe"])
        run = train_finetune(work / "holdout", work / "finetune", progress=progress, **shared, **FINETUNE_RECIPE)
        ft.update(holdout_accuracy=run["history"][-1]["val_accuracy"] if run["history"] else
                  run["metrics"]["val_accuracy"], features_holdout_accuracy=ref["metrics"]["val_accuracy"],
                  fit_images=n_fit, held_out_images=n_held, seconds=round(time.perf_counter() - t0, 1))
        report(f"auto: finetune: held-out accuracy {ft['holdout_accuracy']:.3f} against "
               f"{ft['features_holdout_accuracy']:.3f} for {best['name']}")
        if ft["holdout_accuracy"] > ft["features_holdout_accuracy"]:
            best = ft
    candidates.append(ft)
    report(f"auto: chose {best['name']} ({best['strategy']}"
           + "".join(f", {k}={v}" for k, v in best["recipe"].items()) + ")")
    if best["strategy"] == "finetune":
        record = train_finetune(data, out, progress=progress, **shared, val_fraction=p.val_fraction,
                                **best["recipe"])
    else:  # the chosen recipe's run was trained on all training images already
        for path in (work / best["name"]).iterdir():
            os.replace(path, out / path.name)
        record = json.loads((out / "run.json").read_text())
    shutil.rmtree(work, ignore_errors=True)
    record["auto"] = {"params": to_record(p), "candidates": candidates, "chosen": best["name"],
                      "strategy": best["strategy"], "recipe": best["recipe"],
                      "seconds": round(time.perf_counter() - started, 1)}
    atomic_write(out / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    return record
