"""Train a feed-forward style network (Johnson, Alahi & Fei-Fei, ECCV 2016); several styles in one network
(Dumoulin, Shlens & Kudlur, ICLR 2017).

(:func:`train_transform_net`) minimises Johnson's perceptual loss through a frozen loss network
(default VGG-16 with torchvision's ImageNet weights, as Johnson et al.): content (feature reconstruction) at
``relu2_2``, Gram-matrix style at ``relu1_2, relu2_2, relu3_3, relu4_3`` and total variation, with percept's
relative losses (:mod:`percept.losses`), so the weights mean the same as in :func:`percept.stylize`. Adam,
lr 1e-3, batches of 4 random square crops of the content photos (found recursively in a folder). With several
styles the network has conditional instance norms and the samples of a batch cycle through the styles.

A training folder holds ``model.pt`` (rewritten at every checkpoint, so a long run can be tried before it
ends), ``checkpoint.pt`` (network, optimiser and step: ``resume=True`` continues bit for bit, also to more
``steps`` than first asked), ``samples/step_NNNNNN.png`` (a fixed content photo stylised with every style)
and, at the end, ``train.json`` (settings, loss history, timings).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .. import __version__
from ..device import amp_dtype, channels_last, resolve_device
from ..errors import InterruptedRun, PerceptError
from ..image import (
    atomic_write,
    check_writable,
    find_images,
    load_image,
    save_image,
    to_tensor,
)
from ..models import get_feature_net
from .params import DEFAULT_STYLE_LAYERS
from .transform_files import save_transform_net
from .transform_loss import LOSS_CONTENT_LAYERS, LOSS_NETWORKS, PerceptualLoss
from .transformer import DEFAULT_CHANNELS, TransformNet

LR_SCHEDULES = ("constant", "linear")
#: Training settings added after the first release, with the value that runs saved before them used (so they resume).
SETTINGS_ADDED_LATER = {"lr_schedule": "constant", "style_layer_weights": None}


class ContentCrops(Dataset):
    """Sample ``g`` of an endless stream: a random square crop of a content photo, resized to ``size``.

    Epoch ``g // N`` visits the ``N`` photos in a seeded random order; the crop (side 50-100% of the shorter
    side, random position, random horizontal flip) comes from a generator seeded by ``(seed, g)``. So every sample
    depends only on its index: the stream is the same with any number of loader processes and after a resume.
    Returns ``(image (3, size, size) in [0, 1], g)``; an unreadable photo is replaced by the next one (warning).
    """

    def __init__(self, paths: Sequence[Path], size: int, seed: int) -> None:
        self.paths, self.size, self.seed = list(paths), size, seed
        self._order: tuple[int, list[int]] = (-1, [])

    def __len__(self) -> int:  # the stream is endless; a sampler picks the indices
        return 2**62

    def _photo(self, g: int) -> int:
        epoch, pos = divmod(g, len(self.paths))
        if self._order[0] != epoch:
            order = list(range(len(self.paths)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._order = (epoch, order)
        return self._order[1][pos]

    def __getitem__(self, g: int) -> tuple[torch.Tensor, int]:
        index = self._photo(g)
        for attempt in range(len(self.paths)):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                img = load_image(path, what="content image")
                break
            except PerceptError as exc:
                warnings.warn(f"skipping {exc}", stacklevel=2)
        else:
            raise PerceptError("none of the content images can be read")
        rng = random.Random(self.seed * 2_000_003 + g)
        w, h = img.size
        side = max(1, round(min(w, h) * rng.uniform(0.5, 1.0)))
        left, top = rng.randint(0, w - side), rng.randint(0, h - side)
        crop = img.resize((self.size, self.size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side),
                          reducing_gap=3.0)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(crop)[0], g


class _Range(torch.utils.data.Sampler):
    """Sample indices ``start, start + 1, ..., stop - 1`` (the rest of the training stream)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


# ------------------------------------------------------------------------------------------------ training


@dataclass
class TrainStep:
    """Progress report passed to a ``callback`` after every training step."""

    step: int  # 1-based, counted over resumes
    steps: int
    losses: dict[str, float]  # "content", "style", "tv" (unweighted), "total" (weighted), for this batch
    style_index: list[int]  # the style of each sample of the batch
    seconds: float  # since this call started


