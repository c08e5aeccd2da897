"""Regenerate the benchmark tables in the Markdown docs from the benchmark JSON files in docs/.

Every generated block in a Markdown file sits between two markers::

    <!-- table: stylize-cpu -->
    ... (written by this script: do not edit by hand, edit or re-measure the JSON) ...
    <!-- /table -->

The name after ``table:`` selects a renderer below (``TABLES``); each renderer reads its JSON files from docs/ and
returns the Markdown. Run from the repository root::

    .venv/bin/python benchmarks/tables.py                       # rewrite the blocks of README.md and docs/*.md
    make tables                                                 # the same
    .venv/bin/python benchmarks/tables.py --files docs/feedforward.md
    .venv/bin/python benchmarks/tables.py --check               # exit 1 and name every stale block
    .venv/bin/python benchmarks/tables.py --list                # the table names and the JSON each reads

A renderer prints only numbers that are in its JSON files (rounded), numbers it computes from them (recorded with
``Ctx.calc``) and fixed targets of the benchmark (``Ctx.const``); tests/test_doc_tables.py checks every number
in every block against exactly those. No GPU figure has been measured: GPU columns say "not measured" until a JSON
records a CUDA device.

Standard library only (no torch): fast enough for a test.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The pages a plain run (and ``make tables``) regenerates: README.md and every page of docs/ (docs/dev/ holds none).
DEFAULT_FILES = (ROOT / "README.md", *sorted(DOCS.glob("*.md")))
NOT_MEASURED = "not measured"

BLOCK = re.compile(r"(<!-- table: ([\w.-]+) -->\n)(.*?)(<!-- /table -->)", re.DOTALL)


# --------------------------------------------------------------------------------------------------------------
# Rendering context: which JSON files a block reads, which numbers it computes, which targets it prints.

@dataclass
class Ctx:
    docs: Path
    sources: list[str] = field(default_factory=list)
    derived: list[float] = field(default_factory=list)
    constants: list[float] = field(default_factory=list)

    def json(self, name: str) -> dict:
        """Load docs/NAME (and record it as a source of this block)."""
        if name not in self.sources:
            self.sources.append(name)
        return json.loads((self.docs / name).read_text())

    def calc(self, value: float) -> float:
        """A number computed from the JSON values (a ratio, a difference, a count)."""
        self.derived.append(float(value))
        return value

    def const(self, value: float) -> float:
        """A fixed target or definition of the benchmark (not a measurement): e.g. the 200x speed-up target."""
        self.constants.append(float(value))
        return value


@dataclass
class Rendered:
    name: str
    text: str
    sources: list[str]
    derived: list[float]
    constants: list[float]


TABLES: dict[str, Callable[[Ctx], str]] = {}


def table(name: str):
    def register(fn: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
        TABLES[name] = fn
        return fn
    return register


def render(name: str, docs: Path = DOCS) -> Rendered:
    if name not in TABLES:
        raise KeyError(f"no renderer for table {name!r} (known: {', '.join(sorted(TABLES))})")
    ctx = Ctx(docs)
    text = TABLES[name](ctx).strip("\n")
    return Rendered(name, text, ctx.sources, ctx.derived, ctx.constants)


# --------------------------------------------------------------------------------------------------------------
# Number formats (the test reads them back: thousands separators, "%" means x100).

def _round(x: float, nd: int) -> Decimal:
    """x rounded half up to nd decimals, from its shortest repr (as the JSON prints it: 2.195 -> 2.20)."""
    return Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-nd), rounding=ROUND_HALF_UP)


def num(x: float, nd: int = 0) -> str:
    """x rounded to nd decimals, thousands separated by commas, a true minus sign."""
    r = _round(x, nd)
    return ("−" if r < 0 else "") + f"{abs(r):,.{nd}f}"


def pct(x: float, nd: int = 1) -> str:
    """A fraction as a percentage: 0.9281 -> '92.8 %'."""
    return f"{num(100 * x, nd)} %"


def sci(x: float, nd: int = 1) -> str:
    """Scientific notation: 0.00012 -> '1.2e-4'."""
    mantissa, exp = f"{x:.{nd}e}".split("e")
    return f"{mantissa}e{int(exp)}"


def bold(s: str, on: bool = True) -> str:
    return f"**{s}**" if on else s


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def gpu_cell(machine: dict | None) -> str:
    """The GPU column: 'not measured' unless the JSON's machine records a CUDA device."""
    if machine and machine.get("cuda_device"):
        return f"see the CUDA run ({machine['cuda_device']})"
    return NOT_MEASURED


# --------------------------------------------------------------------------------------------------------------
# Where the figures come from

MACHINE_SOURCES = {
    # JSON file: what it measures (the script that wrote it)
    "bench_stylize_cpu.json": "`benchmarks/stylize.py`",
    "bench_transfer_cpu.json": "`benchmarks/transfer.py`",
    "bench_flowers_cpu.json": "`benchmarks/flowers.py`",
    "bench_feedforward_cpu.json": "`benchmarks/feedforward.py`",
    "bench_multistyle_cpu.json": "`benchmarks/feedforward.py --methods transform_net,multistyle26,...`",
    "feedforward_quality_cpu.json": "`benchmarks/feedforward_quality.py`",
    "feedforward_quality_40min_cpu.json": "`benchmarks/feedforward_quality.py`",
    "feedforward_quality_60min_cpu.json": "`benchmarks/feedforward_quality.py`",
    "feedforward_quality_init_cpu.json": "`benchmarks/feedforward_quality.py`",
    "adain_alpha_512.json": "`benchmarks/adain_alpha.py`",
    "saliency_cpu.json": "`benchmarks/saliency.py`",
    "attack_pgd_cpu.json": "`benchmarks/attack.py`",
    "visualise_cpu.json": "`benchmarks/visualise.py`",
    "feature_space_cpu.json": "`benchmarks/feature_space.py`",
    "service_load_cpu.json": "`benchmarks/service_load.py`",
    "service_load_redis_cpu.json": "`benchmarks/service_load.py --redis`",
    "regions_cpu.json": "`benchmarks/regions.py`",
    "transfer_recipes_cpu.json": "`benchmarks/transfer_recipes.py`",
    "adain_speed_cpu.json": "`benchmarks/adain_speed.py`",
    "metrics_cpu.json": "`benchmarks/metrics.py`",
    "sr_cpu.json": "`benchmarks/sr.py`",
    "gaze_cpu.json": "`benchmarks/gaze.py`",
}


def _machine(d: dict) -> dict:
    """The machine fields a benchmark JSON records, whatever its layout."""
    m = d.get("machine") if isinstance(d.get("machine"), dict) else {}
    return {
        "cpus": m.get("cpu_count", m.get("cpus", m.get("cores"))),
        "threads": m.get("torch_threads", d.get("torch_threads", d.get("cpu_threads", d.get("threads")))),
        "torch": m.get("torch_version", m.get("torch", d.get("torch"))),
        "device": m.get("device", d.get("device")),
        "cuda_device": m.get("cuda_device"),
    }


@table("machines")
def machines(ctx: Ctx) -> str:
    rows = []
    for name, script in MACHINE_SOURCES.items():
        if not (ctx.docs / name).exists():
            continue
        m = _machine(ctx.json(name))
        rows.append([f"[{name}]({name})", script,
                     num(m["cpus"]) if m["cpus"] is not None else "not recorded",
                     num(m["threads"]) if m["threads"] is not None else "not recorded",
                     f"`{m['torch']}`" if m["torch"] else "not recorded",
                     m["device"] or "not recorded",
                     gpu_cell(m)])
    return md_table(["raw output", "written by", "CPU cores", "torch threads", "torch", "device", "GPU"], rows)


# --------------------------------------------------------------------------------------------------------------
# Style transfer by optimisation: benchmarks/stylize.py

STYLIZE_METHODS = (("percept", "**percept**"), ("reference_loop", "reference loop (a)"), ("pastiche", "pastiche (b)"))


@table("stylize-setup")
def stylize_setup(ctx: Ctx) -> str:
    d = ctx.json("bench_stylize_cpu.json")
    m = d["machine"]
    return (f"Weights `{d['weights']}` for all three methods, {d['iterations']} L-BFGS iterations per run, "
            f"sizes {', '.join(f'{s} px' for s in d['sizes'])}; pastiche {m['pastiche_version']}, "
            f"percept {m['percept_version']}, torch `{m['torch_version']}` on {m['cpu_count']} CPU cores "
            f"({m['torch_threads']} threads), device `{m['device']}`.")


@table("stylize-cpu")
def stylize_cpu(ctx: Ctx) -> str:
    d = ctx.json("bench_stylize_cpu.json")
    rows = []
    for size, r in d["sizes"].items():
        for key, label in STYLIZE_METHODS:
            x = r[key]
            me = key == "percept"
            rows.append([size, label, bold(num(x["seconds_per_iteration"], 3), me), gpu_cell(d["machine"]),
                         num(x["peak_rss_mib"]), num(x["content_loss"], 3), num(x["style_loss"], 4),
                         bold(num(x["total_loss"], 2), me)])
    return md_table(["size (px)", "method", "s / iteration, CPU", "s / iteration, GPU", "peak RSS (MiB)",
                     "content loss", "style loss", "total loss"], rows)


