"""AdaIN's whole process against the reference's, side by side: wall time, peak memory and the pixels.

    .venv/bin/python benchmarks/adain_speed.py [--content PHOTO] [--style PAINTING] [--size 512] [--repeats 4]
        [--out docs/adain_speed_cpu.json] [--figure docs/images/adain_reference_crops.png]

Each run is a fresh process, as a user runs it from a shell: ``percept stylize C S -o OUT --method adain --size N``
against ``benchmarks/adain_reference.py C S -o OUT --longest N`` (what pytorch-AdaIN's ``test.py`` does with the
same weight files; see that script). The two alternate (``--repeats`` each, after one untimed run of each that
warms the file cache); ``seconds`` is the wall time of the process, ``peak_rss_mib`` its peak resident memory
(``ru_maxrss`` from ``wait4``). The outputs are compared pixel by pixel (mean absolute difference in 8-bit
levels, and the largest), and a crop of each is enlarged side by side in ``--figure``: whatever the reference's
output does not show is percept's defect. Defaults: a photo and a painting from ``../shared/data`` that no
percept default was tuned on, or the bundled examples when that folder is missing. Prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PY = sys.executable


def _default(shared: str, bundled: str) -> Path:
    return SHARED / shared if (SHARED / shared).is_file() else ROOT / bundled


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def crops(a: np.ndarray, b: np.ndarray, path: Path, box: int = 96, zoom: int = 4) -> None:
    """The same crop (from the middle) of both outputs, enlarged without smoothing, side by side, labelled."""
    h, w = a.shape[:2]
    y, x = (h - box) // 2, (w - box) // 2
    tiles = [Image.fromarray(im[y : y + box, x : x + box]).resize((box * zoom, box * zoom), Image.NEAREST)
             for im in (a, b)]
    sheet = Image.new("RGB", (2 * box * zoom + 10, box * zoom + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, label) in enumerate(zip(tiles, ("percept", "reference (pytorch-AdaIN process)"))):
        sheet.paste(tile, (i * (box * zoom + 10), 24))
        draw.text((i * (box * zoom + 10) + 4, 6), label, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", type=Path,
                    default=_default("content/golden_gate.jpg", "examples/content/rocket_launch.jpg"))
    ap.add_argument("--style", type=Path,
                    default=_default("style/picabia_udnie.jpg", "examples/style/hokusai_great_wave.jpg"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "adain_speed_cpu.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "images" / "adain_reference_crops.png")
    args = ap.parse_args()
    work = ROOT / "out" / "adain_speed"
    work.mkdir(parents=True, exist_ok=True)
    outputs = {"percept": work / "percept.png", "reference": work / "reference.png"}
    commands = {
        "percept": [str(Path(PY).with_name("percept")), "stylize", str(args.content), str(args.style), "-o",
                    str(outputs["percept"]), "--method", "adain", "--size", str(args.size), "--device", "cpu", "-q"],
        "reference": [PY, str(ROOT / "benchmarks" / "adain_reference.py"), str(args.content), str(args.style),
                      "-o", str(outputs["reference"]), "--longest", str(args.size)],
    }
    load_start = os.getloadavg()
    for cmd in commands.values():  # untimed: the file cache
        timed(cmd)
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            seconds, rss = timed(cmd)
            runs[name].append({"seconds": round(seconds, 3), "peak_rss_mib": round(rss, 1)})
            print(f"{name}: {seconds:.2f} s, {rss:.0f} MiB", file=sys.stderr, flush=True)
    median = {name: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_rss_mib")}
              for name, rs in runs.items()}
    a, b = (np.asarray(Image.open(outputs[n]).convert("RGB")) for n in ("percept", "reference"))
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    crops(a, b, args.figure)
    time_ratio = median["percept"]["seconds"] / median["reference"]["seconds"]
    memory_ratio = median["percept"]["peak_rss_mib"] / median["reference"]["peak_rss_mib"]
    result = {
        "benchmark": "AdaIN whole process against the reference process",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__, "device": "cpu", "cuda_device": None,
                    "python": platform.python_version(), "load_average_at_start": load_start,
                    "load_average_at_end": os.getloadavg()},
        "content": os.path.relpath(args.content, ROOT), "style": os.path.relpath(args.style, ROOT),
        "size": args.size, "output_size": [w, h], "repeats": args.repeats,
        "commands": {name: [os.path.relpath(a, ROOT) if os.path.isabs(a) else a for a in cmd]
                     for name, cmd in commands.items()}, "runs": runs,
        "median": median, "time_ratio": round(time_ratio, 3), "memory_ratio": round(memory_ratio, 3),
        "pixels": {"mean_abs_diff": round(float(diff.mean()), 3), "max_abs_diff": int(diff.max()),
                   "share_over_8_levels": round(float((diff.max(axis=2) > 8).mean()), 4)},
        "checks": {"time_ratio_at_most_0_7": time_ratio <= 0.7, "memory_not_above_reference": memory_ratio <= 1.0},
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
