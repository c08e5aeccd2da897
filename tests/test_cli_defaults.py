"""Every default is written once, in a settings dataclass of the library.

Each option of every command is either generated from a settings dataclass (:func:`percept.cli.options.add_settings`)
or named below as a command-line-only option (where to write, how to show progress, what to start from). A new
option with a hand-written default fails here until it comes from a dataclass. The library entry points that still
spell out keyword defaults must agree with the dataclass, and ``percept --help`` must not import torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import subprocess
import sys

import pytest

from percept.cli import build_parser
from percept.cli.options import _shown, settings_from_args
from percept.params import default_of

#: Options of every command that are not settings of the result, so no dataclass holds them.
CLI_ONLY = {
    "--help": "argparse's own",
    "--output": "where to write the result",
    "--quiet": "progress bars only",
    "--json": "how a text report is printed",
    "--params-from": "which recorded output to start from",
    "--save-every": "extra output: every N-th optimisation step",
    "--timelapse": "extra output: the optimisation steps as an animated GIF",
    "--resume": "continue an interrupted run from its checkpoint",
    "--cache-dir": "where features are cached; never changes a result",
}

#: Command-line-only options that one command has.
CLI_ONLY_BY_COMMAND = {
    "stylize": {"--method": "chooses the method, and with it the settings class"},
    "train": {"--strategy": "chooses the strategy, and with it the settings class"},
    "evaluate": {"--confusion-png": "extra output: the confusion matrix as a figure"},
    "predict": {"--format": "how the predictions are printed"},
    "worker": {"--nice": "process priority", "--burst": "exit when the queue is empty"},
}

#: Commands whose options are still (partly) written by hand, with what remains. The goal is an empty dict:
#: remove a command once its options are generated from its settings dataclass.
PENDING: dict[str, str] = {}

#: Library functions of each command that spell out keyword defaults, and the settings class those defaults must
#: equal (``module:function``, ``module:Class``). Entry points that take ``**settings`` have nothing to compare.
LIBRARY_DEFAULTS = [
    ("percept.style.optimize:stylize", "percept.style.params:StyleParams"),
    ("percept.style.optimize:synthesize_texture", "percept.style.params:StyleParams"),
    ("percept.style.adain_stylize:stylize_adain", "percept.style.params:AdainParams"),
    ("percept.style.transform_stylize:stylize_with_model", "percept.style.params:NetworkParams"),
    ("percept.transfer.linear:train_features", "percept.transfer.params:FeaturesParams"),
    ("percept.transfer.runs:evaluate", "percept.transfer.params:EvaluateParams"),
    ("percept.transfer.runs:predict", "percept.transfer.params:PredictParams"),
    ("percept.transfer.augment:preview_augment", "percept.transfer.params:AugmentPreviewParams"),
    ("percept.transfer.export:export_run", "percept.transfer.params:ExportParams"),
    ("percept.understand.saliency:saliency", "percept.understand.params:SaliencyParams"),
    ("percept.understand.attack:attack", "percept.understand.params:AttackParams"),
    ("percept.understand.neighbours:neighbours", "percept.understand.params:NeighboursParams"),
    ("percept.understand.class_image:class_image", "percept.understand.params:ClassImageParams"),
    ("percept.transfer.lr_find:find_learning_rate", "percept.transfer.finetune_params:LrFindParams"),
    ("percept.understand.invert:invert", "percept.understand.params:InvertParams"),
    ("percept.understand.dream:dream", "percept.understand.params:DreamParams"),
    ("percept.sr.upscale:upscale", "percept.sr.params:UpscaleParams"),
]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(name, parser)`` of every leaf command: ``stylize``, ..., ``explain saliency``, ..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def _value(action: argparse.Action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    return "1" if getattr(action.type, "__name__", "") in ("int", "float") else "x"


def _minimal_argv(name: str, parser: argparse.ArgumentParser) -> list[str]:
    """The command with its positional arguments and required options only."""
    argv = name.split()
    for action in parser._actions:
        if action.option_strings and action.required:
            argv += [action.option_strings[-1], _value(action)]
        elif not action.option_strings and action.nargs not in ("?", "*"):
            argv.append(_value(action))
    return argv


def _hand_written(name: str, parser: argparse.ArgumentParser) -> list[str]:
    """Options of a command that are neither generated from a settings class nor command-line-only."""
    allowed = {**CLI_ONLY, **CLI_ONLY_BY_COMMAND.get(name.split()[0], {})}
    return [action.option_strings[-1] for action in parser._actions
            if action.option_strings and not hasattr(action, "settings_field")
            and not any(flag in allowed for flag in action.option_strings)]


def test_pending_names_real_commands():
    assert set(PENDING) <= set(COMMANDS), f"not commands: {sorted(set(PENDING) - set(COMMANDS))}"
    for table in (CLI_ONLY_BY_COMMAND,):
        assert set(table) <= {name.split()[0] for name in COMMANDS}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_comes_from_a_settings_class_or_is_command_line_only(name):
    parser = COMMANDS[name]
    hand_written = _hand_written(name, parser)
    if name in PENDING:
        assert hand_written, (f"every option of `percept {name}` is generated now: remove {name!r} from PENDING in "
                              "tests/test_cli_defaults.py")
    else:
        assert not hand_written, (f"`percept {name}` writes {', '.join(hand_written)} by hand: generate them from "
                                  "its settings dataclass (percept.cli.options.add_settings), or, if they are not "
                                  "settings of the result, add them to CLI_ONLY with the reason")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_generated_options_show_and_parse_the_dataclass_default(name):
    parser = COMMANDS[name]
    generated = [a for a in parser._actions if hasattr(a, "settings_field")]
    recorded = parser.get_default("_settings_classes") or ()
    for action in generated:
        cls, field_name = action.settings_field
        assert cls in recorded, f"{action.option_strings} of {cls.__name__} but the parser does not record the class"
        f = next(f for f in dataclasses.fields(cls) if f.name == field_name)
        default, shown = default_of(f), _shown(f, default_of(f))
        assert action.default is argparse.SUPPRESS and action.dest == field_name
        if shown and f.metadata.get("shown") is None:
            text = action.help.replace("%%", "%")  # "(default: 32)", or "(default: 32 for features, ...)"
            assert f"(default: {shown})" in text or f"(default: {shown} " in text, (name, action.option_strings)
            if action.type is not None and default not in (None, "", []):
                assert action.type(shown) == default, f"--help shows {shown!r}, which parses to another value"
    # a command line without options gives no settings: the library's (or a record's) defaults apply
    args = build_parser().parse_args(_minimal_argv(name, parser))
    for cls in getattr(args, "_settings_classes", ()):
        required = {a.dest for a in generated if a.required}
        assert set(settings_from_args(args, cls)) <= required, (name, cls.__name__)


def _resolve(spec: str):
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _same_default(function_default, setting_default) -> bool:
    """Equal, or both unset: ``None`` in a function stands for a setting's empty ``""`` or ``[]``."""
    return function_default == setting_default or (function_default is None and setting_default in ("", []))


