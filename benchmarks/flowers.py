"""What pretraining is worth on a small data set: transfer learning against training from scratch.

On ``flowers102_mini`` (102 classes, 8 training and 2 validation images each) this trains, with percept's
defaults and one backbone (EfficientNet-Lite0 unless ``--backbone``):

* ``features``: frozen backbone + logistic regression (C by cross-validation), no augmentation;
* ``features_augmented``: the same plus the features of ``--copies`` augmented copies of every training image
  (``light`` preset);
* ``finetune``: head, then the top 4 stages (defaults: 2 + 8 epochs, AdamW, cosine, ``light`` augmentation);
* ``finetune_no_augment``: the same with ``--augment none``;
* ``scratch``: the same architecture from random weights with the same budget (10 epochs, every layer at the
  default lr, ``light`` augmentation).

Every configuration writes a run folder under ``--runs``; a folder that already holds a finished run with the
same settings is reused (its recorded accuracy and seconds are reported, ``reused: true``), so an interrupted
benchmark continues where it stopped. Prints one JSON object: per configuration the validation accuracy (a
fraction in [0, 1]) and seconds, and the check ``best_transfer_minus_scratch >= 0.40``.

    .venv/bin/python benchmarks/flowers.py [--data DIR] [--runs out/flowers] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

import percept
from percept.transfer import train_features, train_finetune

DEFAULT_DATA = "../shared/data/datasets/flowers102_mini"


def configurations(copies: int) -> dict[str, tuple]:
    """name -> (training function, keyword arguments)."""
    return {
        "features": (train_features, {}),
        "features_augmented": (train_features, {"augment": "light", "augment_copies": copies}),
        "finetune": (train_finetune, {"augment": "light"}),
        "finetune_no_augment": (train_finetune, {"augment": "none"}),
        "scratch": (train_finetune, {"augment": "light", "pretrained": False}),
    }


def _finished(run: Path, backbone: str, kwargs: dict) -> dict | None:
    """The record of a finished run in ``run`` made with these settings, else None."""
    try:
        record = json.loads((run / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("backbone") != backbone:
        return None
    if record["strategy"] == "features":
        same = record.get("augment_copies", 0) == kwargs.get("augment_copies", 0)
    else:
        params = record["params"]
        same = params["augment"] == kwargs["augment"] and params.get("pretrained", True) == kwargs.get("pretrained", True)
    return record if same else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--runs", type=Path, default=Path("out/flowers"))
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--copies", type=int, default=4, help="augmented copies for features_augmented")
    parser.add_argument("--only", default="", help="comma-separated configurations to run (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        print(f"flowers benchmark: data folder {args.data!r} not found", file=sys.stderr)
        return 2
    results = {}
    chosen = [c for c in args.only.split(",") if c] or list(configurations(args.copies))
    for name, (train, kwargs) in configurations(args.copies).items():
        if name not in chosen:
            continue
        run = args.runs / name
        record = _finished(run, args.backbone, kwargs)
        reused = record is not None
        if record is None:
            print(f"training {name} ...", file=sys.stderr, flush=True)
            record = train(args.data, run, backbone=args.backbone, device=args.device, progress=True, **kwargs)
        results[name] = {"val_accuracy": record["metrics"]["val_accuracy"], "seconds": record["seconds"],
                         "reused": reused, "settings": kwargs,
                         "epochs_run": len(record.get("history", [])) or None}
    report = {"benchmark": "flowers102_mini transfer vs scratch", "backbone": args.backbone, "data": args.data,
              "percept_version": percept.__version__, "torch": torch.__version__, "machine": platform.machine(),
              "cpu_threads": torch.get_num_threads(), "results": results}
    transfer = [r["val_accuracy"] for n, r in results.items() if n != "scratch"]
    if transfer and "scratch" in results:
        margin = max(transfer) - results["scratch"]["val_accuracy"]
        report["best_transfer_minus_scratch"] = round(margin, 4)
        report["checks"] = {"transfer_beats_scratch_by_40_points": margin >= 0.40}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
