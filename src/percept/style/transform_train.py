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
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import __version__
from ..errors import PerceptError
from ..image import (
    atomic_write,
    check_writable,
    find_images,
    load_image,
    save_image,
    to_tensor,
)
from ..models import get_model
from ..params import from_settings
from ..training import Trainer
from ..training.photos import PhotoStream
from .params import DEFAULT_STYLE_LAYERS
from .training_params import TrainStyleParams
from .transform_files import build_transform_net, save_transform_net
from .transform_loss import LOSS_CONTENT_LAYERS, PerceptualLoss
from .transformer import DEFAULT_CHANNELS, TransformNet

#: Settings added after the first release, with the value that runs saved before them used (so they resume); the
#: style images were kept beside the settings then.
SETTINGS_ADDED_LATER = {"lr_schedule": "constant", "style_layer_weights": None, "init": None,
                        "styles": lambda saved: _style_ids(saved.get("styles", []))}


def _initial_net(num_styles: int, channels: list[int], init: str | None) -> TransformNet:
    """Johnson's network with random weights, or (``init``) a trained network's design and weights, every new
    style's norm parameters set to the mean of the trained styles' (Dumoulin et al.: the styles of one network
    share its convolutions)."""
    if init is None:
        return TransformNet(num_styles, channels)
    from ..models import get_model

    base = get_model(init, kind="style-net")
    net = build_transform_net({**base.architecture, "num_styles": num_styles})
    state = {k: (v.mean(0, keepdim=True).expand(num_styles, -1).clone() if k.endswith((".gamma", ".beta")) else v)
             for k, v in base.state_dict().items()}
    net.load_state_dict(state)
    return net


class ContentCrops(PhotoStream):
    """Sample ``g`` of an endless stream: a random square crop of a content photo, resized to ``size``.

    Epoch ``g // N`` visits the ``N`` photos in a seeded random order; the crop (side 50-100% of the shorter
    side, random position, random horizontal flip) comes from a generator seeded by ``(seed, g)``. So every sample
    depends only on its index: the stream is the same with any number of loader processes and after a resume.
    Returns ``(image (3, size, size) in [0, 1], g)``; an unreadable photo is replaced by the next one (warning).
    """

    def __init__(self, paths: Sequence[Path], size: int, seed: int) -> None:
        super().__init__(paths, seed)
        self.size = size

    def __getitem__(self, g: int) -> tuple[torch.Tensor, int]:
        img = self.photo(g, "content image")
        rng = self.rng(g)
        w, h = img.size
        side = max(1, round(min(w, h) * rng.uniform(0.5, 1.0)))
        left, top = rng.randint(0, w - side), rng.randint(0, h - side)
        crop = img.resize((self.size, self.size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side),
                          reducing_gap=3.0)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(crop)[0], g


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


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PerceptError(f"training folder {str(out)!r} exists and is a file; give a folder")
    if not out.parent.is_dir():
        raise PerceptError(f"folder {str(out.parent)!r} does not exist; create it first")