@pytest.mark.parametrize("function, settings", LIBRARY_DEFAULTS)
def test_library_keyword_defaults_equal_the_dataclass(function, settings):
    fn, cls = _resolve(function), _resolve(settings)
    defaults = {f.name: default_of(f) for f in dataclasses.fields(cls)}
    differ = {name: (p.default, defaults[name]) for name, p in inspect.signature(fn).parameters.items()
              if name in defaults and p.default is not inspect.Parameter.empty
              and not _same_default(p.default, defaults[name])}
    assert not differ, f"{function} defaults differ from {cls.__name__} (function, dataclass): {differ}"


def test_help_imports_no_torch():
    code = ("import sys; from percept.cli import main\n"
            "for argv in (['--help'], ['stylize', '--help'], ['explain', 'saliency', '--help'], ['serve', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'sklearn'}))")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", "percept --help imports " + result.stdout.splitlines()[-1]


#: Commands whose --help has no runnable example yet (the goal is an empty set).
NO_EXAMPLES_YET: set[str] = set()


def test_top_level_help_lists_every_command_once_under_a_heading(capsys):
    from percept.cli import COMMAND_GROUPS, main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    grouped = [name for _, names in COMMAND_GROUPS for name in names]
    top = {name.split()[0] for name in COMMANDS}
    assert sorted(grouped) == sorted(top), "every command in exactly one group of percept.cli.COMMAND_GROUPS"
    for title, names in COMMAND_GROUPS:
        assert f"  {title}:\n" in text
        for name in names:
            assert f"\n    {name} " in text or f"\n    {name}\n" in text, name
    assert "other:" not in text


def test_every_command_shows_examples():
    parsers = {name: COMMANDS[name] for name in COMMANDS} | {"explain": build_parser()._subparsers._group_actions[0]
                                                              .choices["explain"]}
    missing = sorted(name for name, parser in parsers.items()
                     if "percept " not in (parser.epilog or "") or "example" not in (parser.epilog or ""))
    assert set(missing) == NO_EXAMPLES_YET, f"without examples: {missing}; update NO_EXAMPLES_YET if you added some"
