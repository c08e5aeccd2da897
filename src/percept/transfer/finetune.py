"""Transfer learning by fine-tuning: a new head on a pretrained backbone, then the top of the backbone.

The recipe (defaults in :func:`train_finetune`):

1. **Head first.** The backbone is frozen (BatchNorm statistics too) and only a new head (dropout + linear,
   Kaiming or Xavier initialised) is trained for ``head_epochs`` epochs.
2. **Then the top K stages** (``unfreeze``) are unfrozen with *discriminative learning rates*: the unfrozen
   stages are split into an earlier and a later half trained at ``lr/9`` and ``lr/3``, the head at ``lr``.
   AdamW (or SGD with Nesterov momentum) with weight decay, a cosine (or one-cycle) schedule per phase, label
   smoothing, augmentation (preset ``light``: random resized crop, horizontal flip, colour jitter; see
   :mod:`percept.transfer.augment`), early stopping on validation accuracy with the best epoch restored, mixed
   precision (AMP) on CUDA.

``pretrained=False`` trains the same architecture from random weights, all layers at once, as a baseline.

A run folder holds ``run.json``, ``model.pt`` (the whole network's state dict plus what is needed to rebuild
it), ``history.csv``, ``learning_curves.png`` and ``diagnostics.json``/``.png`` (activation statistics and dead
ReLUs per layer at start and end), and is read by :func:`percept.transfer.runs.load_run` like a ``features``
run. While training, ``checkpoint.pt`` holds the state after the last finished epoch, so an interrupted run
continues with ``resume=True`` exactly where it stopped; it is removed when the run completes.

Under ``torchrun`` the same function trains data-parallel (DDP): ``batch_size`` stays the global batch, split
evenly across the processes; rank 0 validates, writes and reports (see :mod:`percept.transfer.distributed`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .. import __version__
from ..device import amp_dtype, resolve_device
from ..errors import InterruptedRun, PerceptError
from ..image import atomic_write, load_image
from .augment import batch_mixer, get_augment, image_transform
from .backbones import get_backbone, view_transform
from .data import DatasetSplit, Sample, scan_dataset
from .distributed import DistContext, broadcast, close, gather, init_distributed
from .names import OPTIMIZER_DEFAULTS, SCHEDULES
from .plots import plot_learning_curves, write_history_csv


class FinetuneNet(nn.Module):
    """Pretrained backbone ``(B, 3, S, S) -> (B, D)`` plus a new head ``(B, D) -> (B, K)``.

    ``stages`` lists the backbone's parts from input to output; unfreezing the top K means the last K.
    """

    def __init__(self, backbone: str, num_classes: int, dropout: float = 0.2, init: str = "kaiming",
                 pretrained: bool = True) -> None:
        super().__init__()
        net = get_backbone(backbone, pretrained=pretrained)
        self.backbone_name, self.crop, self.resize, self.pretrained = backbone, net.crop, net.resize, pretrained
        self.weights_id = net.weights_id
        self.body = net.model
        self.body.requires_grad_(False)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(net.dim, num_classes))
        linear = self.head[1]
        if init == "kaiming":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="linear")
        elif init == "xavier":
            nn.init.xavier_uniform_(linear.weight)
        else:
            raise PerceptError(f"unknown head init {init!r}; use kaiming or xavier")
        nn.init.zeros_(linear.bias)
        self.stages = _stages(self.body)
        self.frozen_below = len(self.stages)  # stages[i] with i < frozen_below are frozen

    def reuse_imagenet_rows(self, classes: list[str]) -> list[str]:
        """Initialise the head rows of classes named like an ImageNet class (e.g. ``daisy``) from the
        pretrained classifier (EfficientNet-Lite only). Returns the classes that were matched."""
        from ..models.efficientnet import imagenet_categories

        pretrained = getattr(getattr(self.body, "net", None), "_fc", None)
        if pretrained is None:
            raise PerceptError(f"--reuse-head needs a backbone with an ImageNet classifier (efficientnet_lite0/2), "
                               f"not {self.backbone_name}")
        norm = lambda name: name.lower().replace("_", " ").replace("-", " ").strip()  # noqa: E731
        index = {norm(c): i for i, c in enumerate(imagenet_categories())}
        matched = []
        with torch.no_grad():
            for row, name in enumerate(classes):
                if norm(name) in index:
                    self.head[1].weight[row] = pretrained.weight[index[norm(name)]]
                    self.head[1].bias[row] = pretrained.bias[index[norm(name)]]
                    matched.append(name)
        return matched

    def unfreeze_top(self, k: int) -> None:
        """Make the top ``k`` stages trainable (``k >= len(stages)`` unfreezes everything)."""
        k = max(0, min(k, len(self.stages)))
        self.frozen_below = len(self.stages) - k
        for i, stage in enumerate(self.stages):
            stage.requires_grad_(i >= self.frozen_below)

    def train(self, mode: bool = True) -> "FinetuneNet":
        """Frozen stages always stay in eval mode, so their BatchNorm statistics never change."""
        super().train(mode)
        for stage in self.stages[: self.frozen_below]:
            stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _stages(body: nn.Module) -> list[nn.Module]:
    """Backbone parts from input to output, for each kind of backbone :func:`get_backbone` builds."""
    inner = getattr(body, "net", body)
    if hasattr(inner, "_blocks"):  # EfficientNet-Lite: stem, each MBConv block, head conv
        return [nn.ModuleList([inner._conv_stem, inner._bn0]), *inner._blocks,
                nn.ModuleList([inner._conv_head, inner._bn1])]
    if hasattr(inner, "layers") and isinstance(inner.layers, nn.ModuleDict):  # FeatureNet: each conv
        return [m for m in inner.layers.values() if isinstance(m, nn.Conv2d)]
    inner = getattr(inner, "net", inner)
    if hasattr(inner, "layer4"):  # torchvision ResNet
        return [nn.ModuleList([inner.conv1, inner.bn1]), inner.layer1, inner.layer2, inner.layer3, inner.layer4]
    if hasattr(inner, "features"):  # torchvision MobileNetV3, EfficientNet, ConvNeXt (+ what precedes the head)
        return [*inner.features, inner.classifier]
    raise PerceptError(f"cannot fine-tune {type(inner).__name__}: unknown layout")


def param_groups(model: FinetuneNet, lr: float, weight_decay: float,
                 discriminative: bool = True) -> list[dict[str, Any]]:
    """Discriminative learning rates: unfrozen stages' earlier half at lr/9, later half at lr/3, head at lr
    (``discriminative=False``: everything at lr, as when training from scratch)."""
    unfrozen = model.stages[model.frozen_below :]
    half = len(unfrozen) // 2
    early, late = (lr / 9, lr / 3) if discriminative else (lr, lr)
    groups = [
        {"name": "early", "params": [p for s in unfrozen[:half] for p in s.parameters()], "lr": early},
        {"name": "late", "params": [p for s in unfrozen[half:] for p in s.parameters()], "lr": late},
        {"name": "head", "params": list(model.head.parameters()), "lr": lr},
    ]
    return [dict(g, weight_decay=weight_decay) for g in groups if g["params"]]


def make_optimizer(kind: str, groups: list[dict[str, Any]], momentum: float = 0.9) -> torch.optim.Optimizer:
    """AdamW, or SGD with (Nesterov) momentum, over ``groups`` (each with its own lr and weight decay)."""
    if kind == "adamw":
        return torch.optim.AdamW(groups)
    if kind == "sgd":
        return torch.optim.SGD(groups, momentum=momentum, nesterov=momentum > 0)
    raise PerceptError(f"unknown optimizer {kind!r}; use {' or '.join(OPTIMIZER_DEFAULTS)}")


def make_scheduler(kind: str, optimizer: torch.optim.Optimizer, steps: int):
    """Per-step schedule over ``steps`` steps: ``cosine`` decays every group's lr to 0; ``onecycle`` warms up
    for 30% of the steps to each group's lr, then anneals (momentum cycles inversely)."""
    if kind == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    if kind == "onecycle":
        cycle_momentum = "betas" in optimizer.defaults or optimizer.defaults.get("momentum", 0) > 0
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=steps, pct_start=0.3, cycle_momentum=cycle_momentum)
    raise PerceptError(f"unknown schedule {kind!r}; use {' or '.join(SCHEDULES)}")


