"""The data side of fine-tuning: the dataset split, the loaders, the batch mixer and the loss."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..device import resolve_device
from ..image import load_image
from ..models.views import view_transform
from ..training import loader_options
from .augment import batch_mixer, get_augment, image_transform
from .data import DatasetSplit, Sample, scan_dataset
from .distributed import DistContext
from .finetune_net import FinetuneNet
from .finetune_params import FinetuneParams


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


def prepare_training(data: str | Path, p: FinetuneParams, *, device: str | torch.device | None = None,
                     ctx: DistContext | None = None) -> Training:
    """Scan ``data``, build the network with its new head, the loaders (augmented training images, centre-crop
    validation images), the batch mixer (mixup/cutmix) and the loss, for the settings ``p``. ``device``: where
    to train (default ``p.device``); ``ctx``: this process's place in data-parallel training (default: alone)."""
    ctx = ctx or DistContext()
    dev = resolve_device(p.device if device is None else device)
    torch.manual_seed(p.seed)
    with warnings.catch_warnings():
        if not ctx.is_main:  # skipped files are reported once, by rank 0
            warnings.simplefilter("ignore")
        split = scan_dataset(data, val_fraction=p.val_fraction, seed=p.seed)
    init = p.head_init if p.pretrained or p.head_init != "linear-probe" else "kaiming"  # no probe on random weights
    model = FinetuneNet(p.backbone, len(split.classes), p.dropout, init, pretrained=p.pretrained,
                        freeze_bn=p.freeze_bn, image_size=p.image_size)
    reused = model.reuse_imagenet_rows(split.classes) if p.reuse_head else []
    model = model.to(dev)
    torch.manual_seed(p.seed + ctx.rank)  # augmentation and dropout differ between data-parallel processes
    aug = get_augment(p.augment, **p.augment_overrides)
    transform = view_transform(model.resize, model.crop) if aug is None else image_transform(model.crop, aug)
    loader_opts = loader_options(dev, p.workers)
    loader_opts["persistent_workers"] = loader_opts["num_workers"] > 0
    train_set = ImageListDataset(split.train, transform)
    per_process = max(1, p.batch_size // ctx.world_size)
    drop_last = len(split.train) > p.batch_size  # no BatchNorm batch of one
    if ctx.active:
        sampler = DistributedSampler(train_set, ctx.world_size, ctx.rank, shuffle=True, seed=p.seed,
                                     drop_last=drop_last)
        train_loader = DataLoader(train_set, batch_size=per_process, sampler=sampler, drop_last=drop_last, **loader_opts)
    else:
        generator = torch.Generator().manual_seed(p.seed)
        train_loader = DataLoader(train_set, batch_size=per_process, shuffle=True, generator=generator,
                                  drop_last=drop_last, **loader_opts)
    val_loader = DataLoader(ImageListDataset(split.val, view_transform(model.resize, model.crop)),
                            batch_size=p.batch_size * 2, **loader_opts)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=p.label_smoothing)
    return Training(split, model, train_loader, val_loader, batch_mixer(aug, len(split.classes)), loss_fn, aug,
                     dev, ctx, reused)


def diagnostic_batch(t: Training, n: int = 32) -> torch.Tensor:
    """Up to ``n`` validation images (centre crops), the fixed input of the activation diagnostics."""
    transform = view_transform(t.model.resize, t.model.crop)
    return torch.stack([transform(load_image(p)) for p, _ in t.split.val[:n]]).to(t.device)


@torch.no_grad()
def frozen_features(t: Training, samples: list[Sample], batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features ``(N, D)`` of the centre crops of ``samples`` (the head's input) and their labels."""
    t.model.eval()
    loader = DataLoader(ImageListDataset(samples, view_transform(t.model.resize, t.model.crop)),
                        batch_size=batch_size, **loader_options(t.device, 0))
    feats, labels = [], []
    for x, y in loader:
        feats.append(t.model.body(x.to(t.device)).float().cpu())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def init_head_from_probe(t: Training, seed: int) -> dict[str, Any]:
    """LP-FT (Kumar et al. 2022): fit the features strategy's classifier (standardised features -> logistic
    regression, C chosen by cross-validation) on the frozen features of the training images and copy it into the
    head, so that fine-tuning starts at the linear probe's accuracy. Returns what the probe scored."""
    import time

    from .linear import fit_classifier

    started = time.perf_counter()
    x_train, y_train = frozen_features(t, t.split.train)
    x_val, y_val = frozen_features(t, t.split.val)
    pipeline, C, _ = fit_classifier("logreg", None, seed, x_train.numpy(), y_train.numpy())
    scaler, logreg = pipeline[0], pipeline[-1]
    # (x - mean) / scale @ coef.T + b  ==  x @ (coef / scale).T + (b - coef @ (mean / scale))
    weight = torch.as_tensor(logreg.coef_ / scaler.scale_, dtype=torch.float64)
    bias = torch.as_tensor(logreg.intercept_, dtype=torch.float64) - weight @ torch.as_tensor(scaler.mean_)
    if weight.shape[0] == 1:  # binary: one score z for class 1; logits (-z/2, z/2) give the same probabilities
        weight, bias = torch.cat([-weight / 2, weight / 2]), torch.cat([-bias / 2, bias / 2])
    rows = torch.as_tensor(logreg.classes_)  # classes without training images keep a zero row
    full_weight = torch.zeros(len(t.split.classes), weight.shape[1], dtype=torch.float64).index_copy(0, rows, weight)
    full_bias = torch.full((len(t.split.classes),), -1e4 if len(rows) < len(t.split.classes) else 0.0,
                           dtype=torch.float64).index_copy(0, rows, bias)
    weight, bias = full_weight, full_bias
    t.model.set_head(weight.float(), bias.float())
    val_acc = float((pipeline.predict(x_val.numpy()) == y_val.numpy()).mean()) if len(y_val) else 0.0
    return {"C": C, "train_accuracy": float((pipeline.predict(x_train.numpy()) == y_train.numpy()).mean()),
            "val_accuracy": val_acc, "seconds": round(time.perf_counter() - started, 2)}
