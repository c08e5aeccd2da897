"""percept: reuse ImageNet-pretrained CNNs for style transfer, texture synthesis and more."""

__version__ = "0.1.0"

from .style import StyleParams, StyleResult, stylize, synthesize_texture  # noqa: E402

__all__ = ["StyleParams", "StyleResult", "__version__", "stylize", "synthesize_texture"]
