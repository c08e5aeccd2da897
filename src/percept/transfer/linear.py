"""Transfer learning with a frozen backbone: cached features plus a linear classifier (scikit-learn).

``train_features`` writes a *run* folder::

    RUN/run.json            everything about the run: data, split, backbone, classifier, metrics
    RUN/classifier.joblib   the fitted scikit-learn pipeline (standardise -> linear model)

``evaluate`` and ``predict`` load runs; several runs evaluate as an ensemble (averaged probabilities).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from .. import __version__
from ..device import resolve_device
from ..errors import PerceptError
from ..image import load_image
from .backbones import get_backbone
from .data import IMAGE_EXTENSIONS, scan_dataset
from .features import embed_images
from .names import CLASSIFIERS



#: Inverse regularisation strengths tried by cross-validation when C is not given.
C_GRID = tuple(float(c) for c in np.logspace(-4, 1, 11))


def make_classifier(kind: str, C: float, seed: int) -> Pipeline:
    """Standardised features -> multinomial logistic regression or a linear SVM (one-vs-rest)."""
    if kind == "logreg":
        model = LogisticRegression(C=C, max_iter=3000, random_state=seed)
    elif kind == "svm":
        model = LinearSVC(C=C, max_iter=20000, random_state=seed)
    else:
        raise PerceptError(f"unknown classifier {kind!r}; choose one of {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), model)


def fit_classifier(kind: str, C: float | None, seed: int, x: np.ndarray, y: np.ndarray) -> tuple[Pipeline, float]:
    """Fit with the given ``C``, or choose ``C`` from :data:`C_GRID` by stratified k-fold cross-validation
    on the training set (k = 5, or fewer when the smallest class is smaller). Returns the model and its C.
    """
    if C is not None:
        if C <= 0:
            raise PerceptError(f"C must be > 0, got {C}")
        return make_classifier(kind, C, seed).fit(x, y), C
    folds = int(min(5, np.bincount(y).min()))
    if folds < 2:
        return make_classifier(kind, 1.0, seed).fit(x, y), 1.0
    search = GridSearchCV(
        make_classifier(kind, 1.0, seed), {f"{make_classifier(kind, 1.0, seed).steps[-1][0]}__C": C_GRID},
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed), n_jobs=1,
    ).fit(x, y)
    return search.best_estimator_, float(next(iter(search.best_params_.values())))


def probabilities(pipeline: Pipeline, features: np.ndarray) -> np.ndarray:
    """Class probabilities ``(N, K)``; for the SVM, a softmax of its decision values."""
    if hasattr(pipeline, "predict_proba"):
        try:
            return pipeline.predict_proba(features)
        except AttributeError:
            pass
    scores = pipeline.decision_function(features)
    if scores.ndim == 1:  # binary SVM: one score for the positive class
        scores = np.stack([-scores, scores], axis=1)
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def _write_atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train_features(
    data: str | Path,
    out: str | Path,
    *,
    backbone: str = "efficientnet_lite0",
    classifier: str = "logreg",
    C: float | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit a linear classifier on frozen ``backbone`` features of ``data``; write the run to ``out``.

    ``C=None`` chooses the regularisation by cross-validation on the training images.

    Returns the run record (also ``out/run.json``) with ``metrics.val_accuracy`` as a fraction in [0, 1].
    """
    started = time.perf_counter()
    if C is not None and C <= 0:
        raise PerceptError(f"C must be > 0, got {C}")
    make_classifier(classifier, 1.0, seed)  # validate the name before any long work
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"run folder {str(out)!r} exists and is a file")
    out.mkdir(parents=True, exist_ok=True)
    split = scan_dataset(data, val_fraction=val_fraction, seed=seed)
    dev = resolve_device(device)
    net = get_backbone(backbone, device=dev)
    embed = dict(cache_dir=cache_dir, batch_size=batch_size, device=dev, progress=progress)
    x_train, hits_train = embed_images(net, [p for p, _ in split.train], **embed)
    x_val, hits_val = embed_images(net, [p for p, _ in split.val], **embed)
    y_train = np.array([label for _, label in split.train])
    y_val = np.array([label for _, label in split.val])
    pipeline, C = fit_classifier(classifier, C, seed, x_train, y_train)
    record = {
        "percept_version": __version__,
        "strategy": "features",
        "backbone": backbone,
        "weights_id": net.weights_id,
        "cache_id": net.cache_id,
        "classifier": classifier,
        "C": C,
        "classes": split.classes,
        "data": str(Path(data).resolve()),
        "layout": split.layout,
        "val_fraction": val_fraction,
        "seed": seed,
        "counts": {"train": split.counts("train"), "val": split.counts("val")},
        "skipped": [[str(p), reason] for p, reason in split.skipped],
        "features_from_cache": hits_train + hits_val,
        "metrics": {
            "train_accuracy": float((pipeline.predict(x_train) == y_train).mean()),
            "val_accuracy": float((pipeline.predict(x_val) == y_val).mean()),
        },
        "seconds": round(time.perf_counter() - started, 2),
    }
    _write_atomic(out / "classifier.joblib", lambda tmp: joblib.dump(pipeline, tmp))
    _write_atomic(out / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    return record


@dataclass
class Run:
    """A trained run loaded from its folder."""

    path: Path
    record: dict[str, Any]
    pipeline: Pipeline

    @property
    def classes(self) -> list[str]:
        return self.record["classes"]


def load_run(path: str | Path) -> Run:
    """Load ``path/run.json`` and its classifier; one-line errors for missing or foreign folders."""
    path = Path(path)
    if not (path / "run.json").is_file():
        raise PerceptError(f"{str(path)!r} is not a percept run folder (no run.json); train one with `percept train`")
    try:
        record = json.loads((path / "run.json").read_text())
        pipeline = joblib.load(path / "classifier.joblib")
    except (OSError, ValueError, EOFError) as exc:
        raise PerceptError(f"run {str(path)!r} is damaged ({type(exc).__name__}: {exc})") from None
    if record.get("strategy") != "features" or "classes" not in record:
        raise PerceptError(f"run {str(path)!r} was not made by this version of percept (strategy "
                           f"{record.get('strategy')!r})")
    return Run(path, record, pipeline)


def _run_probabilities(runs: Sequence[Run], paths: Sequence[Path], *, batch_size: int, device: str,
                       cache_dir: Path | None, progress: bool) -> np.ndarray:
    """Ensemble probabilities ``(N, K)``: the mean over runs (backbones loaded once per run)."""
    dev = resolve_device(device)
    total = None
    for run in runs:
        net = get_backbone(run.record["backbone"], device=dev)
        if net.cache_id != run.record["cache_id"]:
            raise PerceptError(f"run {str(run.path)!r} was trained on {run.record['cache_id']}, but this machine's "
                               f"{run.record['backbone']} is {net.cache_id}")
        features, _ = embed_images(net, paths, cache_dir=cache_dir, batch_size=batch_size, device=dev,
                                   progress=progress)
        probs = probabilities(run.pipeline, features)
        total = probs if total is None else total + probs
    return total / len(runs)


def evaluate(
    runs: Sequence[str | Path],
    data: str | Path | None = None,
    *,
    batch_size: int = 32,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix of one run or an ensemble.

    Without ``data``, the validation split the (first) run was trained with; with ``data``, its ``val``
    folder if it has one, else every image in it. ``accuracy`` is a fraction in [0, 1].
    """
    loaded = [load_run(r) for r in runs]
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
    probs = _run_probabilities(loaded, paths, batch_size=batch_size, device=device, cache_dir=cache_dir,
                               progress=progress)
    y_pred = probs.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=range(len(classes)), zero_division=0
    )
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "n_images": len(paths),
        "runs": [str(r.path) for r in loaded],
        "classes": classes,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=range(len(classes))).tolist(),
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


def predict(
    run: str | Path,
    inputs: Sequence[str | Path],
    *,
    top_k: int = 5,
    batch_size: int = 32,
    device: str = "auto",
    cache_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Top-``k`` classes with probabilities for each image: ``[{"path", "top": [(class, p), ...]}]``."""
    loaded = load_run(run)
    paths = collect_images(inputs)
    for path in paths:
        load_image(path)  # one-line error for a non-image before any model work
    probs = _run_probabilities([loaded], paths, batch_size=batch_size, device=device, cache_dir=cache_dir,
                               progress=False)
    k = max(1, min(top_k, len(loaded.classes)))
    results = []
    for path, row in zip(paths, probs):
        order = np.argsort(-row)[:k]
        results.append({"path": str(path), "top": [(loaded.classes[i], float(row[i])) for i in order]})
    return results
