"""Transfer learning by fine-tuning: a new head on a pretrained backbone, then the top of the backbone.

The recipe (defaults in :func:`train_finetune`):

1. **Head first.** The backbone is frozen (BatchNorm statistics too) and only a new head (dropout + linear,
   Kaiming or Xavier initialised) is trained for ``head_epochs`` epochs.
2. **Then the top K stages** (``unfreeze``) are unfrozen with *discriminative learning rates*: the unfrozen
   stages are split into an earlier and a later half trained at ``lr/9`` and ``lr/3``, the head at ``lr``.
   AdamW with weight decay, a cosine schedule per phase, label smoothing, augmentation (preset ``light``:
   random resized crop, horizontal flip, colour jitter; see :mod:`percept.transfer.augment`), early stopping
   on validation accuracy with the best epoch restored.

A run folder holds ``run.json``, ``model.pt`` (the whole network's state dict plus what is needed to rebuild
it), ``history.csv`` and ``learning_curves.png``, and is read by :func:`percept.transfer.runs.load_run` like a
``features`` run.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .. import __version__
from ..device import resolve_device
from ..errors import PerceptError
from ..image import atomic_write, load_image
from .augment import batch_mixer, get_augment, image_transform
from .backbones import get_backbone, view_transform
from .data import Sample, scan_dataset
from .plots import plot_learning_curves, write_history_csv


class FinetuneNet(nn.Module):
    """Pretrained backbone ``(B, 3, S, S) -> (B, D)`` plus a new head ``(B, D) -> (B, K)``.

    ``stages`` lists the backbone's parts from input to output; unfreezing the top K means the last K.
    """

    def __init__(self, backbone: str, num_classes: int, dropout: float = 0.2, init: str = "kaiming") -> None:
        super().__init__()
        net = get_backbone(backbone)
        self.backbone_name, self.crop, self.resize = backbone, net.crop, net.resize
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


def param_groups(model: FinetuneNet, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Discriminative learning rates: unfrozen stages' earlier half at lr/9, later half at lr/3, head at lr."""
    unfrozen = model.stages[model.frozen_below :]
    half = len(unfrozen) // 2
    groups = [
        {"name": "early", "params": [p for s in unfrozen[:half] for p in s.parameters()], "lr": lr / 9},
        {"name": "late", "params": [p for s in unfrozen[half:] for p in s.parameters()], "lr": lr / 3},
        {"name": "head", "params": list(model.head.parameters()), "lr": lr},
    ]
    return [dict(g, weight_decay=weight_decay) for g in groups if g["params"]]


class ImageListDataset(Dataset):
    """``(path, label)`` samples -> ``(transform(image), label)``."""

    def __init__(self, samples: list[Sample], transform) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return self.transform(load_image(path)), label


def _epoch(model: FinetuneNet, loader: DataLoader, loss_fn, optimizer, scheduler, device, bar, mixer) -> float:
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        if mixer is not None:  # mixup / cutmix: soft labels mixed like the pixels
            x, y = mixer(x, y)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
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


