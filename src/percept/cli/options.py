"""Options shared by several ``percept`` commands, and options generated from settings dataclasses.

:func:`add_settings` turns the fields of a settings dataclass (made with :func:`percept.params.setting`) into
command-line options, so each default and help text is written once, in the library; :func:`settings_from_args`
reads back the options the user gave. Generated options default to ``argparse.SUPPRESS``: an option that was not
given is absent from the parsed arguments, so explicit options can override the parameters recorded in a
``--params-from`` image, and the library applies its own defaults to the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "Path": Path}


def _number(kind: type):
    """Parse an int or a float; a float may also be written as a fraction such as ``4/255``."""

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            pass
        top, slash, bottom = text.partition("/")
        if kind is float and slash:
            try:
                return float(top) / float(bottom)
            except (ValueError, ZeroDivisionError):
                pass
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")

    parse.__name__ = kind.__name__
    return parse


def _parse_list(kind: type):
    item = _number(kind) if kind in (int, float) else kind

    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return [item(t) for t in items]
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}")

    return parse


def _field_type(f: dataclasses.Field) -> tuple[str, bool]:
    """``(base type name, optional)`` of a field: ``int | None`` -> ``("int", True)``, ``list[str]`` ->
    ``("list[str]", False)``. Works for string annotations (``from __future__ import annotations``) too."""
    t = f.type
    text = t if isinstance(t, str) else (t.__name__ if isinstance(t, type) else str(t))
    text = text.replace("typing.", "").replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1] + "|None"
    parts = [p for p in text.split("|") if p != "None"]
    if len(parts) != 1:
        raise TypeError(f"setting {f.name!r} has type {f.type!r}; the command line takes one type (or X | None)")
    return parts[0], len(parts) < len(text.split("|"))


def _shown(f: dataclasses.Field, default: Any) -> str:
    """The default as ``--help`` shows it ("" = not shown)."""
    if f.metadata.get("shown") is not None:
        return str(f.metadata["shown"])
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    return "" if default is None else str(default)


def add_settings(parser: argparse.ArgumentParser | Any, cls: type, *, exclude: Collection[str] = (),
                 only: Iterable[str] | None = None, defaults_shown: bool = True,
                 required: Collection[str] = ()) -> list[str]:
    """Add one option per field of the settings dataclass ``cls`` whose metadata has ``cli=True``.

    Args:
        parser: a parser or an argument group.
        cls: the settings dataclass.
        exclude: field names to leave out.
        only: if given, the field names to add (in declaration order).
        defaults_shown: append ``(default: X)`` to each help text.
        required: field names whose option must be given.

    The flag is ``--field-name`` (or the field's ``flag`` metadata); int, float, str and bool fields, ``X | None``
    and ``list[str]``/``list[float]``/``list[int]`` (comma-separated) are supported; ``choices`` go to argparse.
    The option's destination is the field name; its default is ``argparse.SUPPRESS`` (see
    :func:`settings_from_args`). The parser records ``cls`` in its ``_settings_classes`` default and the field
    names in ``_settings_dests``.

    Returns:
        The names of the fields added.
    """
    from ..params import default_of

    wanted = None if only is None else set(only)
    added = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True) or f.name in exclude or (wanted is not None and f.name not in wanted):
            continue
        base, optional = _field_type(f)
        default = default_of(f)
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        flags = [flag] if isinstance(flag, str) else list(flag)
        shown = _shown(f, default) if defaults_shown else ""
        text = f.metadata.get("help", "") + (f" (default: {shown})" if shown else "")
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text.replace("%", "%%"),
                                  "required": f.name in required}
        if base == "bool":
            kwargs["action"] = "store_true" if default is False and not optional else argparse.BooleanOptionalAction
        else:
            if base in _SCALARS:
                kind = _SCALARS[base]
                kwargs["type"] = _number(kind) if base in ("int", "float") else kind if base == "Path" else str
            elif base.startswith("list[") and base[5:-1] in _SCALARS:
                kwargs["type"] = _parse_list(_SCALARS[base[5:-1]])
            else:
                raise TypeError(f"setting {f.name!r} of {cls.__name__} has type {f.type!r}, which has no option; "
                                "mark it cli=False")
            if f.metadata.get("choices") and base == "str":
                kwargs["choices"] = f.metadata["choices"]
            kwargs["metavar"] = f.metadata.get("metavar") or (None if "choices" in kwargs
                                                               else f.name.split("_")[-1].upper())
        action = parser.add_argument(*flags, **kwargs)
        action.settings_field = (cls, f.name)  # what the defaults test and settings_from_args look for
        added.append(f.name)
    parser.set_defaults(_settings_classes=(*(parser.get_default("_settings_classes") or ()), cls),
                        _settings_dests=frozenset({*(parser.get_default("_settings_dests") or ()), *added}))
    return added


def settings_from_args(args: argparse.Namespace, cls: type, *, only: Iterable[str] | None = None
                       ) -> dict[str, Any]:
    """``{field: value}`` of the options of ``cls`` given on the command line (those not given are absent, so the
    library's defaults, or a recorded run's parameters, apply to them).

    Only options made by :func:`add_settings` count (from any settings class: ``--size`` generated from one class
    also sets ``size`` of another); a hand-written option of the same name, which always has a value, does not.
    """
    wanted = None if only is None else set(only)
    generated = getattr(args, "_settings_dests", None)
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if hasattr(args, f.name) and (wanted is None or f.name in wanted)
            and (generated is None or f.name in generated)}


def add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="output image; parameters are stored in it (PNG text chunk) (required)")
    g.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also write every N-th step to OUT_frames/ (default: 0 = off)")
    g.add_argument("--timelapse", metavar="OUT.gif", help="assemble the intermediate steps into an animated GIF "
                   "(default: off)")
    g.add_argument("--params-from", metavar="PNG", help="start from the parameters recorded in a previous "
                   "percept output; explicit options override them (default: off)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
