"""Every example in README.md runs: each ``percept ...`` line of its ```bash blocks and each ```python block.

The examples are run in README order in one temporary folder holding a copy of the repository's ``examples/``,
as a reader would run them from a clone (later commands use what earlier ones wrote into ``out/``), with the
settings of :data:`SMALL` / :data:`PY_SMALL` substituted so that everything takes seconds on a CPU:

- ``percept`` lines run in this process through :func:`percept.cli.main` (models stay loaded between commands);
  the exit status must be 0 and the output named by ``-o`` must exist.
- ``percept serve`` (and a Python block that calls ``serve(...)``) is started on a free port, its
  ``/api/v1/health`` is fetched, and it is stopped.
- ``mkdir -p DIR`` lines create the folder.
- Python blocks run in a subprocess; the exit status must be 0 and every ``"out/..."`` path they name must exist
  afterwards.

Anything else (``make``, ``pip``, ``git``, a command that needs a data set from ``make data``, a GPU or a Redis
server) is skipped only when README marks it: a line with a trailing ``# not run by the tests: REASON``, or a
whole block preceded by the line ``<!-- not tested: REASON -->``. An unmarked line that cannot be run fails.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: Options set on ``percept`` commands (added, or replacing the README's value), by command and variant.
SMALL: dict[tuple[str, ...], dict[str, str]] = {
    ("stylize",): {"--size": "64", "--iterations": "2"},          # optimisation (the default method)
    ("stylize", "adain"): {"--size": "64"},                         # one forward pass
    ("stylize", "model"): {},                                       # one forward pass of a trained network
    ("texture",): {"--size": "64", "--iterations": "2"},
    ("stylize-video",): {"--size": "64", "--duration": "0.1", "--iterations": "2"},   # optimisation
    ("stylize-video", "adain"): {"--size": "64", "--duration": "0.1"},
    ("stylize-video", "model"): {"--size": "64", "--duration": "0.1"},
    ("train-style",): {"--size": "64", "--steps": "2"},             # --max-minutes stays: 2 steps end first
    ("train", "finetune"): {"--head-epochs": "1", "--epochs": "1"},
    ("lr-find",): {"--steps": "5"},                                 # its minimum
    ("explain", "class-image"): {"--size": "64", "--steps": "2"},
    ("explain", "invert"): {"--size": "64", "--steps": "2"},
    ("explain", "dream"): {"--size": "96", "--steps": "1", "--octaves": "2"},
    ("explain", "attack"): {"--steps": "2"},
    ("train-sr",): {"--crop": "32", "--steps": "2"},
    ("gaze-train",): {"--epochs": "1"},
}
#: Options replaced only where README gives them (they follow from the small sizes above).
SMALL_IF_GIVEN = {"--save-every": "1", "--scales": "none"}
#: Keyword arguments replaced in Python blocks (``size=512`` -> ``size=64``).
PY_SMALL = {"size": "64", "iterations": "2", "steps": "2", "epochs": "1", "head_epochs": "1"}

NOT_RUN = re.compile(r"#\s*not run by the tests:\s*(?P<reason>\S.*?)\s*$")
BLOCK_NOT_TESTED = re.compile(r"^<!--\s*not tested:\s*(?P<reason>\S.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
OUT_PATH = re.compile(r"""["'](?P<path>out/[^"']+)["']""")
SERVE_CALL = re.compile(r"\bserve\((?P<args>[^)]*)\)")


@dataclass(frozen=True)
class Step:
    """One thing to run: ``kind`` is percept, serve, mkdir, python, python-serve, skip or unknown."""

    line: int
    kind: str
    text: str
    reason: str = ""

    @property
    def id(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"README.md:{self.line} {first[:60]}"


def blocks(text: str) -> list[tuple[int, str, str, str]]:
    """``(first code line, language, code, not-tested reason or "")`` for every fenced block of ``text``."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        marker = BLOCK_NOT_TESTED.match(lines[i - 1].strip()) if i > 0 else None
        found.append((i + 2, fence["lang"], "\n".join(lines[i + 1:end]), marker["reason"] if marker else ""))
        i = end + 1
    return found