@table("stylize-summary")
def stylize_summary(ctx: Ctx) -> str:
    d = ctx.json("bench_stylize_cpu.json")
    sizes = list(d["sizes"])
    big = sizes[-1]
    target = ctx.const(1.5)  # checks.speedup_512_ge_1.5
    speed = [f"{num(d['sizes'][s]['speedup_vs_reference'], 2)}× at {s} px" for s in sizes]
    same = all(d["sizes"][s]["percept"]["total_loss"] == d["sizes"][s]["reference_loop"]["total_loss"]
               for s in sizes)
    lines = [(f"- **percept vs the reference loop: faster per iteration by {', '.join(speed)}** (target ≥ {target}× at {big} px: "
             f"{'met' if d['checks']['speedup_512_ge_1.5'] else 'not met'}), with "
             f"{'identical losses (same objective)' if same else 'different losses'}: the saving is the per-step "
             f"target computation and the layers after relu5_1.")]
    b = d["sizes"][big]
    ratio = ctx.calc(b["pastiche"]["total_loss"] / b["percept"]["total_loss"])
    reach = "; ".join(f"{num(d['sizes'][s]['percept_seconds_to_pastiche_loss'], 1)} s against "
                      f"{num(d['sizes'][s]['pastiche_seconds_optimising'], 1)} s at {s} px" for s in reversed(sizes))
    lines.append(f"- **percept vs pastiche**: percept reaches a **{num(ratio, 1)}× lower loss** "
                 f"({num(b['percept']['total_loss'], 2)} vs {num(b['pastiche']['total_loss'], 2)} at {big} px) and "
                 f"reaches pastiche's final loss sooner: {reach} (percept counted from the `stylize()` call, model "
                 f"loading included; pastiche's optimisation only).")
    per_it = []
    for s in sizes:
        a, p = d["sizes"][s]["percept"]["seconds_per_iteration"], d["sizes"][s]["pastiche"]["seconds_per_iteration"]
        faster, slower = ("percept", "pastiche") if a < p else ("pastiche", "percept")
        per_it.append(f"{faster} {num(ctx.calc(100 * (1 - min(a, p) / max(a, p))))} % less time than {slower} at {s} px "
                      f"({num(a, 3)} against {num(p, 3)} s, ratio {num(ctx.calc(a / p), 3)})")
    repeats = d.get("repeats", 1)
    runs = f"median of {repeats} runs each, alternating" if repeats > 1 else "one run each"
    lines.append(f"- Per iteration the two do the same network work (both precompute the targets and stop at "
                 f"relu5_1; {runs}): {', '.join(per_it)}.")
    spread = max(ctx.calc(100 * (max(x) / min(x) - 1)) for x in
                 ([d["sizes"][s][k]["peak_rss_mib"] for k, _ in STYLIZE_METHODS] for s in sizes))
    lines.append(f"- Peak memory is the process's maximum resident set (Python, torch, the network and the "
                 f"optimisation); at each size the three are within {num(spread)} % of each other.")
    return "\n".join(lines)


@table("stylize-multiscale")
def stylize_multiscale(ctx: Ctx) -> str:
    d = ctx.json("bench_stylize_cpu.json")["multiscale"]
    one, c2f = d["single_scale"], d["coarse_to_fine"]
    target, n = d["target_total_loss"], d["iterations_per_stage"]
    sooner = ctx.calc(100 * (one["seconds_to_target"] - c2f["seconds_to_target"]) / one["seconds_to_target"])
    lower = ctx.calc(100 * (one["final_total_loss"] - c2f["final_total_loss"]) / one["final_total_loss"])
    rows = [[f"single scale {d['size']}, {n} iterations", num(one["seconds_to_target"], 1),
             num(one["seconds_total"], 1), num(one["final_total_loss"], 3)],
            [f"coarse-to-fine {d['scales']} → {d['size']}, {n} iterations per stage",
             f"**{num(c2f['seconds_to_target'], 1)}** (−{num(sooner)} %)", num(c2f["seconds_total"], 1),
             f"**{num(c2f['final_total_loss'], 3)}** (−{num(lower)} %)"]]
    return (f"Time until the total loss first reaches the single-scale run's final loss ({num(target, 3)} after "
            f"{n} iterations at {d['size']} px), counted from the `stylize()` call, final-stage steps only:\n\n"
            + md_table(["run", f"seconds to loss {num(target, 3)}", "total seconds", "final total loss"], rows)
            + f"\n\nCoarse-to-fine reaches the same loss {num(sooner)} % sooner and ends {num(lower)} % lower.")


# --------------------------------------------------------------------------------------------------------------
# Transfer learning: benchmarks/transfer.py, benchmarks/flowers.py

@table("transfer-recipes")
def transfer_recipes(ctx: Ctx) -> str:
    d = ctx.json("bench_transfer_cpu.json")
    ds, tv, pd = d["dataset"], d["torchvision_tutorial"], d["percept_default"]
    t, p = tv["params"], pd["params"]
    setup = (f"{d['backbone']} on hymenoptera ({', '.join(ds['classes'])}: {ds['train']} train / {ds['val']} val "
             f"images), epoch budget {d['epoch_budget']}, seed {d['seed']}, torch `{d['machine']['torch_version']}` "
             f"on {d['machine']['cpu_count']} CPU cores, one process.")
    rows = [[(f"torchvision tutorial: {t['unfreeze']} layers, {t['optimizer']} lr {t['lr']} momentum {t['momentum']}, "
             f"`{t['scheduler']}`, batch {t['batch_size']}"),
             num(tv["val_accuracy"], 3), str(tv["best_epoch"]), f"{num(tv['seconds'], 1)} s", gpu_cell(d["machine"])],
            [(f"**percept default**: {p['head_epochs']} head epochs, then the top {p['unfreeze']} stages with "
             f"discriminative learning rates, {p['optimizer']} lr {p['lr']}, {p['schedule']} schedule, label "
             f"smoothing {p['label_smoothing']}, `{p['augment']}` augmentation, batch {p['batch_size']}"),
             bold(num(pd["val_accuracy"], 3)), str(pd["best_epoch"]), bold(f"{num(pd['seconds'], 1)} s"),
             gpu_cell(d["machine"])]]
    points = ctx.calc(100 * (pd["val_accuracy"] - tv["val_accuracy"]))
    speed = ctx.calc(tv["seconds"] / pd["seconds"])
    c = d["checks"]
    summary = (f"percept's default is {num(points, 1)} points more accurate and {num(speed, 2)}× faster "
               f"(`percept_more_accurate: {str(c['percept_more_accurate']).lower()}`, "
               f"`percept_faster: {str(c['percept_faster']).lower()}`).")
    return setup + "\n\n" + md_table(["recipe", "best validation accuracy", "best epoch", "wall time, CPU",
                                      "wall time, GPU"], rows) + "\n\n" + summary



SMALL_SET_RECIPES = (
    ("features", "frozen features, `avg` pooling (default)"),
    ("max", "frozen features, `--pooling max`"),
    ("gram", "frozen features, `--features stage3,stage5 --pooling gram`"),
    ("bilinear", "frozen features, `--features stage5 --pooling bilinear`"),
    ("finetune_before", "fine-tuning from a random head (`--head-init kaiming --no-freeze-bn --lr 5e-4`)"),
    ("finetune", "`--strategy finetune` (defaults)"),
    ("auto", "`--strategy auto` (defaults)"),
)
SMALL_SET_NAMES = {"textures": "texture patches", "hymenoptera": "hymenoptera", "flowers": "flowers102_mini"}


