"""Benchmark percept's fine-tuning recipe against the torchvision transfer-learning tutorial's.

Two recipes fine-tune the same pretrained backbone on the same data (the same split, from percept's
``scan_dataset``) for the same number of epochs, one after the other in this process:

* **torchvision_tutorial**: "finetuning the ConvNet" from pytorch/tutorials
  ``beginner_source/transfer_learning_tutorial.py``, written below: a new head, then *all* layers trainable
  from the first epoch; ``SGD(model.parameters(), lr=0.001, momentum=0.9)``; ``StepLR(step_size=7,
  gamma=0.1)`` stepped once per epoch; plain cross-entropy; the tutorial's transforms (train:
  ``RandomResizedCrop(crop)`` + ``RandomHorizontalFlip``; val: ``Resize(resize)`` + ``CenterCrop(crop)``);
  batch size 4, shuffled; every epoch is run and the best validation accuracy is kept (the tutorial saves the
  best model, and so does this loop). Differences from the tutorial, all to keep the comparison about the
  recipe: the network is percept's ``FinetuneNet(backbone, num_classes)`` (the same new head as percept:
  dropout 0.2 + a Kaiming-initialised linear layer; the tutorial's ResNet-18 ``fc`` has no dropout), inputs
  are RGB in [0, 1] with no ``Normalize`` (the backbone normalises internally), images are loaded with
  percept's ``ImageListDataset`` in the main process (``num_workers=0``, as percept does; the tutorial uses
  4 workers) and shuffled with a seeded generator.
* **percept_default**: ``percept.transfer.train_finetune`` with all its defaults except the epoch budget,
  split as ``head_epochs=2`` + ``epochs=EPOCHS - 2`` so both recipes get ``--epochs`` epochs; percept's early
  stopping (``patience``) stays on, so it may run fewer (``epochs_run``).

Both are seeded the same way before they start (``torch``, ``random``, ``numpy``). ``seconds`` is the wall
time of the whole recipe measured here in the same way for both: scanning and decoding the data, building the
network (reading the weights), training, validation, keeping the best weights (for percept also writing its
run folder to a temporary directory). Before either is timed, the data set is scanned and the backbone built
once, so that neither pays for a cold file cache or first imports. The recipes run one after the other on a
possibly shared machine: compare ``seconds`` within one run of this script only. ``val_accuracy`` is the best
validation accuracy over epochs, a fraction in [0, 1].

Run from the repository root (prints one JSON object on stdout, progress on stderr)::

    .venv/bin/python benchmarks/transfer.py [--data DIR] [--backbone efficientnet_lite0] [--epochs 10]
        [--seed 0] [--device cpu] [--out results.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

import percept
from percept.device import resolve_device
from percept.errors import PerceptError
from percept.models import get_model
from percept.models.names import BACKBONES
from percept.transfer import scan_dataset, train_finetune
from percept.transfer.finetune import accuracy
from percept.transfer.finetune_data import ImageListDataset
from percept.transfer.finetune_net import FinetuneNet

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = "../shared/data/datasets/hymenoptera"
HEAD_EPOCHS = 2  # percept's default head-only epochs; the rest of the budget goes to fine-tuning
VAL_FRACTION = 0.2  # train_finetune's default (used only for data without train/ and val/ folders)

# The tutorial's hyper-parameters.
TUTORIAL_LR, TUTORIAL_MOMENTUM = 0.001, 0.9
TUTORIAL_STEP_SIZE, TUTORIAL_GAMMA = 7, 0.1
TUTORIAL_BATCH_SIZE = 4


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


# ------------------------------------------------------------------------------------------- recipes


def run_tutorial(args: argparse.Namespace, device: torch.device) -> dict:
    """The torchvision tutorial's "finetuning the ConvNet" on percept's network and data loading."""
    seed_everything(args.seed)
    started = time.perf_counter()
    split = scan_dataset(args.data, val_fraction=VAL_FRACTION, seed=args.seed)
    model = FinetuneNet(args.backbone, len(split.classes)).to(device)
    model.unfreeze_top(10**6)  # every layer trainable from the start
    train_tf = transforms.Compose([transforms.RandomResizedCrop(model.crop), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor()])
    val_tf = transforms.Compose([transforms.Resize(model.resize), transforms.CenterCrop(model.crop),
                                 transforms.ToTensor()])
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(ImageListDataset(split.train, train_tf), batch_size=TUTORIAL_BATCH_SIZE, shuffle=True,
                              generator=generator)
    val_loader = DataLoader(ImageListDataset(split.val, val_tf), batch_size=TUTORIAL_BATCH_SIZE)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=TUTORIAL_STEP_SIZE, gamma=TUTORIAL_GAMMA)

    history: list[dict] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, args.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        total_loss, correct, count = 0.0, 0, 0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            logits = model(x)
            loss = criterion(logits, y)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(y)
            correct += int((logits.detach().argmax(1) == y).sum())
            count += len(y)
        scheduler.step()  # once per epoch, after the training phase, as in the tutorial
        val_acc = accuracy(model, val_loader, device)
        history.append({"epoch": epoch, "phase": "finetune", "lr": lr, "train_loss": total_loss / max(1, count),
                        "train_accuracy": correct / max(1, count), "val_accuracy": val_acc})
        if val_acc > best_acc:  # strictly better, as in the tutorial
            best_acc, best_epoch, best_state = val_acc, epoch, copy.deepcopy(model.state_dict())
        log(f"  tutorial epoch {epoch}/{args.epochs}: lr {lr:.0e}, train loss {history[-1]['train_loss']:.4f}, "
            f"val acc {val_acc:.4f}  ({time.perf_counter() - started:.1f} s)")
    model.load_state_dict(best_state)  # the tutorial returns the best model
    seconds = time.perf_counter() - started
    return {
        "val_accuracy": best_acc,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "seconds": round(seconds, 2),
        "history": history,
        "params": {"optimizer": "SGD", "lr": TUTORIAL_LR, "momentum": TUTORIAL_MOMENTUM,
                   "scheduler": f"StepLR(step_size={TUTORIAL_STEP_SIZE}, gamma={TUTORIAL_GAMMA}) per epoch",
                   "batch_size": TUTORIAL_BATCH_SIZE, "epochs": args.epochs, "unfreeze": "all",
                   "label_smoothing": 0.0, "augment": "RandomResizedCrop + RandomHorizontalFlip",
                   "eval_transform": f"Resize({model.resize}) + CenterCrop({model.crop})"},
    }


def run_percept(args: argparse.Namespace) -> dict:
    """``train_finetune`` with its defaults, the epoch budget split as head_epochs=2 + epochs=EPOCHS-2."""
    seed_everything(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="percept-bench-transfer-") as tmp:
        record = train_finetune(args.data, tmp, backbone=args.backbone, head_epochs=HEAD_EPOCHS,
                                epochs=args.epochs - HEAD_EPOCHS, seed=args.seed, device=args.device,
                                progress=sys.stderr.isatty())
        seconds = time.perf_counter() - started  # before the run folder is deleted
    history = record["history"]
    for h in history:
        log(f"  percept epoch {h['epoch']}/{args.epochs} ({h['phase']}): train loss {h['train_loss']:.4f}, "
            f"val acc {h['val_accuracy']:.4f}")
    return {
        "val_accuracy": record["metrics"]["val_accuracy"],
        "best_epoch": record["best_epoch"],
        "epochs_run": len(history),
        "seconds": round(seconds, 2),
        "history": history,
        "params": record["params"],
        "stopped_early": len(history) < args.epochs,
        "seconds_reported_by_percept": record["seconds"],  # from its own start, without writing the run folder
    }


# ------------------------------------------------------------------------------------------- benchmark


def machine_info(device: str) -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "device": device,
        "cuda_device": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "percept_version": percept.__version__,
    }


def benchmark(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    log(f"warm-up: scanning {args.data} and building {args.backbone} once (not timed) ...")
    split = scan_dataset(args.data, val_fraction=VAL_FRACTION, seed=args.seed)
    get_model(args.backbone, kind="backbone")
    log(split.summary())

    log(f"torchvision tutorial recipe, {args.epochs} epochs ...")
    tutorial = run_tutorial(args, device)
    log(f"torchvision tutorial: best val acc {tutorial['val_accuracy']:.4f} (epoch {tutorial['best_epoch']}), "
        f"{tutorial['seconds']:.1f} s")

    log(f"percept default recipe, {HEAD_EPOCHS} head + {args.epochs - HEAD_EPOCHS} fine-tuning epochs ...")
    mine = run_percept(args)
    log(f"percept: best val acc {mine['val_accuracy']:.4f} (epoch {mine['best_epoch']}, {mine['epochs_run']} "
        f"epochs run), {mine['seconds']:.1f} s")

    return {
        "machine": machine_info(args.device),
        "data": str(args.data),
        "dataset": {"layout": split.layout, "classes": split.classes, "train": len(split.train),
                    "val": len(split.val), "skipped": len(split.skipped)},
        "backbone": args.backbone,
        "seed": args.seed,
        "epoch_budget": args.epochs,
        "torchvision_tutorial": tutorial,
        "percept_default": mine,
        "checks": {
            "percept_more_accurate": mine["val_accuracy"] > tutorial["val_accuracy"],
            "percept_faster": mine["seconds"] < tutorial["seconds"],
        },
    }


# ------------------------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark percept's fine-tuning recipe against the torchvision transfer-learning tutorial's.")
    parser.add_argument("--data", type=Path, default=Path(DEFAULT_DATA),
                        help=f"ImageFolder data set, relative paths from the repository root (default: {DEFAULT_DATA})")
    parser.add_argument("--backbone", default="efficientnet_lite0", choices=BACKBONES,
                        help="pretrained backbone for both recipes (default: efficientnet_lite0)")
    parser.add_argument("--epochs", type=int, default=10,
                        help=f"epoch budget of each recipe, >= {HEAD_EPOCHS + 1} (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, shuffling and training (default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.epochs < HEAD_EPOCHS + 1:
        parser.error(f"--epochs must be at least {HEAD_EPOCHS + 1} (percept's {HEAD_EPOCHS} head epochs plus at "
                     f"least one fine-tuning epoch)")
    args.data = (args.data if args.data.is_absolute() else REPO / args.data).resolve()
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if not args.data.is_dir():
            raise PerceptError(f"data folder {args.data} not found; pass --data DIR (ImageFolder layout)")
        results = benchmark(args)
    except PerceptError as exc:
        sys.exit(f"benchmarks/transfer.py: {exc}")
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