def _style_ids(records: Sequence[dict[str, str]]) -> list[str]:
    """The style images as a resumed run compares them: file name and the start of the SHA-256."""
    return [f"{r['file']} {r['sha256'][:16]}" for r in records]


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
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[TrainStep], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Train a :class:`TransformNet` for ``styles`` on the photos under ``content_dir``; write it to folder ``out``.

    Args:
        styles: one style image (a single-style network) or several (one conditional-IN network).
        content_dir: folder searched recursively for photos (:func:`percept.image.find_images`; e.g. COCO
            ``train2014``).
        out: training folder (see the module docstring).
        model_file: where the model file goes (default ``out/model.pt``); rewritten at every checkpoint.
        resume: continue the run in ``out`` (same settings; ``steps`` may be raised).
        progress: show a tqdm progress bar with the losses.
        callback: called with a :class:`TrainStep` after every step.
        **settings: any field of :class:`~percept.style.training_params.TrainStyleParams` (``steps``, ``size``,
            ``lr``, loss weights and layers, ``max_minutes``, ``amp``, ...). ``max_minutes`` counts from this
            call; when it is reached the network and a checkpoint are saved and ``resume`` goes on.

    Returns:
        The run record (also ``out/train.json``): settings, styles, loss network, ``history`` (losses per
        step), ``final_losses`` (mean of the last 100 steps), ``seconds``, ``model`` (the model file's path).
    """
    started = time.perf_counter()
    if not styles:
        raise PerceptError("give at least one style image")
    p = from_settings(TrainStyleParams, {**settings, "content_dir": str(content_dir)}, what="training setting")
    style_paths = [Path(s) for s in styles]
    style_pils = [load_image(s, what="style image") for s in style_paths]
    contents = find_images(p.content_dir, "content")
    sample_pil = load_image(p.sample_content if p.sample_content is not None else contents[0], what="sample image")
    out = Path(out)
    _check_folder(out)
    model_path = out / "model.pt" if model_file is None else check_writable(model_file, what="model file", image=False)

    network = p.network
    params = {"size": p.size, "style_size": p.style_size or p.size, "batch_size": p.batch_size, "lr": p.lr,
              "lr_schedule": p.lr_schedule, "content_weight": p.content_weight, "style_weight": p.style_weight,
              "tv_weight": p.tv_weight, "network": network, "weights": None if p.weights is None else str(p.weights),
              "seed": p.seed, "content_layers": list(p.content_layers or LOSS_CONTENT_LAYERS[network]),
              "style_layers": list(p.style_layers or DEFAULT_STYLE_LAYERS[network]),
              "channels": list(p.channels or DEFAULT_CHANNELS) if p.init is None else None, "init": p.init,
              "style_layer_weights": None if p.style_layer_weights is None else [float(w) for w in
                                                                                 p.style_layer_weights]}
    style_records = [_file_record(s) for s in style_paths]
    trainer = Trainer(out / "checkpoint.pt", {**params, "styles": _style_ids(style_records)}, resume=resume,
                      steps=p.steps, device=p.device, amp=p.amp, name=out, added_later=SETTINGS_ADDED_LATER,
                      started=started)
    dev = trainer.device
    torch.manual_seed(p.seed)
    net = trainer.prepare(_initial_net(len(style_paths), params["channels"], p.init))
    loss_net = trainer.prepare(get_model(network, p.weights, kind="features", device=dev))
    need = loss_net.min_input_size(params["content_layers"] + params["style_layers"])
    if min(p.size, params["style_size"]) < need:
        raise PerceptError(f"size and style-size must be >= {need} px for the layers of {network}")
    style_ts = [to_tensor(s, longest=params["style_size"]).to(dev) for s in style_pils]
    if min(min(t.shape[-2:]) for t in style_ts) < need:
        raise PerceptError(f"a style image is narrower than {need} px at style-size {params['style_size']}; "
                           "raise style-size")
    criterion = PerceptualLoss(loss_net, style_ts, content_layers=params["content_layers"],
                               style_layers=params["style_layers"], content_weight=p.content_weight,
                               style_weight=p.style_weight, tv_weight=p.tv_weight,
                               style_layer_weights=p.style_layer_weights)
    optimizer = torch.optim.Adam(net.parameters(), lr=p.lr)
    trainer.restore(model=net, optimizer=optimizer)
    out.mkdir(exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)

    sample = to_tensor(sample_pil, longest=p.size).to(dev)
    n_styles = len(style_paths)
    metadata = {
        "styles": style_records,
        "loss_network": {"arch": network, "weights_id": loss_net.weights.id,  # type: ignore[attr-defined]
                         "content_layers": params["content_layers"], "style_layers": params["style_layers"]},
    }

    def loss_step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, index = batch
        style_index = index % n_styles
        images = images.to(dev, non_blocking=True).contiguous(memory_format=trainer.memory_format)
        one_hot = torch.nn.functional.one_hot(style_index, n_styles).float().to(dev)
        return criterion(net(images, one_hot), images, style_index)

    def before_save() -> None:  # the model file goes with every checkpoint, so a long run can be tried early
        net.metadata = {**metadata, "training": {
            **params, "steps": trainer.step, "content_dir": p.content_dir, "content_images": len(contents),
            "amp": trainer.amp, "final_losses": _final_losses(trainer.history)}}
        save_transform_net(net, model_path)

    def after_step(batch: tuple[torch.Tensor, torch.Tensor], losses: dict[str, float]) -> None:
        step = trainer.step
        if p.sample_every and (step % p.sample_every == 0 or step == p.steps or trainer.stopping):
            save_image(_sample_strip(net, sample), out / "samples" / f"step_{step:06d}.png")
        if callback is not None:
            callback(TrainStep(step, p.steps, losses, (batch[1] % n_styles).tolist(), trainer.seconds()))

    limit = f", stops after {p.max_minutes:g} min" if p.max_minutes is not None else ""
    linear = (lambda step: p.lr * (1 - step / p.steps)) if p.lr_schedule == "linear" else None
    net.train()
    stopped = trainer.fit(trainer.loader(ContentCrops(contents, p.size, p.seed), batch_size=p.batch_size,
                                         workers=p.workers),
                          loss_step, optimizer, lr=linear, checkpoint_every=p.checkpoint_every, keep_checkpoint=True,
                          max_minutes=p.max_minutes, before_save=before_save, after_step=after_step,
                          desc=f"train {n_styles} style(s){limit}", progress=progress)
    record = {
        "percept_version": __version__,
        "torch_version": str(torch.__version__),
        "model": str(model_path),
        **net.metadata,
        "device": str(dev),
        "resumed": resume,
        "stopped": stopped,
        "seconds": round(trainer.seconds(), 2),
        "history": trainer.history,
    }
    atomic_write(out / "train.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1) + "\n"))
    return record


def _final_losses(history: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each loss over the last 100 steps (single batches are noisy)."""
    last = history[-100:]
    return {k: sum(h[k] for h in last) / len(last) for k in ("content", "style", "tv", "total")}
