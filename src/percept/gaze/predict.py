"""Using a trained model: fixation densities of new images (:func:`predict_gaze`) and scores against recorded
fixations with the baselines beside it (:func:`evaluate_gaze`).

A density is computed on the image's working grid (longer side 256 px) and, for :func:`predict_gaze`, resampled
to the image's own size (bilinear, renormalised). Evaluation stays on the working grid, with the fixations scaled to
it: every model and baseline is scored on the same pixels.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import PerceptError
from ..image import ImageInput, as_pil, image_list, to_tensor
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .baselines import uniform_log_density
from .data import FixationData, load_data, work_size
from .features import default_cache_dir
from .files import GazeModel
from .metrics import average, image_metrics
from .params import GazeEvalParams, GazeParams
from .render import heat_map, overlay
from .resample import resize_log_density


def _model(model: str | os.PathLike | GazeModel, device: str) -> GazeModel:
    """A loaded model, the model that ships with percept (``deepgaze2``) or a GAZE.pt file."""
    from ..models import get_model

    return model if isinstance(model, GazeModel) else get_model(model, kind="gaze", device=device)


def _model_inputs(gm: GazeModel) -> dict[str, Any]:
    """The record's description of the model: its registered name, or its file."""
    if gm.weights_id is not None:
        return {"model": gm.weights_id}
    return {"model": describe_input(gm.path)} if gm.path is not None else {}


@dataclass
class GazePrediction:
    """Where people are predicted to look in one image.

    Attributes:
        image: the photo ``(1, 3, H, W)`` in [0, 1].
        log_density: ``(H, W)`` natural-log fixation density at the image's size (``logsumexp`` = 0).
        record: how it was made (settings, inputs, model).
    """

    image: torch.Tensor
    log_density: torch.Tensor
    record: dict[str, Any]

    @property
    def figure(self) -> torch.Tensor:
        """``(1, 3, H, W)``: the heat map, or the photo with it drawn over when the record's ``overlay`` is on."""
        if self.record["params"].get("overlay"):
            return overlay(self.image, self.log_density)
        return heat_map(self.log_density)


def predict_gaze(images: ImageInput | Sequence[ImageInput], model: str | os.PathLike | GazeModel | None = None, *,
                 progress: bool = False, **settings: Any) -> list[GazePrediction]:
    """Fixation densities of ``images`` (paths, PIL images or ``(1, 3, H, W)`` tensors) under ``model``:
    ``deepgaze2`` (the default, ships with percept), a GAZE.pt file of ``percept gaze-train`` or a loaded
    :class:`~percept.gaze.files.GazeModel`. ``settings``: fields of :class:`~percept.gaze.params.GazeParams`
    (``overlay``, ``device``). One prediction per image."""
    if isinstance(model, (str, os.PathLike)):
        settings["model"] = str(model)
    p = from_settings(GazeParams, settings, what="gaze setting")
    gm = _model(model if isinstance(model, GazeModel) else p.model, p.device)
    extractor = gm.extractor(None)
    out = []
    for image in tqdm(image_list(images), desc=f"gaze ({gm.name})", unit="img", disable=not progress):
        pil = as_pil(image)
        grid = work_size(*pil.size)
        maps = extractor.maps([pil], progress=False)[0]
        log_density = resize_log_density(gm.log_density(maps, grid), *pil.size)
        inputs = {"image": describe_input(image), **_model_inputs(gm)}
        record = make_record("gaze", to_record(p), inputs=inputs, model=gm.name, weights_id=gm.spec.weights,
                             grid=list(grid), **gm.net.facts())
        out.append(GazePrediction(to_tensor(pil), log_density, record))
    return out


# -------------------------------------------------------------------------------------------------- evaluation

#: The rows of an evaluation, model last: name -> what it is.
BASELINES = ("uniform", "gaussian blob", "centre bias")