def _file_record(path: Path) -> dict[str, str]:
    return {"name": path.stem, "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _check_folder(out: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PerceptError(f"training folder {str(out)!r} exists and is a file; give a folder")
    if not out.parent.is_dir():
        raise PerceptError(f"folder {str(out.parent)!r} does not exist; create it first")
    checkpoint = out / "checkpoint.pt"
    if resume and not checkpoint.is_file():
        raise PerceptError(f"nothing to resume in {str(out)!r} (no checkpoint.pt); drop resume to start a run")
    if not resume and checkpoint.is_file():
        raise PerceptError(f"{str(out)!r} holds a training run; resume it (it can also go on to more steps) or "
                           "choose another folder")


def _sample_strip(net: TransformNet, content: torch.Tensor) -> torch.Tensor:
    """``content`` ``(1, 3, H, W)`` followed by its stylisation with every style, side by side."""
    was_training = net.training
    net.eval()
    with torch.no_grad():
        eye = torch.eye(net.num_styles, device=content.device)
        styled = net(content.expand(net.num_styles, -1, -1, -1), eye).float()
    net.train(was_training)
    return torch.cat([content[0], *styled], dim=2).unsqueeze(0).cpu()


def train_transform_net(
    styles: Sequence[str | os.PathLike],
    content_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model_file: str | os.PathLike | None = None,
    size: int = 256,
    style_size: int | None = None,
    steps: int = 40000,
    batch_size: int = 4,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    content_weight: float = 1.0,
    style_weight: float = 3.0,
    tv_weight: float = 10.0,
    network: str = "vgg16",
    weights: str | None = None,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    style_layer_weights: Sequence[float] | None = None,
    channels: Sequence[int] = DEFAULT_CHANNELS,
    sample_every: int = 500,
    checkpoint_every: int = 500,
    sample_content: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    workers: int | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
    progress: bool = False,
    callback: Callable[[TrainStep], None] | None = None,
) -> dict[str, Any]:
    """Train a :class:`TransformNet` for ``styles`` on the photos under ``content_dir``; write it to folder ``out``.

    Args:
        styles: one style image (a single-style network) or several (one conditional-IN network).
        content_dir: folder searched recursively for photos (:func:`percept.image.find_images`; e.g. COCO
            ``train2014``).
        out: training folder (see the module docstring).
        model_file: where the model file goes (default ``out/model.pt``); rewritten at every checkpoint.
        size: side of the square training crops, pixels.
        style_size: longest side of the style images for their Gram matrices (default ``size``).
        steps: optimisation steps (batches) in all, including those of a resumed run.
        batch_size, lr: Adam's batch size and learning rate.
        lr_schedule: ``constant`` (Johnson et al.) or ``linear`` (decays to 0 at step ``steps``; for short runs).
        content_weight, style_weight, tv_weight: loss weights (relative losses, see :mod:`percept.losses`).
        network, weights: the frozen loss network: ``vgg16`` (default, torchvision weights) or ``vgg19``
            (default weights ``gatys``); ``weights`` names registered weights or a state-dict file.
        content_layers, style_layers: loss layers (default: relu2_2; VGG-16 relu1_2, relu2_2, relu3_3, relu4_3,
            VGG-19 relu1_1 ... relu5_1).
        style_layer_weights: relative weight of each style layer (default: equal), see :class:`PerceptualLoss`.
        channels: widths of the transform network (Johnson: 32, 64, 128).
        sample_every: write ``samples/step_NNNNNN.png`` every N steps (0: never).
        checkpoint_every: write ``checkpoint.pt`` and ``model.pt`` every N steps (and always at the end).
        sample_content: the photo the samples show (default: the first content image).
        seed: seeds the network's initialisation, the photo order and the crops.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        amp: mixed precision (``None``: on CUDA only; float16 on CUDA/MPS, bfloat16 on the CPU); on CUDA, and on
            the CPU with ``amp``, the networks run channels-last.
        workers: loader processes (``None``: 0 on the CPU, up to 8 otherwise).
        resume: continue the run in ``out`` (same settings; ``steps`` may be raised).
        max_minutes: stop after this much wall-clock time (counted from this call; the network and a checkpoint
            are saved, ``resume`` goes on); ``None``: run all ``steps``.
        progress: show a tqdm progress bar with the losses.
        callback: called with a :class:`TrainStep` after every step.

    Returns:
        The run record (also ``out/train.json``): settings, styles, loss network, ``history`` (losses per
        step), ``final_losses`` (mean of the last 100 steps), ``seconds``, ``model`` (the model file's path).
    """
    started = time.perf_counter()
    if not styles:
        raise PerceptError("give at least one style image")
    if network not in LOSS_NETWORKS:
        raise PerceptError(f"unknown loss network {network!r}; use {' or '.join(LOSS_NETWORKS)}")
    for name, value, low in (("size", size, 16), ("steps", steps, 1), ("batch-size", batch_size, 1),
                             ("style-size", style_size or size, 16)):
        if value < low:
            raise PerceptError(f"{name} must be >= {low}, got {value}")
    for name, value in (("lr", lr), ("content-weight", content_weight), ("style-weight", style_weight),
                        ("tv-weight", tv_weight)):
        if not value >= 0 or (name == "lr" and value == 0):
            raise PerceptError(f"{name} must be {'> 0' if name == 'lr' else '>= 0'}, got {value}")
    if lr_schedule not in LR_SCHEDULES:
        raise PerceptError(f"unknown lr schedule {lr_schedule!r}; use {' or '.join(LR_SCHEDULES)}")
    if max_minutes is not None and not max_minutes > 0:
        raise PerceptError(f"max-minutes must be > 0, got {max_minutes}")
    if sample_every < 0 or checkpoint_every < 0:
        raise PerceptError("sample-every and checkpoint-every must be >= 0")
    style_paths = [Path(p) for p in styles]
    style_pils = [load_image(p, what="style image") for p in style_paths]
    contents = find_images(content_dir, "content")
    sample_pil = load_image(sample_content if sample_content is not None else contents[0], what="sample image")
    out = Path(out)
    _check_folder(out, resume)
    model_path = out / "model.pt" if model_file is None else check_writable(model_file, what="model file", image=False)

    params = {"size": size, "style_size": style_size or size, "batch_size": batch_size, "lr": lr,
              "lr_schedule": lr_schedule,
              "content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight,
              "network": network, "weights": None if weights is None else str(weights), "seed": seed,
              "content_layers": list(content_layers or LOSS_CONTENT_LAYERS[network]),
              "style_layers": list(style_layers or DEFAULT_STYLE_LAYERS[network]), "channels": list(channels),
              "style_layer_weights": None if style_layer_weights is None else [float(w) for w in style_layer_weights]}
    dev = resolve_device(device)
    dtype = amp_dtype(amp, dev)
    memory_format = torch.channels_last if channels_last(dev, dtype) else torch.contiguous_format
    torch.manual_seed(seed)
    net = TransformNet(len(style_paths), channels).to(dev, memory_format=memory_format)
    loss_net = get_feature_net(network, weights, device=dev).to(memory_format=memory_format)
    need = loss_net.min_input_size(params["content_layers"] + params["style_layers"])
    if min(size, params["style_size"]) < need:
        raise PerceptError(f"size and style-size must be >= {need} px for the layers of {network}")
    style_ts = [to_tensor(p, longest=params["style_size"]).to(dev) for p in style_pils]
    if min(min(t.shape[-2:]) for t in style_ts) < need:
        raise PerceptError(f"a style image is narrower than {need} px at style-size {params['style_size']}; "
                           "raise style-size")
    criterion = PerceptualLoss(loss_net, style_ts, content_layers=params["content_layers"],
                               style_layers=params["style_layers"], content_weight=content_weight,
                               style_weight=style_weight, tv_weight=tv_weight,
                               style_layer_weights=style_layer_weights)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    history: list[dict[str, float]] = []
    step = 0
    if resume:
        saved = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
        before = {**SETTINGS_ADDED_LATER, **saved["params"]}
        changed = {k: (before.get(k), v) for k, v in params.items() if before.get(k) != v}
        if changed or saved["styles"] != [_file_record(p) for p in style_paths]:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()) or "style images"
            raise PerceptError(f"cannot resume {str(out)!r} with different settings ({what}); use the original "
                               "ones or another folder")
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        step, history = saved["step"], saved["history"]
        if step >= steps:
            raise PerceptError(f"{str(out)!r} already trained {step} steps; ask for more steps to go on")
    out.mkdir(exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)

    sample = to_tensor(sample_pil, longest=size).to(dev)
    if workers is None:
        workers = 0 if dev.type == "cpu" else min(8, os.cpu_count() or 1)
    loader = DataLoader(ContentCrops(contents, size, seed), batch_size=batch_size,
                        sampler=_Range(step * batch_size, steps * batch_size), num_workers=workers,
                        pin_memory=dev.type == "cuda", drop_last=True)
    style_records = [_file_record(p) for p in style_paths]
    metadata = {
        "styles": style_records,
        "loss_network": {"arch": network, "weights_id": loss_net.weights.id,  # type: ignore[attr-defined]
                         "content_layers": params["content_layers"], "style_layers": params["style_layers"]},
    }
    autocast = torch.autocast(dev.type, dtype=dtype) if dtype is not None else nullcontext()
    limit = f", stops after {max_minutes:g} min" if max_minutes is not None else ""
    bar = tqdm(total=steps, initial=step, desc=f"train {len(style_paths)} style(s){limit}", unit="step",
               disable=not progress, dynamic_ncols=True)
    saved_step = step
    net.train()
    try:
        for images, index in loader:
            style_index = index % len(style_paths)
            images = images.to(dev, non_blocking=True).contiguous(memory_format=memory_format)
            one_hot = torch.nn.functional.one_hot(style_index, len(style_paths)).float().to(dev)
            if lr_schedule == "linear":
                for group in optimizer.param_groups:
                    group["lr"] = lr * (1 - step / steps)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                losses = criterion(net(images, one_hot), images, style_index)
            scaler.scale(losses["total"]).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            values = {k: float(v.detach()) for k, v in losses.items()}
            if not math.isfinite(values["total"]):
                raise PerceptError(f"the loss became {values['total']} at step {step}; lower lr or the loss weights")
            history.append({"step": step, **values})
            bar.update(1)
            if step % 10 == 0 or step == steps:
                bar.set_postfix(content=f"{values['content']:.3g}", style=f"{values['style']:.3g}",
                                tv=f"{values['tv']:.3g}", total=f"{values['total']:.3g}", refresh=False)
            if sample_every and (step % sample_every == 0 or step == steps):
                save_image(_sample_strip(net, sample), out / "samples" / f"step_{step:06d}.png")
            out_of_time = max_minutes is not None and time.perf_counter() - started >= 60 * max_minutes
            if step == steps or out_of_time or (checkpoint_every and step % checkpoint_every == 0):
                net.metadata = {**metadata, "training": {
                    **params, "steps": step, "content_dir": str(content_dir), "content_images": len(contents),
                    "amp": str(dtype).removeprefix("torch.") if dtype else None, "final_losses": _final_losses(history)}}
                _save_checkpoint(out, model_path, net, optimizer, scaler, step, history, params, style_records)
                saved_step = step
            if callback is not None:
                callback(TrainStep(step, steps, values, style_index.tolist(), time.perf_counter() - started))
            if out_of_time:
                if sample_every and step % sample_every and step != steps:
                    save_image(_sample_strip(net, sample), out / "samples" / f"step_{step:06d}.png")
                break
    except KeyboardInterrupt:
        bar.close()
        raise InterruptedRun(f"training interrupted; {str(out)!r} holds the state after step {saved_step}: "
                             "resume to continue") from None
    bar.close()
    record = {
        "percept_version": __version__,
        "torch_version": str(torch.__version__),
        "model": str(model_path),
        **net.metadata,
        "device": str(dev),
        "resumed": resume,
        "stopped": "time limit" if step < steps else "steps",
        "seconds": round(time.perf_counter() - started, 2),
        "history": history,
    }
    atomic_write(out / "train.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"))
    return record


def _final_losses(history: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each loss over the last 100 steps (single batches are noisy)."""
    last = history[-100:]
    return {k: sum(h[k] for h in last) / len(last) for k in ("content", "style", "tv", "total")}


def _save_checkpoint(out: Path, model_path: Path, net: TransformNet, optimizer, scaler, step: int, history: list,
                     params: dict, styles: list[dict[str, str]]) -> None:
    """The model file and then ``out/checkpoint.pt`` (everything needed to continue exactly), both atomically."""
    save_transform_net(net, model_path)
    checkpoint = {"step": step, "params": params, "styles": styles, "history": history,
                  "model": net.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}
    atomic_write(out / "checkpoint.pt", lambda tmp: torch.save(checkpoint, tmp))
