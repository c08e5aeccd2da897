"""Training a DeepGaze readout on eye-tracking data (:func:`train_gaze`), on percept's one training loop.

The images are split by image (:func:`~percept.gaze.data.split_images`): the held-out fold is never seen, a seeded
share of the rest decides early stopping, the others are trained on. The features of the frozen network are
computed once per image and cached (:mod:`percept.gaze.features`), the centre bias and the Gaussian blob are fitted
on the training images, and the readout, blur and centre-bias weight are trained with Adam to minimise the negative
log-likelihood of the fixations under the predicted density (each fixation counts once; batches of whole images, in
a seeded order per epoch). After every epoch the validation log-likelihood is measured and a checkpoint
(``GAZE.pt.ckpt``) written; the run stops ``patience`` epochs after the best one and keeps the best epoch.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..image import check_writable
from ..params import from_settings, to_record
from ..record import make_record
from ..training import Trainer
from .baselines import fit_gaussian_blob
from .centre_bias import fit_centre_bias
from .data import FixationData, load_data, split_images
from .features import FeatureExtractor, default_cache_dir
from .files import GazeModel, save_gaze_model
from .models import DeepGaze
from .params import GazeTrainParams

LN2 = math.log(2.0)


class Images:
    """The images of one role with what a loss needs: feature maps ``(C, h, w)`` float16, the working grid, the log
    centre bias on it and the fixations as flat pixel indices ``row * W + column``."""

    def __init__(self, data: FixationData, names: Sequence[str], maps: dict[str, torch.Tensor], centre_bias) -> None:
        self.names = list(names)
        self.maps = [maps[n] for n in self.names]
        self.grids = [data.stimuli[n].grid for n in self.names]
        self.log_cb = [centre_bias.log_density(*g) for g in self.grids]
        self.index = []
        for name, (w, _h) in zip(self.names, self.grids):
            fix = data.grid_fixations(name)
            self.index.append(torch.from_numpy(fix[:, 1] * w + fix[:, 0]))
        self.fixations = sum(len(i) for i in self.index)

    def groups(self, items: Sequence[int]):
        """``items`` grouped by feature shape and grid, so that each group runs as one batch."""
        groups: dict[tuple, list[int]] = {}
        for i in items:
            groups.setdefault((tuple(self.maps[i].shape), self.grids[i]), []).append(i)
        return groups.values()


def log_likelihood_sum(net: DeepGaze, images: Images, items: Sequence[int], device: torch.device) -> torch.Tensor:
    """Sum over the fixations of ``items`` of log p(fixation) + log(pixels) (nats; 0 for the uniform density)."""
    total = torch.zeros((), device=device)
    for group in images.groups(items):
        feats = torch.stack([images.maps[i] for i in group]).to(device, non_blocking=True)
        logp = net(feats, images.log_cb[group[0]].to(device)).flatten(1)
        w, h = images.grids[group[0]]
        for row, i in enumerate(group):
            total = total + logp[row, images.index[i].to(device)].sum() + len(images.index[i]) * math.log(w * h)
    return total


@torch.no_grad()
def mean_log_likelihood(net: DeepGaze, images: Images, device: torch.device) -> float:
    """Bits per fixation relative to uniform, over every fixation of ``images``."""
    was = net.training
    net.eval()
    value = float(log_likelihood_sum(net, images, range(len(images.names)), device)) / images.fixations / LN2
    net.train(was)
    return value


def feature_stats(maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation ``(C,)`` over every position of ``maps``."""
    total = torch.zeros(maps[0].shape[0], dtype=torch.float64)
    squares, count = torch.zeros_like(total), 0
    for m in maps:
        x = m.double().flatten(1)
        total += x.sum(1)
        squares += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    return mean.float(), (squares / count - mean**2).clamp_min(0).sqrt().float()


def _centre_bias_ll(images: Images) -> float:
    total = sum(float(cb.flatten()[i].double().sum()) + len(i) * math.log(g[0] * g[1])
                for cb, i, g in zip(images.log_cb, images.index, images.grids))
    return total / images.fixations / LN2


