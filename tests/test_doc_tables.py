"""The benchmark tables in the docs are generated from the benchmark JSON files and agree with them.

Every Markdown file with ``<!-- table: NAME -->`` blocks (docs/benchmarks.md, and README.md or other pages once
they carry blocks) is checked twice: benchmarks/tables.py in check mode finds no stale block, and every number
printed inside a block equals, rounded as printed, a value of the JSON files the block was generated from (or a
number the generator computed from them, or one of its declared targets). Standard library only: fast, no torch.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BENCHMARKS_MD = DOCS / "benchmarks.md"


def _load_tables():
    spec = importlib.util.spec_from_file_location("percept_doc_tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tables = _load_tables()

# A number as printed in a block: 1,063 / 0.750 / 42.7 / 6.0e-5. Not part of a word or name (relu1_2, Lite0,
# VGG-19, p95, x86-64), not a compound adjective (20-minute), not a version (2.14.1).
NUMBER = re.compile(r"(?<![\w.])(?<!\w-)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(e[-+]?\d+)?"
                    r"(?![\w]|\.\d|-[^\W\d])")
CODE = re.compile(r"`[^`]*`")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
STRING_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def doc_files() -> list[Path]:
    """Every Markdown file of the project that holds generated blocks (at least docs/benchmarks.md)."""
    files = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    found = [f for f in files if f.exists() and tables.blocks(f.read_text())]
    assert BENCHMARKS_MD in found, "docs/benchmarks.md has no generated blocks"
    return found


def json_numbers(value) -> list[float]:
    """Every number in a JSON document: numeric leaves, numeric keys and numbers inside strings."""
    out: list[float] = []
    if isinstance(value, bool) or value is None:
        return out
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        return [float(x) for x in STRING_NUMBER.findall(value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += json_numbers(k) + json_numbers(v)
    elif isinstance(value, list):
        for v in value:
            out += json_numbers(v)
    return out


def printed_numbers(text: str) -> list[tuple[str, float, float]]:
    """(token, value, half a unit of its last printed digit) for every number in a block's text."""
    text = LINK_TARGET.sub("](", CODE.sub("``", text))
    out = []
    for m in NUMBER.finditer(text):
        mantissa, exp = m.group(1).replace(",", ""), m.group(2)
        decimals = len(mantissa.partition(".")[2])
        e = int(exp[1:]) if exp else 0
        value = float(Decimal(mantissa).scaleb(e))
        out.append((m.group(0), value, 0.5 * 10.0 ** (e - decimals)))
    return out


def unbacked_numbers(text: str, candidates: list[float]) -> list[str]:
    """The printed numbers that no candidate explains, as a plain value or as a percentage (x100)."""
    pool = sorted({abs(c) for c in candidates} | {abs(100 * c) for c in candidates})
    bad = []
    for token, value, half in printed_numbers(text):
        tol = half * (1 + 1e-9) + 1e-12
        if not any(abs(value - c) <= tol for c in pool):
            bad.append(token)
    return bad


def block_cases() -> list[tuple[Path, str, str]]:
    return [(f, name, content) for f in doc_files() for name, content in tables.blocks(f.read_text())]


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_blocks_are_current(path, capsys):
    rc = tables.main(["--check", "--files", str(path)])
    assert rc == 0, f"stale tables (regenerate with benchmarks/tables.py):\n{capsys.readouterr().out}"


@pytest.mark.parametrize("path,name,content", block_cases(),
                         ids=[f"{p.relative_to(ROOT)}:{n}" for p, n, _ in block_cases()])
def test_every_number_in_a_block_comes_from_its_json(path, name, content):
    rendered = tables.render(name)
    assert rendered.sources, f"table {name!r} reads no JSON file"
    candidates = _candidates(rendered)
    numbers = printed_numbers(content)
    assert numbers, f"table {name!r} in {path.name} prints no number"
    bad = unbacked_numbers(content, candidates)
    assert not bad, f"{path.name}, table {name!r}: numbers not in {', '.join(rendered.sources)}: {bad}"


def _candidates(rendered) -> list[float]:
    out = [*rendered.derived, *rendered.constants]
    for source in rendered.sources:
        out += json_numbers(json.loads((DOCS / source).read_text()))
    return out


@pytest.mark.parametrize("name", sorted(tables.TABLES))
def test_every_renderer_prints_only_json_numbers(name):
    """Also the tables no page carries yet (ready for README.md and the other docs)."""
    rendered = tables.render(name)
    assert rendered.sources and printed_numbers(rendered.text)
    assert not unbacked_numbers(rendered.text, _candidates(rendered)), name


def test_every_benchmark_json_is_shown():
    """Each benchmark JSON in docs/ feeds at least one block of docs/benchmarks.md (none left unreported)."""
    used = set()
    for name, _ in tables.blocks(BENCHMARKS_MD.read_text()):
        used.update(tables.render(name).sources)
    assert sorted(p.name for p in DOCS.glob("*.json")) == sorted(used)


