"""Super-resolution x4 with perceptual losses on the CPU: a pixel-loss and a feature-loss network, each trained for
``--minutes``, against bicubic interpolation and the shipped SRResNet and SRGAN, on photos none of them saw.

1. Training (skipped with ``--no-train``, which reuses the model files in ``--work``): ``percept train-sr`` twice,
   ``--loss pixel`` and ``--loss feature``, on every photo under ``--train-dir`` (default ../shared/data/datasets:
   the hymenoptera and Flowers-102 subsets) that is not an evaluation photo (compared by SHA-256), with
   ``--crop`` px crops (default 96, the high-resolution patch size of SRGAN's training; the paper's 288 px
   crops cost 9 times more per step), batches of 4, the paper's lr 1e-3. By default both run at once, one
   thread each (two processes; ``--sequential`` runs them one after the other with every thread).
2. Evaluation (:func:`percept.sr.evaluate_sr`): the bundled examples/content/*.jpg and scikit-image's astronaut,
   coffee, chelsea and rocket, degraded with Johnson et al.'s blur (the training degradation) and with antialiased
   bicubic downsampling (the training degradation of SRResNet and SRGAN); PSNR and SSIM (RGB), LPIPS (AlexNet),
   4 px border cut.

Prints JSON; ``--write`` also writes docs/sr_cpu.json and the figure docs/images/sr_crops.png (crops of LR input,
bicubic, pixel, feature, SRResNet, SRGAN and ground truth).

    .venv/bin/python benchmarks/sr.py --minutes 30 --write          # about 65 min on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "datasets"
SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket")
LOSSES = ("pixel", "feature")
#: Figure crops: (image, left, top, side) in high-resolution pixels.
FIGURE_CROPS = (("astronaut.png", 170, 70, 128), ("coffee.png", 240, 90, 128))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluation_photos(folder: Path) -> list[Path]:
    """The evaluation photos, written to ``folder``: scikit-image's as PNG, the bundled examples as they are."""
    import numpy as np
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SKIMAGE:
        path = folder / f"{name}.png"
        if not path.is_file():
            Image.fromarray(np.asarray(getattr(skimage.data, name)())[..., :3]).save(path)
        paths.append(path)
    for source in sorted((REPO / "examples" / "content").glob("*.jpg")):
        path = folder / source.name
        if not path.is_file():
            path.write_bytes(source.read_bytes())
        paths.append(path)
    return paths


def training_folder(source: Path, work: Path, exclude: set[str]) -> tuple[Path, int, int]:
    """A folder of links to the photos under ``source`` except the evaluation photos; (folder, kept, excluded)."""
    from percept.image import find_images

    folder = work / "train"
    folder.mkdir(parents=True, exist_ok=True)
    kept = excluded = 0
    for i, path in enumerate(find_images(source, "training images")):
        if _sha(path) in exclude:
            excluded += 1
            continue
        link = folder / f"{i:05d}{path.suffix.lower()}"
        if not link.exists():
            link.symlink_to(path.resolve())
        kept += 1
    return folder, kept, excluded


def train(args: argparse.Namespace, images: Path) -> dict:
    """Train both networks with ``percept train-sr``; returns the wall-clock seconds of each."""
    started, procs = {}, {}
    for loss in LOSSES:
        out = args.work / f"{loss}.pt"
        for stale in (out, out.with_name(out.name + ".ckpt")):
            stale.unlink(missing_ok=True)
        cmd = [str(REPO / ".venv" / "bin" / "percept"), "train-sr", "--images", str(images), "-o", str(out),
               "--loss", loss, "--crop", str(args.crop), "--batch-size", str(args.batch_size),
               "--max-minutes", str(args.minutes), "--steps", "10000000", "--checkpoint-every", "500",
               "--device", "cpu", "-q"]
        env = dict(os.environ, **({} if args.sequential else {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}))
        started[loss] = time.perf_counter()
        procs[loss] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if args.sequential:
            procs[loss].wait()
    seconds = {}
    for loss, proc in procs.items():
        output, _ = proc.communicate()
        seconds[loss] = round(time.perf_counter() - started[loss], 1)
        if proc.returncode:
            raise SystemExit(f"train-sr --loss {loss} failed:\n{output}")
        print(output.strip(), file=sys.stderr)
    return seconds


