"""Evaluation geometry: resize the shorter side, then take one square view (centre, mirrored, a corner).

Every classifier and backbone percept builds is evaluated on such views (``resize`` then ``crop``); test-time
augmentation averages several (:data:`TTA_VIEWS`).
"""

from __future__ import annotations

from ..errors import PerceptError

#: Test-time augmentation: which views of an image are averaged.
TTA_VIEWS = {
    "none": ("center",),
    "flip": ("center", "center_flip"),
    "flip+crops": ("center", "center_flip", "top_left", "top_right", "bottom_left", "bottom_right"),
}


def view_transform(resize: int, crop: int, view: str = "center"):
    """Resize the shorter side to ``resize``, then take one ``crop`` x ``crop`` view as a tensor in [0, 1].

    Views: ``center``, ``center_flip`` (mirrored), ``top_left``, ``top_right``, ``bottom_left``, ``bottom_right``.
    """
    from torchvision import (
        transforms,  # imported here: torchvision takes seconds to import
    )
    from torchvision.transforms import functional as TF

    def corner(img, name: str):
        w, h = img.size
        top = 0 if name.startswith("top") else h - crop
        left = 0 if name.endswith("left") else w - crop
        return TF.crop(img, top, left, crop, crop)

    steps = [transforms.Resize(resize)]
    if view in ("center", "center_flip"):
        steps.append(transforms.CenterCrop(crop))
        if view == "center_flip":
            steps.append(transforms.RandomHorizontalFlip(p=1.0))
    elif view in ("top_left", "top_right", "bottom_left", "bottom_right"):
        steps.append(transforms.Lambda(lambda img: corner(img, view)))
    else:
        raise PerceptError(f"unknown view {view!r}")
    return transforms.Compose([*steps, transforms.ToTensor()])
