"""Nearest neighbours in feature space: which images of a folder a network finds most similar to a query.

A folder is indexed by a layer's pooled features (:func:`~percept.understand.layer_features.folder_features`, cached per
network, weights and layer); the ``k`` nearest images of each query are found exactly, by brute force (one
matrix product; fine for folders of thousands of images), by cosine distance by default (``1 - cos``: the
direction of a ReLU feature vector says what is present, its length mostly how much contrast the image has) or
Euclidean distance.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import PerceptError
from ..image import find_images, load_image
from ..models.backbone import Backbone
from ..record import describe_input
from .explanation import Explanation, explained, folder_input
from .layer_features import FolderFeatures, embed_paths, folder_features, layer_backbone
from .montage import BAD, GOOD, NEUTRAL, labelled_grid, thumbnail
from .params import METRICS, POOLED, NeighboursParams, explain_settings


@dataclass
class Neighbours:
    """The ``k`` nearest images of a folder for each of ``Q`` queries, nearest first.

    Attributes:
        queries: the ``Q`` query images; ``query_labels``: their parent folder names.
        indices: ``(Q, k)`` int, rows of :attr:`index` (``index.paths[i]``).
        distances: ``(Q, k)`` float, in the metric's units (cosine: ``1 - cos``, in [0, 2]).
        index: the folder's paths, class labels and features.
        metric: ``cosine`` or ``euclidean``.
    """

    queries: list[Path]
    query_labels: list[str]
    indices: np.ndarray
    distances: np.ndarray
    index: FolderFeatures
    metric: str

    @property
    def paths(self) -> list[list[Path]]:
        """``(Q, k)`` neighbour files."""
        return [[self.index.paths[i] for i in row] for row in self.indices]

    @property
    def labels(self) -> list[list[str]]:
        """``(Q, k)`` neighbour classes (their parent folder names)."""
        return [[self.index.labels[i] for i in row] for row in self.indices]

    @property
    def same_class(self) -> np.ndarray:
        """``(Q, k)`` bool: the neighbour's class folder is the query's."""
        return np.array([[label == q for label in row] for q, row in zip(self.query_labels, self.labels)],
                        dtype=bool).reshape(self.indices.shape)

    @property
    def labelled(self) -> np.ndarray:
        """``(Q,)`` bool: the query's folder name is one of the indexed classes (so :attr:`same_class` means
        something)."""
        names = set(self.index.labels)
        return np.array([q in names for q in self.query_labels], dtype=bool)


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """``(Q, N)`` distances between the rows of ``a`` ``(Q, D)`` and ``b`` ``(N, D)``: cosine (``1 - cos``; a zero
    vector is at distance 1 from everything) or Euclidean."""
    if metric == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - an @ bn.T, 0.0, 2.0)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def nearest(index: FolderFeatures, queries: np.ndarray, *, k: int = 5, metric: str = "cosine",
            exclude: Sequence[int | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, distances)``, both ``(Q, k)``, of the ``k`` rows of ``index.features`` ``(N, D)`` nearest to each
    row of ``queries`` ``(Q, D)``; ``exclude[q]`` is a row never returned for query ``q`` (the query itself).
    ``k`` is capped at the rows available."""
    if metric not in METRICS:
        raise PerceptError(f"unknown metric {metric!r}; use {', '.join(METRICS)}")
    if k < 1:
        raise PerceptError(f"k must be >= 1, got {k}")
    exclude = list(exclude) if exclude is not None else [None] * len(queries)
    available = len(index.features) - (1 if any(e is not None for e in exclude) else 0)
    if available < 1:
        raise PerceptError(f"folder {str(index.root)!r} has no image besides the query")
    k = min(k, available)
    dist = pairwise_distances(np.asarray(queries, dtype=np.float64), index.features.astype(np.float64), metric)
    rows_i, rows_d = [], []
    for q in range(len(queries)):
        if exclude[q] is not None:
            dist[q, exclude[q]] = np.inf
        order = np.argsort(dist[q], kind="stable")[:k]
        rows_i.append(order)
        rows_d.append(dist[q, order])
    return np.stack(rows_i).astype(np.int64), np.stack(rows_d).astype(np.float32)


