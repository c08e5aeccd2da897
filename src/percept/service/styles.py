"""The gallery of predefined styles: public-domain paintings shipped in ``percept/service/styles/``.

Each style is ``<id>.jpg`` (longest side <= 512 px), ``<id>.thumb.jpg`` (<= 256 px) and an entry in
``styles.json`` with its title, artist, year, licence and where the image came from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import PerceptError
from ..image import load_image

STYLES_DIR = Path(str(files("percept.service") / "styles"))


@dataclass(frozen=True)
class Style:
    """One painting of the gallery."""

    id: str
    title: str
    artist: str
    year: str
    licence: str
    source: str

    @property
    def image_path(self) -> Path:
        return STYLES_DIR / f"{self.id}.jpg"

    @property
    def thumbnail_path(self) -> Path:
        return STYLES_DIR / f"{self.id}.thumb.jpg"

    def to_public_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def _load() -> tuple[Style, ...]:
    return tuple(Style(**entry) for entry in json.loads((STYLES_DIR / "styles.json").read_text(encoding="utf-8")))


def list_styles() -> list[Style]:
    """Every predefined style, in gallery order."""
    return list(_load())


def get_style(style_id: str) -> Style:
    """The style with this id; unknown ids raise :class:`PerceptError`."""
    for style in list_styles():
        if style.id == style_id:
            return style
    raise PerceptError(f"unknown style {style_id!r}; choose one of {', '.join(s.id for s in list_styles())}")


def load_style_image(style_id: str) -> Image.Image:
    """The painting of a predefined style as an RGB image; unknown ids raise :class:`PerceptError`."""
    return load_image(get_style(style_id).image_path, what="style image")
