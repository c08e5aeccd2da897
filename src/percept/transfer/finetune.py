"""Transfer learning by fine-tuning: a new head on a pretrained backbone, then the top of the backbone.

The recipe (defaults in :class:`~percept.transfer.finetune_params.FinetuneParams`):

1. **Head from the linear probe** (``head_init="linear-probe"``, LP-FT after Kumar et al. 2022): the frozen
   backbone's features of the training images (centre crops) are fitted by the features strategy's classifier
   (standardised features -> logistic regression, C by cross-validation); its weights, with the standardisation
   folded in, become the head, so fine-tuning starts at the linear probe's accuracy instead of distorting the
   backbone with the gradients of a random head. The probe is epoch 0 of early stopping: a run that no epoch
   improves on the validation images returns the probe. ``head_init="kaiming"|"xavier"`` starts a random head
   that is trained alone for ``head_epochs`` (2 unless given) epochs first, BatchNorm statistics frozen.
2. **Then the top K stages** (``unfreeze``) are unfrozen with *discriminative learning rates*: the unfrozen
   stages are split into an earlier and a later half trained at ``lr/9`` and ``lr/3``, the head at ``lr`` (by
   default a fifth of the optimiser's usual rate after a linear-probe start). BatchNorm statistics stay as
   pretrained (``freeze_bn``; their scale and shift train). AdamW (or SGD with
   Nesterov momentum) with weight decay, a cosine (or one-cycle) schedule per phase, label smoothing,
   augmentation (preset ``light``: random resized crop, horizontal flip, colour jitter; see
   :mod:`percept.transfer.augment`), early stopping on validation accuracy with the best epoch restored, mixed
   precision (AMP) on CUDA. ``image_size`` changes the input size (the backbone's by default).

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
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import __version__
from ..errors import PerceptError
from ..image import atomic_write
from ..params import from_settings
from ..training import Trainer
from .distributed import broadcast, close, gather, init_distributed
from .finetune_data import (
    Training,
    diagnostic_batch,
    init_head_from_probe,
    prepare_training,
)
from .finetune_params import FinetuneParams, parse_unfreeze
from .lr_groups import make_optimizer, make_scheduler, param_groups
from .plots import plot_learning_curves, write_history_csv

#: The settings a run records and a resumed run must keep (``lr`` and ``weight_decay`` as resolved).
RUN_SETTINGS = ("pretrained", "epochs", "head_epochs", "unfreeze", "optimizer", "lr", "weight_decay", "momentum",
                "schedule", "dropout", "head_init", "freeze_bn", "image_size", "label_smoothing", "augment",
                "augment_overrides", "reuse_head", "batch_size", "patience")
#: Settings added after some runs were saved, with the value those runs used (the backbone was kept beside them).
ADDED_LATER = {"backbone": lambda saved: saved.get("backbone"), "freeze_bn": False, "image_size": None}


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


def train_finetune(data: str | Path, out: str | Path, *, resume: bool = False, progress: bool = False,
                   **settings: Any) -> dict[str, Any]:
    """Fine-tune a backbone on ``data`` (see the module docstring); write the run to ``out``.

    ``settings`` are fields of :class:`~percept.transfer.finetune_params.FinetuneParams`: ``epochs`` counts the
    fine-tuning epochs after the ``head_epochs``; ``unfreeze`` is a number of top stages or ``"all"``;
    ``lr``/``weight_decay`` default per optimizer (AdamW 5e-4/0.05, SGD 1e-2/5e-4); ``reuse_head`` initialises
    the head rows of classes named like ImageNet classes from the pretrained classifier; ``pretrained=False``
    trains the architecture from scratch for ``head_epochs + epochs`` epochs, all layers at ``lr``. ``amp=None``
    uses mixed precision on CUDA only. ``resume`` continues an interrupted run in ``out`` (same settings
    required). Returns the run record with ``metrics.val_accuracy`` in [0, 1] (``{}`` in data-parallel processes
    other than rank 0).
    """
    started = time.perf_counter()
    p = from_settings(FinetuneParams, settings, what="fine-tuning setting")
    k = parse_unfreeze(p.unfreeze)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"run folder {str(out)!r} exists and is a file")
    params = {name: getattr(p, name) for name in RUN_SETTINGS}
    params.update(lr=p.resolved_lr(), weight_decay=p.resolved_weight_decay(), head_epochs=p.resolved_head_epochs())
    ctx, dev = init_distributed(p.device)
    try:
        trainer = Trainer(out / "checkpoint.pt", {**params, "backbone": p.backbone}, resume=resume, device=dev,
                          amp=p.amp, name=out, done=out / "run.json", added_later=ADDED_LATER, main=ctx.is_main,
                          started=started)
        t = prepare_training(data, p, device=dev, ctx=ctx)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
        return _fit(t, trainer, out, p, params, k, progress, data)
    finally:
        close(ctx)


def _epoch(trainer: Trainer, model: nn.Module, t: Training, optimizer, scheduler) -> float:
    """One pass over the training images; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0

    def loss_step(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = (v.to(t.device, non_blocking=True) for v in batch)
        return t.loss_fn(model(x), y)

    for x, y in t.train_loader:
        if t.mixer is not None:  # mixup / cutmix: soft labels mixed like the pixels
            x, y = t.mixer(x, y)
        loss = trainer.train_step((x, y), loss_step, optimizer, scheduler=scheduler)["total"]
        total, count = total + loss * len(y), count + len(y)
    return total / max(1, count)


def _fit(t: Training, trainer: Trainer, out: Path, p: FinetuneParams, params: dict[str, Any], k: int,
         progress: bool, data) -> dict[str, Any]:
    """The training loop of :func:`train_finetune` (phases, checkpoints, early stopping, outputs)."""
    from .diagnostics import activation_stats, compare, format_summary, plot_diagnostics

    model, ctx, dev = t.model, t.ctx, t.device
    head_epochs = params["head_epochs"]
    if p.pretrained:
        phases = [("head", head_epochs, 0, True), ("finetune", p.epochs, k, True)]
    else:
        phases = [("scratch", head_epochs + p.epochs, 10**6, False)]
    best: dict[str, Any] = {"val_accuracy": -1.0, "epoch": 0, "state": None}
    probe = None
    if p.pretrained and p.head_init == "linear-probe" and not trainer.saved:
        # the linear probe is epoch 0: fine-tuning keeps it unless an epoch validates better
        probe = init_head_from_probe(t, p.seed)
        best = {"val_accuracy": probe["val_accuracy"], "epoch": 0,
                "state": {n: v.detach().cpu().clone() for n, v in model.state_dict().items()}}
    diag_batch = diagnostic_batch(t) if ctx.is_main else None
    state: dict[str, Any] = {"phase": 0, "phase_epoch": 0, "epoch": 0, "stale": 0, "best": best, "probe": probe,
                             "diagnostics_start": activation_stats(model, diag_batch) if ctx.is_main else None}
    trainer.restore(model=model)
    saved = trainer.saved
    if saved:
        state.update({key: saved.get(key) for key in state})
        trainer.saved_at = f"epoch {state['epoch']}"
        if not ctx.active:
            t.train_loader.generator.set_state(saved["loader_rng"])
    n_batches = len(t.train_loader)
    trainer.step = state["epoch"] * n_batches
    desc = f"fine-tune {p.backbone}" if p.pretrained else f"train {p.backbone} from scratch"
    with trainer.session(sum(n for _, n, _, _ in phases) * n_batches, desc=desc, unit="batch", progress=progress):
        for index, (phase, n_epochs, n_unfrozen, discriminative) in enumerate(phases):
            if index < state["phase"] or n_epochs == 0:
                continue
            model.unfreeze_top(n_unfrozen)
            groups = param_groups(model, params["lr"], params["weight_decay"], discriminative)
            opt = make_optimizer(p.optimizer, groups, p.momentum)
            scheduler = make_scheduler(p.schedule, opt, n_epochs * n_batches)
            if saved and index == state["phase"] and state["phase_epoch"] > 0:
                trainer.restore(optimizer=opt, scheduler=scheduler)
            else:
                trainer.track(optimizer=opt, scheduler=scheduler)
                if index > state["phase"]:
                    state.update(phase=index, phase_epoch=0, stale=0)
            train_model = model
            if ctx.active:
                from torch.nn.parallel import DistributedDataParallel

                train_model = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
            while state["phase_epoch"] < n_epochs:
                if ctx.active:
                    t.train_loader.sampler.set_epoch(state["epoch"])
                train_loss = _epoch(trainer, train_model, t, opt, scheduler)
                state["epoch"] += 1
                state["phase_epoch"] += 1
                val_acc = broadcast(ctx, accuracy(model, t.val_loader, dev) if ctx.is_main else None)
                trainer.history.append({"epoch": state["epoch"], "phase": phase, "train_loss": train_loss,
                                        "val_accuracy": val_acc})
                trainer.postfix(epoch=state["epoch"], loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}")
                if val_acc > state["best"]["val_accuracy"]:
                    state["best"] = {"val_accuracy": val_acc, "epoch": state["epoch"],
                                     "state": {n: v.detach().cpu().clone() for n, v in model.state_dict().items()}}
                    state["stale"] = 0
                else:
                    state["stale"] += 1
                    if phase != "head" and state["stale"] >= p.patience:
                        state["phase_epoch"] = n_epochs  # early stop: this phase is over
                trainer.save(at=f"epoch {state['epoch']}", **state,
                             loader_rng=None if ctx.active else t.train_loader.generator.get_state())
    model.load_state_dict(state["best"]["state"])  # early stopping: restore the best epoch
    replicas = gather(ctx, _state_digest(model))
    if not ctx.is_main:
        return {}

    diagnostics = compare(state["diagnostics_start"], activation_stats(model, diag_batch))
    history = trainer.history
    record = {
        "percept_version": __version__,
        "strategy": "finetune",
        "backbone": p.backbone,
        "weights_id": model.weights_id,
        **t.split.record(data, p.val_fraction, p.seed),
        "params": {**params, "augmentation": t.aug.to_dict() if t.aug else None, "amp": trainer.amp},
        "history": history,
        "best_epoch": state["best"]["epoch"],
        "reused_imagenet_rows": t.reused,
        "linear_probe": state["probe"],
        "metrics": {"val_accuracy": state["best"]["val_accuracy"]},
        "diagnostics": {**diagnostics["summary"], "text": format_summary(diagnostics)},
        "distributed": {**ctx.record(), "replicas_in_sync": len(set(replicas)) == 1,
                        "train_images_per_process": len(t.train_loader.sampler) if ctx.active else len(t.split.train)},
        "resumed": trainer.resumed,
        "device": str(dev),
        "seconds": round(trainer.seconds(), 2),
    }
    checkpoint = {"state_dict": model.cpu().state_dict(), "backbone": p.backbone, "num_classes": len(t.split.classes),
                  "dropout": p.dropout, "pretrained": p.pretrained, "image_size": p.image_size,
                  "percept_version": __version__}
    atomic_write(out / "model.pt", lambda tmp: torch.save(checkpoint, tmp))
    write_history_csv(history, out / "history.csv")
    plot_learning_curves(history, out / "learning_curves.png", state["best"]["epoch"])
    atomic_write(out / "diagnostics.json", lambda tmp: Path(tmp).write_text(json.dumps(diagnostics, indent=2)))
    plot_diagnostics(diagnostics, out / "diagnostics.png")
    atomic_write(out / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    trainer.finish()  # the run is complete
    return record
