"""Train an AdaIN decoder as in Huang & Belongie 2017 (content and mean/std style losses, Adam with decay)."""

from __future__ import annotations

import os
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
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
    to_tensor,
)
from ..models.sources import ADAIN_ENCODER
from .adain import ADAIN_LAYER, STYLE_LAYERS, AdaINNet, _encoder, adain, mean_std_loss
from .decoder import Decoder, load_decoder, save_decoder


def adain_loss(
    net: AdaINNet, content: torch.Tensor, style: torch.Tensor, *, content_weight: float = 1.0,
    style_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training objective of the decoder for a batch of content and style images ``(B, 3, S, S)``.

    ``t = AdaIN(f(c), f(s))``; content loss ``mse(f(g(t)), t)`` at relu4_1; style loss ``sum_l
    mean_std_loss(f_l(g(t)), f_l(s))`` over :data:`STYLE_LAYERS`. Returns the weighted total and the parts
    (``content``, ``style``, ``total``). Gradients reach the decoder only (the encoder is frozen).
    """
    with torch.no_grad():
        style_feats = net.encoder(style, STYLE_LAYERS)
        target = adain(net.encode(content), style_feats[ADAIN_LAYER])
    out_feats = net.encoder(net.decode(target), STYLE_LAYERS)
    # float32 losses also under autocast: low-precision means and variances are too coarse for the style loss
    content_loss = F.mse_loss(out_feats[ADAIN_LAYER].float(), target.float())
    style_loss = sum(mean_std_loss(out_feats[name].float(), style_feats[name].float()) for name in STYLE_LAYERS)
    total = content_weight * content_loss + style_weight * style_loss
    return total, {"content": content_loss, "style": style_loss, "total": total}


class _Batches(Dataset):
    """Item ``step`` -> a batch of content and of style crops ``(B, 3, size, size)`` each.

    Images are drawn at random and cropped at random from a generator seeded by ``(seed, step)``: the batches
    are the same with any number of loader workers and after resuming. Each image is first resized so that its
    shorter side is ``load_size``. An unreadable image is skipped (with a warning) for the next one.
    """

    def __init__(self, contents: list[Path], styles: list[Path], batch_size: int, size: int, load_size: int,
                 seed: int) -> None:
        self.contents, self.styles = contents, styles
        self.batch_size, self.size, self.load_size, self.seed = batch_size, size, load_size, seed

    def _crop(self, files: list[Path], generator: torch.Generator) -> torch.Tensor:
        index = int(torch.randint(len(files), (1,), generator=generator))
        for k in range(len(files)):
            path = files[(index + k) % len(files)]
            try:
                image = load_image(path)
                break
            except PerceptError as exc:
                warnings.warn(f"skipping {exc}", stacklevel=2)
        else:
            raise PerceptError(f"no readable images among {len(files)} files in {files[0].parent}")
        scale = self.load_size / min(image.size)
        image = image.resize((max(self.size, round(image.width * scale)), max(self.size, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
        x = int(torch.randint(image.width - self.size + 1, (1,), generator=generator))
        y = int(torch.randint(image.height - self.size + 1, (1,), generator=generator))
        return to_tensor(image.crop((x, y, x + self.size, y + self.size)))[0]

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        content = torch.stack([self._crop(self.contents, generator) for _ in range(self.batch_size)])
        style = torch.stack([self._crop(self.styles, generator) for _ in range(self.batch_size)])
        return content, style


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".ckpt")


#: Settings that must not change when a run is resumed (``steps`` may grow).
_FIXED_ON_RESUME = ("content_dir", "style_dir", "batch_size", "lr", "lr_decay", "size", "load_size",
                    "content_weight", "style_weight", "init", "seed", "log_every")


def train_adain(
    content_dir: str | os.PathLike,
    style_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-4,
    lr_decay: float = 5e-5,
    size: int = 256,
    load_size: int = 512,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    init: str | os.PathLike = "shipped",
    seed: int = 0,
    checkpoint_every: int = 1000,
    log_every: int = 100,
    device: str | torch.device = "auto",
    workers: int | None = None,
    amp: bool | None = None,
    resume: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train an AdaIN decoder on photos (``content_dir``) and paintings (``style_dir``); write it to ``out``.

    Each step draws ``batch_size`` random content and style images (searched recursively), resizes each so
    its shorter side is ``load_size`` and takes a random ``size`` x ``size`` crop; it minimises
    ``content_weight * content + style_weight * style`` (:func:`adain_loss`) with Adam at learning rate
    ``lr / (1 + lr_decay * step)``, as the paper's code (which trains 160,000 steps of batch 8 on MS-COCO and
    WikiArt).

    Args:
        steps: total number of steps (may be raised when resuming).
        init: ``shipped`` (start from the published decoder: fine-tuning), ``random`` (from scratch, seeded), or
            a decoder file to continue from.
        seed: seeds the random initialisation and every batch (reproducible, also across resumes).
        checkpoint_every: write ``OUT.ckpt`` (decoder, optimiser, losses) every N steps; an interrupted run
            continues from it with ``resume=True`` and the same settings. It is removed when the run completes.
        log_every: ``history`` holds the mean losses of every N steps.
        workers: image-loading processes (default: 0 on the CPU, up to 8 on an accelerator).
        amp: mixed precision (``None``: on CUDA only): float16 autocast with loss scaling on CUDA/MPS, bfloat16
            on the CPU; the networks then also run channels-last on CUDA and the CPU. The losses stay float32.
        progress: show a progress bar with the current losses.

    Returns:
        The run record: ``out``, ``params``, ``history`` (``step``, ``content``, ``style``, ``total``),
        ``final_losses``, ``device``, ``seconds``, ``resumed``. The decoder file holds the params and history too;
        use it with ``stylize_adain(..., decoder=out)``.
    """
    started = time.perf_counter()
    for name, value in (("steps", steps), ("batch size", batch_size), ("checkpoint every", checkpoint_every),
                        ("log every", log_every)):
        if value < 1:
            raise PerceptError(f"{name} must be >= 1, got {value}")
    if lr <= 0 or lr_decay < 0 or content_weight < 0 or style_weight < 0:
        raise PerceptError("lr must be > 0; lr decay, content weight and style weight must be >= 0")
    if not 16 <= size <= load_size:
        raise PerceptError(f"crop size {size} must be >= 16 and <= load size {load_size}")
    if Path(out).is_dir():
        raise PerceptError(f"decoder file {str(out)!r} is a directory; give a file name such as decoder.pth")
    out = check_writable(out, what="decoder file", image=False)
    checkpoint_file = _checkpoint_path(out)
    if resume and not checkpoint_file.is_file():
        done = " (it already finished)" if out.is_file() else ""
        raise PerceptError(f"no interrupted run to resume for {str(out)!r}{done}; drop --resume to start one")
    if not resume and checkpoint_file.is_file():
        raise PerceptError(f"{str(checkpoint_file)!r} holds an interrupted run; add --resume to continue it, or "
                           "choose another output file")
    if str(init) not in ("shipped", "random") and not Path(init).is_file():
        raise PerceptError(f"init {str(init)!r} is neither shipped, random nor an existing decoder file")
    contents = find_images(content_dir, "content")
    style_files = find_images(style_dir, "style")
    params = {"content_dir": str(Path(content_dir).resolve()), "style_dir": str(Path(style_dir).resolve()),
              "steps": steps, "batch_size": batch_size, "lr": lr, "lr_decay": lr_decay, "size": size,
              "load_size": load_size, "content_weight": content_weight, "style_weight": style_weight,
              "init": str(init), "seed": seed, "log_every": log_every,
              "n_content_images": len(contents), "n_style_images": len(style_files)}

    dev = resolve_device(device)
    dtype = amp_dtype(amp, dev)
    params["amp"] = str(dtype).removeprefix("torch.") if dtype is not None else None
    torch.manual_seed(seed)
    decoder = Decoder() if str(init) == "random" else load_decoder(None if str(init) == "shipped" else init)
    net = AdaINNet(_encoder(dev), decoder.to(dev).requires_grad_(True).train())
    if channels_last(dev, dtype):
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.decoder.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    autocast = torch.autocast(dev.type, dtype=dtype) if dtype is not None else nullcontext()
    state: dict[str, Any] = {"step": 0, "history": [], "window": {"content": 0.0, "style": 0.0, "total": 0.0}}
    if resume:
        try:
            saved = torch.load(checkpoint_file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means a damaged checkpoint
            raise PerceptError(f"{str(checkpoint_file)!r} is damaged ({type(exc).__name__}); delete it and start "
                               "again") from None
        changed = [k for k in _FIXED_ON_RESUME if saved["params"].get(k) != params[k]]
        if changed:
            what = ", ".join(f"{k} {saved['params'].get(k)!r} -> {params[k]!r}" for k in changed)
            raise PerceptError(f"cannot resume {str(out)!r} with different settings ({what}); use the original "
                               "options or another output file")
        if saved["step"] >= steps:
            raise PerceptError(f"the interrupted run already did {saved['step']} steps; give more than that")
        net.decoder.load_state_dict(saved["decoder"])
        optimizer.load_state_dict(saved["optimizer"])
        if "scaler" in saved:
            scaler.load_state_dict(saved["scaler"])
        state = {key: saved[key] for key in state}

    if workers is None:
        workers = 0 if dev.type == "cpu" else min(8, os.cpu_count() or 1)
    batches = _Batches(contents, style_files, batch_size, size, load_size, seed)
    loader = DataLoader(batches, batch_size=None, sampler=range(state["step"], steps), num_workers=workers,
                        pin_memory=dev.type == "cuda")
    bar = tqdm(total=steps, initial=state["step"], desc="train AdaIN decoder", unit="step", disable=not progress,
               dynamic_ncols=True)
    saved_step = state["step"] if resume else None
    try:
        for content, style in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr / (1.0 + lr_decay * state["step"])
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                total, parts = adain_loss(net, content.to(dev, non_blocking=True), style.to(dev, non_blocking=True),
                                          content_weight=content_weight, style_weight=style_weight)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            state["step"] += 1
            for key, value in parts.items():
                state["window"][key] += float(value.detach()) / log_every
            if state["step"] % log_every == 0:
                state["history"].append({"step": state["step"], **state["window"]})
                state["window"] = dict.fromkeys(state["window"], 0.0)
                bar.set_postfix({k: f"{v:.3g}" for k, v in state["history"][-1].items() if k != "step"},
                                refresh=False)
            bar.update(1)
            if state["step"] % checkpoint_every == 0 and state["step"] < steps:
                checkpoint = {**state, "params": params, "decoder": net.decoder.state_dict(),
                              "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}
                atomic_write(checkpoint_file, lambda tmp: torch.save(checkpoint, tmp))
                saved_step = state["step"]
    except KeyboardInterrupt:
        bar.close()
        where = (f"{str(checkpoint_file)!r} holds the state after step {saved_step}: run the same command with "
                 "--resume to continue") if saved_step is not None else \
            f"no checkpoint was written yet (every {checkpoint_every} steps); start again"
        raise InterruptedRun(f"training interrupted at step {state['step']}; {where}") from None
    bar.close()
    if state["step"] % log_every:  # the last, partial window
        n = state["step"] % log_every
        state["history"].append({"step": state["step"], **{k: v * log_every / n for k, v in state["window"].items()}})
    history = state["history"]
    save_decoder(net.decoder, out, params=params, history=history)
    checkpoint_file.unlink(missing_ok=True)
    return {
        "out": str(out),
        "percept_version": __version__,
        "encoder": dict(ADAIN_ENCODER),
        "params": params,
        "history": history,
        "final_losses": history[-1] if history else None,
        "device": str(dev),
        "resumed": resume,
        "seconds": round(time.perf_counter() - started, 2),
    }