def test_gpu_figures_say_not_measured():
    """No JSON records a CUDA device, so every cell of a GPU column of every page reads "not measured"."""
    cuda = [p.name for p in DOCS.glob("*.json") if tables._machine(json.loads(p.read_text()))["cuda_device"]]
    if cuda:
        pytest.skip(f"GPU figures recorded in {cuda}")
    gpu_columns = 0
    for _, _, content in block_cases():
        rows = [[c.strip() for c in line.strip().strip("|").split("|")]
                for line in content.splitlines() if line.startswith("|") and not line.startswith("|---")]
        if not rows:
            continue
        for i, head in enumerate(rows[0]):
            if "GPU" in head:
                gpu_columns += 1
                assert {row[i] for row in rows[1:]} == {tables.NOT_MEASURED}, head
    assert gpu_columns >= 4


def test_check_mode_names_a_stale_block(tmp_path, capsys):
    text = BENCHMARKS_MD.read_text()
    # one digit added to the first decimal number of the stylize-cpu block
    stale = re.sub(r"(<!-- table: stylize-cpu -->\n.*?)(\d+\.\d+)", r"\g<1>9\g<2>", text, count=1, flags=re.DOTALL)
    assert stale != text
    page = tmp_path / "page.md"
    page.write_text(stale)
    assert tables.main(["--check", "--files", str(page)]) == 1
    out = capsys.readouterr().out
    assert "'stylize-cpu'" in out and "bench_stylize_cpu.json" in out
    assert page.read_text() == stale  # check mode changes nothing
    assert tables.main(["--files", str(page)]) == 0  # rewrite mode repairs it
    assert page.read_text() == text
    assert tables.main(["--check", "--files", str(page)]) == 0


def test_unknown_table_name_is_an_error(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("<!-- table: no-such-table -->\n<!-- /table -->\n")
    assert tables.main(["--check", "--files", str(page)]) == 2
    assert "no-such-table" in capsys.readouterr().err


def test_the_number_check_catches_hand_typed_figures():
    candidates = [0.7503927, 1119.1, 0.9281, 2049.7]
    assert unbacked_numbers("| **0.750** | 1,119 | 92.8 % | 2,050 MiB |", candidates) == []
    assert unbacked_numbers("| 0.751 | 1,118 | 93.0 % | 2,049 MiB |", candidates) == ["0.751", "1,118", "93.0",
                                                                                      "2,049"]
    # names, versions, compound words and code are not figures
    assert printed_numbers("relu1_2 of VGG-19 on x86-64, torch 2.14.1, a 20-minute run, `--size 512`") == []
    assert [t for t, _, _ in printed_numbers("ε = 4/255, −19 %, 6.0e-5, ×3.33")] == ["4", "255", "19", "6.0e-5",
                                                                                   "3.33"]


# ------------------------------------------------------------------------------------------ the pages as a whole

JSON_LINK = re.compile(r"\]\(\s*(?:docs/)?([\w.-]+\.json)\s*\)")  # docs/X.json from README.md
IMAGE_LINK = re.compile(r"images/([\w.-]+\.(?:png|jpe?g|gif|svg|webp))")


def user_pages() -> list[Path]:
    """README.md and the pages of docs/ (what users read; docs/dev/ is for contributors)."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("path", user_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_that_cites_a_benchmark_json_shows_it_through_a_block(path):
    """A page that links a raw output (docs/NAME.json) prints its figures from a generated block reading it, so no
    figure of that benchmark is typed by hand there."""
    text = path.read_text()
    cited = {m.group(1) for m in JSON_LINK.finditer(text) if (DOCS / m.group(1)).exists()}
    shown = {source for name, _ in tables.blocks(text) for source in tables.render(name).sources}
    assert cited <= shown, f"{path.name} links {sorted(cited - shown)} but no block of it reads them"


def test_every_image_is_linked_from_a_page():
    """No stale figure: every file of docs/images/ is shown by README.md or a page of docs/."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    linked = {m.group(1) for page in pages if page.exists() for m in IMAGE_LINK.finditer(page.read_text())}
    images = {p.name for p in (DOCS / "images").iterdir() if p.is_file()}
    assert not images - linked, f"docs/images/ files that no page shows (remove them): {sorted(images - linked)}"


def test_one_command_regenerates_every_page():
    """`make tables` and a plain run of the generator cover README.md and every page with blocks."""
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^tables:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "the Makefile has no `tables` target"
    assert re.search(r"benchmarks/tables\.py --files README\.md docs/\*\.md", target.group(1)), target.group(1)
    assert re.search(r"^\.PHONY:.*\btables\b", makefile, re.MULTILINE)
    assert set(doc_files()) <= set(tables.DEFAULT_FILES)