class ImageListDataset(Dataset):
    """``(path, label)`` samples -> ``(transform(image), label)``."""

    def __init__(self, samples: list[Sample], transform) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return self.transform(load_image(path)), label


@dataclass
class Training:
    """Everything one fine-tuning run works with, built by :func:`prepare_training`."""

    split: DatasetSplit
    model: FinetuneNet
    train_loader: DataLoader
    val_loader: DataLoader
    mixer: Any  # (x, y) -> (x, soft y) for mixup/cutmix, or None
    loss_fn: nn.Module
    aug: Any  # the Augment settings, or None
    device: torch.device
    ctx: DistContext
    reused: list[str]  # classes whose head rows came from the ImageNet classifier


def prepare_training(data: str | Path, *, backbone: str = "efficientnet_lite0", pretrained: bool = True,
                     dropout: float = 0.2, head_init: str = "kaiming", label_smoothing: float = 0.1,
                     augment: str = "light", augment_overrides: dict[str, Any] | None = None,
                     reuse_head: bool = False, batch_size: int = 16, val_fraction: float = 0.2, seed: int = 0,
                     device: str | torch.device = "auto", workers: int | None = None,
                     ctx: DistContext | None = None) -> Training:
    """Scan ``data``, build the network with its new head, the loaders (augmented training images, centre-crop
    validation images), the batch mixer (mixup/cutmix) and the loss. ``workers=None``: 0 loader processes on
    CPU, up to 8 on an accelerator. ``ctx``: this process's place in data-parallel training (default: alone)."""
    ctx = ctx or DistContext()
    dev = resolve_device(device)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        if not ctx.is_main:  # skipped files are reported once, by rank 0
            warnings.simplefilter("ignore")
        split = scan_dataset(data, val_fraction=val_fraction, seed=seed)
    model = FinetuneNet(backbone, len(split.classes), dropout, head_init, pretrained=pretrained)
    reused = model.reuse_imagenet_rows(split.classes) if reuse_head else []
    model = model.to(dev)
    torch.manual_seed(seed + ctx.rank)  # augmentation and dropout differ between data-parallel processes
    aug = get_augment(augment, **(augment_overrides or {}))
    transform = view_transform(model.resize, model.crop) if aug is None else image_transform(model.crop, aug)
    if workers is None:
        workers = 0 if dev.type == "cpu" else min(8, os.cpu_count() or 1)
    loader_opts = dict(num_workers=workers, pin_memory=dev.type == "cuda", persistent_workers=workers > 0)
    train_set = ImageListDataset(split.train, transform)
    per_process = max(1, batch_size // ctx.world_size)
    drop_last = len(split.train) > batch_size  # no BatchNorm batch of one
    if ctx.active:
        sampler = DistributedSampler(train_set, ctx.world_size, ctx.rank, shuffle=True, seed=seed, drop_last=drop_last)
        train_loader = DataLoader(train_set, batch_size=per_process, sampler=sampler, drop_last=drop_last, **loader_opts)
    else:
        generator = torch.Generator().manual_seed(seed)
        train_loader = DataLoader(train_set, batch_size=per_process, shuffle=True, generator=generator,
                                  drop_last=drop_last, **loader_opts)
    val_loader = DataLoader(ImageListDataset(split.val, view_transform(model.resize, model.crop)),
                            batch_size=batch_size * 2, **loader_opts)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    return Training(split, model, train_loader, val_loader, batch_mixer(aug, len(split.classes)), loss_fn, aug,
                     dev, ctx, reused)


def _epoch(model: nn.Module, t: Training, optimizer, scheduler, scaler, dtype, bar) -> float:
    """One pass over the training images; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    autocast = torch.autocast(t.device.type, dtype=dtype) if dtype is not None else nullcontext()
    for x, y in t.train_loader:
        if t.mixer is not None:  # mixup / cutmix: soft labels mixed like the pixels
            x, y = t.mixer(x, y)
        x, y = x.to(t.device, non_blocking=True), y.to(t.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = t.loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total, count = total + float(loss.detach()) * len(y), count + len(y)
        bar.update(1)
    return total / max(1, count)


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader, device) -> float:
    model.eval()
    correct = count = 0
    for x, y in loader:
        correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
        count += len(y)
    return correct / max(1, count)


def _state_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer: equal on all data-parallel replicas when they are in sync."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _diagnostic_batch(t: Training, n: int = 32) -> torch.Tensor:
    """Up to ``n`` validation images (centre crops), the fixed input of the activation diagnostics."""
    transform = view_transform(t.model.resize, t.model.crop)
    return torch.stack([transform(load_image(p)) for p, _ in t.split.val[:n]]).to(t.device)


def _checkpoint_path(out: Path) -> Path:
    return out / "checkpoint.pt"


def train_finetune(
    data: str | Path,
    out: str | Path,
    *,
    backbone: str = "efficientnet_lite0",
    pretrained: bool = True,
    epochs: int = 8,
    head_epochs: int = 2,
    unfreeze: int | str = 4,
    optimizer: str = "adamw",
    lr: float | None = None,
    weight_decay: float | None = None,
    momentum: float = 0.9,
    schedule: str = "cosine",
    dropout: float = 0.2,
    head_init: str = "kaiming",
    label_smoothing: float = 0.1,
    augment: str = "light",
    augment_overrides: dict[str, Any] | None = None,
    reuse_head: bool = False,
    batch_size: int = 16,
    patience: int = 4,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "auto",
    amp: bool | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``backbone`` on ``data`` (see the module docstring); write the run to ``out``.

    ``epochs`` counts the fine-tuning epochs after the ``head_epochs``; ``unfreeze`` is a number of top
    stages or ``"all"``; ``lr``/``weight_decay`` default per optimizer (AdamW 5e-4/0.05, SGD 1e-2/5e-4);
    ``reuse_head`` initialises the head rows of classes named like ImageNet classes from the pretrained
    classifier; ``pretrained=False`` trains the architecture from scratch for ``head_epochs + epochs`` epochs,
    all layers at ``lr``. ``amp=None`` uses mixed precision on CUDA only. ``resume`` continues an interrupted
    run in ``out`` (same settings required). Returns the run record with ``metrics.val_accuracy`` in [0, 1].
    """
    started = time.perf_counter()
    if epochs < 0 or head_epochs < 0 or epochs + head_epochs == 0:
        raise PerceptError("give at least one epoch (epochs + head-epochs >= 1)")
    if optimizer not in OPTIMIZER_DEFAULTS:
        raise PerceptError(f"unknown optimizer {optimizer!r}; use {' or '.join(OPTIMIZER_DEFAULTS)}")
    if schedule not in SCHEDULES:
        raise PerceptError(f"unknown schedule {schedule!r}; use {' or '.join(SCHEDULES)}")
    lr = OPTIMIZER_DEFAULTS[optimizer]["lr"] if lr is None else lr
    weight_decay = OPTIMIZER_DEFAULTS[optimizer]["weight_decay"] if weight_decay is None else weight_decay
    if lr <= 0:
        raise PerceptError(f"lr must be > 0, got {lr}")
    k = _parse_unfreeze(unfreeze)
    out = Path(out)
    checkpoint_file = _checkpoint_path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"run folder {str(out)!r} exists and is a file")
    if resume and not checkpoint_file.is_file():
        done = " (it already finished)" if (out / "run.json").is_file() else ""
        raise PerceptError(f"no interrupted run to resume in {str(out)!r}{done}; drop --resume to start one")
    if not resume and checkpoint_file.is_file():
        raise PerceptError(f"{str(out)!r} holds an interrupted run; add --resume to continue it, or choose another "
                           "-o folder")
    params = {"pretrained": pretrained, "epochs": epochs, "head_epochs": head_epochs, "unfreeze": unfreeze,
              "optimizer": optimizer, "lr": lr, "weight_decay": weight_decay, "momentum": momentum,
              "schedule": schedule, "dropout": dropout, "head_init": head_init, "label_smoothing": label_smoothing,
              "augment": augment, "augment_overrides": augment_overrides or {}, "reuse_head": reuse_head,
              "batch_size": batch_size, "patience": patience}

    ctx, dev = init_distributed(device)
    try:
        t = prepare_training(data, backbone=backbone, pretrained=pretrained, dropout=dropout, head_init=head_init,
                             label_smoothing=label_smoothing, augment=augment, augment_overrides=augment_overrides,
                             reuse_head=reuse_head, batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                             device=dev, workers=workers, ctx=ctx)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
        return _fit(t, out, backbone, params, k, val_fraction, seed, amp, resume, progress, started, data)
    finally:
        close(ctx)


