"""Settings of ``percept compare`` / :func:`~percept.metrics.compare.compare_images`, written once.

The library function takes these fields as keyword arguments, the command line generates its options from them, and
the result's record stores them. A setting marked ``used_by=(...)`` belongs to those metrics only: giving it a
non-default value while none of them is chosen is an error, never silently ignored. This module imports nothing heavy
(no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import PerceptError
from ..params import check_choices, default_of, device_setting, setting

#: Every metric ``compare`` computes, and whether a higher value means more similar images.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "dists": False, "feature": False}
METRICS = tuple(HIGHER_IS_BETTER)
DEFAULT_METRICS = ["psnr", "ssim", "lpips", "dists"]
LPIPS_NETS = ("alex", "vgg")


@dataclass
class CompareParams:
    """``percept compare``: one reference image against one or more others."""

    metrics: list[str] = setting(DEFAULT_METRICS, "metrics, comma-separated: psnr, ssim (higher is more similar), "
                                 "lpips, dists, feature (lower is more similar)", flag="--metric", metavar="M,M")
    lpips_net: str = setting("alex", "lpips: its backbone network", choices=LPIPS_NETS, used_by=("lpips",))
    channel: str = setting("rgb", "psnr/ssim: compare the three RGB channels, or only the luma Y (BT.601, as in "
                           "super-resolution papers)", choices=("rgb", "y"), used_by=("psnr", "ssim"))
    crop: int = setting(0, "psnr/ssim: pixels cut off every border first", metavar="PX", used_by=("psnr", "ssim"))
    feature_model: str = setting("vgg19", "feature: network (NAME or NAME:WEIGHTS; `percept models` lists them)",
                                 metavar="MODEL", used_by=("feature",))
    feature_layer: str = setting("relu2_2", "feature: layer whose activations are compared", metavar="LAYER",
                                 used_by=("feature",))
    size: int | None = setting(None, "resize the reference and every image so that the longest side is PX before "
                               "comparing (default: as stored)", metavar="PX")
    resize: bool = setting(False, "resize each image to the reference's size (bicubic, antialiased) instead of "
                           "refusing images of another size")
    device: str = device_setting()

    def __post_init__(self) -> None:
        from ..models.names import did_you_mean

        self.metrics = list(dict.fromkeys(str(m).strip().lower() for m in self.metrics))
        if not self.metrics:
            raise PerceptError(f"no metric chosen; give --metric with one or more of {', '.join(METRICS)}")
        for metric in self.metrics:
            if metric not in METRICS:
                raise PerceptError(f"unknown metric {metric!r}{did_you_mean(metric, METRICS)}; choose from "
                                   f"{', '.join(METRICS)}")
        check_choices(self)
        for f in fields(self):
            used_by = f.metadata.get("used_by")
            if used_by and not set(used_by) & set(self.metrics) and getattr(self, f.name) != default_of(f):
                raise PerceptError(f"--{f.name.replace('_', '-')} applies to the {' and '.join(used_by)} metric"
                                   f"{'s' if len(used_by) > 1 else ''} only; add it to --metric or leave the option out")
        if self.crop < 0:
            raise PerceptError(f"--crop must be >= 0, got {self.crop}")
        if self.size is not None and self.size < 16:
            raise PerceptError(f"--size must be at least 16 px, got {self.size}")
