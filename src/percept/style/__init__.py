"""Style transfer and texture synthesis."""

from .optimize import Iterate, StyleResult, stylize, synthesize_texture
from .params import StyleParams

__all__ = ["Iterate", "StyleParams", "StyleResult", "stylize", "synthesize_texture"]
