"""Train a super-resolution network with perceptual losses (Johnson, Alahi & Fei-Fei, ECCV 2016), :func:`train_sr`.

Each step takes a batch of random ``crop x crop`` patches of the high-resolution photos (the paper: 288 px from
10k COCO images, batches of 4, Adam at lr 1e-3, 200k steps), makes their low-resolution inputs on the device
(:func:`percept.sr.degrade.degrade`), upscales them with :class:`~percept.sr.network.SRNet` and minimises

* ``pixel``: the mean squared error to the high-resolution patch;
* ``feature``: the paper's feature reconstruction loss, the mean squared error between the relu2_2 features of
  VGG-16 (torchvision's ImageNet weights, ``get_model("vgg16", kind="features")``, which carries its own input
  normalisation) of the output and of the patch;
* ``mix``: ``pixel + feature_weight * feature``.

The run is one :class:`percept.training.Trainer`: the model file ``OUT`` (and the checkpoint ``OUT.ckpt``) is
written every ``checkpoint_every`` steps and at the time limit; ``resume=True`` continues bit for bit, also to more
``steps``; changed settings are refused in one line.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from .. import __version__
from ..errors import PerceptError
from ..image import check_writable, find_images, to_tensor
from ..params import from_settings, to_record
from ..training import Trainer
from ..training.photos import PhotoStream
from .degrade import degrade
from .files import save_sr_net
from .network import SRNet
from .params import TrainSrParams, refuse_unused

#: The paper's loss network and layer for the feature reconstruction loss.
LOSS_NETWORK, LOSS_LAYER = "vgg16", "relu2_2"
#: Settings that a resumed run must share with the saved one.
FIXED_ON_RESUME = ("images", "factor", "loss", "feature_weight", "degradation", "crop", "batch_size", "lr",
                   "warmup", "blocks", "bicubic_skip", "seed")


def usable_images(paths: Sequence[Path], crop: int, folder: str) -> list[Path]:
    """The images whose sides are all at least ``crop`` pixels (read from the file headers); the others are
    skipped with a warning, and none left is a one-line error."""
    usable, small = [], 0
    for path in paths:
        try:
            with Image.open(path) as img:
                if min(img.size) >= crop:
                    usable.append(path)
                else:
                    small += 1
        except (OSError, ValueError, Image.DecompressionBombError):
            warnings.warn(f"skipping {str(path)!r}: not an image Pillow can read", stacklevel=2)
    if not usable:
        raise PerceptError(f"no image under {folder!r} is at least {crop} px on each side (the training crop); "
                           "lower --crop or give larger photos")
    if small:
        warnings.warn(f"skipping {small} of {len(paths)} images smaller than the {crop} px crop", stacklevel=2)
    return usable


class HRCrops(PhotoStream):
    """Sample ``g`` of an endless stream: a random ``crop x crop`` patch of a photo, randomly flipped.

    Epoch ``g // N`` visits the ``N`` photos in a seeded random order; the position and the flips (horizontal,
    vertical) come from a generator seeded by ``(seed, g)``, so every sample depends only on its index (the
    stream is the same with any number of loader processes and after a resume). Returns ``(3, crop, crop)`` in
    ``[0, 1]``; an unreadable photo is replaced by the next one (warning).
    """

    def __init__(self, paths: Sequence[Path], crop: int, seed: int) -> None:
        super().__init__(paths, seed)
        self.crop = crop

    def __getitem__(self, g: int) -> torch.Tensor:
        img = self.photo(g, "training image", lambda img: min(img.size) >= self.crop)
        rng = self.rng(g)
        w, h = img.size
        left, top = rng.randint(0, w - self.crop), rng.randint(0, h - self.crop)
        patch = img.crop((left, top, left + self.crop, top + self.crop))
        if rng.random() < 0.5:
            patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if rng.random() < 0.5:
            patch = patch.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return to_tensor(patch)[0]


def _final_losses(history: list[dict[str, float]], last: int = 5) -> dict[str, float]:
    """Mean of each logged loss over the last ``last`` log windows (single batches are noisy)."""
    rows = history[-last:]
    keys = [k for k in rows[0] if k != "step"] if rows else []
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}


def train_sr(images: str | os.PathLike, out: str | os.PathLike, *, resume: bool = False, progress: bool = False,
             **settings: Any) -> dict[str, Any]:
    """Train an :class:`~percept.sr.network.SRNet` on the photos under ``images``; write it to the model file ``out``.

    Args:
        images: folder searched recursively for high-resolution photos (images smaller than the crop are skipped).
        out: the model file (``.pt``), rewritten at every checkpoint; the checkpoint is ``OUT.ckpt`` beside it.
        resume: continue the run saved in ``OUT.ckpt`` (same settings; ``steps`` may be raised).
        progress: show a progress bar with the losses.
        **settings: any field of :class:`~percept.sr.params.TrainSrParams` (``factor``, ``loss``, ``steps``,
            ``crop``, ``batch_size``, ``lr``, ``max_minutes``, ``amp``, ``seed``, ``device``, ...).
            ``max_minutes`` counts from this call; when it is reached the network and a checkpoint are saved and
            ``resume`` goes on. ``feature_weight`` is for ``loss="mix"`` only (refused otherwise).

    Returns:
        The run record (also kept in the model file under ``training``): ``params`` (every setting), ``steps``,
        ``history`` (mean losses of every ``log_every`` steps: ``pixel``, ``feature`` where computed, ``total``),
        ``final_losses``, ``images`` (how many photos), ``device``, ``amp``, ``stopped`` (``steps`` or ``time
        limit``), ``resumed``, ``seconds`` and ``model`` (the file).
    """
    started = time.perf_counter()
    p = from_settings(TrainSrParams, {**settings, "images": str(images)}, what="training setting")
    refuse_unused(p.loss, settings)
    out = Path(out)
    if out.suffix.lower() != ".pt":
        raise PerceptError(f"model file {str(out)!r} must end in .pt")
    out = check_writable(out, what="model file", image=False)
    paths = usable_images(find_images(p.images, "training images"), p.crop, p.images)
    params = to_record(p)
    fixed = {**{k: params[k] for k in FIXED_ON_RESUME}, "images": str(Path(p.images).resolve()),
             "n_images": len(paths)}
    if p.loss != "mix":
        fixed.pop("feature_weight")
    trainer = Trainer(out.with_name(out.name + ".ckpt"), fixed, resume=resume, steps=p.steps, device=p.device,
                      amp=p.amp, name=out, started=started)
    dev = trainer.device
    torch.manual_seed(p.seed)
    net = trainer.prepare(SRNet(p.factor, p.blocks, bicubic_skip=p.bicubic_skip))
    loss_net = None
    if p.loss != "pixel":
        loss_net = trainer.prepare(get_loss_network(dev))
    optimizer = torch.optim.Adam(net.parameters(), lr=p.lr)
    trainer.restore(model=net, optimizer=optimizer)

    def loss_step(hr: torch.Tensor) -> dict[str, torch.Tensor]:
        hr = hr.to(dev, non_blocking=True)
        with torch.autocast(dev.type, enabled=False):  # the inputs as 8-bit images, in full precision
            small, hr = degrade(hr, p.factor, degradation=p.degradation)
        sr = net(small.contiguous(memory_format=trainer.memory_format))
        losses = {"pixel": F.mse_loss(sr.float(), hr)}
        if loss_net is not None:
            with torch.no_grad():
                target = loss_net(hr, [LOSS_LAYER])[LOSS_LAYER]
            losses["feature"] = F.mse_loss(loss_net(sr, [LOSS_LAYER])[LOSS_LAYER].float(), target.float())
        if p.loss == "pixel":
            losses["total"] = losses["pixel"]
        elif p.loss == "feature":
            losses["total"] = losses["feature"]
        else:
            losses["total"] = losses["pixel"] + p.feature_weight * losses["feature"]
        return losses

    def training_record() -> dict[str, Any]:
        return {"params": params, "steps": trainer.step, "images": len(paths), "amp": trainer.amp,
                "history": trainer.history, "final_losses": _final_losses(trainer.history)}

    def before_save() -> None:  # the model file goes with every checkpoint, so a long run can be tried early
        net.metadata = {"training": training_record(),
                        "loss_network": None if loss_net is None else {"weights_id": loss_net.weights.id,
                                                                       "layer": LOSS_LAYER}}
        save_sr_net(net, out)

    limit = f", stops after {p.max_minutes:g} min" if p.max_minutes is not None else ""
    net.train()
    stopped = trainer.fit(trainer.loader(HRCrops(paths, p.crop, p.seed), batch_size=p.batch_size, workers=p.workers),
                          loss_step, optimizer, lr=lambda step: p.lr * min(1.0, (step + 1) / (p.warmup + 1)),
                          log_every=p.log_every, checkpoint_every=p.checkpoint_every,
                          keep_checkpoint=True, max_minutes=p.max_minutes, before_save=before_save,
                          desc=f"train-sr x{p.factor} {p.loss}{limit}", progress=progress)
    before_save()  # again, with the last (partial) log window that fit() adds at the end
    net.eval()
    return {"model": str(out), "percept_version": __version__, **training_record(), "device": str(dev),
            "stopped": stopped, "resumed": resume, "seconds": round(trainer.seconds(), 2)}


def get_loss_network(device: torch.device):
    """VGG-16 up to relu2_2 with torchvision's ImageNet weights (its input normalisation built in), frozen."""
    from ..models import get_model

    return get_model(LOSS_NETWORK, kind="features", device=device, last=LOSS_LAYER)