def bash_steps(first_line: int, code: str) -> list[Step]:
    """The commands of a bash block (continuation lines joined), each with its README line."""
    steps, pending, start = [], "", first_line
    for offset, line in enumerate(code.splitlines()):
        if not pending:
            start = first_line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command, pending = pending + line, ""
        marker = NOT_RUN.search(command)
        words = shlex.split(command, comments=True)
        if marker:
            steps.append(Step(start, "skip", command.strip(), marker["reason"]))
        elif not words:
            continue
        elif words[0] == "percept":
            steps.append(Step(start, "serve" if words[1:2] == ["serve"] else "percept", shlex.join(words)))
        elif words[:2] == ["mkdir", "-p"] and len(words) > 2:
            steps.append(Step(start, "mkdir", shlex.join(words)))
        else:
            steps.append(Step(start, "unknown", command.strip()))
    return steps


def readme_steps(text: str) -> list[Step]:
    steps = []
    for line, lang, code, reason in blocks(text):
        if reason:
            steps.append(Step(line, "skip", code, reason))
        elif lang in ("bash", "sh", "shell", "console"):
            steps += bash_steps(line, code)
        elif lang == "python":
            steps.append(Step(line, "python-serve" if SERVE_CALL.search(code) else "python", code))
    return steps


def variant(argv: list[str]) -> tuple[str, ...]:
    """The key of :data:`SMALL` for ``argv`` (without the leading ``percept``)."""
    command = argv[0]
    if command == "explain":
        return ("explain", argv[1])
    if command == "stylize" and "--model" in argv:
        return ("stylize", "model")
    if command == "stylize" and "--method" in argv and argv[argv.index("--method") + 1] == "adain":
        return ("stylize", "adain")
    if command == "stylize-video":
        if "--model" in argv:
            return ("stylize-video", "model")
        return ("stylize-video", "adain") if "--method" in argv and argv[argv.index("--method") + 1] == "adain" \
            else ("stylize-video",)
    if command == "train" and "--strategy" in argv and argv[argv.index("--strategy") + 1] == "finetune":
        return ("train", "finetune")
    return (command,)


def small(argv: list[str], extra: dict[str, str] | None = None) -> list[str]:
    """``argv`` with the settings of :data:`SMALL` (and ``extra``) set."""
    argv = list(argv)
    settings = {**SMALL.get(variant(argv), {}), **{k: v for k, v in SMALL_IF_GIVEN.items() if k in argv},
                **(extra or {})}
    for option, value in settings.items():
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    return argv


def py_small(code: str) -> str:
    pattern = r"\b(" + "|".join(PY_SMALL) + r")=\d+"
    return re.sub(pattern, lambda m: f"{m[1]}={PY_SMALL[m[1]]}", code)


