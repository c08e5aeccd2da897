"""Records: what made an output, stored in it, read back to reproduce it.

Every method that writes an image (optimisation, texture, AdaIN, a trained network, each explain method) returns a
result whose ``record`` is built here, in the library, so the Python API and the command line store the same
thing. A record is a JSON-able dict::

    {"percept_version": "0.1.0", "torch_version": "2.14.1", "method": "adain",
     "params": {...every setting, defaults included...},
     "inputs": {"content": {"path": ..., "sha256": ...}, "styles": [...]},
     ...method-specific facts (weights id, final losses, seconds)...,
     "command": "percept stylize photo.jpg wave.jpg -o out.png --method adain ..."}   # added by the CLI

:func:`read_record` reads it back from a PNG (text chunk) or a sidecar ``.json``; :func:`params_from` checks that
it was made by the method the caller runs and returns its settings, so ``--params-from`` reproduces any output
or refuses with one line. This module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PerceptError


def describe_input(image: Any) -> dict[str, Any]:
    """A file's path and SHA-256, or the type of an in-memory image (PIL image, tensor)."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {"path": None, "type": type(image).__name__}


def command_line(words: Sequence[Any], params: dict[str, Any], *, flags: dict[str, str] | None = None) -> str:
    """``percept WORDS... --name value ...``: the shell command passing ``params`` as options (``style_weight``
    as ``--style-weight``, or ``flags[name]`` where a setting has another flag). Lists are comma-joined, ``True`` is
    a bare flag; ``None``, ``False``, ``""`` and ``[]`` (the "not set" values) are left out."""
    parts = ["percept", *map(str, words)]
    for name, value in params.items():
        if value is None or value is False or value == "" or value == []:
            continue
        parts.append((flags or {}).get(name) or "--" + name.replace("_", "-"))
        if value is not True:
            parts.append(",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
    return shlex.join(parts)


def make_record(method: str, params: dict[str, Any], *, inputs: dict[str, Any] | None = None,
                **facts: Any) -> dict[str, Any]:
    """A record for an output made by ``method`` with the (complete) settings ``params``.

    Args:
        method: what made the output (``optimize``, ``texture``, ``adain``, ``network``, ``explain saliency``...).
        params: every setting, defaults included (:func:`percept.params.to_record`).
        inputs: the input images by role, each described by :func:`describe_input` (or a list of them).
        **facts: anything else worth keeping (weights id, final losses, seconds, device).
    """
    torch = sys.modules.get("torch")
    record: dict[str, Any] = {"percept_version": __version__, "method": method, "params": dict(params)}
    if torch is not None:
        record["torch_version"] = str(torch.__version__)
    if inputs is not None:
        record["inputs"] = inputs
    record.update(facts)
    return record


def read_record(path: str | os.PathLike, *, what: str = "--params-from image") -> dict[str, Any]:
    """The record stored in a percept output; one-line errors for a missing, unreadable or foreign file."""
    from .image import (  # Pillow; imported here to keep this module light
        load_image,
        read_metadata,
    )

    load_image(path, what=what)  # one-line errors for missing or damaged files
    record = read_metadata(path)
    if not record or not isinstance(record.get("params"), dict):
        raise PerceptError(f"{str(path)!r} holds no percept parameters (was it made by percept?)")
    return record


def params_from(path: str | os.PathLike, methods: Iterable[str], *, what: str = "--params-from image"
                ) -> tuple[str, dict[str, Any]]:
    """``(method, params)`` of the record in ``path`` when its method is one of ``methods``, else a one-line
    error naming the method that made it."""
    record = read_record(path, what=what)
    methods = list(methods)
    method = record.get("method")
    if method not in methods:
        made = f"made by {method!r}" if method else "made by an older percept"
        raise PerceptError(f"{str(path)!r} was {made}; --params-from here reproduces {' or '.join(map(repr, methods))} "
                           "outputs only")
    return method, dict(record["params"])
