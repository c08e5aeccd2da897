"""Saliency metrics, as defined in pysaliency and Kümmerer, Wallis & Bethge 2015 ("Information-theoretic model
comparison unifies saliency metrics", PNAS).

All take NumPy arrays: a map ``(H, W)`` and fixations ``(n, 2)`` int ``(column, row)`` on the same grid.

* :func:`log_likelihoods`: log2 p(fixation) + log2(H * W) per fixation: bits relative to the uniform density (0 for
  uniform), from a log-density (natural log) that sums to 1 over the pixels.
* :func:`information_gains`: log2 p_model - log2 p_baseline per fixation (bits); the mean over fixations is the
  information gain over the baseline (the centre bias in percept's tables).
* :func:`auc`: area under the ROC curve, positives = the map at the fixations, negatives = the map at every pixel
  (the uniform nonfixation distribution of Judd et al.), every distinct value a threshold: the probability that a
  fixated pixel scores above a random pixel, ties counted one half.
* :func:`shuffled_auc`: the same with the fixations of the other images (scaled to this grid) as negatives, which
  discounts the centre bias.
* :func:`nss`: the map standardised (mean 0, standard deviation 1 over its pixels) at each fixation.
* :func:`cc`: Pearson's correlation between the map and the empirical fixation map (fixation counts per pixel
  blurred by a Gaussian of ``sigma`` px, borders reflected, cut at 4 sigma as ``scipy.ndimage.gaussian_filter``).

For a probabilistic model, AUC, sAUC, NSS and CC are taken on its density ``exp(log_density)``, as pysaliency
does. :func:`image_metrics` computes all of them for one image; averages over images are by fixation for LL, IG,
NSS, AUC and sAUC (each image weighted by its fixations) and by image for CC.
"""

from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)
#: The metrics of :func:`image_metrics`, in table order.
METRICS = ("ll", "ig", "auc", "sauc", "nss", "cc")


def _at(values: np.ndarray, fixations: np.ndarray) -> np.ndarray:
    fixations = np.asarray(fixations, dtype=np.int64).reshape(-1, 2)
    return np.asarray(values, dtype=np.float64)[fixations[:, 1], fixations[:, 0]]


def _constant(values: np.ndarray) -> bool:
    """Whether a map is constant up to rounding (its spread below 1e-12 of its magnitude)."""
    return bool(np.ptp(values) <= 1e-12 * max(float(np.abs(values).max()), 1e-300))


def log_likelihoods(log_density: np.ndarray, fixations: np.ndarray) -> np.ndarray:
    """``(n,)`` bits per fixation relative to the uniform density."""
    return (_at(log_density, fixations) + math.log(np.asarray(log_density).size)) / LN2


def information_gains(log_density: np.ndarray, baseline: np.ndarray, fixations: np.ndarray) -> np.ndarray:
    """``(n,)`` bits per fixation gained over the ``baseline`` log-density."""
    return (_at(log_density, fixations) - _at(baseline, fixations)) / LN2


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(positive > negative) + P(positive = negative) / 2: the trapezoid area under the ROC curve whose thresholds
    are all distinct values."""
    positives, negatives = np.asarray(positives, np.float64).ravel(), np.sort(np.asarray(negatives, np.float64).ravel())
    if not len(positives) or not len(negatives):
        return float("nan")
    below = np.searchsorted(negatives, positives, side="left")
    equal = np.searchsorted(negatives, positives, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(positives) * len(negatives)))


def auc(saliency: np.ndarray, fixations: np.ndarray) -> float:
    """AUC with every pixel as a negative (Judd)."""
    return roc_auc(_at(saliency, fixations), np.asarray(saliency).ravel())


def shuffled_auc(saliency: np.ndarray, fixations: np.ndarray, other_fixations: np.ndarray) -> float:
    """AUC with ``other_fixations`` ``(m, 2)`` (those of the other images, on this grid) as negatives."""
    return roc_auc(_at(saliency, fixations), _at(saliency, other_fixations))


def nss(saliency: np.ndarray, fixations: np.ndarray) -> np.ndarray:
    """``(n,)`` the standardised map at each fixation (0 everywhere for a constant map)."""
    s = np.asarray(saliency, dtype=np.float64)
    if _constant(s):
        return np.zeros(len(np.asarray(fixations).reshape(-1, 2)))
    return (_at(s, fixations) - s.mean()) / s.std()


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The 1-D Gaussian of ``scipy.ndimage.gaussian_filter``: radius ``round(4 sigma)``, summing to 1."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur_axis(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    radius = len(kernel) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(image, pad, mode="symmetric")  # scipy's "reflect": d c b a | a b c d | d c b a
    n = image.shape[axis]
    out = np.zeros_like(image, dtype=np.float64)
    for i, weight in enumerate(kernel):
        idx = [slice(None), slice(None)]
        idx[axis] = slice(i, i + n)
        out += weight * padded[tuple(idx)]
    return out


def fixation_map(fixations: np.ndarray, shape: tuple[int, int], sigma: float | None = None) -> np.ndarray:
    """``(H, W)`` fixation counts per pixel, blurred by a Gaussian of ``sigma`` px when given."""
    counts = np.zeros(shape, dtype=np.float64)
    fixations = np.asarray(fixations, dtype=np.int64).reshape(-1, 2)
    np.add.at(counts, (fixations[:, 1], fixations[:, 0]), 1.0)
    if sigma:
        kernel = gaussian_kernel(sigma)
        counts = _blur_axis(_blur_axis(counts, kernel, 0), kernel, 1)
    return counts


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two maps; 0 when one of them is constant (as pysaliency)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if _constant(a) or _constant(b):
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt(float((a * a).sum()) * float((b * b).sum())))


def cc(saliency: np.ndarray, fixations: np.ndarray, sigma: float) -> float:
    """Correlation with the fixation map blurred by ``sigma`` px."""
    return correlation(saliency, fixation_map(fixations, np.asarray(saliency).shape, sigma))


def image_metrics(log_density: np.ndarray, baseline: np.ndarray, fixations: np.ndarray,
                  other_fixations: np.ndarray, *, sigma: float) -> dict[str, float]:
    """Every metric of one image: means over its fixations of LL and IG (over ``baseline``), NSS; its AUC, sAUC
    and CC; ``fixations`` (the count), to weight the average over images."""
    density = np.exp(np.asarray(log_density, dtype=np.float64))
    return {"ll": float(log_likelihoods(log_density, fixations).mean()),
            "ig": float(information_gains(log_density, baseline, fixations).mean()),
            "auc": auc(density, fixations),
            "sauc": shuffled_auc(density, fixations, other_fixations),
            "nss": float(nss(density, fixations).mean()),
            "cc": cc(density, fixations, sigma),
            "fixations": int(len(fixations))}


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of per-image :func:`image_metrics`: CC by image, every other metric by fixation."""
    weights = np.array([row["fixations"] for row in rows], dtype=np.float64)
    out = {}
    for name in METRICS:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        out[name] = float(values.mean()) if name == "cc" else float((values * weights).sum() / weights.sum())
    out["fixations"] = int(weights.sum())
    out["images"] = len(rows)
    return out
