"""The 1000 ImageNet class names, in the index order of every ImageNet classifier percept loads."""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path


@functools.cache
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names in index order: ``torchvision.models._meta._IMAGENET_CATEGORIES``.

    The table is read from torchvision's source with :func:`ast.literal_eval` (about 10 ms) rather than
    imported, which would import all of torchvision (seconds); the import remains the fallback.
    """
    try:
        spec = importlib.util.find_spec("torchvision")
        source = Path(list(spec.submodule_search_locations)[0], "models", "_meta.py").read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_IMAGENET_CATEGORIES":
                names = tuple(ast.literal_eval(node.value))
                if len(names) == 1000:
                    return names
    except (AttributeError, OSError, SyntaxError, TypeError, ValueError):
        pass
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return tuple(_IMAGENET_CATEGORIES)