@table("transfer-small-sets")
def transfer_small_sets(ctx: Ctx) -> str:
    d = ctx.json("transfer_recipes_cpu.json")
    sets = [s for s in SMALL_SET_NAMES if s in d["results"]]
    res = d["results"]
    header = ["recipe"] + [f"{SMALL_SET_NAMES[s]}: accuracy, wall time" for s in sets]
    rows = []
    for key, label in SMALL_SET_RECIPES:
        if not any(key in res[s] for s in sets):
            continue
        cells = []
        for s in sets:
            r = res[s].get(key)
            if r is None:
                cells.append("not measured")
                continue
            best = max(v["val_accuracy"] for v in res[s].values())
            cells.append(f"{bold(num(r['val_accuracy'], 3), r['val_accuracy'] == best)}, {num(r['seconds'])} s")
        rows.append([label] + cells)
    info = ", ".join(f"{SMALL_SET_NAMES[s]} {d['sets'][s]['classes']} classes, {d['sets'][s]['train']} training / "
                     f"{d['sets'][s]['val']} validation images" for s in sets)
    m = d["machine"]
    loads = [r["load_average"][0] for s in sets for r in res[s].values()]
    setup = (f"{d['backbone']}, seed {d['seed']}, torch `{m['torch_version']}` on {m['cpu_count']} CPU cores, one "
             f"run at a time from an empty feature cache ({info}). Other jobs shared the machine during some runs "
             f"(1-minute load average {num(min(loads), 1)}–{num(max(loads), 1)}, recorded per run in the JSON), so "
             "wall times are upper bounds; accuracies do not depend on it.")
    notes = []
    for s in sets:
        c, rs = d["checks"][s], res[s]
        line = (f"{SMALL_SET_NAMES[s]}: best `{c['best_recipe']}`, "
                f"{num(ctx.calc(100 * c['best_minus_default']), 1)} points above the default")
        if "finetune" in rs:
            line += ("; fine-tuning " + ("not below" if c["finetune_not_below_features"] else "below")
                     + " the frozen features")
        if "finetune_time_ratio" in c:
            line += f", in {num(c['finetune_time_ratio'], 2)}× the time of fine-tuning from a random head"
        if "auto" in rs:
            line += f"; `auto` chose `{rs['auto']['auto']['chosen']}`"
        notes.append(line + ".")
    return setup + "\n\n" + md_table(header, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


VIDEO_CLIPS = {"bigbuckbunny.mp4": "bigbuckbunny", "carphone_pristine.mp4": "carphone"}


@table("video")
def video(ctx: Ctx) -> str:
    d = ctx.json("video_cpu.json")
    order = {"optimize": 0, "adain": 1, "network": 2}
    runs = sorted(d["runs"], key=lambda r: (order.get(r["method"], 9), r["size"], r["clip"]))
    header = ["method", "clip", "size (px)", "frames", "frames/s alone → steady", "temporal error alone → steady",
              "style loss alone → steady", "input's own error"]
    rows, held = [], 0
    for r in runs:
        a, b = r["naive"], r["temporal"]
        error = ctx.calc(b["temporal_error"] / a["temporal_error"] - 1)
        style = ctx.calc(b["style_loss"] / a["style_loss"] - 1)
        ok = error <= -0.5 and style <= 0.1
        held += ok
        rows.append([f"`{r['method']}`", VIDEO_CLIPS.get(r["clip"], r["clip"]), f"{r['size_px'][0]}×{r['size_px'][1]}",
                     num(r["frames"]), f"{num(a['frames_per_s'], 2)} → {num(b['frames_per_s'], 2)}",
                     f"{num(a['temporal_error'], 2)} → {num(b['temporal_error'], 2)} ({bold(pct(error, 0), ok)})",
                     f"{num(a['style_loss'], 3)} → {num(b['style_loss'], 3)} ({'+' if style > 0 else ''}{pct(style, 0)})",
                     num(r["input_temporal_error"], 2)])
    m = d["machine"]
    loads = [r["load_average_1min"] for r in runs if "load_average_1min" in r]
    iterations = sorted({r["iterations"] for r in runs if r.get("iterations")})
    steps = (f"optimisation: {' or '.join(num(i) for i in iterations)} steps per frame alone (the first frame of "
             "the steady run too, later frames half as many); " if iterations else "")
    net = d["network"]
    if isinstance(net, dict):
        net = (f"{num(net['steps'])} steps at {num(net['size'])} px, batch {num(net['batch_size'])}, on "
               f"{num(net['photos'])} photos" + (f", {num(net['minutes'])} minutes of `percept train-style` on this "
                                                 "CPU" if net.get("minutes") else ""))
    setup = (f"Style: {d['style'].split('/')[-1]}; {steps}trained network: {net}. torch `{m['torch_version']}` on {m['cpu_count']} CPU cores"
             + (f", 1-minute load average {num(min(loads), 1)}–{num(max(loads), 1)}" if loads else "")
             + ". Frames per second include reading, optical flow, writing the frames and the video.")
    note = (f"{num(ctx.calc(held))} of {num(ctx.calc(len(rows)))} runs hold both targets (temporal error at least "
            f"{pct(ctx.const(0.5), 0)} lower, style loss at most {pct(ctx.const(0.1), 0)} higher).")
    return setup + "\n\n" + md_table(header, rows) + "\n\n" + note


@table("refactor-check")
def refactor_check(ctx: Ctx) -> str:
    d = ctx.json("refactor_check_cpu.json")
    rows = [[f"stylize {r['size']} px", r["method"].replace("_", " "), num(r["total_loss_before"], 4),
             num(r["total_loss_after"], 4), "yes" if r["same_losses"] else "**no**", num(r["s_per_it_before"], 3),
             num(r["s_per_it_after"], 3), num(ctx.calc(r["s_per_it_after"] / r["s_per_it_before"]), 2)]
            for r in d["stylize"]["rows"]]
    rows += [[f"transfer", r["method"].replace("_", " "), num(r["val_accuracy_before"], 4),
              num(r["val_accuracy_after"], 4), "yes" if r["same_accuracy"] else "**no**", "", "", ""]
             for r in d["transfer"]["rows"]]
    table_ = md_table(["benchmark", "method", "loss or accuracy before", "after", "same", "s / it before",
                       "s / it after", "after / before"], rows)
    runs = d["stylize_paired_256"]["runs"]
    before = [r["seconds_per_iteration"] for r in runs if r["code"] == "before"]
    after = [r["seconds_per_iteration"] for r in runs if r["code"] == "after"]
    mean_b, mean_a = ctx.calc(sum(before) / len(before)), ctx.calc(sum(after) / len(after))
    q = d["transfer_quiet_before"]
    new = next(r for r in d["transfer"]["rows"] if r["method"] == "percept_default")
    paired = (f"Alternating runs of percept alone at 256 px (before, after, three times): "
              f"{', '.join(num(x, 3) for x in before)} s / iteration before, {', '.join(num(x, 3) for x in after)} "
              f"after; means {num(mean_b, 3)} and {num(mean_a, 3)} ({num(ctx.calc(mean_a / mean_b), 2)}×).")
    transfer = (f"Fine-tuning with percept's defaults took {num(new['seconds_after'], 1)} s after, against "
                f"{num(q['percept_default_seconds'], 1)} s in a quiet run of the code before (same accuracy, "
                f"{num(q['percept_default_val_accuracy'], 4)}); the transfer run before in this comparison shared "
                f"the machine with other jobs, so only its accuracies are compared.")
    return table_ + "\n\n" + paired + "\n\n" + transfer

FLOWERS_ROWS = (
    ("features", "`features`: frozen backbone + logistic regression (C by cross-validation)"),
    ("features_augmented", "`features` + augmented copies (grouped cross-validation)"),
    ("finetune", "`finetune` (defaults)"),
    ("finetune_no_augment", "`finetune --augment none`"),
    ("scratch", "`finetune --no-pretrained`: the same network from random weights, same budget and recipe"),
)


@table("flowers")
def flowers(ctx: Ctx) -> str:
    d = ctx.json("bench_flowers_cpu.json")
    r = d["results"]
    best = max((k for k in r if k != "scratch"), key=lambda k: r[k]["val_accuracy"])
    rows = []
    for key, label in FLOWERS_ROWS:
        x = r[key]
        s = x["settings"]
        extra = [f"`{k}`: {v}" for k, v in s.items() if k != "pretrained"]
        acc = bold(num(x["val_accuracy"], 3), key == best)
        if x["epochs_run"] is not None:
            acc += f" ({x['epochs_run']} epochs run)"
        rows.append([label, ", ".join(extra) or "—", acc, f"{num(x['seconds'])} s"])
    gap = d["best_transfer_minus_scratch"]
    target = ctx.const(40)  # checks.transfer_beats_scratch_by_40_points
    ft = [r["finetune"]["val_accuracy"], r["finetune_no_augment"]["val_accuracy"]]
    fe = [r["features"]["val_accuracy"], r["features_augmented"]["val_accuracy"]]
    lo, hi = ctx.calc(100 * (min(ft) - max(fe))), ctx.calc(100 * (max(ft) - min(fe)))
    aug_ft = ctx.calc(100 * (r["finetune_no_augment"]["val_accuracy"] - r["finetune"]["val_accuracy"]))
    aug_fe = ctx.calc(100 * (r["features_augmented"]["val_accuracy"] - r["features"]["val_accuracy"]))
    ok = d["checks"]["transfer_beats_scratch_by_40_points"]
    return (f"{d['backbone']}, percept's defaults unless stated, {d['cpu_threads']} CPU threads, torch "
            f"`{d['torch']}`.\n\n"
            + md_table(["configuration", "settings", "validation accuracy", "wall time, CPU"], rows)
            + f"\n\nBest transfer result minus from scratch: **{num(100 * gap, 1)} points** (target ≥ {target}: "
              f"{'met' if ok else 'not met'}). Fine-tuning beats the frozen features (with or without augmented "
              f"copies) by {num(lo, 1)}–{num(hi, 1)} points; without augmentation fine-tuning gains {num(aug_ft, 1)} points, and augmented copies add "
              f"{num(aug_fe, 1)} points to the frozen features.")


# --------------------------------------------------------------------------------------------------------------
# Real-time style transfer: benchmarks/feedforward.py, feedforward_quality.py, adain_alpha.py

@table("feedforward-speed")
def feedforward_speed(ctx: Ctx) -> str:
    d = ctx.json("bench_feedforward_cpu.json")
    target = ctx.const(200)  # the speed-up target at 512 px
    rows = []
    iters = timed = None
    for size, r in d["sizes"].items():
        tn, ad, op, sp = r["transform_net"], r["adain"], r["optimization"], r["speedup_vs_optimization"]
        iters = round(ctx.calc(op["seconds_per_image"] / op["seconds_per_iteration"]))
        timed = op["timed_iterations"]
        speed = f"{num(sp['transform_net'])}× / {num(sp['adain'])}×"
        if size == "512":
            speed = f"**{speed}** (target ≥ {target}×)"
        rows.append([f"{tn['size'][0]} × {tn['size'][1]}",
                     f"{num(tn['seconds_per_image'], 3)} s, {num(tn['peak_rss_mib'])} MiB",
                     f"{num(ad['seconds_per_image'], 2)} s, {num(ad['peak_rss_mib'])} MiB",
                     (f"{num(op['seconds_per_iteration'], 3)} s; {num(op['seconds_per_image'], 1)} s, "
                     f"{num(op['peak_rss_mib'])} MiB"), speed, gpu_cell(d["machine"])])
    m = d["memory_4096"]
    first = d.get("memory_4096_first_run_tiled")
    tiled_s = sorted([m["tiled"]["seconds_per_image"]] + ([first["seconds_per_image"]] if first else []))
    tiled_s = "–".join(num(s, 1) for s in tiled_s)
    u = m["untiled"]
    rows.append([f"{u['size'][0]} × {u['size'][1]}",
                 (f"one pass {num(u['seconds_per_image'], 1)} s, {num(u['peak_rss_mib'])} MiB; tiles of "
                 f"{m['tiled']['tile']} px {tiled_s} s, **{num(m['tiled']['peak_rss_mib'])} MiB**"),
                 "", "", "", gpu_cell(d["machine"])])
    return md_table(["size (px)", "transform network", "AdaIN",
                     f"optimisation: s / iteration (timed over {timed}); {iters} iterations (extrapolated)",
                     "speed-up: network / AdaIN", "GPU"], rows)


@table("multistyle-speed")
def multistyle_speed(ctx: Ctx) -> str:
    """The shipped 26-style network in percept, beside Johnson's network and the peer's onnxruntime (feedforward.md)."""
    d = ctx.json("bench_multistyle_cpu.json")
    rows = []
    for r in d["sizes"].values():
        jn, ms, rt = r["transform_net"], r["multistyle26"], r["multistyle26_onnxruntime"]
        rows.append([f"{ms['size'][0]} × {ms['size'][1]}",
                     f"{num(jn['seconds_per_image'], 3)} s, {num(jn['peak_rss_mib'])} MiB",
                     bold(f"{num(ms['seconds_per_image'], 3)} s, {num(ms['peak_rss_mib'])} MiB"),
                     f"{num(rt['seconds_per_image'], 3)} s, {num(rt['peak_rss_mib'])} MiB",
                     num(ctx.calc(ms["seconds_per_image"] / rt["seconds_per_image"]), 2), gpu_cell(d["machine"])])
    m = d["machine"]
    runtime = next(iter(d["sizes"].values()))["multistyle26_onnxruntime"]["onnxruntime_version"]
    return (md_table(["size (px)", "Johnson's network in percept", "**multistyle26 in percept**",
                      f"multistyle26 in onnxruntime {runtime}", "percept / onnxruntime", "GPU"], rows)
            + f"\n\nSeconds per image (mean of {num(next(iter(d['sizes'].values()))['multistyle26']['repeats'])} after "
            f"a warm-up) and peak memory of the process, torch `{m['torch_version']}` on {num(m['cpu_count'])} CPU "
            "cores. percept's columns are whole `stylize_with_model` calls (record included); onnxruntime's is the "
            "network alone.")


@table("feedforward-4096")
def feedforward_4096(ctx: Ctx) -> str:
    """The transform network at 4096 px in one pass and in tiles (for docs/feedforward.md)."""
    d = ctx.json("bench_feedforward_cpu.json")
    m, first = d["memory_4096"], d.get("memory_4096_first_run_tiled")
    u, t = m["untiled"], m["tiled"]
    tiled = sorted([t["seconds_per_image"]] + ([first["seconds_per_image"]] if first else []))
    cut = ctx.calc(u["peak_rss_mib"] / t["peak_rss_mib"])
    return (md_table([f"{u['size'][0]} × {u['size'][1]}", "seconds (CPU)", "peak memory"],
                     [["one pass", f"{num(u['seconds_per_image'], 1)} s", bold(f"{num(u['peak_rss_mib'])} MiB")],
                      [f"tiles of {t['tile']} px, overlap {t['overlap']}",
                       " and ".join(f"{num(x, 1)} s" for x in tiled) + (f" ({num(ctx.calc(len(tiled)))} runs)" if first else ""),
                       bold(f"{num(t['peak_rss_mib'])} MiB")]])
            + f"\n\nTiles cut the peak memory {num(cut, 1)}×.")


@table("methods-512")
def methods_512(ctx: Ctx) -> str:
    """The three stylisation methods side by side at 512 px (for README.md's comparison table)."""
    d = ctx.json("bench_feedforward_cpu.json")
    q = ctx.json("feedforward_quality_cpu.json")
    r = d["sizes"]["512"]
    op, ad, tn, sp = r["optimization"], r["adain"], r["transform_net"], r["speedup_vs_optimization"]
    iters = round(ctx.calc(op["seconds_per_image"] / op["seconds_per_iteration"]))
    ratios = [p["style_ratio"] for p in q["photos"].values()]
    size = f"{op['size'][0]} × {op['size'][1]}"
    return md_table(
        ["", "optimisation (`stylize`)", "AdaIN (`--method adain`)", "trained network (`--model`)"],
        [[f"seconds per {size} image, CPU", (f"{num(op['seconds_per_image'])} s ({iters} L-BFGS iterations, "
          f"extrapolated from {op['timed_iterations']})"), (f"{num(ad['seconds_per_image'], 2)} s "
          f"({num(sp['adain'])}× faster)"), f"{num(tn['seconds_per_image'], 2)} s ({num(sp['transform_net'])}× faster)"],
         [f"seconds per {size} image, GPU", NOT_MEASURED, NOT_MEASURED, NOT_MEASURED],
         [f"style loss / optimisation's, {q['size']} px", "(the reference)", NOT_MEASURED,
          (f"{num(min(ratios), 2)}–{num(q['max_style_ratio'], 2)}× (mean {num(q['mean_style_ratio'], 2)}×) after "
          f"{num(q['training']['steps'])} training steps")]])


FF_QUALITY = ("feedforward_quality_cpu.json", "feedforward_quality_40min_cpu.json",
              "feedforward_quality_60min_cpu.json", "feedforward_quality_init_cpu.json")


@table("feedforward-quality")
def feedforward_quality(ctx: Ctx) -> str:
    target = ctx.const(2)  # style loss within 2x of optimisation's
    rows = []
    for name in FF_QUALITY:
        if not (ctx.docs / name).exists():
            continue
        d = ctx.json(name)
        ratios = [p["style_ratio"] for p in d["photos"].values()]
        path, _, note = d["model"].partition(" ")
        within = ctx.calc(sum(r <= target for r in ratios))
        rows.append([f"`{path}` {note}".strip(), num(d["training"]["steps"]), f"{d['size']} px",
                     bold(num(d["mean_style_ratio"], 2)), f"{num(min(ratios), 2)}–{num(d['max_style_ratio'], 2)}",
                     f"{num(within)} / {num(ctx.calc(len(ratios)))}"])
    return md_table(["network", "training steps", "measured at", "mean style-loss ratio, network / optimisation",
                     "range over the photos", f"photos within {target}×"], rows)


@table("stylize-regions")
def stylize_regions(ctx: Ctx) -> str:
    """Style by region: each region's Gram error to its own style and to the other (for README.md)."""
    d = ctx.json("regions_cpu.json")
    layers = ctx.calc(len(d["layers"]))
    rows = []
    for run in d["runs"]:
        for r, base in zip(run["regions"], run["content_baseline"]):
            rows.append([r["region"], pct(r["share"], 0), r["style"], bold(num(r["own"], 2)), num(r["other"], 2),
                         bold(f"{num(r['ratio'], 2)}×"), f"{num(r['layers_own_lower'])} of {num(layers)}",
                         f"{num(base['own'], 2)} / {num(base['other'], 2)}"])
    w, h = d["size_px"]
    seconds = " and ".join(f"{num(run['seconds'])} s" for run in d["runs"])
    table = md_table(["region", "share of the image", "its style", "Gram error to its style",
                      "to the other style", "other / own", "style layers where its own style is closer",
                      "the photo before: own / other"], rows)
    return (table + f"\n\n`{d['content']}` at {num(w)} × {num(h)} px, mask `{d['mask']}`, {num(d['iterations'])} "
            f"L-BFGS iterations{', the two styles one way and then swapped' if len(d['runs']) > 1 else ''} "
            f"({seconds} on the CPU, shared with other work). Errors are the "
            f"relative Gram errors of the region (guided Gram matrix) summed over the {num(layers)} style layers.")


@table("adain-reference")
def adain_reference(ctx: Ctx) -> str:
    """AdaIN's whole process against the reference process, alternating runs (for docs/benchmarks.md, adain.md)."""
    d = ctx.json("adain_speed_cpu.json")
    m, med, px = d["machine"], d["median"], d["pixels"]
    rows = [[label, num(med[key]["seconds"], 2), num(med[key]["peak_rss_mib"]),
             ", ".join(num(r["seconds"], 2) for r in d["runs"][key])]
            for key, label in (("percept", "**percept** `stylize --method adain`"),
                               ("reference", "reference process (pytorch-AdaIN's `test.py` steps)"))]
    setup = (f"Whole process from the shell at {d['size']} px (output {d['output_size'][0]} × "
             f"{d['output_size'][1]}), content `{Path(d['content']).name}`, style `{Path(d['style']).name}`, the same "
             f"weight files, {num(ctx.calc(d['repeats']))} alternating runs each after one untimed run of each, "
             f"torch `{m['torch_version']}` on {m['cpu_count']} CPU cores.")
    summary = (f"percept takes **{num(d['time_ratio'], 2)}×** the reference's time (target ≤ "
               f"{num(ctx.const(0.7), 1)}×) and **{num(d['memory_ratio'], 2)}×** its peak memory. The two outputs "
               f"differ by {num(px['mean_abs_diff'], 2)} grey levels on average (largest {num(px['max_abs_diff'])}; "
               f"{num(ctx.calc(100 * px['share_over_8_levels']), 1)} % of pixels by more than "
               f"{num(ctx.const(8))}).")
    return (setup + "\n\n" + md_table(["process", "median seconds", "median peak memory (MiB)", "every run (s)"],
                                       rows) + "\n\n" + summary)


@table("adain-alpha")
def adain_alpha(ctx: Ctx) -> str:
    d = ctx.json("adain_alpha_512.json")
    res = d["results"]
    n = ctx.calc(len(res))
    ms = ctx.calc(sum(r["monotonic"]["meanstd_style"] for r in res.values()))
    gr = ctx.calc(sum(r["monotonic"]["gram_style"] for r in res.values()))
    alphas = [a["alpha"] for a in next(iter(res.values()))["alphas"]]
    not_gram = [f"`{k}`" for k, r in res.items() if not r["monotonic"]["gram_style"]]
    return (f"AdaIN at {d['size']} px, {d['styles']} styles, α = {', '.join(num(a, 2) for a in alphas)}: the "
            f"paper's mean/std style loss falls monotonically in α for {num(ms)} of {num(n)} styles; percept's Gram "
            f"loss for {num(gr)} of {num(n)}" + (f" (not for {', '.join(not_gram)})." if not_gram else "."))


@table("adain-alpha-styles")
def adain_alpha_styles(ctx: Ctx) -> str:
    """Per style: both style losses at each alpha (for docs/adain.md)."""
    d = ctx.json("adain_alpha_512.json")
    def series(alphas: list[dict], metric: str) -> str:
        vals = [a[metric] for a in alphas]
        # bold a value that breaks the monotonic fall
        return ", ".join(bold(num(v, 2), i > 0 and v > vals[i - 1]) for i, v in enumerate(vals))

    rows = [[f"`{key}`", series(r["alphas"], "meanstd_style"), series(r["alphas"], "gram_style")]
            for key, r in d["results"].items()]
    alphas = " → ".join(num(a["alpha"], 2) for a in next(iter(d["results"].values()))["alphas"])
    return md_table(["style", f"mean/std style loss, α = {alphas}", f"Gram style loss, α = {alphas}"], rows)


@table("adain-alpha-seconds")
def adain_alpha_seconds(ctx: Ctx) -> str:
    """The range of seconds per image of the alpha benchmark (for docs/adain.md)."""
    d = ctx.json("adain_alpha_512.json")
    secs = [a["seconds"] for r in d["results"].values() for a in r["alphas"]]
    return (f"{num(min(secs), 1)}–{num(max(secs), 1)} s per image at {d['size']} px "
            f"({num(ctx.calc(len(secs)))} images).")


@table("feedforward-quality-photos")
def feedforward_quality_photos(ctx: Ctx) -> str:
    """Per photo: the 20-minute network against 300 L-BFGS iterations (for docs/feedforward.md)."""
    d = ctx.json("feedforward_quality_cpu.json")
    rows = []
    for photo, p in d["photos"].items():
        n, o = p["network"], p["optimization"]
        rows.append([photo, num(n["style"], 3), num(o["style"], 3), num(p["style_ratio"], 2),
                     f"{num(n['content'], 2)} / {num(o['content'], 2)}",
                     f"{num(n['seconds'], 2)} / {num(o['seconds'])}"])
    return (f"At {d['size']} px, {d['iterations']} L-BFGS iterations for the optimisation:\n\n"
            + md_table(["photo", "style loss, network", f"style loss, {d['iterations']} L-BFGS", "ratio",
                        "content loss, network / L-BFGS", "seconds, network / L-BFGS"], rows))


# --------------------------------------------------------------------------------------------------------------
# Understanding CNNs: benchmarks/saliency.py, attack.py, visualise.py, feature_space.py

SALIENCY_NAMES = {"gradient": "gradient", "smoothgrad": "SmoothGrad", "guided": "guided backprop",
                  "gradcam": "Grad-CAM", "occlusion": "occlusion"}


@table("understand")
def understand(ctx: Ctx) -> str:
    sal = ctx.json("saliency_cpu.json")
    atk = ctx.json("attack_pgd_cpu.json")
    vis = ctx.json("visualise_cpu.json")
    fs = ctx.json("feature_space_cpu.json")
    rows = []
    two = ctx.const(2)
    meth = sal["methods"]
    figs = ", ".join(bold(f"{SALIENCY_NAMES.get(k, k)} {num(v['inside_over_outside'], 2)}", v["meets_2x"])
                     for k, v in meth.items())
    secs = ", ".join(f"{SALIENCY_NAMES.get(k, k)} {num(v['seconds'], 1)} s" for k, v in meth.items())
    met = ", ".join(SALIENCY_NAMES.get(k, k) for k, v in meth.items() if v["meets_2x"])
    rows.append([(f"saliency inside / outside the cat box ({sal['photo']}, {sal['input'][1]} × {sal['input'][0]}, "
                 f"class {sal['class']})"), f"{figs} ({secs})", f"≥ {two}×: met by {met}"])
    ok = ctx.calc(sum(r["success"] for r in atk["results"]))
    levels = ctx.calc(atk["epsilon"] * ctx.const(255))
    rate_target = ctx.const(0.95)
    rows.append([f"targeted PGD, ε = {num(levels)}/255, {atk['steps']} steps, {atk['photos']} photos, random targets",
                 f"**{num(ok)} / {num(ctx.calc(len(atk['results'])))}** reach their target ({num(atk['seconds'], 1)} s in all)",
                 f"≥ {pct(rate_target, 0)}: {'met' if atk['success_rate'] >= rate_target else 'not met'}"])
    ci = vis["class_image"]
    gain = ctx.const(10)
    rows.append([f"class-image logit gain, {ci['size']} px, {ci['steps']} steps",
                 ", ".join(f"{r['class']} +{num(r['gain'], 1)}" for r in ci["results"])
                 + f" ({num(ci['seconds'])} s for {num(ctx.calc(len(ci['results'])))})",
                 f"≥ +{gain}: {'met' if vis['checks']['class_image_gain_ge_10'] else 'not met'}"])
    inv = vis["invert"]
    psnr = ctx.const(20)
    best = max(r["psnr_db"] for r in inv["results"])
    rows.append([(f"inversion PSNR, {inv['model']}, {inv['image']} at {inv['size'][1]} × {inv['size'][0]} px, "
                 f"{inv['steps']} {inv['optimizer']} evaluations"),
                 ", ".join(f"{r['layer']} " + bold(f"{num(r['psnr_db'], 1)} dB", r["psnr_db"] == best)
                           for r in inv["results"]) + f" ({num(inv['seconds'])} s for {num(ctx.calc(len(inv['results'])))})",
                 f"≥ {psnr} dB from an early layer: {'met' if vis['checks']['invert_early_psnr_ge_20'] else 'not met'}"])
    for i, dr in enumerate(vis["dream"]):
        rows.append([(f"DeepDream RMS activation, {dr['model']} `{dr['layer']}`, {dr['size'][1]} × {dr['size'][0]} px, "
                     f"{dr['octaves']} octaves × {dr['steps']} steps"),
                     f"{num(dr['rms_before'], 3)} → {num(dr['rms_after'], 3)}, "
                     + bold(f"×{num(dr['ratio'], 2)}", i == 0) + f" ({num(dr['seconds'])} s)",
                     f"≥ {two}×: {'met' if vis['checks']['dream_ratio_ge_2'] else 'not met'}" if i == 0
                     else "(comparison)"])
    knn = "; ".join(f"{r['layer']} ({num(r['dim'])} dimensions): top-1 {pct(r['knn_top1'])}, features {num(r['features_seconds_first'], 1)} s "
                    f"first / {num(r['features_seconds_cached'], 2)} s cached" for r in fs["rows"])
    rows.append([f"k-NN on {fs['data']}", knn, "—"])
    return md_table(["what", "figure (CPU)", "target"], rows)


@table("saliency")
def saliency(ctx: Ctx) -> str:
    """Saliency inside/outside ratio and seconds per method (for docs/understand.md)."""
    sal = ctx.json("saliency_cpu.json")
    meth = sal["methods"]
    two = ctx.const(2)
    names = ["", *(SALIENCY_NAMES.get(k, k) for k in meth)]
    met = [SALIENCY_NAMES.get(k, k) for k, v in meth.items() if v["meets_2x"]]
    return (f"`{sal['model']}`, the whole photo `{sal['photo']}` at {sal['input'][1]} × {sal['input'][0]} px, the "
            f"cat's box covering {pct(sal['box_fraction'], 0)} of it, top class {sal['class']}: mean saliency inside "
            f"the box over mean saliency outside, with the CLI defaults (bold: ≥ {two}×, met by "
            f"{', '.join(met) if met else 'none'}).\n\n"
            + md_table(names, [["inside / outside", *(bold(num(v["inside_over_outside"], 2), v["meets_2x"])
                                                     for v in meth.values())],
                               ["seconds (CPU)", *(f"{num(v['seconds'], 1)} s" for v in meth.values())]]))


@table("feature-space")
def feature_space(ctx: Ctx) -> str:
    """k-NN and embedding agreement per layer (for docs/understand.md)."""
    fs = ctx.json("feature_space_cpu.json")
    k = fs["k"]
    setup = (f"`{fs['model']}` on {fs['data']}; {fs['threads']} CPU threads, device `{fs['device']}`. k-NN top-1: the "
             f"share of val images whose nearest training image is of their class; PCA / t-SNE agreement: the leave-one-out nearest-neighbour accuracy "
             f"of the classes in the 2-D map of the val images; features: seconds to compute them with an empty "
             f"cache, then again from the cache.\n\n")
    rows = [[r["layer"], num(r["dim"]), pct(r["knn_top1"]), pct(r["knn_majority_5"]),
             pct(r["neighbours_sharing_class_5"]),
             f"{pct(r['pca_1nn_agreement'])} / {pct(r['tsne_1nn_agreement'])}",
             f"{num(r['features_seconds_first'], 1)} s / {num(r['features_seconds_cached'], 2)} s"] for r in fs["rows"]]
    return setup + md_table(["layer", "dim", "k-NN top-1", f"{k} nearest: majority vote", f"{k} nearest: share of the query's class",
                     "PCA / t-SNE nearest-neighbour agreement", "features, first / cached"], rows)


@table("visualise")
def visualise(ctx: Ctx) -> str:
    """Class images, inversion and DeepDream figures (for docs/understand.md)."""
    vis = ctx.json("visualise_cpu.json")
    ci, inv = vis["class_image"], vis["invert"]
    rows = [[f"class-image, {ci['model']}, {ci['size']} px, {ci['steps']} steps",
             "class logit, start → end (gain); rank, probability",
             "; ".join(f"{r['class']} {num(r['start_logit'], 2)} → {num(r['end_logit'], 2)} (**+{num(r['gain'], 1)}**), "
                       f"rank {r['rank']}, p {num(r['probability'], 4)}" for r in ci["results"]),
             num(ci["seconds"])],
            [(f"invert, {inv['model']}, {inv['image']} at {inv['size'][1]} × {inv['size'][0]} px, {inv['steps']} "
             f"{inv['optimizer']} evaluations"), "PSNR (feature error)",
             ", ".join(f"{r['layer']} {num(r['psnr_db'], 1)} dB ({sci(r['feature_error'])})" for r in inv["results"]),
             num(inv["seconds"])]]
    for dr in vis["dream"]:
        rows.append([(f"dream, {dr['model']} `{dr['layer']}`, {dr['size'][1]} × {dr['size'][0]} px, {dr['octaves']} "
                     f"octaves × {dr['steps']} steps"), "RMS activation before → after",
                     (f"{num(dr['rms_before'], 3)} → {num(dr['rms_after'], 3)}, ×{num(dr['ratio'], 2)} "
                     f"(mean square ×{num(dr['mean_square_ratio'], 2)})"), num(dr["seconds"])])
    return md_table(["method", "figure", "result", "seconds (CPU)"], rows)


# --------------------------------------------------------------------------------------------------------------
# Artwork service: benchmarks/service_load.py

SERVICE_LOAD = (("service_load_cpu.json", "embedded"), ("service_load_redis_cpu.json", "Redis (RQ)"))


def _service_runs(ctx: Ctx) -> list[tuple[str, dict]]:
    return [(label, ctx.json(name)) for name, label in SERVICE_LOAD if (ctx.docs / name).exists()]


@table("service-load-summary")
def service_load_summary(ctx: Ctx) -> str:
    loaded = _service_runs(ctx)
    runs = [r for _, d in loaded for r in d["runs"]]
    what, target = loaded[0][1]["what"], loaded[0][1]["target"]
    twice = ctx.calc(sum(len(r["run_twice"]) for r in runs))
    lost = ctx.calc(sum(r["lost"] for r in runs))
    jobs = ctx.calc(sum(r["submitted"] for r in runs))
    n_runs = sorted({s["runs"] for _, d in loaded for s in d["summary"]})
    return (f"{what}. Target: {target}. Each row: {', '.join(map(str, n_runs))} runs; over all {num(jobs)} jobs "
            f"{num(lost)} were lost and {num(twice)} ran twice.")


@table("service-load")
def service_load(ctx: Ctx) -> str:
    rows = []
    for label, d in _service_runs(ctx):
        limit = float(re.search(r"<\s*([\d.]+)\s*ms", d["target"]).group(1))
        for s in d["summary"]:
            rows.append([label, str(s["workers"]), f"{s['completed']} / {s['submitted']}", str(s["lost"]),
                         num(s["median_p50_ms"]),
                         f"{bold(num(s['median_p95_ms']), s['median_p95_ms'] < limit)} ({num(s['worst_p95_ms'])})",
                         num(s["median_jobs_per_min"])])
    return md_table(["mode", "workers", "completed", "lost", "p50 submit, ms (median)",
                     "p95 submit, ms: median (worst)", "jobs/min (median)"], rows)


# --------------------------------------------------------------------------------------------------------------
# Blocks of the topic pages (docs/adain.md, feedforward.md, understand.md, service.md)

STYLIZE_DEFAULT_ITERATIONS = 200  # percept.style.params.StyleParams.iterations (per scale)


def _optimisation_reference(ctx: Ctx, d: dict) -> str:
    """How the optimisation reference of bench_feedforward_cpu.json was timed, in words."""
    op = d["sizes"]["512"]["optimization"]
    n = round(ctx.calc(op["seconds_per_image"] / op["seconds_per_iteration"]))
    return (f"`percept.stylize` at one scale, {n} L-BFGS iterations"
            + (f" (extrapolated from {op['timed_iterations']} timed ones)" if op.get("extrapolated") else ""))


@table("adain-alpha-rises")
def adain_alpha_rises(ctx: Ctx) -> str:
    """Every step of alpha at which a style loss rises instead of falling (for docs/adain.md)."""
    d = ctx.json("adain_alpha_512.json")
    labels = {"meanstd_style": "mean/std style loss", "gram_style": "Gram style loss"}
    found = []
    for key, r in d["results"].items():
        steps = r["alphas"]
        for metric, label in labels.items():
            for a, b in zip(steps, steps[1:]):
                if b[metric] > a[metric]:
                    found.append(f"for `{key}` the {label} rises by {num(ctx.calc(b[metric] - a[metric]), 2)} "
                                 f"between α = {num(a['alpha'], 2)} and {num(b['alpha'], 2)} "
                                 f"({num(a[metric], 2)} → {num(b[metric], 2)}) before falling to "
                                 f"{num(steps[-1][metric], 2)} at α = {num(steps[-1]['alpha'], 2)}")
    n = ctx.calc(len(d["results"]))
    if not found:
        return f"Neither loss rises at any step of α for any of the {num(n)} styles."
    return (f"The only {'rise' if len(found) == 1 else 'rises'} over all {num(n)} styles: " + "; ".join(found)
            + ". The decoder was trained on the mean/std loss, not on the Gram loss.")


@table("adain-speed")
def adain_speed(ctx: Ctx) -> str:
    """AdaIN's seconds and peak memory per image at each size, against optimisation (for docs/adain.md)."""
    d = ctx.json("bench_feedforward_cpu.json")
    m = d["machine"]
    rows = []
    for size, r in d["sizes"].items():
        ad, op = r["adain"], r["optimization"]
        rows.append([f"{ad['size'][0]} × {ad['size'][1]}", num(ad["seconds_per_image"], 2),
                     num(ad["images_per_second"], 2), num(ad["peak_rss_mib"]),
                     f"{num(r['speedup_vs_optimization']['adain'])}× ({num(op['seconds_per_image'], 1)} s)",
                     gpu_cell(m)])
    return (f"`stylize_adain` on {m['cpu_count']} CPU cores ({m['torch_threads']} threads), torch `{m['torch_version']}`, "
            f"float32; content `{Path(d['content']).name}`, style `{Path(d['style']).name}`; each size in a fresh "
            f"process that loads the networks and stylises one image before the "
            f"{num(ctx.calc(min(r['adain']['repeats'] for r in d['sizes'].values())))} timed ones. Optimisation: "
            f"{_optimisation_reference(ctx, d)}.\n\n"
            + md_table(["content (px)", "seconds per image, CPU", "images per second, CPU", "peak memory (MiB)",
                        "faster than optimisation", "seconds per image, GPU"], rows))


@table("feedforward-quality-setup")
def feedforward_quality_setup(ctx: Ctx) -> str:
    """How the 20-minute network was trained and scored (for docs/feedforward.md)."""
    d = ctx.json("feedforward_quality_cpu.json")
    t = d["training"]
    return (f"The network: {num(t['steps'])} training steps of {t['batch_size']} crops of {t['size']} px "
            f"({t['amp']} autocast, lr {t['lr']}, content / style / TV weights {t['content_weight']} / "
            f"{t['style_weight']} / {t['tv_weight']}) from {num(t['content_images'])} photos, style "
            f"`{d['style']}`. Scored on {num(ctx.calc(len(d['photos'])))} photos it never saw, at {d['size']} px: "
            f"one forward pass against {d['iterations']} L-BFGS iterations of `percept.stylize` with the same loss "
            f"(VGG-16, same layers, weights and style image), both scored by the training loss.")


@table("feedforward-quality-summary")
def feedforward_quality_summary(ctx: Ctx) -> str:
    """The 20-minute network against optimisation, in words (for docs/feedforward.md)."""
    d = ctx.json("feedforward_quality_cpu.json")
    target = ctx.const(2)
    ps = d["photos"].values()
    ratios = [p["style_ratio"] for p in ps]
    net_s = [p["network"]["seconds"] for p in ps]
    opt_s = [p["optimization"]["seconds"] for p in ps]
    within = ctx.calc(sum(r <= target for r in ratios))
    met = within == len(ratios)
    return (f"The network stylises each photo in {num(min(net_s), 2)}–{num(max(net_s), 2)} s, the optimisation "
            f"takes {num(min(opt_s))}–{num(max(opt_s))} s. The network's style loss is "
            f"**{num(min(ratios), 2)}–{num(d['max_style_ratio'], 2)}× (mean {num(d['mean_style_ratio'], 2)}×)** the "
            f"optimisation's: within {target}× on {num(within)} of {num(ctx.calc(len(ratios)))} photos, so the target "
            f"(a style loss within {target}× of optimisation's on every photo) is **{'met' if met else 'not met'}** "
            f"after {num(d['training']['steps'])} training steps.")


@table("feedforward-speed-setup")
def feedforward_speed_setup(ctx: Ctx) -> str:
    """The machine and method of the speed benchmark (for docs/feedforward.md)."""
    d = ctx.json("bench_feedforward_cpu.json")
    m = d["machine"]
    before = [x["rss_before_mib"] for r in d["sizes"].values() for x in r.values() if "rss_before_mib" in x]
    return (f"{m['cpu_count']} CPU cores ({m['torch_threads']} threads), torch `{m['torch_version']}`, float32; "
            f"content `{Path(d['content']).name}` resized so that its longest side is the size, style "
            f"`{Path(d['style']).name}`, network `{d['transform_net']}`. Every figure comes from a fresh process; "
            f"peak memory is that process's maximum resident set, Python, torch and the networks included "
            f"({num(min(before))}–{num(max(before))} MiB before the first image). Optimisation: "
            f"{_optimisation_reference(ctx, d)}.")


@table("feedforward-speed-summary")
def feedforward_speed_summary(ctx: Ctx) -> str:
    """The 512 px speed-ups in words, also against the default iteration count (for docs/feedforward.md)."""
    d = ctx.json("bench_feedforward_cpu.json")
    r = d["sizes"]["512"]
    tn, ad, op, sp = r["transform_net"], r["adain"], r["optimization"], r["speedup_vs_optimization"]
    target = ctx.const(200)
    default = ctx.const(STYLIZE_DEFAULT_ITERATIONS)
    reference = round(ctx.calc(op["seconds_per_image"] / op["seconds_per_iteration"]))
    at_default = op["seconds_per_iteration"] * default
    ok = min(sp["transform_net"], sp["adain"]) >= target
    return (f"At {tn['size'][0]} × {tn['size'][1]} px the transform network is **{num(sp['transform_net'])}×** and "
            f"AdaIN **{num(sp['adain'])}×** faster than {reference} iterations of optimisation (target ≥ {target}×: "
            f"{'met' if ok else 'not met'}). Against the {default} iterations that `percept stylize` runs by default "
            f"({num(ctx.calc(at_default))} s) the speed-ups are {num(ctx.calc(at_default / tn['seconds_per_image']))}× and "
            f"{num(ctx.calc(at_default / ad['seconds_per_image']))}×. AdaIN takes "
            f"{num(ctx.calc(ad['seconds_per_image'] / tn['seconds_per_image']), 1)}× the transform network's time.")


@table("attack")
def attack(ctx: Ctx) -> str:
    """Targeted PGD on every photo: result, probability and time (for docs/understand.md)."""
    atk = ctx.json("attack_pgd_cpu.json")
    res = atk["results"]
    ok = ctx.calc(sum(r["success"] for r in res))
    levels = sorted({r["linf_levels"] for r in res})
    rows = [[r["photo"], r["original"], r["target"], bold(r["new"], not r["success"]), num(r["probability"], 3)]
            for r in res]
    return (f"`{atk['model']}`, targeted PGD, ε = {num(ctx.calc(atk['epsilon'] * ctx.const(255)))}/255, "
            f"{atk['steps']} steps, a seeded random target class for each of {atk['photos']} photos: "
            f"**{num(ok)} of {num(ctx.calc(len(res)))} reach their target** (success rate {pct(atk['success_rate'], 0)}), "
            f"L-inf {' to '.join(num(x) for x in levels)} levels (of 255), {num(atk['seconds'], 1)} s in all on the CPU.\n\n"
            + md_table(["photo", "top class before", "target", "top class after", "its probability"], rows))


@table("visualise-checks")
def visualise_checks(ctx: Ctx) -> str:
    """Whether each gradient-ascent method reaches its bar, and how busy the machine was (for docs/understand.md)."""
    vis = ctx.json("visualise_cpu.json")
    c = vis["checks"]
    mark = lambda ok: "met" if ok else "not met"  # noqa: E731
    gain, psnr, ratio = ctx.const(10), ctx.const(20), ctx.const(2)
    gains = [r["gain"] for r in vis["class_image"]["results"]]
    early = max(r["psnr_db"] for r in vis["invert"]["results"])
    dr = vis["dream"][0]
    start, end = vis["load_average_at_start"][0], vis["load_average_at_end"][0]
    return (f"Bars: every class logit gains ≥ {gain} ({mark(c['class_image_gain_ge_10'])}: lowest gain "
            f"+{num(min(gains), 1)}); an early layer's inversion reaches ≥ {psnr} dB "
            f"({mark(c['invert_early_psnr_ge_20'])}: {num(early, 1)} dB); the dreamed layer's RMS activation at least "
            f"{'doubles' if ratio == 2 else f'grows {ratio}×'} ({mark(c['dream_ratio_ge_2'])}: ×{num(dr['ratio'], 2)} for "
            f"{dr['model']} `{dr['layer']}`). {vis['torch_threads']} torch threads; the 1-minute load average was "
            f"{num(start, 2)} at the start of the run and {num(end, 2)} at its end, so other work shared the cores "
            f"and the seconds are upper bounds.")


DEMO_ITERATIONS = 100  # `make demo`: percept stylize ... --size 256 --iterations 100


@table("demo-timings")
def demo_timings(ctx: Ctx) -> str:
    """What the two stylisations of `make demo` cost on the benchmark CPU (for README.md's quick start)."""
    d = ctx.json("bench_feedforward_cpu.json")
    m = d["machine"]
    op, ad = d["sizes"]["256"]["optimization"], d["sizes"]["512"]["adain"]
    n = ctx.const(DEMO_ITERATIONS)
    return (f"On {m['cpu_count']} CPU cores the style transfer of `make demo` takes about "
            f"{num(ctx.calc(n * op['seconds_per_iteration']))} s ({n} iterations at {op['size'][0]} px, "
            f"{num(op['seconds_per_iteration'], 2)} s each) and AdaIN {num(ad['seconds_per_image'], 1)} s at "
            f"{ad['size'][0]} px, plus loading the networks ([bench_feedforward_cpu.json]"
            f"(docs/bench_feedforward_cpu.json)). GPU: {NOT_MEASURED}.")


SERVICE_QUALITY_STEPS = {"256": 150, "512": 100}  # percept.service.runner.quality_iterations


@table("service-timings")
def service_timings(ctx: Ctx) -> str:
    """What a service job costs on the benchmark CPU, from the optimisation and AdaIN timings (docs/service.md)."""
    d = ctx.json("bench_feedforward_cpu.json")
    m = d["machine"]
    parts = []
    for size, steps in SERVICE_QUALITY_STEPS.items():
        op = d["sizes"][size]["optimization"]
        n = ctx.const(steps)
        parts.append(f"{num(op['seconds_per_iteration'], 2)} s per step at {op['size'][0]} × {op['size'][1]} px, so "
                     f"about {num(ctx.calc(n * op['seconds_per_iteration']))} s for {n} steps")
    ad = d["sizes"]["512"]["adain"]
    return (f"On {m['cpu_count']} CPU cores (the optimisation and AdaIN timings of `benchmarks/feedforward.py`, "
            f"without the service around them): `quality` takes {'; '.join(parts)}; `instant` takes "
            f"{num(ad['seconds_per_image'], 1)} s at {ad['size'][0]} × {ad['size'][1]} px. GPU: {NOT_MEASURED}.")


@table("service-load-averages")
def service_load_averages(ctx: Ctx) -> str:
    """How busy the machine was during the load test, and what a second worker changed (for docs/service.md)."""
    loaded = _service_runs(ctx)
    loads = [r["load_average_1min"] for _, d in loaded for r in d["runs"]]
    cpus = sorted({d["machine"]["cpus"] for _, d in loaded})
    lines = [f"The 1-minute load average after each run was {num(min(loads), 1)}–{num(max(loads), 1)} on "
             f"{' / '.join(map(str, cpus))} CPU cores (other work on the machine included)."]
    for label, d in loaded:
        per = {s["workers"]: s["median_jobs_per_min"] for s in d["summary"]}
        if 1 in per and 2 in per:
            ratio = ctx.calc(per[2] / per[1])
            lines.append(f"With {label} workers, two complete {num(ratio, 2)}× the jobs per minute of one "
                         f"({num(per[2])} against {num(per[1])}, medians).")
    return " ".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Image metrics (benchmarks/metrics.py), super-resolution (benchmarks/sr.py), fixation prediction (benchmarks/gaze.py)

@table("metrics")
def metrics_reference(ctx: Ctx) -> str:
    d = ctx.json("metrics_cpu.json")
    header = ["pair", "LPIPS-Alex (published)", "DISTS (published)", "PSNR dB (published)", "SSIM (scikit-image)",
              "LPIPS-VGG"]
    rows = [[r["pair"], f"{num(r['lpips']['ours'], 4)} ({num(r['lpips']['published'], 4)})",
             f"{num(r['dists']['ours'], 4)} ({num(r['dists']['published'], 4)})",
             f"{num(r['psnr']['ours'], 2)} ({num(r['psnr']['published'], 2)})",
             f"{num(r['ssim']['ours'], 4)} ({num(r['ssim']['scikit_image'], 4)})", num(r["lpips_vgg"], 4)]
            for r in d["pairs"]]
    diff = d["max_abs_difference"]
    size = d["image_size"]
    note = (f"{num(ctx.calc(len(rows)))} pairs of {num(size[0])}×{num(size[1])} px. Largest difference to the "
            f"published value: LPIPS {sci(diff['lpips'])}, DISTS {sci(diff['dists'])}, PSNR {sci(diff['psnr'])} dB; "
            f"SSIM against scikit-image {sci(d['ssim_max_abs_difference_to_scikit_image'])}. "
            + ("Every value equals the published one at its precision." if d["all_equal_published"]
               else "**Not every value equals the published one.**"))
    speed = d["ms_per_pair"]
    names = {"psnr": "PSNR", "ssim": "SSIM", "lpips_alex": "LPIPS-Alex", "lpips_vgg": "LPIPS-VGG", "dists": "DISTS",
             "reference_scikit_image_ssim": "scikit-image SSIM (reference)"}
    speed_rows = [[names.get(k, k), num(v, 1)] for k, v in speed.items()]
    m = d["machine"]
    return (md_table(header, rows) + "\n\n" + note + "\n\n" + md_table(["metric", "ms per pair"], speed_rows)
            + f"\n\nOne pair at a time, median of repeated runs, on {num(m['cpu_count'])} CPU cores "
              f"(torch `{m['torch_version']}`, device {m['device']}).")


SR_ROWS = (("bicubic", "bicubic"), ("pixel", "percept, pixel loss"), ("feature", "percept, feature loss"),
           ("srresnet", "SRResNet (pixel loss, Ledig et al.)"), ("srgan", "SRGAN (VGG + adversarial loss)"))


@table("sr")
def sr(ctx: Ctx) -> str:
    d = ctx.json("sr_cpu.json")
    parts = []
    for degradation, title in (("blur", "Gaussian blur (sigma 1) then bicubic downsampling, as Johnson et al."),
                               ("bicubic", "antialiased bicubic downsampling, as SRResNet/SRGAN were trained")):
        means = d["results"][degradation]["means"]
        best_psnr = max(v["psnr"] for v in means.values())
        best_lpips = min(v["lpips"] for v in means.values())
        rows = [[label, bold(num(means[k]["psnr"], 2), means[k]["psnr"] == best_psnr), num(means[k]["ssim"], 4),
                 bold(num(means[k]["lpips"], 4), means[k]["lpips"] == best_lpips)] for k, label in SR_ROWS if k in means]
        parts.append(f"Low-resolution inputs by {title}:\n\n"
                     + md_table(["x4 upscaling", "PSNR dB ↑", "SSIM ↑", "LPIPS-Alex ↓"], rows))
    t = d["training"]
    c = d["checks"]
    m = d["machine"]
    setup = (f"Means over {num(ctx.calc(len(d['evaluation_photos'])))} photos not used in training "
             f"({', '.join(d['evaluation_photos'])}), {num(d['border_px'])} px border excluded. percept's networks: "
             f"{num(d['minutes_per_network'])} minutes of `percept train-sr` each on {num(d['training_photos'])} photos "
             f"({num(t['pixel']['steps'])} steps with the pixel loss, {num(t['feature']['steps'])} with the feature "
             f"loss, {num(t['pixel']['settings']['crop'])} px crops, batch {num(t['pixel']['settings']['batch_size'])}"
             + (", both at once on one core each" if d["concurrent"] else "")
             + f"), torch `{m['torch_version']}` on {num(m['cpu_count'])} CPU cores.")
    verdict = (f"Pixel loss beats bicubic on PSNR: {'yes' if c['pixel_beats_bicubic_psnr'] else '**no**'}; feature "
               f"loss beats bicubic on LPIPS: {'yes' if c['feature_beats_bicubic_lpips'] else '**no**'}; and the "
               f"pixel loss on LPIPS: {'yes' if c['feature_beats_pixel_lpips'] else '**no**'}.")
    return setup + "\n\n" + "\n\n".join(parts) + "\n\n" + verdict


GAZE_ROWS = (("uniform", "uniform"), ("gaussian blob", "Gaussian blob"), ("centre bias", "centre bias"),
             ("deepgaze1", "DeepGaze I (AlexNet)"), ("deepgaze2", "DeepGaze II (VGG-19)"))


@table("gaze")
def gaze(ctx: Ctx) -> str:
    d = ctx.json("gaze_cpu.json")
    means = d["means"]
    header = ["model", "log-likelihood (bit/fix)", "information gain (bit/fix)", "AUC", "shuffled AUC", "NSS", "CC",
              "training (min/fold)"]
    rows = [[label, num(means[k]["ll"], 3), num(means[k]["ig"], 3), num(means[k]["auc"], 3), num(means[k]["sauc"], 3),
             num(means[k]["nss"], 2), num(means[k]["cc"], 3),
             num(means[k]["train_minutes"], 2) if "train_minutes" in means[k] else "–"] for k, label in GAZE_ROWS]
    per_fold = [[num(f["fold"]), num(f["images"]), num(f["fixations"]),
                 num(f["rows"]["centre bias"]["auc"], 3) + " / " + num(f["rows"]["deepgaze1"]["auc"], 3),
                 num(f["rows"]["centre bias"]["nss"], 2) + " / " + num(f["rows"]["deepgaze1"]["nss"], 2),
                 num(f["rows"]["deepgaze1"]["ig"], 3) + " / " + num(f["rows"]["deepgaze2"]["ig"], 3)]
                for f in d["folds"]]
    checks = d["checks"]
    setup = (f"{num(d['setup']['folds'])}-fold cross-validation by image on {d['data']['name']} "
             f"({num(d['data']['images'])} images, {num(d['data']['fixations'])} fixations); means over the held-out "
             f"folds; information gain over the centre bias. Features cached once ("
             + ", ".join(f"{net}: {num(v, 1)} min" for net, v in d["feature_cache_minutes"].items())
             + f", while another benchmark ran), {num(d['machine']['cores'])} CPU cores.")
    verdict = ("DeepGaze I: positive information gain and a higher AUC and NSS than the centre bias on every fold: "
               + ("yes" if all(checks[k] for k in ("deepgaze1_ig_above_0_every_fold",
                                                   "deepgaze1_auc_above_centre_bias_every_fold",
                                                   "deepgaze1_nss_above_centre_bias_every_fold")) else "**no**")
               + "; DeepGaze II above DeepGaze I in mean information gain: "
               + ("yes" if checks["deepgaze2_mean_ig_above_deepgaze1"] else "**no**")
               + "; every fold trained within 15 minutes: "
               + ("yes" if checks["every_fold_trains_within_15_min"] else "**no**") + ".")
    return (setup + "\n\n" + md_table(header, rows) + "\n\nPer fold (held-out images):\n\n"
            + md_table(["fold", "images", "fixations", "AUC centre bias / DeepGaze I", "NSS centre bias / DeepGaze I",
                        "IG DeepGaze I / II"], per_fold) + "\n\n" + verdict)


# --------------------------------------------------------------------------------------------------------------
# Rewriting and checking Markdown files

def blocks(text: str) -> list[tuple[str, str]]:
    """(name, current content) of every marked block in a Markdown text."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


def regenerate(text: str, docs: Path = DOCS) -> tuple[str, list[str]]:
    """The text with every marked block regenerated, and the names of the blocks that changed."""
    changed: list[str] = []

    def sub(m: re.Match) -> str:
        new = render(m.group(2), docs).text + "\n"
        if new != m.group(3):
            changed.append(m.group(2))
        return m.group(1) + new + m.group(4)

    return BLOCK.sub(sub, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", nargs="+", type=Path, default=list(DEFAULT_FILES),
                        help="Markdown files whose marked blocks to regenerate (default: README.md docs/*.md)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="folder of the benchmark JSON files (default: docs/)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and name each block that differs from what its JSON gives")
    parser.add_argument("--list", action="store_true", help="print each table name and the JSON files it reads")
    args = parser.parse_args(argv)
    if args.list:
        for name in TABLES:
            print(f"{name}: {', '.join(render(name, args.docs).sources)}")
        return 0
    stale = []
    for path in args.files:
        text = path.read_text()
        if not blocks(text) and len(args.files) == 1:
            print(f"{path}: no <!-- table: NAME --> blocks", file=sys.stderr)
        try:
            new, changed = regenerate(text, args.docs)
        except KeyError as e:
            print(f"{path}: {e.args[0]}", file=sys.stderr)
            return 2
        for name in changed:
            stale.append(f"{path}: table {name!r} differs from {', '.join(render(name, args.docs).sources)}; "
                         f"regenerate: .venv/bin/python benchmarks/tables.py --files {path}")
        if changed and not args.check:
            path.write_text(new)
            print(f"{path}: regenerated {', '.join(changed)}")
    if args.check:
        for line in stale:
            print(line)
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
