"""Settings dataclasses: each default, help text and choice list is written once.

Every capability describes the settings of its library functions as a dataclass whose fields are made with
:func:`setting`. The library function takes them as keyword arguments (``stylize(photo, style, size=512)``) and
builds the dataclass with :func:`from_settings` (one-line error for an unknown name); the command line generates
its options from the same fields (:mod:`percept.cli.options`), so ``--help`` shows the library's defaults; and
the output's record stores :func:`to_record` of it, which ``--params-from`` feeds back.

This module imports nothing heavy (no torch): the CLI reads it to build ``--help``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, field, fields
from typing import Any, TypeVar

from .errors import PerceptError

T = TypeVar("T")


def setting(default: Any, help: str, *, metavar: str | None = None, choices: tuple[str, ...] | None = None,
            cli: bool = True, **meta: Any) -> Any:
    """A dataclass field carrying its command-line help.

    Args:
        default: the default value (a list is copied per instance).
        help: one line for ``--help``; the default is appended automatically.
        metavar: what ``--help`` shows as the value.
        choices: the accepted values of a string setting (checked by :func:`check_choices` and by argparse).
        cli: ``False`` for a setting that has no command-line option (set from Python only).
        **meta: anything else a capability wants to mark (e.g. ``texture=False``).
    """
    metadata = {"help": help, "metavar": metavar, "choices": choices, "cli": cli, **meta}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


#: What every ``device`` setting accepts.
DEVICE_HELP = "device: auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"


def device_setting(**meta: Any) -> Any:
    """The ``device`` field of a settings dataclass (default ``auto``: CUDA, then Apple MPS, then the CPU)."""
    return setting("auto", DEVICE_HELP, **meta)


def default_of(f: dataclasses.Field) -> Any:
    """The default value of a dataclass field (calling its factory)."""
    return f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]


def defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` for every field of a settings dataclass."""
    return {f.name: default_of(f) for f in fields(cls)}


def from_settings(cls: type[T], settings: dict[str, Any], *, what: str = "setting") -> T:
    """``cls(**settings)``, with a one-line :class:`PerceptError` naming an unknown setting and the valid ones."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(settings) - names)
    if unknown:
        raise PerceptError(f"unknown {what} {unknown[0]!r}; valid: {', '.join(sorted(names))}")
    return cls(**settings)


def to_record(params: Any) -> dict[str, Any]:
    """The settings as plain JSON-able values (what an output's record stores)."""
    return dataclasses.asdict(params)


def check_choices(params: Any) -> None:
    """Raise a one-line :class:`PerceptError` for a field whose value is not one of its ``choices``."""
    for f in fields(params):
        choices = f.metadata.get("choices")
        value = getattr(params, f.name)
        if choices and value not in choices:
            raise PerceptError(f"unknown {f.name.replace('_', '-')} {value!r}; use {', '.join(map(str, choices))}")
