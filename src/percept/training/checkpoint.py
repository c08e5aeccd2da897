"""Checkpoint files of a training run: whether to start or resume, reading them back, refusing changed settings.

A checkpoint is one ``torch.save`` dict written atomically (:func:`percept.image.atomic_write`), so an interrupted
write never leaves a half file. Its ``params`` entry holds the run's *settings*: everything that must stay the same
for a resumed run to continue the same training (learning rate, crop size, data, seed...). A setting added to a
trainer after some runs were saved is listed in ``added_later`` with the value those runs used, so they still
resume; the value may also be a function of the old checkpoint (for a setting that used to be stored elsewhere).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import PerceptError
from ..image import atomic_write

#: The checkpoint entry holding the run's settings.
SETTINGS_KEY = "params"

AddedLater = Mapping[str, Any | Callable[[dict[str, Any]], Any]]


def check_start(checkpoint: Path, *, resume: bool, name: str, done: Path | None = None) -> None:
    """Refuse to resume without a checkpoint, or to start a new run over one (one line each).

    ``name`` is what the user chose (the output file or folder); ``done`` a file whose presence means the run
    finished (the error then says so).
    """
    if resume and not checkpoint.is_file():
        finished = " (it already finished)" if done is not None and done.is_file() else ""
        raise PerceptError(f"no interrupted run to resume in {name!r}{finished}; drop --resume to start one")
    if not resume and checkpoint.is_file():
        raise PerceptError(f"{name!r} holds a training run; add --resume to continue it, or choose another output")


def load_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """The saved dict (tensors on the CPU); a damaged or foreign file gives one line."""
    try:
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise PerceptError(f"{str(checkpoint)!r} is damaged ({type(exc).__name__}); delete it to start the run "
                           "again") from None
    if not isinstance(saved, dict) or not isinstance(saved.get(SETTINGS_KEY), dict):
        raise PerceptError(f"{str(checkpoint)!r} is not a percept training checkpoint; delete it to start the run "
                           "again")
    return saved


def changed_settings(saved: dict[str, Any], settings: Mapping[str, Any], added_later: AddedLater | None = None
                     ) -> dict[str, tuple[Any, Any]]:
    """``{name: (old, new)}`` of the settings that differ from those in the checkpoint ``saved``."""
    before, added_later = saved[SETTINGS_KEY], added_later or {}
    changed = {}
    for name, new in settings.items():
        if name in before:
            old = before[name]
        elif name in added_later:
            old = added_later[name](saved) if callable(added_later[name]) else added_later[name]
        else:
            old = "unset"
        if old != new:
            changed[name] = (old, new)
    return changed


def refuse_changes(name: str, changed: Mapping[str, tuple[Any, Any]]) -> None:
    """One line naming each changed setting ``name old -> new``."""
    if changed:
        what = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
        raise PerceptError(f"cannot resume {name!r} with different settings ({what}); use the original ones or "
                           "another output")


def open_checkpoint(checkpoint: Path, settings: Mapping[str, Any], *, resume: bool, name: str,
                    done: Path | None = None, added_later: AddedLater | None = None) -> dict[str, Any]:
    """The checkpoint to continue from (``{}`` for a new run), after every check of this module."""
    check_start(checkpoint, resume=resume, name=name, done=done)
    if not resume:
        return {}
    saved = load_checkpoint(checkpoint)
    refuse_changes(name, changed_settings(saved, settings, added_later))
    return saved


def save_checkpoint(checkpoint: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (the previous checkpoint stays intact until the new one is complete)."""
    atomic_write(checkpoint, lambda tmp: torch.save(state, tmp))
