"""Style transfer and texture synthesis (names imported lazily, PEP 562, to keep the CLI start fast)."""

from ..lazy import exports

_EXPORTS = {"Iterate": "optimize", "StyleResult": "optimize", "stylize": "optimize",
            "synthesize_texture": "optimize", "StyleParams": "params", "AdainParams": "params",
            "NetworkParams": "params", "stylize_adain": "adain_stylize", "train_adain": "adain_train",
            "stylize_with_model": "transform_stylize", "stylize_video": "video_stylize"}
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)
