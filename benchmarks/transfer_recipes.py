"""Transfer-learning recipes on three small data sets: validation accuracy and wall time, one table.

Each recipe trains with the library's own functions on each data set, one after the other in this process (never
in parallel), on the same split and seed, from an empty feature cache (so a frozen-features time includes the pass
of the backbone over the images):

* ``features``: ``percept train``'s default (EfficientNet-Lite0 features averaged over the last layer, logistic
  regression with cross-validated C). The reference every other recipe is compared with.
* ``max``, ``gram``, ``bilinear``: the same classifier on richer frozen features (max pooling of the last layer;
  Gram pooling of ``stage3`` and ``stage5``; bilinear pooling of ``stage5``), as ``--features``/``--pooling``.
* ``finetune_before``: the fine-tuning defaults before the linear-probe start, spelled out (random Kaiming head,
  2 head epochs + 8 fine-tuning epochs, BatchNorm statistics updated, top 4 stages, AdamW lr 5e-4, light
  augmentation, 224 px): the fine-tuning time to beat, measured in the same run.
* ``finetune``: ``percept train --strategy finetune`` with its current defaults.
* ``auto``: ``percept train --strategy auto`` with its default budget (15 minutes).
* ablations of ``finetune_before``, one change each, run only when named (``lp``: head from the linear probe, no
  head epochs; ``freeze_bn``; ``lr_low``; ``unfreeze_2``; ``aug_none``; ``aug_strong``; ``size_288``;
  ``epochs_5``; ``lp_bn``: both; ``lp_bn_lr1e4``: both at lr 1e-4, which is ``finetune``).

``val_accuracy`` is the run's validation accuracy (best epoch restored; with a linear-probe head epoch 0 is the
probe itself); ``seconds`` the wall time of the library call (scanning, features or training, validation,
writing the run to a temporary folder); ``cpu_seconds`` the CPU time of this process over the same span. Each
entry keeps its ``timestamp`` and ``load_average``: compare times within one JSON, measured on a quiet machine.

Data: the texture-patch set (built from the repository by ``benchmarks/texture_patches.py``), hymenoptera and
flowers102_mini from ``../shared/data/datasets`` (sets that are missing are skipped with a note). Run from the
repository root (progress on stderr, the JSON on stdout and in ``--out``)::

    .venv/bin/python benchmarks/transfer_recipes.py [--sets textures,hymenoptera,flowers]
        [--recipes features,max,gram,bilinear,finetune_before,finetune,auto] [--device cpu]
        [--out docs/transfer_recipes_cpu.json] [--merge] [--figure docs/images/transfer_recipes.png]

``--merge`` keeps the entries of an earlier JSON in ``--out`` for the set/recipe pairs not run now (a long study
run in pieces); without it the file is replaced.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from percept.transfer import train_auto, train_features, train_finetune

sys.path.insert(0, str(Path(__file__).resolve().parent))
import texture_patches  # noqa: E402  (the scripts next to this one)
from transfer import machine_info as transfer_machine_info  # noqa: E402

SETS = {
    "textures": "data/texture_patches",
    "hymenoptera": "../shared/data/datasets/hymenoptera",
    "flowers": "../shared/data/datasets/flowers102_mini",
}
#: Frozen-features recipes (settings of ``train_features``).
FEATURES = {
    "features": {},
    "max": {"pooling": "max"},
    "gram": {"features": ["stage3", "stage5"], "pooling": "gram"},
    "bilinear": {"features": ["stage5"], "pooling": "bilinear"},
}
TODAY = {"head_init": "kaiming", "head_epochs": 2, "epochs": 8, "freeze_bn": False, "unfreeze": "4", "lr": 5e-4,
         "augment": "light", "image_size": None, "patience": 4}
#: Fine-tuning recipes (settings of ``train_finetune``).
FINETUNE: dict[str, dict] = {
    "finetune_before": TODAY,
    "lp": {**TODAY, "head_init": "linear-probe", "head_epochs": 0},
    "freeze_bn": {**TODAY, "freeze_bn": True},
    "lr_low": {**TODAY, "lr": 2e-4},
    "unfreeze_2": {**TODAY, "unfreeze": "2"},
    "aug_none": {**TODAY, "augment": "none"},
    "aug_strong": {**TODAY, "augment": "strong"},
    "size_288": {**TODAY, "image_size": 288},
    "epochs_5": {**TODAY, "epochs": 5},
    "lp_bn": {**TODAY, "head_init": "linear-probe", "head_epochs": 0, "freeze_bn": True},
    "lp_bn_none": {**TODAY, "head_init": "linear-probe", "head_epochs": 0, "freeze_bn": True, "augment": "none"},
    "lp_bn_e5": {**TODAY, "head_init": "linear-probe", "head_epochs": 0, "freeze_bn": True, "epochs": 5},
    "lp_bn_lr1e4": {**TODAY, "head_init": "linear-probe", "head_epochs": 0, "freeze_bn": True, "lr": 1e-4},
    "finetune": {},
}
RECIPES = [*FEATURES, *FINETUNE, "auto"]
DEFAULT_RECIPES = ("features", "max", "gram", "bilinear", "finetune_before", "finetune", "auto")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info(device: str) -> dict:
    """benchmarks/transfer.py's machine fields, and the load average when this run started."""
    return {**transfer_machine_info(device), "load_average_at_start": os.getloadavg()}


