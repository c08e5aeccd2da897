"""percept: reuse ImageNet-pretrained CNNs for style transfer, texture synthesis, transfer learning and more.

The main entry points are imported lazily (PEP 562), so ``import percept`` and ``percept --help`` are fast.
"""

from .lazy import exports

__version__ = "0.1.0"

_EXPORTS = {"StyleParams": "style", "AdainParams": "style", "NetworkParams": "style", "StyleResult": "style",
            "stylize": "style", "synthesize_texture": "style", "stylize_adain": "style", "stylize_with_model": "style",
            "stylize_video": "style"}
__all__ = ["__version__", *sorted(_EXPORTS)]


__getattr__ = exports(__name__, _EXPORTS)