def _names(model: GazeModel, data: FixationData, subset: str) -> tuple[str, list[str]]:
    """``(subset used, image names)``."""
    trained_on = (model.training.get("inputs") or {}).get("data", {}).get("digest") == data.digest
    split = model.training.get("split") or {}
    held_out = [n for n in split.get("test", []) if n in data.stimuli]
    if subset == "held-out":
        if not trained_on:
            raise PerceptError("DATA is not the data this model was trained on, so it has no held-out images; use "
                               "--subset all")
        if not held_out:
            raise PerceptError("this model was trained on every image (--folds 1): no image is held out; use "
                               "--subset all")
    if subset == "held-out" or (subset == "auto" and trained_on and held_out):
        return "held-out", held_out
    if trained_on:
        warnings.warn("evaluating on the images the model was trained on: the scores are optimistic", stacklevel=3)
    return "all", data.names


def _other_fixations(data: FixationData, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per image: the fixations of the other images of ``names`` (normalised), the negatives of the shuffled AUC."""
    points = [data.normalised(n) for n in names]
    sizes = np.cumsum([0] + [len(x) for x in points])
    stacked = np.concatenate(points)
    return {n: np.delete(stacked, np.s_[sizes[i] : sizes[i + 1]], axis=0) for i, n in enumerate(names)}


def _on_grid(points: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    w, h = grid
    cols = np.clip(np.floor(points[:, 0] * w), 0, w - 1)
    rows = np.clip(np.floor(points[:, 1] * h), 0, h - 1)
    return np.stack([cols, rows], axis=1).astype(np.int64)


def evaluate_gaze(model: str | os.PathLike | GazeModel, data: str | os.PathLike | FixationData, *,
                  progress: bool = False, cache_dir: str | os.PathLike | None = None,
                  **settings: Any) -> dict[str, Any]:
    """Scores of ``model`` and of the baselines (uniform, Gaussian blob, centre bias; fitted on the model's
    training images) on the fixations of ``data``, per image and averaged (see :mod:`percept.gaze.metrics`).

    ``settings``: fields of :class:`~percept.gaze.params.GazeEvalParams` (``subset``, ``cc_sigma``, ``device``).
    Returns ``{"subset", "rows": {name: means}, "images": [{"image", "fixations", name: metrics, ...}], "record"}``;
    the model's row is named after it (``deepgaze1``, ``deepgaze2``); IG is over the centre bias.
    """
    p = from_settings(GazeEvalParams, settings, what="evaluation setting")
    gm = _model(model, p.device)
    dataset = data if isinstance(data, FixationData) else load_data(data)
    subset, names = _names(gm, dataset, p.subset)
    extractor = gm.extractor(default_cache_dir() if cache_dir is None else cache_dir)
    maps = extractor.maps([dataset.stimuli[n].path for n in names], progress=progress, desc="features")
    others = _other_fixations(dataset, names)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in (*BASELINES, gm.name)}
    images = []
    for name, feature_maps in zip(names, maps):
        grid = dataset.stimuli[name].grid
        fixations = dataset.grid_fixations(name)
        centre = gm.centre_bias.log_density(*grid)
        predictions = {"uniform": uniform_log_density(*grid), "gaussian blob": gm.blob.log_density(*grid),
                       "centre bias": centre, gm.name: gm.log_density(feature_maps, grid)}
        row: dict[str, Any] = {"image": name, "fixations": len(fixations)}
        for key, log_density in predictions.items():
            metrics = image_metrics(log_density.numpy(), centre.numpy(), fixations, _on_grid(others[name], grid),
                                    sigma=p.cc_sigma)
            rows[key].append(metrics)
            row[key] = {k: round(v, 5) for k, v in metrics.items() if k != "fixations"}
        images.append(row)
    means = {key: {k: round(v, 5) if isinstance(v, float) else v for k, v in average(values).items()}
             for key, values in rows.items()}
    inputs = {"data": {"path": str(dataset.root), "digest": dataset.digest}, **_model_inputs(gm)}
    record = make_record("gaze-eval", to_record(p), inputs=inputs, model=gm.name, subset=subset,
                         images=len(names), fixations=dataset.count(names), features_computed=extractor.computed)
    return {"subset": subset, "model": gm.name, "rows": means, "images": images, "record": record,
            "data": str(Path(dataset.root))}
