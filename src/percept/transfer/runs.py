"""Trained runs of every strategy: loading, ensemble evaluation and prediction.

A run folder holds ``run.json`` (its ``strategy`` says how to use it) and either ``classifier.joblib``
(``features``: frozen backbone + linear classifier) or ``model.pt`` (``finetune``). Several runs evaluate as
an ensemble: their class probabilities are averaged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..device import resolve_device
from ..errors import PerceptError
from ..image import check_writable, load_image
from ..models import TTA_VIEWS, get_model, view_transform
from ..params import from_settings, to_record
from .data import IMAGE_EXTENSIONS, scan_dataset
from .feature_cache import embed_images
from .linear import backbone_options, probabilities
from .params import EvaluateParams, PredictParams

STRATEGIES = ("features", "finetune")


@dataclass
class Run:
    """A trained run loaded from its folder: ``predictor`` is a fitted pipeline or a fine-tuned network."""

    path: Path
    record: dict[str, Any]
    predictor: Any = field(repr=False)

    @property
    def classes(self) -> list[str]:
        return self.record["classes"]

    def backbone(self, device: str | torch.device = "cpu"):
        """The frozen :class:`~percept.models.Backbone` of a ``features`` run (its layers and pooling as recorded);
        a one-line error when this machine's backbone would compute other features than the run's."""
        net = get_model(self.record["backbone"], device=device, kind="backbone",
                        **backbone_options(self.record.get("params", {})))
        if net.cache_id != self.record["cache_id"]:
            raise PerceptError(f"run {str(self.path)!r} was trained on {self.record['cache_id']}, but this "
                               f"machine's {self.record['backbone']} is {net.cache_id}")
        return net

    def probabilities(self, paths: Sequence[Path], *, batch_size: int, device: torch.device,
                      cache_dir: Path | None, progress: bool, views: Sequence[str] = ("center",)) -> np.ndarray:
        """Class probabilities ``(N, K)`` of the images at ``paths``, averaged over the TTA ``views``."""
        if self.record["strategy"] == "features":
            net = self.backbone(device)
            per_view = [probabilities(self.predictor, embed_images(
                net, paths, cache_dir=cache_dir, batch_size=batch_size, device=device, progress=progress,
                view=view)[0]) for view in views]
            return np.mean(per_view, axis=0)
        per_view = []
        with torch.no_grad():
            for view in views:
                transform = view_transform(self.predictor.resize, self.predictor.crop, view)
                out = []
                for start in range(0, len(paths), batch_size):
                    batch = torch.stack([transform(load_image(p)) for p in paths[start : start + batch_size]])
                    out.append(self.predictor(batch.to(device)).softmax(1).cpu().numpy())
                per_view.append(np.concatenate(out))
        return np.mean(per_view, axis=0)


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder of any strategy; one-line errors for missing, damaged or foreign folders."""
    path = Path(path)
    if not (path / "run.json").is_file():
        raise PerceptError(f"{str(path)!r} is not a percept run folder (no run.json); train one with `percept train`")
    try:
        record = json.loads((path / "run.json").read_text())
    except (OSError, ValueError) as exc:
        raise PerceptError(f"run {str(path)!r} has a damaged run.json ({exc})") from None
    if record.get("strategy") not in STRATEGIES or "classes" not in record:
        raise PerceptError(f"run {str(path)!r} was not made by this version of percept (strategy "
                           f"{record.get('strategy')!r})")
    if record["strategy"] == "features":
        try:
            predictor: Any = joblib.load(path / "classifier.joblib")
        except (OSError, ValueError, EOFError) as exc:
            raise PerceptError(f"run {str(path)!r} is damaged ({type(exc).__name__}: {exc})") from None
    else:
        from .finetune_net import load_finetuned

        predictor = load_finetuned(path, resolve_device(device))
        if predictor.head[1].out_features != len(record["classes"]):
            raise PerceptError(f"run {str(path)!r}: model.pt has {predictor.head[1].out_features} classes, "
                               f"run.json {len(record['classes'])}")
    return Run(path, record, predictor)


