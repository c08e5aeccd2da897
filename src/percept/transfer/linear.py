"""Transfer learning with a frozen backbone: cached features plus a linear classifier (scikit-learn).

``train_features`` writes a *run* folder::

    RUN/run.json            everything about the run: data, split, backbone, classifier, metrics
    RUN/classifier.joblib   the fitted scikit-learn pipeline (standardise -> linear model)

:mod:`percept.transfer.runs` loads runs of every strategy for evaluation and prediction.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ..device import resolve_device
from ..errors import PerceptError
from ..image import atomic_write
from ..models import get_model
from ..params import from_settings, to_record
from ..record import make_record
from .augment import get_augment
from .data import scan_dataset
from .feature_cache import embed_images
from .names import CLASSIFIERS
from .params import FeaturesParams

#: Inverse regularisation strengths tried by cross-validation when C is not given.
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class SoftmaxLayer(ClassifierMixin, BaseEstimator):
    """A dense softmax layer ``(N, D) -> (N, K)`` trained in PyTorch: cross-entropy with label smoothing plus
    the L2 penalty ``||W||^2 / (2 C N)``, minimised full-batch by L-BFGS (strong Wolfe line search).

    The "new softmax layer on frozen features" of the transfer-learning courses; unlike scikit-learn's
    logistic regression it smooths the targets, which keeps its probabilities from saturating on a few images
    per class. A scikit-learn estimator (``coef_`` ``(K, D)``, ``intercept_`` ``(K,)``, ``predict_proba``).
    """

    def __init__(self, C: float = 1.0, label_smoothing: float = 0.1, max_iter: int = 300, random_state: int = 0):
        self.C, self.label_smoothing, self.max_iter, self.random_state = C, label_smoothing, max_iter, random_state

    def fit(self, x: np.ndarray, y: np.ndarray) -> "SoftmaxLayer":
        import torch
        import torch.nn.functional as F

        self.classes_ = np.unique(y)
        inputs = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        targets = torch.as_tensor(np.searchsorted(self.classes_, y))
        torch.manual_seed(self.random_state)
        layer = torch.nn.Linear(inputs.shape[1], len(self.classes_))
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
        opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=self.max_iter, line_search_fn="strong_wolfe")
        penalty = 1.0 / (2 * self.C * len(inputs))

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(layer(inputs), targets, label_smoothing=self.label_smoothing)
            loss = loss + penalty * layer.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.coef_ = layer.weight.detach().numpy().astype(np.float64)
        self.intercept_ = layer.bias.detach().numpy().astype(np.float64)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.decision_function(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(x).argmax(axis=1)]


def make_classifier(kind: str, C: float, seed: int) -> Pipeline:
    """Standardised features -> multinomial logistic regression, a linear SVM (one-vs-rest) or a softmax layer."""
    if kind == "logreg":
        model = LogisticRegression(C=C, max_iter=3000, random_state=seed)
    elif kind == "svm":
        model = LinearSVC(C=C, max_iter=20000, random_state=seed)
    elif kind == "softmax":
        model = SoftmaxLayer(C=C, random_state=seed)
    else:
        raise PerceptError(f"unknown classifier {kind!r}; choose one of {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), model)


def fit_classifier(kind: str, C: float | None, seed: int, x: np.ndarray, y: np.ndarray,
                   groups: np.ndarray | None = None) -> tuple[Pipeline, float, float | None]:
    """Fit with the given ``C``, or choose ``C`` from :data:`C_GRID` by stratified k-fold cross-validation
    on the training set (k = 5 for logistic regression, 3 for the SVM and softmax layer, fewer when the smallest class
    is smaller; logistic regression warm-starts along the grid). ``groups`` (one id per source image) keeps
    augmented copies of an image in the same fold. Returns the fitted model, its C and the cross-validated
    accuracy at that C (the mean over the folds; ``None`` when C was given or there were too few images).
    """
    if C is not None:
        if C <= 0:
            raise PerceptError(f"C must be > 0, got {C}")
        return make_classifier(kind, C, seed).fit(x, y), C, None
    images_per_class = np.bincount(y if groups is None else y[np.unique(groups, return_index=True)[1]])
    folds = int(min(5 if kind == "logreg" else 3, images_per_class.min()))
    if folds < 2:
        return make_classifier(kind, 1.0, seed).fit(x, y), 1.0, None
    if groups is None:
        cv = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    else:
        cv = list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(x, y, groups))
    if kind == "logreg":
        model = LogisticRegressionCV(Cs=list(C_GRID), cv=cv, max_iter=3000, random_state=seed, scoring="accuracy")
        with warnings.catch_warnings():  # scikit-learn 1.9 announces changes of defaults we do not rely on
            warnings.simplefilter("ignore", FutureWarning)
            pipeline = make_pipeline(StandardScaler(), model).fit(x, y)
        chosen = float(np.atleast_1d(pipeline[-1].C_)[0])
        scores = next(iter(pipeline[-1].scores_.values()))  # (folds, len(C_GRID)), the same for every class
        score = float(scores[:, list(C_GRID).index(chosen)].mean()) if chosen in C_GRID else None
        return make_classifier(kind, chosen, seed).fit(x, y), chosen, score
    pipeline = make_classifier(kind, 1.0, seed)
    key = f"{pipeline.steps[-1][0]}__C"
    search = GridSearchCV(pipeline, {key: list(C_GRID)}, cv=cv).fit(x, y)
    return search.best_estimator_, float(search.best_params_[key]), float(search.best_score_)


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
    return _softmax(scores)


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` scores."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def backbone_options(params: dict[str, Any]) -> dict[str, Any]:
    """The ``get_model(..., kind="backbone")`` options of a features run from its ``params`` (a run made before
    ``features`` and ``pooling`` existed gets the defaults)."""
    return {"layers": list(params.get("features") or []), "pooling": params.get("pooling") or "avg"}


def train_features(data: str | Path, out: str | Path, *, progress: bool = False, **settings: Any) -> dict[str, Any]:
    """Fit a linear classifier on frozen ``backbone`` features of ``data``; write the run to ``out``.

    Args:
        data: dataset folder (``DATA/train/<class>/*`` and ``DATA/val/<class>/*``, or ``DATA/<class>/*``).
        out: run folder to write.
        progress: show progress bars while computing features.
        **settings: any field of :class:`~percept.transfer.params.FeaturesParams` (``backbone``, ``classifier``,
            ``features``, ``pooling``, ``C``, ``augment_copies``, ``batch_size``, ``cache_dir``, ...). ``features``
            (layer names) and ``pooling`` (``avg``, ``max``, ``gram``, ``bilinear``) choose what the vector of an
            image is: several stages of the backbone, each pooled, concatenated. ``C=None`` chooses the regularisation
            by cross-validation on the training images. ``augment_copies=N`` adds the features of N augmented
            copies of every training image (``augment`` preset and ``augment_overrides``; mixup/cutmix do not
            apply to single images), each cached like the plain features.

    Returns the run record (also ``out/run.json``) with ``metrics.val_accuracy`` as a fraction in [0, 1] and
    ``params`` (every setting).
    """
    started = time.perf_counter()
    params = from_settings(FeaturesParams, settings)  # checks every setting before any long work
    if params.augment_overrides and not params.augment_copies:
        raise PerceptError("augmentation settings apply to augmented copies only; add --augment-copies N")
    aug = get_augment(params.augment, **params.augment_overrides) if params.augment_copies else None
    if params.augment_copies and aug is None:
        raise PerceptError("--augment-copies needs an augmentation preset other than none (e.g. --augment light)")
    if aug is not None:
        aug = replace(aug, mixup=0.0, cutmix=0.0)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"run folder {str(out)!r} exists and is a file")
    split = scan_dataset(data, val_fraction=params.val_fraction, seed=params.seed)
    dev = resolve_device(params.device)
    net = get_model(params.backbone, device=dev, kind="backbone", **backbone_options(to_record(params)))
    out.mkdir(parents=True, exist_ok=True)  # after the backbone: an unknown layer leaves no folder behind
    embed = dict(cache_dir=params.cache_dir, batch_size=params.batch_size, device=dev, progress=progress)
    train_paths = [p for p, _ in split.train]
    x_train, hits_train = embed_images(net, train_paths, **embed)
    x_val, hits_val = embed_images(net, [p for p, _ in split.val], **embed)
    y_train = np.array([label for _, label in split.train])
    y_val = np.array([label for _, label in split.val])
    copies = [embed_images(net, train_paths, **embed, augment=aug, copy=c, seed=params.seed)
              for c in range(params.augment_copies)]
    hits_train += sum(hits for _, hits in copies)
    groups = np.tile(np.arange(len(train_paths)), 1 + params.augment_copies)
    x_fit = np.concatenate([x_train, *(x for x, _ in copies)])
    y_fit = np.tile(y_train, 1 + params.augment_copies)
    pipeline, C, cv_accuracy = fit_classifier(params.classifier, params.C, params.seed, x_fit, y_fit,
                                              groups if params.augment_copies else None)
    record = make_record(
        "features", to_record(params),
        strategy="features",
        backbone=params.backbone,
        weights_id=net.weights_id,
        cache_id=net.cache_id,
        classifier=params.classifier,
        C=C,
        augment_copies=params.augment_copies,
        augmentation=aug.to_dict() if aug else None,
        **split.record(data, params.val_fraction, params.seed),
        features_from_cache=hits_train + hits_val,
        metrics={
            "train_accuracy": float((pipeline.predict(x_train) == y_train).mean()),
            "val_accuracy": float((pipeline.predict(x_val) == y_val).mean()),
            "cv_accuracy": cv_accuracy,  # training images only: the cross-validation that chose C
        },
        seconds=round(time.perf_counter() - started, 2),
    )
    atomic_write(out / "classifier.joblib", lambda tmp: joblib.dump(pipeline, tmp))
    atomic_write(out / "run.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2)))
    return record
