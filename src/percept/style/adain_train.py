"""Train an AdaIN decoder as in Huang & Belongie 2017 (content and mean/std style losses, Adam with decay)."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from .. import __version__
from ..errors import PerceptError
from ..image import check_writable, find_images, load_image, to_tensor
from ..models.formats import ADAIN_ENCODER
from ..params import from_settings
from ..training import Trainer
from .adain import ADAIN_LAYER, STYLE_LAYERS, AdaINNet, _encoder, adain, mean_std_loss
from .decoder import Decoder, load_decoder, save_decoder
from .training_params import TrainAdainParams


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
    resume: bool = False,
    progress: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Train an AdaIN decoder on photos (``content_dir``) and paintings (``style_dir``); write it to ``out``.

    Each step draws ``batch_size`` random content and style images (searched recursively), resizes each so
    its shorter side is ``load_size`` and takes a random ``size`` x ``size`` crop; it minimises
    ``content_weight * content + style_weight * style`` (:func:`adain_loss`) with Adam at learning rate
    ``lr / (1 + lr_decay * step)``, as the paper's code (which trains 160,000 steps of batch 8 on MS-COCO and
    WikiArt).

    Args:
        resume: continue the interrupted run whose checkpoint ``OUT.ckpt`` is beside ``out`` (same settings;
            ``steps`` may be raised). The checkpoint is written every ``checkpoint_every`` steps and removed when
            the run completes.
        progress: show a progress bar with the current losses.
        **settings: any field of :class:`~percept.style.training_params.TrainAdainParams`; ``steps`` is required.
            ``init``: ``shipped`` (start from the published decoder: fine-tuning), ``random`` (from scratch,
            seeded) or a decoder file to continue from. ``amp`` (``None``: on CUDA only): float16 autocast with
            loss scaling on CUDA/MPS, bfloat16 on the CPU; the networks then also run channels-last on CUDA and
            the CPU. The losses stay float32.

    Returns:
        The run record: ``out``, ``params``, ``history`` (``step``, ``content``, ``style``, ``total``: the mean
        losses of every ``log_every`` steps), ``final_losses``, ``device``, ``seconds``, ``resumed``. The decoder
        file holds the params and history too; use it with ``stylize_adain(..., decoder=out)``.
    """
    started = time.perf_counter()
    p = from_settings(TrainAdainParams, {**settings, "content_dir": str(content_dir), "style_dir": str(style_dir)},
                      what="training setting")
    if p.steps is None:
        raise PerceptError("give the number of training steps (steps=N; --steps N)")
    if Path(out).is_dir():
        raise PerceptError(f"decoder file {str(out)!r} is a directory; give a file name such as decoder.pth")
    out = check_writable(out, what="decoder file", image=False)
    if p.init not in ("shipped", "random") and not Path(p.init).is_file():
        raise PerceptError(f"init {p.init!r} is neither shipped, random nor an existing decoder file")
    contents = find_images(p.content_dir, "content")
    style_files = find_images(p.style_dir, "style")
    params = {"content_dir": str(Path(p.content_dir).resolve()), "style_dir": str(Path(p.style_dir).resolve()),
              **{k: getattr(p, k) for k in ("steps", "batch_size", "lr", "lr_decay", "size", "load_size",
                                            "content_weight", "style_weight", "init", "seed", "log_every")},
              "n_content_images": len(contents), "n_style_images": len(style_files)}
    trainer = Trainer(_checkpoint_path(out), {k: params[k] for k in _FIXED_ON_RESUME}, resume=resume,
                      steps=p.steps, device=p.device, amp=p.amp, name=out, done=out, started=started)
    params["amp"] = trainer.amp
    dev = trainer.device
    torch.manual_seed(p.seed)
    decoder = Decoder() if p.init == "random" else load_decoder(None if p.init == "shipped" else p.init)
    net = trainer.prepare(AdaINNet(_encoder(dev), decoder.to(dev).requires_grad_(True).train()))
    optimizer = torch.optim.Adam(net.decoder.parameters(), lr=p.lr)
    trainer.restore(decoder=net.decoder, optimizer=optimizer)

    def loss_step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        content, style = (x.to(dev, non_blocking=True) for x in batch)
        return adain_loss(net, content, style, content_weight=p.content_weight, style_weight=p.style_weight)[1]

    batches = _Batches(contents, style_files, p.batch_size, p.size, p.load_size, p.seed)
    trainer.fit(trainer.loader(batches, workers=p.workers), loss_step, optimizer,
                lr=lambda step: p.lr / (1.0 + p.lr_decay * step), log_every=p.log_every,
                checkpoint_every=p.checkpoint_every, desc="train AdaIN decoder", progress=progress)
    history = trainer.history
    save_decoder(net.decoder, out, params=params, history=history)
    trainer.finish()
    return {
        "out": str(out),
        "percept_version": __version__,
        "encoder": dict(ADAIN_ENCODER),
        "params": params,
        "history": history,
        "final_losses": history[-1] if history else None,
        "device": str(dev),
        "resumed": resume,
        "seconds": round(trainer.seconds(), 2),
    }