def train_gaze(data: str | os.PathLike, out: str | os.PathLike, *, resume: bool = False, progress: bool = False,
               cache_dir: str | os.PathLike | None = None, **settings: Any) -> dict[str, Any]:
    """Train a DeepGaze model on the DATA folder ``data`` (see :mod:`percept.gaze.data`); write it to ``out``.

    Args:
        data: stimuli/, images.csv and fixations.csv.
        out: the model file (GAZE.pt); ``out.ckpt`` holds the checkpoint while the run is not finished.
        resume: continue the run in ``out.ckpt`` (same settings; ``epochs`` may be raised).
        progress: progress bars (features, then epochs with the losses).
        cache_dir: the feature cache (default ``$PERCEPT_CACHE/gaze`` or ``~/.cache/percept/gaze``).
        **settings: fields of :class:`~percept.gaze.params.GazeTrainParams` (``model``, ``backbone``, ``folds``,
            ``fold``, ``epochs``, ``lr``, ``max_minutes``, ...).

    Returns:
        The training record (also stored in ``out``): settings, split by image, ``history`` (per epoch: train
        and validation log-likelihood in bits per fixation relative to uniform, blur, centre-bias weight),
        ``best_epoch``, ``val_ll``, ``val_ll_centre_bias``, ``stopped`` (``"early stopping"``, ``"epochs"`` or
        ``"time limit"``), ``seconds``, ``feature_seconds``.
    """
    started = time.perf_counter()
    p = from_settings(GazeTrainParams, settings, what="gaze training setting")
    out = check_writable(out, what="model file", image=False)
    dataset = load_data(data)
    split = split_images(dataset.names, folds=p.folds, fold=p.fold, val_fraction=p.val_fraction, seed=p.seed)
    params = {**to_record(p), "backbone": p.network, "layers": p.read_layers,
              "readout": p.readout_channels if p.model == "deepgaze2" else None}
    kept = {k: v for k, v in params.items() if k not in ("epochs", "max_minutes", "device")}
    trainer = Trainer(f"{out}.ckpt", {**kept, "data": dataset.digest}, resume=resume, device=p.device, amp=False,
                      name=out, done=out, started=started)
    dev = trainer.device
    extractor = FeatureExtractor(p.network, p.read_layers, p.feature_size, device=dev,
                                 cache_dir=default_cache_dir() if cache_dir is None else cache_dir)
    used = split.train + split.val
    maps = dict(zip(used, extractor.maps([dataset.stimuli[n].path for n in used], progress=progress)))
    feature_seconds = trainer.seconds()
    centre_bias = fit_centre_bias(dataset, split.train, seed=p.seed)
    blob = fit_gaussian_blob(np.concatenate([dataset.normalised(n) for n in split.train]))
    train, val = Images(dataset, split.train, maps, centre_bias), Images(dataset, split.val, maps, centre_bias)

    torch.manual_seed(p.seed)
    net = DeepGaze(maps[used[0]].shape[0], p.readout_channels)
    net.set_feature_stats(*feature_stats(train.maps))
    net = trainer.prepare(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=p.lr)
    trainer.restore(model=net, optimizer=optimizer)
    state: dict[str, Any] = {"epoch": 0, "stale": 0, "best_ll": -math.inf, "best_epoch": 0,
                             "best": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
    if trainer.saved:
        state.update({key: trainer.saved[key] for key in state})
    cb_val = _centre_bias_ll(val)
    n_batches = math.ceil(len(train.names) / p.batch_size)

    def loss_step(items: list[int]) -> torch.Tensor:
        count = sum(len(train.index[i]) for i in items)
        return -log_likelihood_sum(net, train, items, dev) / count

    stopped = "epochs"
    net.train()
    with trainer.session(p.epochs * n_batches, desc=f"train {p.model} ({p.network})", unit="batch",
                         progress=progress):
        while state["epoch"] < p.epochs:
            order = list(range(len(train.names)))
            random.Random(p.seed * 1_000_003 + state["epoch"]).shuffle(order)
            total = 0.0
            for start in range(0, len(order), p.batch_size):
                items = order[start : start + p.batch_size]
                loss = trainer.train_step(items, loss_step, optimizer)["total"]
                total += loss * sum(len(train.index[i]) for i in items)
            state["epoch"] += 1
            val_ll = mean_log_likelihood(net, val, dev)
            trainer.history.append({"epoch": state["epoch"], "train_ll": round(-total / train.fixations / LN2, 5),
                                    "val_ll": round(val_ll, 5), **net.facts()})
            trainer.postfix(epoch=state["epoch"], train_ll=-total / train.fixations / LN2, val_ll=val_ll)
            if val_ll > state["best_ll"]:
                state.update(best_ll=val_ll, best_epoch=state["epoch"], stale=0,
                             best={k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
            else:
                state["stale"] += 1
            if state["stale"] >= p.patience:
                stopped = "early stopping"
                break
            trainer.save(at=f"epoch {state['epoch']}", **state)
            if state["epoch"] < p.epochs and p.max_minutes is not None and trainer.seconds() >= 60 * p.max_minutes:
                stopped = "time limit"  # the checkpoint stays: resume goes on
                break

    net.load_state_dict(state["best"])
    net.eval()
    record = make_record(
        "gaze-train", params, inputs={"data": {"path": str(Path(data)), "digest": dataset.digest}},
        weights_id=extractor.spec.weights, images=len(dataset.names), fixations=dataset.count(),
        split=split.as_dict(), fixations_train=train.fixations, fixations_val=val.fixations,
        centre_bias={"bandwidth": centre_bias.bandwidth, "uniform": centre_bias.uniform},
        blob=blob.to_dict(), history=trainer.history, best_epoch=state["best_epoch"],
        val_ll=round(state["best_ll"], 5), val_ll_centre_bias=round(cb_val, 5),
        val_ig=round(state["best_ll"] - cb_val, 5), **net.facts(), stopped=stopped, resumed=trainer.resumed,
        device=str(dev), feature_seconds=round(feature_seconds, 2), features_computed=extractor.computed,
        seconds=round(trainer.seconds(), 2))
    save_gaze_model(GazeModel(p.model, net, extractor.spec, centre_bias, blob, record), out)
    if stopped != "time limit":
        trainer.finish()
    return record

