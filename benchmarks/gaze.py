"""Where people look: 5-fold cross-validation by image of DeepGaze I and II against the baselines.

On ../shared/data/saliency/nus_scene500 (500 images, 43,894 fixations; NUS scene saliency data set), the images
are split into ``--folds`` folds by image (seed 0). For each fold the held-out images are scored (percept.gaze
.evaluate_gaze, 256-px working grid) for: uniform, the Gaussian blob and the kernel-density centre bias (fitted on
the fold's training images), deepgaze1 (AlexNet features) and deepgaze2 (VGG-19 features), each trained with
percept's defaults (percept.gaze.train_gaze; early stopping on a tenth of the training images). Printed as JSON:
per fold and model LL (bits/fixation over uniform), IG over the centre bias (bits/fixation), AUC, sAUC, NSS, CC and
the training minutes; the means over folds; the feature-cache minutes of each network (computed once for all
folds, before the folds); and the checks: deepgaze1 gains over the centre bias (IG > 0, higher AUC and NSS) on every
fold, deepgaze2 has a higher mean IG than deepgaze1, every fold trains in at most 15 minutes.

    .venv/bin/python benchmarks/gaze.py --write        # docs/gaze_cpu.json + docs/images/gaze_overlays.png
    .venv/bin/python benchmarks/gaze.py --only-folds 0 --epochs 3 --out /tmp/gaze.json   # a smoke test

``--write`` also draws, for 3 held-out images of the first fold: the photo with its fixations, then the densities
of the centre bias, deepgaze1 and deepgaze2 over it (fixations as cyan dots).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from percept.gaze import evaluate_gaze, load_data, load_gaze_model, train_gaze
from percept.gaze.features import FeatureExtractor, default_cache_dir
from percept.gaze.params import DEFAULT_LAYERS, GazeTrainParams

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "saliency" / "nus_scene500"
MODELS = {"deepgaze1": "alexnet", "deepgaze2": "vgg19"}
ROWS = ("uniform", "gaussian blob", "centre bias", "deepgaze1", "deepgaze2")
METRICS = ("ll", "ig", "auc", "sauc", "nss", "cc")
FOLD_MINUTES = 15.0


def warm_cache(data, cache_dir: Path, size: int) -> dict[str, float]:
    """Feature maps of every image for both networks, into the cache; minutes per network."""
    minutes = {}
    paths = [data.stimuli[n].path for n in data.names]
    for backbone in MODELS.values():
        started = time.perf_counter()
        FeatureExtractor(backbone, DEFAULT_LAYERS[backbone], size, device="cpu", cache_dir=cache_dir).maps(
            paths, progress=True, desc=f"feature cache ({backbone})")
        minutes[backbone] = round((time.perf_counter() - started) / 60, 2)
    return minutes


def run_fold(data_dir: Path, fold: int, args, folder: Path) -> tuple[dict, dict[str, Path]]:
    """Train both models on one fold and score them with the baselines on its held-out images."""
    rows, files, train = {}, {}, {}
    for model, backbone in MODELS.items():
        out = folder / f"{model}_fold{fold}.pt"
        extra = {"epochs": args.epochs} if args.epochs else {}
        record = train_gaze(data_dir, out, model=model, backbone=backbone, folds=args.folds, fold=fold, device="cpu",
                            cache_dir=args.cache_dir, progress=True, **extra)
        result = evaluate_gaze(out, data_dir, cache_dir=args.cache_dir, device="cpu")
        for name, values in result["rows"].items():
            rows.setdefault(name, {m: values[m] for m in METRICS})
        train[model] = {"minutes": round(record["seconds"] / 60, 2), "best_epoch": record["best_epoch"],
                        "epochs": len(record["history"]), "stopped": record["stopped"],
                        "blur_sigma_px": record["blur_sigma_px"], "centre_bias_weight": record["centre_bias_weight"]}
        files[model] = out
        images, fixations = result["rows"][model]["images"], result["rows"][model]["fixations"]
    for model, facts in train.items():
        rows[model]["train_minutes"] = facts["minutes"]
    return {"fold": fold, "images": images, "fixations": fixations, "rows": {r: rows[r] for r in ROWS},
            "training": train}, files


def summary(folds: list[dict]) -> dict:
    means = {r: {m: round(sum(f["rows"][r][m] for f in folds) / len(folds), 4) for m in METRICS} for r in ROWS}
    for model in MODELS:
        means[model]["train_minutes"] = round(sum(f["training"][model]["minutes"] for f in folds) / len(folds), 2)
    dg1 = [f["rows"]["deepgaze1"] for f in folds]
    cb = [f["rows"]["centre bias"] for f in folds]
    checks = {
        "deepgaze1_ig_above_0_every_fold": all(r["ig"] > 0 for r in dg1),
        "deepgaze1_auc_above_centre_bias_every_fold": all(r["auc"] > c["auc"] for r, c in zip(dg1, cb)),
        "deepgaze1_nss_above_centre_bias_every_fold": all(r["nss"] > c["nss"] for r, c in zip(dg1, cb)),
        "deepgaze2_mean_ig_above_deepgaze1": means["deepgaze2"]["ig"] > means["deepgaze1"]["ig"],
        "every_fold_trains_within_15_min": all(t["minutes"] <= FOLD_MINUTES for f in folds
                                               for t in f["training"].values()),
    }
    return {"means": means, "checks": checks}


def overlays(data_dir: Path, files: dict[str, Path], cache_dir: Path, path: Path, count: int = 3) -> None:
    """Rows of: photo with fixations | centre bias | deepgaze1 | deepgaze2, over the photo, with fixations."""
    from percept.gaze.render import draw_fixations, overlay
    from percept.image import load_image, save_image, to_tensor

    data = load_data(data_dir)
    models = {name: load_gaze_model(file) for name, file in files.items()}
    held = models["deepgaze1"].training["split"]["test"][:count]
    rows = []
    for name in held:
        s = data.stimuli[name]
        grid = s.grid
        photo = to_tensor(load_image(s.path), size=grid)
        xy = data.xy[name] * torch.tensor([grid[0] / s.width, grid[1] / s.height]).numpy()
        panels = [draw_fixations(photo, xy),
                  draw_fixations(overlay(photo, models["deepgaze1"].centre_bias.log_density(*grid)), xy)]
        for model in models.values():
            maps = model.extractor(cache_dir).maps([s.path])[0]
            panels.append(draw_fixations(overlay(photo, model.log_density(maps, grid)), xy))
        row = torch.cat([torch.nn.functional.pad(p, (0, 256 - p.shape[-1], 0, 256 - p.shape[-2]), value=1.0)
                         for p in panels], dim=3)
        rows.append(row)
    save_image(torch.cat(rows, dim=2), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-folds", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="run these folds only (comma list), e.g. 0 for a smoke test")
    parser.add_argument("--epochs", type=int, default=None, help="most epochs (default: percept's)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None, help="write the overlays here (--write: to docs/)")
    parser.add_argument("--write", action="store_true", help="write docs/gaze_cpu.json and docs/images/"
                        "gaze_overlays.png")
    args = parser.parse_args()

    started = time.perf_counter()
    data = load_data(args.data)
    size = GazeTrainParams().feature_size
    cache_minutes = warm_cache(data, args.cache_dir, size)
    folds, first_files = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for fold in args.only_folds or range(args.folds):
            result, files = run_fold(args.data, fold, args, Path(tmp))
            folds.append(result)
            print(json.dumps({"fold": fold, "rows": result["rows"]}), flush=True)
            if first_files is None:
                first_files = files
                figure = ROOT / "docs" / "images" / "gaze_overlays.png" if args.write else args.figure
                if figure:
                    overlays(args.data, files, args.cache_dir, figure)
    report = {
        "data": {"name": args.data.name, "images": len(data.names), "fixations": data.count()},
        "setup": {"folds": args.folds, "seed": 0, "working_grid_px": 256, "feature_size_px": size,
                  "layers": DEFAULT_LAYERS, "cc_sigma_px": 8.0, "defaults": "percept gaze-train defaults"
                  + (f", epochs {args.epochs}" if args.epochs else "")},
        "feature_cache_minutes": cache_minutes,
        "folds": folds,
        **summary(folds),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.write:
        (ROOT / "docs" / "gaze_cpu.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