def _run_probabilities(runs: Sequence[Run], paths: Sequence[Path], params: EvaluateParams | PredictParams, *,
                       progress: bool) -> np.ndarray:
    """Ensemble probabilities ``(N, K)``: the mean over runs (and over the TTA views of each run)."""
    dev = resolve_device(params.device)
    total = sum(run.probabilities(paths, batch_size=params.batch_size, device=dev, cache_dir=params.cache_dir,
                                  progress=progress, views=TTA_VIEWS[params.tta]) for run in runs)
    return total / len(runs)


def evaluate(runs: Sequence[str | Path], data: str | Path | None = None, *, progress: bool = False,
             confusion_png: str | Path | None = None, **settings: Any) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of one run or an ensemble.

    Without ``data``, the validation split the (first) run was trained with; with ``data``, its ``val``
    folder if it has one, else every image in it. ``settings`` are fields of
    :class:`~percept.transfer.params.EvaluateParams`: ``tta`` averages over views of each image: ``none``,
    ``flip`` (plus the mirror image) or ``flip+crops`` (plus the four corner crops); ``batch_size``, ``device``,
    ``cache_dir``. ``confusion_png`` also draws the confusion matrix to that PNG. ``accuracy`` is a fraction
    in [0, 1]; ``params`` holds every setting.
    """
    params = from_settings(EvaluateParams, settings)
    if confusion_png is not None:
        check_writable(confusion_png, what="--confusion-png")
    loaded = [load_run(r, params.device) for r in runs]
    classes = loaded[0].classes
    for run in loaded[1:]:
        if run.classes != classes:
            raise PerceptError(f"runs disagree on classes: {str(loaded[0].path)!r} has {classes}, "
                               f"{str(run.path)!r} has {run.classes}")
    first = loaded[0].record
    if data is None:
        split = scan_dataset(first["data"], val_fraction=first["val_fraction"], seed=first["seed"])
        samples, names = split.val, split.classes
    else:
        split = scan_dataset(data, val_fraction=first["val_fraction"], seed=first["seed"])
        samples = split.val if split.layout == "train/val folders" else split.train + split.val
        names = split.classes
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise PerceptError(f"evaluation data has classes the model does not know: {', '.join(unknown)}")
    paths = [p for p, _ in samples]
    y_true = np.array([classes.index(names[label]) for _, label in samples])
    probs = _run_probabilities(loaded, paths, params, progress=progress)
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(len(classes)), zero_division=0
    )
    matrix = confusion_matrix(y_true, y_pred, labels=range(len(classes))).tolist()
    if confusion_png is not None:
        from .plots import plot_confusion_matrix

        plot_confusion_matrix(matrix, classes, Path(confusion_png))
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "n_images": len(paths),
        "tta": params.tta,
        "runs": [str(r.path) for r in loaded],
        "classes": classes,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "confusion_matrix": matrix,
        "params": to_record(params),
    }


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively) in named folders; errors for missing inputs."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif item.exists():
            paths.append(item)
        else:
            raise PerceptError(f"{str(item)!r} not found")
    if not paths:
        raise PerceptError("no images to predict")
    return paths


def predict(run: str | Path, inputs: Sequence[str | Path], **settings: Any) -> list[dict[str, Any]]:
    """Top-``k`` classes with probabilities for each image: ``[{"path", "top": [(class, p), ...]}]``.

    ``settings`` are fields of :class:`~percept.transfer.params.PredictParams` (``top_k``, ``tta``,
    ``batch_size``, ``device``, ``cache_dir``).
    """
    params = from_settings(PredictParams, settings)
    loaded = load_run(run, params.device)
    paths = collect_images(inputs)
    for path in paths:
        load_image(path)  # one-line error for a non-image before any model work
    probs = _run_probabilities([loaded], paths, params, progress=False)
    k = max(1, min(params.top_k, len(loaded.classes)))
    results = []
    for path, row in zip(paths, probs):
        order = np.argsort(-row)[:k]
        results.append({"path": str(path), "top": [(loaded.classes[i], float(row[i])) for i in order]})
    return results