def train_finetune(
    data: str | Path,
    out: str | Path,
    *,
    backbone: str = "efficientnet_lite0",
    epochs: int = 8,
    head_epochs: int = 2,
    unfreeze: int | str = 4,
    lr: float = 5e-4,
    weight_decay: float = 0.05,
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
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``backbone`` on ``data`` (see the module docstring); write the run to ``out``.

    ``epochs`` counts the fine-tuning epochs after the ``head_epochs``; ``unfreeze`` is a number of top
    stages or ``"all"``; ``reuse_head`` initialises the head rows of classes named like ImageNet classes from
    the pretrained classifier. Returns the run record with ``metrics.val_accuracy`` in [0, 1].
    """
    started = time.perf_counter()
    if epochs < 0 or head_epochs < 0 or epochs + head_epochs == 0:
        raise PerceptError("give at least one epoch (epochs + head-epochs >= 1)")
    if lr <= 0:
        raise PerceptError(f"lr must be > 0, got {lr}")
    k = _parse_unfreeze(unfreeze)
    torch.manual_seed(seed)
    split = scan_dataset(data, val_fraction=val_fraction, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    model = FinetuneNet(backbone, len(split.classes), dropout, head_init)
    reused = model.reuse_imagenet_rows(split.classes) if reuse_head else []
    model = model.to(dev)
    generator = torch.Generator().manual_seed(seed)
    aug = get_augment(augment, **(augment_overrides or {}))
    transform = view_transform(model.resize, model.crop) if aug is None else image_transform(model.crop, aug)
    mixer = batch_mixer(aug, len(split.classes))
    train_loader = DataLoader(ImageListDataset(split.train, transform),
                              batch_size=batch_size, shuffle=True, generator=generator, drop_last=len(split.train) > batch_size)
    val_loader = DataLoader(ImageListDataset(split.val, view_transform(model.resize, model.crop)), batch_size=batch_size * 2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    history: list[dict[str, Any]] = []
    best = {"val_accuracy": -1.0, "epoch": 0, "state": None}
    phases = [("head", head_epochs, 0), ("finetune", epochs, k)]
    bar = tqdm(total=sum(n for _, n, _ in phases) * len(train_loader), desc=f"fine-tune {backbone}", unit="batch",
               disable=not progress)
    epoch = 0
    for phase, n_epochs, n_unfrozen in phases:
        if n_epochs == 0:
            continue
        model.unfreeze_top(n_unfrozen)
        optimizer = torch.optim.AdamW(param_groups(model, lr, weight_decay))
        steps = n_epochs * len(train_loader)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
        stale = 0
        for _ in range(n_epochs):
            epoch += 1
            train_loss = _epoch(model, train_loader, loss_fn, optimizer, scheduler, dev, bar, mixer)
            val_acc = accuracy(model, val_loader, dev)
            history.append({"epoch": epoch, "phase": phase, "train_loss": train_loss, "val_accuracy": val_acc})
            bar.set_postfix(epoch=epoch, loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}", refresh=False)
            if val_acc > best["val_accuracy"]:
                best = {"val_accuracy": val_acc, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                stale = 0
            else:
                stale += 1
                if phase == "finetune" and stale >= patience:
                    break
    bar.close()
    model.load_state_dict(best["state"])  # early stopping: restore the best epoch

    record = {
        "percept_version": __version__,
        "strategy": "finetune",
        "backbone": backbone,
        "weights_id": model.weights_id,
        **split.record(data, val_fraction, seed),
        "params": {"epochs": epochs, "head_epochs": head_epochs, "unfreeze": unfreeze, "lr": lr,
                   "weight_decay": weight_decay, "dropout": dropout, "head_init": head_init,
                   "label_smoothing": label_smoothing, "augment": augment,
                   "augmentation": aug.to_dict() if aug else None, "batch_size": batch_size,
                   "patience": patience},
        "history": history,
        "best_epoch": best["epoch"],
        "reused_imagenet_rows": reused,
        "metrics": {"val_accuracy": best["val_accuracy"]},
        "seconds": round(time.perf_counter() - started, 2),
    }
    checkpoint = {"state_dict": model.cpu().state_dict(), "backbone": backbone, "num_classes": len(split.classes),
                  "dropout": dropout, "percept_version": __version__}
    atomic_write(out / "model.pt", lambda tmp: torch.save(checkpoint, tmp))
    write_history_csv(history, out / "history.csv")
    plot_learning_curves(history, out / "learning_curves.png", best["epoch"])
    atomic_write(out / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    return record


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
        model = FinetuneNet(checkpoint["backbone"], checkpoint["num_classes"], checkpoint["dropout"])
        model.load_state_dict(checkpoint["state_dict"])
    except (OSError, KeyError, RuntimeError, EOFError) as exc:
        raise PerceptError(f"{path}/model.pt is not a percept fine-tuned model ({type(exc).__name__})") from None
    return model.eval().to(device)
