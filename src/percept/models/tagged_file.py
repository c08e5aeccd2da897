"""Reading a model file that percept wrote: one ``torch.save`` dict with a ``format`` tag and a ``format_version``.

:func:`read_tagged_file` turns every way such a file can be wrong (missing, a folder, not a PyTorch file, pickled
objects, a damaged archive, a plain state dict, another percept format, a newer version) into one line naming the
file and what to give instead. Light: torch is imported when a file is read.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from collections.abc import Callable
from typing import Any

from ..errors import PerceptError


def read_tagged_file(path: str | os.PathLike, fmt: str, *, version: int, noun: str, hint: str,
                     where: str | None = None) -> dict[str, Any]:
    """The dict stored in ``path`` when its ``format`` is ``fmt`` and its ``format_version`` at most ``version``.

    ``noun`` names the file in messages (``"gaze model"``), ``hint`` says what to give instead (``"give a GAZE.pt
    written by percept gaze-train"``); ``where`` replaces ``"{noun} 'PATH'"`` at the start of messages.
    """
    import torch

    path = Path(path)
    where = where or f"{noun} {str(path)!r}"
    if not path.is_file():
        raise PerceptError(f"{where} not found" + (" (it is a folder)" if path.is_dir() else ""))
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise PerceptError(f"{where} is not a PyTorch file; {hint}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses to rebuild arbitrary objects
        raise PerceptError(f"{where} holds pickled Python objects, not a percept {noun}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways
        raise PerceptError(f"{where} is a damaged PyTorch file ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != fmt:
        if isinstance(raw, dict) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            what = "a plain state dict"
        elif isinstance(raw, dict) and "format" in raw:
            what = f"a {raw['format']!r} file"
        else:
            what = f"a {type(raw).__name__} without percept's format tag"
        raise PerceptError(f"{where} is {what}, not a percept {noun}; {hint}")
    found = raw.get("format_version")
    if not isinstance(found, int) or found > version:
        raise PerceptError(f"{where} has format version {found!r}, newer than this percept reads ({version}); "
                           "upgrade percept")
    return raw


def mismatch_detail(exc: RuntimeError) -> str:
    """The first informative line of ``load_state_dict``'s error (which tensor does not fit), without its full stop."""
    return next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc)).rstrip(".")


def build_from_tagged(raw: dict[str, Any], where: str, build: Callable[[dict[str, Any]], Any]) -> Any:
    """``build(raw["architecture"])`` with ``raw["state_dict"]`` loaded into it and ``metadata`` set to everything
    else the file records; a missing field or weights that do not fit the recorded architecture are one line."""
    try:
        net = build(raw["architecture"])
        net.load_state_dict(raw["state_dict"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PerceptError(f"{where} is damaged (missing or invalid {exc})") from None
    except RuntimeError as exc:
        raise PerceptError(f"{where} does not match its recorded architecture ({mismatch_detail(exc)})") from None
    net.metadata = {k: v for k, v in raw.items() if k != "state_dict"}
    return net