def figure(path: Path, photos: Path, models: dict[str, str]) -> None:
    """Rows of crops: LR input (nearest), bicubic, each model, ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    from percept.image import load_image, to_tensor
    from percept.sr.degrade import degrade
    from percept.sr.upscale import load_upscaler, run_upscaler

    nets = {label: load_upscaler(model, factor=4, device="cpu") for label, model in models.items()}
    columns = ["LR input", *nets, "ground truth"]
    fig, axes = plt.subplots(len(FIGURE_CROPS), len(columns), figsize=(2 * len(columns), 2.15 * len(FIGURE_CROPS)))
    for row, (name, left, top, side) in enumerate(FIGURE_CROPS):
        lr, hr = degrade(to_tensor(load_image(photos / name)), 4)
        region = (..., slice(top, top + side), slice(left, left + side))
        tiles = [F.interpolate(lr, scale_factor=4, mode="nearest")[region]]
        tiles += [run_upscaler(net, lr)[region] for net in nets.values()]
        tiles.append(hr[region])
        for col, (title, tile) in enumerate(zip(columns, tiles)):
            ax = axes[row][col]
            ax.imshow(tile[0].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time of each network")
    parser.add_argument("--crop", type=int, default=96, help="high-resolution training crop, px")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--train-dir", type=Path, default=SHARED)
    parser.add_argument("--work", type=Path, default=REPO / "out" / "sr_bench")
    parser.add_argument("--sequential", action="store_true", help="train one network after the other")
    parser.add_argument("--no-train", dest="train", action="store_false", help="reuse the networks in --work")
    parser.add_argument("--write", action="store_true", help="also write docs/sr_cpu.json and docs/images/sr_crops.png")
    args = parser.parse_args()

    import torch

    import percept
    from percept.sr.evaluate import evaluate_sr
    from percept.sr.files import load_sr_net

    args.work.mkdir(parents=True, exist_ok=True)
    photos = evaluation_photos(args.work / "eval")
    exclude = {_sha(p) for p in photos}
    images, kept, excluded = training_folder(args.train_dir, args.work, exclude)
    seconds = train(args, images) if args.train else {}
    models = {loss: str(args.work / f"{loss}.pt") for loss in LOSSES}
    training = {}
    for loss, path in models.items():
        t = load_sr_net(path).metadata["training"]
        training[loss] = {"steps": t["steps"], "seconds": seconds.get(loss),
                          "final_losses": {k: round(v, 6) for k, v in t["final_losses"].items()},
                          "settings": {k: t["params"][k] for k in ("factor", "loss", "crop", "batch_size", "lr",
                                                                    "warmup", "blocks", "bicubic_skip",
                                                                    "degradation")}}
    results = {}
    order = [models["pixel"], models["feature"], "srresnet", "srgan"]
    names = {models["pixel"]: "pixel", models["feature"]: "feature", "srresnet": "srresnet", "srgan": "srgan",
             "bicubic": "bicubic"}
    for degradation in ("blur", "bicubic"):
        started = time.perf_counter()
        e = evaluate_sr(order, photos, degradation=degradation, device="cpu")
        results[degradation] = {
            "means": {names[m]: {k: round(v, 5) for k, v in e.means[m].items()} for m in e.models},
            "per_image": {names[m]: {k: [round(x, 5) for x in v] for k, v in e.per_image[m].items()}
                          for m in e.models},
            "seconds": round(time.perf_counter() - started, 1)}
    blur = results["blur"]["means"]
    report = {
        "benchmark": "sr",
        "factor": 4,
        "minutes_per_network": args.minutes,
        "concurrent": not args.sequential,
        "training_photos": kept,
        "excluded_evaluation_photos": excluded,
        "training": training,
        "evaluation_photos": [p.name for p in photos],
        "border_px": 4,
        "results": results,
        "checks": {
            "pixel_beats_bicubic_psnr": blur["pixel"]["psnr"] > blur["bicubic"]["psnr"],
            "feature_beats_bicubic_lpips": blur["feature"]["lpips"] < blur["bicubic"]["lpips"],
            "feature_beats_pixel_lpips": blur["feature"]["lpips"] < blur["pixel"]["lpips"],
        },
        "machine": {"device": "cpu", "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__, "python": platform.python_version(),
                    "percept_version": percept.__version__, "load_average_1min": round(os.getloadavg()[0], 2)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    crops = args.work / "sr_crops.png"
    figure(crops, args.work / "eval", {"bicubic": "bicubic", "pixel": models["pixel"], "feature": models["feature"],
                                       "SRResNet": "srresnet", "SRGAN": "srgan"})
    if args.write:
        (REPO / "docs" / "sr_cpu.json").write_text(text + "\n")
        (REPO / "docs" / "images" / "sr_crops.png").write_bytes(crops.read_bytes())
        print("wrote docs/sr_cpu.json and docs/images/sr_crops.png", file=sys.stderr)


if __name__ == "__main__":
    main()
