"""What the ``percept explain`` methods share: settings from the options (over ``--params-from``), the options of a
method that writes a figure, and running one ``explain_*`` function and saving its figure with the record."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..understand.params import record_method
from .options import add_settings, settings_from_args


def settings(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line, on top of the settings recorded in ``--params-from``
    (which must be an output of the same method; a one-line error otherwise)."""
    given: dict[str, Any] = {}
    if getattr(args, "params_from", None):
        from ..record import params_from

        _, recorded = params_from(args.params_from, [record_method(cls)])
        names = {f.name for f in fields(cls)}
        given.update({k: v for k, v in recorded.items() if k in names})
    given.update(settings_from_args(args, cls))
    return given


def command_line(cls: type, inputs: Sequence[Any], output: Path, params: dict[str, Any]) -> str:
    """The ``percept explain`` command that reproduces an output: its inputs and every non-default setting."""
    from ..params import default_of
    from ..record import command_line as percept_command

    shown: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for f in fields(cls):
        value = params.get(f.name, default_of(f))
        if f.metadata.get("cli", True) and value != default_of(f):
            shown[f.name] = value
        if flag := f.metadata.get("flag"):
            flags[f.name] = flag if isinstance(flag, str) else flag[0]
    return percept_command([*record_method(cls).split(), *inputs, "-o", output], shown, flags=flags)


def run(args: argparse.Namespace, cls: type, explain: Callable[..., Any], *inputs: Any, **runtime: Any):
    """Check the output path, call ``explain(*inputs, **settings, **runtime)``, save its figure with the record
    (and the command that reproduces it); returns ``(output path, explanation)``."""
    from ..image import check_writable

    output = check_writable(args.output)
    explanation = explain(*inputs, **runtime, **settings(args, cls))
    flat = [i for item in inputs for i in (item if isinstance(item, (list, tuple)) else [item])]
    explanation.save(output, command=command_line(cls, flat, output, explanation.record["params"]))
    return output, explanation


def add_options(m: argparse.ArgumentParser, cls: type, output_help: str, *, quiet: bool = False,
                cache: bool = False) -> None:
    """The options of a method that writes a figure: its settings, -o, --params-from and, where it applies, -q
    and --cache-dir."""
    add_settings(m, cls, exclude=("model", "device"))  # added first by ``method``
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help=f"{output_help}; the settings are "
                   "stored in it (required)")
    m.add_argument("--params-from", metavar="PNG", help="start from the settings recorded in an earlier output "
                   "of this method; explicit options override them (default: off)")
    if cache:
        m.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder (default: "
                       "$PERCEPT_CACHE/features or ~/.cache/percept/features)")
    if quiet:
        m.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")
