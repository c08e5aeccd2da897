"""Lazy package exports (PEP 562): ``import percept.style`` imports no torch until a name is used.

Each package lists ``{name: submodule}`` and gets its module ``__getattr__`` from :func:`exports`::

    _EXPORTS = {"stylize": "optimize", "StyleParams": "params"}
    __all__ = sorted(_EXPORTS)
    __getattr__ = exports(__name__, _EXPORTS)
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` (relative to ``package``) on first use."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