def output_of(argv: list[str]) -> str | None:
    for flag in ("-o", "--output"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STEPS = readme_steps(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder like a fresh clone's for the examples: a copy of examples/, nothing else."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples")
    (folder / "cache").mkdir()
    return folder


def environment(folder: Path) -> dict[str, str]:
    return {"PERCEPT_CACHE": str(folder / "cache"), "XDG_DATA_HOME": str(folder / "xdg"), "PERCEPT_OFFLINE": "1"}


def subprocess_env(folder: Path) -> dict[str, str]:
    env = {**os.environ, **environment(folder)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def check_health(process: subprocess.Popen, port: int, what: str) -> None:
    """Wait until the service on ``port`` answers /api/v1/health, then stop it."""
    url, deadline, last = f"http://127.0.0.1:{port}/api/v1/health", time.monotonic() + 90, None
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"{what} exited with status {process.returncode} before answering:\n{output[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200, f"{url}: HTTP {response.status}"
                    return
            except OSError as exc:
                last = exc
                time.sleep(0.3)
        pytest.fail(f"{what} did not answer {url} within 90 s ({last})")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_percept(step: Step, folder: Path) -> None:
    from percept.cli import main

    argv = small(shlex.split(step.text)[1:])
    rc = main(argv)
    assert rc in (0, None), f"{step.id}: `percept {shlex.join(argv)}` exited with status {rc}"
    output = output_of(argv)
    if output is not None:
        assert (folder / output).exists(), f"{step.id}: `percept {shlex.join(argv)}` did not write {output}"


def run_serve(step: Step, folder: Path) -> None:
    port = free_port()
    argv = small(shlex.split(step.text)[1:], {"--port": str(port)})
    process = subprocess.Popen([sys.executable, "-m", "percept", *argv], cwd=folder, env=subprocess_env(folder),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check_health(process, port, f"{step.id} (`percept {shlex.join(argv)}`)")


def run_python(step: Step, folder: Path) -> None:
    code = py_small(step.text)
    if step.kind == "python-serve":
        port = free_port()
        code = re.sub(r"\bport=\d+", f"port={port}", code)
        assert f"port={port}" in code, f"{step.id}: a block that calls serve() must pass port=..."
        process = subprocess.Popen([sys.executable, "-c", code], cwd=folder, env=subprocess_env(folder),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check_health(process, port, step.id)
        return
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=subprocess_env(folder),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (f"{step.id}: the Python block failed (status {done.returncode}):\n{code}\n"
                                  f"--- output:\n{(done.stdout + done.stderr)[-4000:]}")
    missing = [m["path"] for m in OUT_PATH.finditer(step.text) if not (folder / m["path"]).exists()]
    assert not missing, f"{step.id}: the Python block did not write {', '.join(missing)}"


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_readme_example(step: Step, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if step.kind == "skip":
        pytest.skip(f"marked in README.md: {step.reason}")
    assert step.kind != "unknown", (
        f"{step.id}: `{step.text}` is not a percept command, `mkdir -p` or a Python block, so this test cannot "
        "run it; make it one, or mark it with a trailing `# not run by the tests: REASON` (a whole block: the line "
        "`<!-- not tested: REASON -->` before it)")
    monkeypatch.chdir(workspace)
    for name, value in environment(workspace).items():
        monkeypatch.setenv(name, value)
    if step.kind == "mkdir":
        for path in shlex.split(step.text)[2:]:
            (workspace / path).mkdir(parents=True, exist_ok=True)
    elif step.kind == "percept":
        run_percept(step, workspace)
    elif step.kind == "serve":
        run_serve(step, workspace)
    else:
        run_python(step, workspace)


# ------------------------------------------------------------------------------------------- the parser itself


def test_readme_has_examples_of_every_capability() -> None:
    commands = {" ".join(shlex.split(s.text)[1:3]) for s in STEPS if s.kind in ("percept", "serve")}
    for expected in ("stylize examples/content/chelsea_cat.jpg", "texture examples/texture/colorful_zigzag_256.jpg",
                     "train examples/data/photo_or_painting", "explain saliency", "export out/runs/features"):
        assert expected in commands, f"README.md has no `percept {expected} ...` example"
    assert any(s.kind == "serve" for s in STEPS)
    assert sum(s.kind in ("python", "python-serve") for s in STEPS) >= 6
    assert all(s.reason for s in STEPS if s.kind == "skip")


def test_parser_finds_unmarked_and_marked_lines() -> None:
    text = "\n".join([
        "```bash",
        "make demo    # installs",
        "make data    # not run by the tests: needs the network",
        "percept stylize a.jpg b.jpg \\",
        "    -o out/x.png --size 512   # a comment",
        "```",
        "<!-- not tested: installs packages -->",
        "```bash",
        "pip install .",
        "```",
        "```python",
        "from percept.service import serve",
        "serve(port=8000)",
        "```",
    ])
    steps = readme_steps(text)
    assert [(s.line, s.kind) for s in steps] == [(2, "unknown"), (3, "skip"), (4, "percept"), (9, "skip"),
                                                 (12, "python-serve")]
    assert steps[1].reason == "needs the network" and steps[3].reason == "installs packages"
    assert shlex.split(steps[2].text) == ["percept", "stylize", "a.jpg", "b.jpg", "-o", "out/x.png", "--size", "512"]


def test_small_settings() -> None:
    assert small(["stylize", "c.jpg", "s.jpg", "-o", "o.png", "--size", "1024", "--save-every", "10"]) == [
        "stylize", "c.jpg", "s.jpg", "-o", "o.png", "--size", "64", "--save-every", "1", "--iterations", "2"]
    assert small(["stylize", "c.jpg", "s.jpg", "-o", "o.png", "--method", "adain"])[-2:] == ["--size", "64"]
    assert small(["stylize", "c.jpg", "-o", "o.png", "--model", "m.pt"]) == ["stylize", "c.jpg", "-o", "o.png",
                                                                            "--model", "m.pt"]
    assert small(["train", "d", "-o", "r", "--strategy", "finetune", "--epochs", "4"])[-4:] == [
        "--epochs", "1", "--head-epochs", "1"]
    assert small(["explain", "dream", "c.jpg", "-o", "d.png"])[5:] == ["--size", "96", "--steps", "1", "--octaves", "2"]
    assert py_small("f(size=512, head_epochs=2, epochs=4, steps=200)") == "f(size=64, head_epochs=1, epochs=1, steps=2)"
