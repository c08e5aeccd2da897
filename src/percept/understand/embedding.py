"""A folder's images as points in 2-D: PCA and t-SNE of a layer's pooled features, coloured by class folder.

Feature vectors are L2-normalised first (the cosine geometry of :mod:`~percept.understand.neighbours`), then
projected by

* ``pca``: the two principal components (linear; distances between far-apart groups mean something; reports the
  fraction of variance the two components keep);
* ``tsne`` (van der Maaten & Hinton 2008): scikit-learn's t-SNE of the first 50 principal components, PCA
  initialisation, perplexity ``min(30, (N - 1) / 3)`` by default, seeded, exact up to :data:`EXACT_TSNE_MAX`
  images and Barnes-Hut beyond (neighbourhoods are kept, global distances and cluster sizes are not).

:attr:`Embedding.separation` measures how well the 2-D map keeps classes apart: the leave-one-out 1-nearest-
neighbour accuracy of the class labels in the map.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import PerceptError
from ..image import find_images
from ..models.backbone import Backbone
from .explanation import Explanation, explained, folder_input
from .layer_features import FolderFeatures, folder_features, layer_backbone
from .montage import thumbnail
from .params import POOLED, EmbeddingParams, explain_settings

METHODS = ("pca", "tsne")
#: Up to this many images t-SNE is computed exactly (O(N^2) per step, faster there than Barnes-Hut's tree: 3 s
#: against 23 s for 153 images on 2 CPU cores); beyond it, the Barnes-Hut approximation.
EXACT_TSNE_MAX = 500


@dataclass
class Embedding:
    """2-D coordinates of a folder's images by one method.

    Attributes:
        method: ``pca`` or ``tsne``.
        coords: ``(N, 2)`` float32.
        paths, labels: the ``N`` images and their class folders.
        explained: PCA: fraction of the (normalised) features' variance in the two components; t-SNE: ``None``.
        seed: the t-SNE seed.
    """

    method: str
    coords: np.ndarray
    paths: list[Path]
    labels: list[str]
    explained: float | None = None
    seed: int = 0

    @property
    def separation(self) -> float:
        """Leave-one-out 1-nearest-neighbour accuracy of the class labels in the 2-D map (1.0: every point's
        nearest point has its class)."""
        d = ((self.coords[:, None, :] - self.coords[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        nearest = d.argmin(axis=1)
        return float(np.mean([self.labels[i] == self.labels[j] for i, j in enumerate(nearest)]))


def project(features: np.ndarray, *, method: str = "pca", seed: int = 0, perplexity: float | None = None
            ) -> tuple[np.ndarray, float | None]:
    """``(N, D)`` features -> ``((N, 2) coordinates, explained variance or None)``; see the module docstring."""
    if method not in METHODS:
        raise PerceptError(f"unknown embedding method {method!r}; use {', '.join(METHODS)}")
    n = len(features)
    if n < 3:
        raise PerceptError(f"an embedding needs at least 3 images, got {n}")
    from sklearn.decomposition import PCA

    x = features.astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed).fit(x)
        return pca.transform(x).astype(np.float32), float(pca.explained_variance_ratio_.sum())
    from sklearn.manifold import TSNE

    perplexity = min(30.0, (n - 1) / 3) if perplexity is None else perplexity
    if not 0 < perplexity < n:
        raise PerceptError(f"t-SNE perplexity must be in (0, {n}) for {n} images, got {perplexity}")
    reduced = PCA(n_components=min(50, n, x.shape[1]), random_state=seed).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, learning_rate="auto",
                method="exact" if n <= EXACT_TSNE_MAX else "barnes_hut")
    return tsne.fit_transform(reduced).astype(np.float32), None


def embedding(backbone: Backbone, folder: str | os.PathLike | FolderFeatures, *, methods: Sequence[str] = METHODS,
              seed: int = 0, perplexity: float | None = None, cache_dir: Path | None = None, batch_size: int = 32,
              progress: bool = False) -> list[Embedding]:
    """One :class:`Embedding` per method of every image under ``folder`` (or of features already computed).

    Features come from :func:`~percept.understand.layer_features.folder_features` (cached; ``batch_size`` images per
    forward pass); build ``backbone`` with :func:`~percept.understand.layer_features.layer_backbone`.
    """
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise PerceptError(f"unknown embedding method {bad[0] if bad else ''!r}; use {', '.join(METHODS)}")
    index = folder if isinstance(folder, FolderFeatures) else folder_features(
        backbone, folder, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    out = []
    for method in methods:
        coords, explained = project(index.features, method=method, seed=seed, perplexity=perplexity)
        out.append(Embedding(method, coords, list(index.paths), list(index.labels), explained, seed))
    return out


def _spread(coords: np.ndarray, count: int, seed: int) -> list[int]:
    """``count`` indices of points far apart (greedy farthest-point sampling from a seeded start)."""
    n = len(coords)
    if count >= n:
        return list(range(n))
    scaled = (coords - coords.min(0)) / np.maximum(coords.max(0) - coords.min(0), 1e-12)
    chosen = [int(np.random.default_rng(seed).integers(n))]
    dist = ((scaled - scaled[chosen[0]]) ** 2).sum(1)
    while len(chosen) < count:
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = np.minimum(dist, ((scaled - scaled[nxt]) ** 2).sum(1))
    return chosen


def embedding_figure(embeddings: Sequence[Embedding], *, thumbnails: int = 40, thumbnail_size: int = 32,
                     panel_size: float = 5.5, dpi: int = 100, title: str | None = None, seed: int = 0
                     ) -> torch.Tensor:
    """The embeddings side by side as scatter plots, one colour per class folder (legend with the names), with
    ``thumbnails`` images per panel drawn at their points (spread out; framed in their class colour).
    Returns ``(1, 3, H, W)`` in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    if not embeddings:
        raise PerceptError("no embeddings to draw")
    classes = sorted(set(embeddings[0].labels))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    colour = {c: cmap(i % cmap.N) for i, c in enumerate(classes)}
    cache: dict[Path, np.ndarray] = {}
    legend = len(classes) <= 20
    rows = (len(classes) + 5) // 6 if legend else 0
    fig, axes = plt.subplots(1, len(embeddings), figsize=(panel_size * len(embeddings), panel_size + 0.25 * rows),
                             dpi=dpi, squeeze=False)
    try:
        for ax, emb in zip(axes[0], embeddings):
            ax.scatter(emb.coords[:, 0], emb.coords[:, 1], s=14, c=[colour[l] for l in emb.labels], alpha=0.8,
                       linewidths=0)
            for i in _spread(emb.coords, thumbnails, seed):
                path = emb.paths[i]
                if path not in cache:
                    cache[path] = thumbnail(path, thumbnail_size).permute(1, 2, 0).numpy()
                box = AnnotationBbox(OffsetImage(cache[path], zoom=1.0), tuple(emb.coords[i]), frameon=True, pad=0.1,
                                     bboxprops={"edgecolor": colour[emb.labels[i]], "linewidth": 1.5})
                ax.add_artist(box)
            name = {"pca": "PCA", "tsne": "t-SNE"}[emb.method]
            extra = f" ({emb.explained:.0%} of variance)" if emb.explained is not None else f" (seed {emb.seed})"
            ax.set_title(f"{name}{extra}; 1-NN class agreement {emb.separation:.0%}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.margins(0.08)
        if legend:
            handles = [Line2D([], [], marker="o", linestyle="", color=colour[c], label=c) for c in classes]
            fig.legend(handles=handles, loc="lower center", ncol=min(6, len(classes)), fontsize=9, frameon=False)
        if title:
            fig.suptitle(title, fontsize=11)
        fig.tight_layout(rect=(0, 0.25 * rows / fig.get_figheight(), 1, 1))
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    finally:
        plt.close(fig)
    from PIL import Image

    buffer.seek(0)
    arr = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


@dataclass
class FolderEmbedding:
    """The features of a folder's images (:attr:`index`) and their 2-D :attr:`embeddings`, one per method."""

    index: FolderFeatures
    embeddings: list[Embedding]


def explain_embedding(folder: str | os.PathLike, *, cache_dir: Path | None = None, progress: bool = False,
                      **settings: Any) -> Explanation[FolderEmbedding]:
    """Embed the images under ``folder`` by the network and layer of ``settings``
    (:class:`~percept.understand.params.EmbeddingParams`; features cached in ``cache_dir``) and draw the
    projections side by side (:func:`embedding_figure`). The folder is checked before the network is loaded."""
    params = explain_settings(EmbeddingParams, settings)
    find_images(folder, "image")
    backbone = layer_backbone(params.model, layer=params.layer or None, device=params.device)
    index = folder_features(backbone, folder, cache_dir=cache_dir, batch_size=params.batch_size, progress=progress)
    embs = embedding(backbone, index, methods=params.methods(), seed=params.seed,
                     perplexity=params.perplexity or None)
    layer = params.layer or POOLED
    title = f"{params.model}, {layer}: {len(index.paths)} images of {'/'.join(Path(folder).resolve().parts[-2:])}"
    figure = embedding_figure(embs, thumbnails=params.thumbnails, title=title, seed=params.seed)
    return explained(params, figure, FolderEmbedding(index, embs), inputs={"folder": folder_input(folder)},
                     layer=layer, classes=index.classes, separation={e.method: round(e.separation, 4) for e in embs})