def _fit(t: Training, out: Path, backbone: str, params: dict[str, Any], k: int, val_fraction: float, seed: int,
         amp: bool | None, resume: bool, progress: bool, started: float, data) -> dict[str, Any]:
    """The training loop of :func:`train_finetune` (phases, checkpoints, early stopping, outputs)."""
    from .diagnostics import activation_stats, compare, format_summary, plot_diagnostics

    model, ctx, dev = t.model, t.ctx, t.device
    dtype = amp_dtype(amp, dev)
    if params["pretrained"]:
        phases = [("head", params["head_epochs"], 0, True), ("finetune", params["epochs"], k, True)]
    else:
        phases = [("scratch", params["head_epochs"] + params["epochs"], 10**6, False)]
    diag_batch = _diagnostic_batch(t) if ctx.is_main else None
    state: dict[str, Any] = {"phase": 0, "phase_epoch": 0, "epoch": 0, "stale": 0, "history": [],
                             "best": {"val_accuracy": -1.0, "epoch": 0, "state": None},
                             "diagnostics_start": activation_stats(model, diag_batch) if ctx.is_main else None}
    saved = None
    if resume:
        try:
            saved = torch.load(_checkpoint_path(out), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise PerceptError(f"{_checkpoint_path(out)} is damaged ({type(exc).__name__}); delete it to start the "
                               "run again") from None
        changed = {k_: (saved["params"].get(k_), v) for k_, v in params.items() if saved["params"].get(k_) != v}
        if saved.get("backbone") != backbone or changed:
            what = ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changed.items()) or "backbone"
            raise PerceptError(f"cannot resume {str(out)!r} with different settings ({what}); use the original "
                               "options or another -o folder")
        model.load_state_dict(saved["model"])
        state.update({key: saved[key] for key in state})
        torch.set_rng_state(saved["rng"])
        if not ctx.active:
            t.train_loader.generator.set_state(saved["loader_rng"])

    bar = tqdm(total=sum(n for _, n, _, _ in phases) * len(t.train_loader), initial=state["epoch"] * len(t.train_loader),
               desc=f"fine-tune {backbone}" if params["pretrained"] else f"train {backbone} from scratch",
               unit="batch", disable=not progress or not ctx.is_main)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    saved_epoch = state["epoch"]
    try:
        for index, (phase, n_epochs, n_unfrozen, discriminative) in enumerate(phases):
            if index < state["phase"] or n_epochs == 0:
                continue
            model.unfreeze_top(n_unfrozen)
            groups = param_groups(model, params["lr"], params["weight_decay"], discriminative)
            opt = make_optimizer(params["optimizer"], groups, params["momentum"])
            scheduler = make_scheduler(params["schedule"], opt, n_epochs * len(t.train_loader))
            if saved is not None and index == state["phase"] and state["phase_epoch"] > 0:
                opt.load_state_dict(saved["optimizer"])
                scheduler.load_state_dict(saved["scheduler"])
                scaler.load_state_dict(saved["scaler"])
            elif index > state["phase"]:
                state.update(phase=index, phase_epoch=0, stale=0)
            train_model = model
            if ctx.active:
                from torch.nn.parallel import DistributedDataParallel

                train_model = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
            while state["phase_epoch"] < n_epochs:
                if ctx.active:
                    t.train_loader.sampler.set_epoch(state["epoch"])
                train_loss = _epoch(train_model, t, opt, scheduler, scaler, dtype, bar)
                state["epoch"] += 1
                state["phase_epoch"] += 1
                val_acc = broadcast(ctx, accuracy(model, t.val_loader, dev) if ctx.is_main else None)
                state["history"].append({"epoch": state["epoch"], "phase": phase, "train_loss": train_loss,
                                         "val_accuracy": val_acc})
                bar.set_postfix(epoch=state["epoch"], loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}",
                                refresh=False)
                if val_acc > state["best"]["val_accuracy"]:
                    state["best"] = {"val_accuracy": val_acc, "epoch": state["epoch"],
                                     "state": {n: v.detach().cpu().clone() for n, v in model.state_dict().items()}}
                    state["stale"] = 0
                else:
                    state["stale"] += 1
                    if phase != "head" and state["stale"] >= params["patience"]:
                        state["phase_epoch"] = n_epochs  # early stop: this phase is over
                if ctx.is_main:
                    _save_checkpoint(out, model, opt, scheduler, scaler, state, params, backbone, t)
                saved_epoch = state["epoch"]
    except KeyboardInterrupt:
        bar.close()
        where = f"after epoch {saved_epoch}" if saved_epoch else "before the first epoch ended"
        raise InterruptedRun(f"training interrupted; {str(out)!r} holds the state {where}: run the same command "
                             "with --resume to continue") from None
    bar.close()
    model.load_state_dict(state["best"]["state"])  # early stopping: restore the best epoch
    replicas = gather(ctx, _state_digest(model))
    if not ctx.is_main:
        return {}

    diagnostics = compare(state["diagnostics_start"], activation_stats(model, diag_batch))
    history = state["history"]
    record = {
        "percept_version": __version__,
        "strategy": "finetune",
        "backbone": backbone,
        "weights_id": model.weights_id,
        **t.split.record(data, val_fraction, seed),
        "params": {**params, "augmentation": t.aug.to_dict() if t.aug else None,
                   "amp": str(dtype).removeprefix("torch.") if dtype else None},
        "history": history,
        "best_epoch": state["best"]["epoch"],
        "reused_imagenet_rows": t.reused,
        "metrics": {"val_accuracy": state["best"]["val_accuracy"]},
        "diagnostics": {**diagnostics["summary"], "text": format_summary(diagnostics)},
        "distributed": {**ctx.record(), "replicas_in_sync": len(set(replicas)) == 1,
                        "train_images_per_process": len(t.train_loader.sampler) if ctx.active else len(t.split.train)},
        "resumed": resume,
        "device": str(dev),
        "seconds": round(time.perf_counter() - started, 2),
    }
    checkpoint = {"state_dict": model.cpu().state_dict(), "backbone": backbone, "num_classes": len(t.split.classes),
                  "dropout": params["dropout"], "pretrained": params["pretrained"], "percept_version": __version__}
    atomic_write(out / "model.pt", lambda tmp: torch.save(checkpoint, tmp))
    write_history_csv(history, out / "history.csv")
    plot_learning_curves(history, out / "learning_curves.png", state["best"]["epoch"])
    atomic_write(out / "diagnostics.json", lambda tmp: Path(tmp).write_text(json.dumps(diagnostics, indent=2)))
    plot_diagnostics(diagnostics, out / "diagnostics.png")
    atomic_write(out / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    _checkpoint_path(out).unlink(missing_ok=True)  # the run is complete
    return record


def _save_checkpoint(out: Path, model: FinetuneNet, opt, scheduler, scaler, state: dict[str, Any],
                     params: dict[str, Any], backbone: str, t: Training) -> None:
    """The state after an epoch, enough to continue bit-for-bit (model, optimiser, schedule, RNGs)."""
    checkpoint = {**state, "params": params, "backbone": backbone, "model": model.state_dict(),
                  "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                  "rng": torch.get_rng_state(),
                  "loader_rng": None if t.ctx.active else t.train_loader.generator.get_state()}
    atomic_write(_checkpoint_path(out), lambda tmp: torch.save(checkpoint, tmp))


def find_learning_rate(
    data: str | Path,
    *,
    backbone: str = "efficientnet_lite0",
    unfreeze: int | str = 0,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    momentum: float = 0.9,
    label_smoothing: float = 0.1,
    augment: str = "light",
    augment_overrides: dict[str, Any] | None = None,
    batch_size: int = 16,
    val_fraction: float = 0.2,
    seed: int = 0,
    start_lr: float = 1e-7,
    end_lr: float = 1.0,
    steps: int = 100,
    device: str = "auto",
    amp: bool | None = None,
    progress: bool = False,
):
    """Learning-rate range test (Smith 2015) for fine-tuning ``backbone`` on ``data``.

    ``unfreeze=0`` tests the head phase (new head, frozen backbone); ``K`` or ``"all"`` also trains the top
    stages with the discriminative ratios lr/9 : lr/3 : lr, so the reported lrs (and the suggestion) are the
    head's, the value to pass as ``lr``. Nothing is written; returns a
    :class:`~percept.transfer.lr_find.LRFinderResult`.
    """
    from .lr_find import lr_range_test

    weight_decay = OPTIMIZER_DEFAULTS.get(optimizer, {}).get("weight_decay", 0.0) if weight_decay is None \
        else weight_decay
    t = prepare_training(data, backbone=backbone, label_smoothing=label_smoothing, augment=augment,
                         augment_overrides=augment_overrides, batch_size=batch_size, val_fraction=val_fraction,
                         seed=seed, device=device)
    t.model.unfreeze_top(_parse_unfreeze(unfreeze))
    opt = make_optimizer(optimizer, param_groups(t.model, 1.0, weight_decay), momentum)
    dtype = amp_dtype(amp, t.device)
    scaler = torch.amp.GradScaler(t.device.type, enabled=dtype == torch.float16)

    def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if t.mixer is not None:
            x, y = t.mixer(x, y)
        with torch.autocast(t.device.type, dtype=dtype) if dtype is not None else nullcontext():
            return t.loss_fn(model(x.to(t.device)), y.to(t.device))

    return lr_range_test(t.model, t.train_loader, None, opt, start_lr=start_lr, end_lr=end_lr, steps=steps,
                         device=t.device, step_fn=step, scaler=scaler, progress=progress)


def _parse_unfreeze(value: int | str) -> int:
    if str(value).lower() == "all":
        return 10**6
    try:
        k = int(value)
    except ValueError:
        raise PerceptError(f"unfreeze must be a number of stages or 'all', got {value!r}") from None
    if k < 0:
        raise PerceptError(f"unfreeze must be >= 0, got {k}")
    return k


def load_finetuned(path: Path, device: torch.device) -> FinetuneNet:
    """Rebuild a fine-tuned network from ``path/model.pt``."""
    try:
        checkpoint = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        model = FinetuneNet(checkpoint["backbone"], checkpoint["num_classes"], checkpoint["dropout"],
                            pretrained=checkpoint.get("pretrained", True))
        model.load_state_dict(checkpoint["state_dict"])
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise PerceptError(f"{path}/model.pt is not a percept fine-tuned model ({type(exc).__name__})") from None
    return model.eval().to(device)