def _entry(record: dict, started: float, cpu_started: float, settings: dict) -> dict:
    history = record.get("history", [])
    entry = {
        "val_accuracy": record["metrics"]["val_accuracy"],
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "strategy": record["strategy"],
        "settings": settings,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if record["strategy"] == "features":
        entry.update(C=record["C"], dim=record.get("dim"))
    else:
        entry.update(epochs_run=len(history), best_epoch=record["best_epoch"],
                     history=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                              for h in history])
    if "auto" in record:
        entry["auto"] = {k: record["auto"][k] for k in ("chosen", "strategy", "recipe", "candidates")}
    return entry


def run_recipe(name: str, data: str, args: argparse.Namespace) -> dict:
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    shared = {"seed": args.seed, "device": args.device}
    started, cpu_started = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="percept-recipes-") as tmp:
        cache = str(Path(tmp) / "cache")
        if name in FEATURES:
            record = train_features(data, Path(tmp) / "run", cache_dir=cache, **shared, **FEATURES[name])
            return _entry(record, started, cpu_started, FEATURES[name])
        if name == "auto":
            record = train_auto(data, Path(tmp) / "run", cache_dir=cache, **shared)
            return _entry(record, started, cpu_started, {})
        record = train_finetune(data, Path(tmp) / "run", **shared, **FINETUNE[name])
        return _entry(record, started, cpu_started, FINETUNE[name])


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in SETS if results.get(s)]
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(5.2 * max(1, len(sets)), 4.4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        for recipe, r in results[name].items():
            marker = {"features": "s", "finetune_before": "D", "finetune": "*", "auto": "P"}.get(
                recipe, "^" if recipe in FEATURES else "o")
            ax.scatter(r["seconds"], r["val_accuracy"], marker=marker, s=120 if marker in "*P" else 50)
            ax.annotate(recipe, (r["seconds"], r["val_accuracy"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
        if "finetune_before" in results[name]:
            ax.axvline(results[name]["finetune_before"]["seconds"], color="grey", lw=0.8, ls="--")
        if "features" in results[name]:
            ax.axhline(results[name]["features"]["val_accuracy"], color="grey", lw=0.8, ls=":")
        ax.set_title(name)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle("Transfer recipes: validation accuracy against wall time "
                 "(dotted: the default features; dashed: the earlier fine-tuning's time)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def checks(results: dict) -> dict:
    """Per set: the best recipe and its margin over the default, and fine-tuning against features and time."""
    out = {}
    for name, rs in results.items():
        if "features" not in rs:
            continue
        best = max(rs, key=lambda r: (rs[r]["val_accuracy"], -rs[r]["seconds"]))
        c = {"best_recipe": best,
             "best_minus_default": round(rs[best]["val_accuracy"] - rs["features"]["val_accuracy"], 4)}
        if "finetune" in rs:
            c["finetune_not_below_features"] = rs["finetune"]["val_accuracy"] >= rs["features"]["val_accuracy"]
            if "finetune_before" in rs:
                c["finetune_time_ratio"] = round(rs["finetune"]["seconds"] / rs["finetune_before"]["seconds"], 3)
                c["finetune_not_slower"] = rs["finetune"]["seconds"] <= rs["finetune_before"]["seconds"]
        out[name] = c
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated: {', '.join(SETS)}")
    ap.add_argument("--recipes", default=",".join(DEFAULT_RECIPES), help=f"comma-separated: {', '.join(RECIPES)}")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/transfer_recipes_cpu.json"))
    ap.add_argument("--figure", type=Path, default=Path("docs/images/transfer_recipes.png"))
    ap.add_argument("--merge", action="store_true", help="keep earlier entries of --out not run now")
    args = ap.parse_args(argv)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    for name in sets:
        if name not in SETS:
            ap.error(f"unknown set {name!r}; choose from {', '.join(SETS)}")
    for name in recipes:
        if name not in RECIPES:
            ap.error(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    texture_patches.build()
    out = {"benchmark": "transfer-learning recipes on small data sets", "machine": machine_info(args.device),
           "seed": args.seed, "backbone": "efficientnet_lite0", "sets": {}, "results": {}, "skipped": {}}
    if args.merge and args.out.is_file():
        old = json.loads(args.out.read_text())
        out.update(results=old.get("results", {}), sets=old.get("sets", {}), skipped=old.get("skipped", {}))
    for name in sets:
        path = Path(SETS[name])
        if not path.is_dir():
            out["skipped"][name] = f"{path} not found"
            log(f"{name}: skipped, {path} not found")
            continue
        counts = {split: len([p for p in (path / split).rglob("*") if p.is_file()]) for split in ("train", "val")}
        out["sets"][name] = {"path": SETS[name], "classes": len(list((path / "train").iterdir())), **counts}
        for recipe in recipes:
            log(f"{name}: {recipe} ...")
            r = run_recipe(recipe, SETS[name], args)
            out["results"].setdefault(name, {})[recipe] = r
            log(f"{name}: {recipe}: val acc {r['val_accuracy']:.4f}, {r['seconds']:.0f} s")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2))  # after every run: a long study survives interruption
    out["recipes"] = {"features": FEATURES, "finetune": FINETUNE}
    out["checks"] = checks(out["results"])
    args.out.write_text(json.dumps(out, indent=2))
    plot(out["results"], args.figure)
    print(json.dumps({s: {r: [round(v["val_accuracy"], 4), v["seconds"]] for r, v in rs.items()}
                      for s, rs in out["results"].items()} | {"checks": out["checks"]}, indent=2))


if __name__ == "__main__":
    main()
