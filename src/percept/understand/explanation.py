"""What every ``explain`` method that draws returns: the figure, its record and the method's own result.

``explain_saliency(image, method="gradient")``, ``explain_attack(...)``, ... (one per method, next to it) load the
network named by their settings (:mod:`percept.understand.params`), run the method, compose the figure and build
the record (:func:`percept.record.make_record`: method ``explain NAME``, every setting, the inputs, what came out),
so the Python API and ``percept explain`` write the same thing. :meth:`Explanation.save` writes the figure with its
record; ``percept explain ... --params-from FIGURE`` reads the settings back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from PIL import Image

from ..errors import PerceptError
from ..image import load_image, save_image, to_pil
from ..params import to_record
from ..record import make_record
from .params import record_method

R = TypeVar("R")


@dataclass
class Explanation(Generic[R]):
    """A figure and how it was made.

    Attributes:
        figure: ``(1, 3, H, W)`` in [0, 1], on the CPU.
        record: the record stored with the figure (``method``, ``params``, ``inputs`` and what came out).
        result: the method's own result (e.g. :class:`~percept.understand.attack.AttackResult`).
    """

    figure: torch.Tensor
    record: dict[str, Any]
    result: R

    def save(self, path: str | os.PathLike, **extra: Any) -> Path:
        """Write the figure with its record (plus ``extra`` entries, e.g. the command line) to ``path``."""
        return save_image(self.figure, path, {**self.record, **extra})


def as_pil(image: Any, *, what: str = "image") -> Image.Image:
    """``image`` (a file, a PIL image or a tensor in [0, 1]) as an RGB PIL image; one-line errors for bad files."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image, what=what)
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor) and image.dim() in (3, 4) and image.shape[-3] == 3:
        return to_pil(image)
    raise PerceptError(f"{what} must be a file, a PIL image or a (1, 3, H, W) tensor in [0, 1], got "
                       f"{type(image).__name__}")


def explained(params: Any, figure: torch.Tensor, result: R, *, inputs: dict[str, Any] | None = None,
              **facts: Any) -> Explanation[R]:
    """An :class:`Explanation` whose record names the method of ``params``' class and stores every setting."""
    record = make_record(record_method(type(params)), to_record(params), inputs=inputs, **facts)
    return Explanation(figure.detach().cpu(), record, result)


def folder_input(folder: str | os.PathLike) -> dict[str, Any]:
    """A folder input as a record describes it."""
    return {"path": str(folder)}
