"""The ``percept`` command line. It only parses arguments, calls the library and prints.

One module per command group (:mod:`.stylize`, :mod:`.training`, :mod:`.transfer`, :mod:`.explain`,
:mod:`.service`, :mod:`.models`); each has ``register(sub)``, which adds its subcommands, and their handlers.
Options are generated from the library's settings dataclasses (:func:`.options.add_settings`), so the CLI,
the Python API and the parameters recorded in every output share one set of names, defaults and help.
Only light modules are imported here: ``percept --help`` does not import torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from importlib import import_module

from .. import __version__
from ..errors import PerceptError
from .commands import COMMAND_GROUPS, COMMANDS


class _GroupedHelp(argparse.RawDescriptionHelpFormatter):
    """Lists the commands under the headings of :data:`COMMAND_GROUPS` (any other command last, under "other")."""

    def _format_action(self, action: argparse.Action) -> str:
        if not isinstance(action, argparse._SubParsersAction):
            return super()._format_action(action)
        commands = {a.dest: a for a in action._get_subactions()}
        known = {name for _, names in COMMAND_GROUPS for name in names}
        parts = []
        for title, names in (*COMMAND_GROUPS, ("other", tuple(sorted(set(commands) - known)))):
            if any(name in commands for name in names):
                parts.append(f"{' ' * self._current_indent}{title}:\n")
                self._indent()
                parts += [super(_GroupedHelp, self)._format_action(commands[n]) for n in names if n in commands]
                self._dedent()
        return "".join(parts)


def build_parser(command: str | None = "") -> argparse.ArgumentParser:
    """The ``percept`` parser. ``command=""`` (the default) builds every command with all its options; a command
    name builds that command's module in full and only names the others; ``None`` only names them all, which is all
    ``percept --help`` needs (no settings module is imported)."""
    parser = argparse.ArgumentParser(
        prog="percept", formatter_class=_GroupedHelp,
        description="Reuse ImageNet-pretrained CNNs: neural style transfer (images and video), texture synthesis, "
        "transfer learning, looking inside the networks, perceptual metrics, super-resolution, where people look, "
        "and an artwork web service.",
        epilog="Run `percept COMMAND --help` for the options of each command, with examples.",
    )
    parser.add_argument("--version", action="version", version=f"percept {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    full = {module for module, _help in COMMANDS.values()} if command == "" else \
        {COMMANDS[command][0]} if command in COMMANDS else set()
    for module in dict.fromkeys(module for module, _help in COMMANDS.values()):
        if module in full:
            import_module(f".{module}", __name__).register(sub)
    for name, (module, text) in COMMANDS.items():
        if module not in full:
            sub.add_parser(name, help=text)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command named on the command line (its first word that is not an option), else None."""
    return next((word for word in argv if not word.startswith("-")), None)


OUT_OF_MEMORY_FIX = ("lower --size or --batch-size, use --optimizer adam (stylize) or --tile (feed-forward), "
                     "or --device cpu")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"percept: warning: {message}\n"
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if getattr(args, "save_every", 0) < 0:
        parser.error("--save-every must be >= 0")
    try:
        return args.func(args)
    except PerceptError as exc:
        print(f"percept: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("percept: interrupted; no output written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print(f"percept: error: out of memory; {OUT_OF_MEMORY_FIX}", file=sys.stderr)
        return 3
    except Exception as exc:  # last resort: one line, full traceback on request
        if os.environ.get("PERCEPT_DEBUG"):
            raise
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA/MPS)
            print(f"percept: error: out of GPU memory; {OUT_OF_MEMORY_FIX}", file=sys.stderr)
            return 3
        print(f"percept: internal error: {type(exc).__name__}: {exc} (set PERCEPT_DEBUG=1 for the traceback "
              "and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