def neighbours(backbone: Backbone, folder: str | os.PathLike, queries: Sequence[str | os.PathLike], *, k: int = 5,
               metric: str = "cosine", exclude_self: bool = True, cache_dir: Path | None = None,
               batch_size: int = 32, progress: bool = False) -> Neighbours:
    """The ``k`` images of ``folder`` nearest to each query image in ``backbone``'s feature space.

    Folder and queries are embedded by :func:`~percept.understand.layer_features.folder_features` (cached; ``batch_size``
    images per forward pass). ``exclude_self`` leaves a query that is itself in the folder out of its own list.
    Build ``backbone`` with :func:`~percept.understand.layer_features.layer_backbone` (any layer of any network).
    """
    if not queries:
        raise PerceptError("no query images given")
    index = folder_features(backbone, folder, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    paths = [Path(q) for q in queries]
    feats, _ = embed_paths(backbone, paths, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    position = {p.resolve(): i for i, p in enumerate(index.paths)}
    exclude = [position.get(p.resolve()) if exclude_self else None for p in paths]
    indices, distances = nearest(index, feats, k=k, metric=metric, exclude=exclude)
    return Neighbours(paths, [p.parent.name for p in paths], indices, distances, index, metric)


def neighbours_grid(result: Neighbours, *, cell: int = 112, font_size: int = 11) -> torch.Tensor:
    """One row per query: the query, then its neighbours nearest first, each captioned with its class folder and
    distance; frames are green for the query's class, red for another (grey when the query's class is unknown).
    Returns ``(1, 3, H, W)`` in [0, 1]."""
    tiles, captions, frames = [], [], []
    same, labelled = result.same_class, result.labelled
    for q, query in enumerate(result.queries):
        tiles.append(thumbnail(query, cell))
        captions.append([result.query_labels[q], "query"])
        frames.append((40, 40, 40))
        for j, i in enumerate(result.indices[q]):
            tiles.append(thumbnail(result.index.paths[i], cell))
            captions.append([result.index.labels[i], f"d={result.distances[q, j]:.3f}"])
            frames.append((GOOD if same[q, j] else BAD) if labelled[q] else NEUTRAL)
    return labelled_grid(torch.stack(tiles), captions, columns=result.indices.shape[1] + 1, frames=frames,
                         font_size=font_size)


def explain_neighbours(folder: str | os.PathLike, queries: Sequence[str | os.PathLike], *,
                       cache_dir: Path | None = None, progress: bool = False, **settings: Any
                       ) -> Explanation[Neighbours]:
    """Index ``folder`` with the network and layer of ``settings`` (:class:`~percept.understand.params.
    NeighboursParams`; features cached in ``cache_dir``) and draw the ``k`` nearest images of each query, one row
    per query (:func:`neighbours_grid`). Folder and queries are checked before the network is loaded."""
    params = explain_settings(NeighboursParams, settings)
    find_images(folder, "image")
    for query in queries:
        load_image(query, what="query image")
    backbone = layer_backbone(params.model, layer=params.layer or None, device=params.device)
    r = neighbours(backbone, folder, queries, k=params.k, metric=params.metric, cache_dir=cache_dir,
                   batch_size=params.batch_size, progress=progress)
    return explained(params, neighbours_grid(r, cell=params.cell), r,
                     inputs={"folder": folder_input(folder), "queries": [describe_input(q) for q in queries]},
                     layer=params.layer or POOLED, queries=[str(q) for q in r.queries],
                     neighbours=[[str(p) for p in row] for row in r.paths], classes=r.labels,
                     distances=[[round(float(d), 4) for d in row] for row in r.distances])
