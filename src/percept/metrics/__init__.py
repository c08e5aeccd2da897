"""Perceptual image metrics: how far apart two images are, as people see it or pixel by pixel.

- Pixel metrics: :func:`psnr` (peak signal-to-noise ratio, dB, higher is better) and :func:`ssim` (structural
  similarity of Wang et al. 2004, 1 = identical).
- Learned metrics on pretrained features: :func:`lpips` / :class:`LPIPS` (Zhang et al. 2018, 0 = identical) and
  :func:`dists` / :class:`DISTS` (Ding et al. 2020, 0 = identical), whose weights come from the model registry
  (``get_model("lpips_alex")``, ``get_model("dists")``); :func:`feature_distance`, the per-layer feature
  reconstruction distance of Johnson et al. 2016.
- :func:`compare_images`: one reference against one or more images, from files or tensors, with a record; what
  ``percept compare`` prints.

Every metric takes two float batches ``(B, 3, H, W)`` in ``[0, 1]`` and returns one value per image, ``(B,)``.
Names are imported lazily (PEP 562), so importing this package imports no torch.
"""

from ..lazy import exports

_EXPORTS = {
    "psnr": "pixel", "ssim": "structural", "rgb_to_y": "inputs",
    "LPIPS": "lpips_net", "lpips": "lpips_net",
    "DISTS": "dists_net", "dists": "dists_net", "L2Pool": "dists_net",
    "feature_distance": "feature", "FEATURE_LAYERS": "feature",
    "compare_images": "compare", "CompareResult": "compare",
    "CompareParams": "params", "METRICS": "params", "HIGHER_IS_BETTER": "params",
}  # fmt: skip
__all__ = sorted(_EXPORTS)

__getattr__ = exports(__name__, _EXPORTS)
