"""Style transfer and texture synthesis (names imported lazily, PEP 562, to keep the CLI start fast)."""

from importlib import import_module

_EXPORTS = {"Iterate": "optimize", "StyleResult": "optimize", "stylize": "optimize",
            "synthesize_texture": "optimize", "StyleParams": "params", "AdainParams": "params",
            "NetworkParams": "params", "stylize_adain": "adain_stylize", "train_adain": "adain_train",
            "stylize_with_model": "transform_stylize"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
