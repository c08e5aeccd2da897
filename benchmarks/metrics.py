"""Perceptual metrics: percept's LPIPS, DISTS and PSNR against their published values, and their speed.

The pairs are pyiqa's five calibration pairs (I03, I04, I06, I08, I19; 512x384 reference and distorted images, as
pyiqa 0.1.16 ships them in ``ResultsCalibra/ref_dir`` and ``dist_dir``). ``--pairs`` names the folder that holds
them: either that layout (``ref_dir/I03.bmp``, ``dist_dir/I03.bmp``) or the one of ``tests/data/metrics``
(``ref_I03.webp``, ``dist_I03.webp``; three pairs, the default). Nothing is downloaded; to get all five pairs::

    pip download pyiqa==0.1.16 --no-deps -d /tmp/pyiqa && unzip -q /tmp/pyiqa/pyiqa-0.1.16-py3-none-any.whl \\
        'ResultsCalibra/*' -d /tmp/pyiqa
    .venv/bin/python benchmarks/metrics.py --pairs /tmp/pyiqa/ResultsCalibra            # prints JSON
    .venv/bin/python benchmarks/metrics.py --pairs /tmp/pyiqa/ResultsCalibra --write    # docs/metrics_cpu.json

Quality: each metric's value per pair beside the published one, the largest absolute difference, and whether every
value equals the published one at its precision (4 places for LPIPS and DISTS, 2 for PSNR). SSIM is checked against
scikit-image's ``structural_similarity`` (Gaussian window, sigma 1.5, population covariance) on the same images.
Speed: milliseconds per 512x384 pair and metric (median of ``--repeats`` runs after one warm-up, networks built
beforehand, batch of one, inference mode), with scikit-image's SSIM timed in the same run as a reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import percept
from percept.image import load_image, to_tensor
from percept.metrics import psnr, ssim
from percept.metrics.dists_net import dists_model
from percept.metrics.lpips_net import lpips_model

REPO = Path(__file__).resolve().parents[1]
#: Published values per pair: LPIPS v0.1 AlexNet, DISTS, PSNR over RGB (dB).
PUBLISHED = {
    "lpips": {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253},
    "dists": {"I03": 0.4742, "I04": 0.1424, "I06": 0.0682, "I08": 0.0287, "I19": 0.3123},
    "psnr": {"I03": 21.11, "I04": 20.99, "I06": 27.01, "I08": 23.30, "I19": 21.62},
}
PLACES = {"lpips": 4, "dists": 4, "psnr": 2}


def find_pairs(folder: Path) -> dict[str, tuple[Path, Path]]:
    """``{name: (reference, distorted)}`` in either layout (see the module docstring)."""
    pairs = {}
    for name in PUBLISHED["lpips"]:
        for ref, dist in ((folder / "ref_dir" / f"{name}.bmp", folder / "dist_dir" / f"{name}.bmp"),
                          (folder / f"ref_{name}.webp", folder / f"dist_{name}.webp")):
            if ref.is_file() and dist.is_file():
                pairs[name] = (ref, dist)
                break
    if not pairs:
        raise SystemExit(f"no reference pairs in {folder}: give the ResultsCalibra folder of pyiqa 0.1.16 "
                         "(ref_dir/, dist_dir/) or tests/data/metrics")
    return pairs


def equal_at_precision(value: float, published: float, places: int) -> bool:
    return abs(round(value, places) - published) < 1e-9 or abs(value - published) <= 0.5 * 10**-places


def milliseconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=REPO / "tests" / "data" / "metrics",
                        help="folder with the pairs (default: tests/data/metrics, three pairs)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per metric (default: 5)")
    parser.add_argument("--device", default="cpu", help="device for the networks (default: cpu)")
    parser.add_argument("--write", action="store_true", help="also write docs/metrics_cpu.json")
    args = parser.parse_args()
    from skimage.metrics import structural_similarity

    device = torch.device(args.device)
    pairs = find_pairs(args.pairs)
    models = {"lpips": lpips_model("alex", str(device)), "lpips_vgg": lpips_model("vgg", str(device)),
              "dists": dists_model(str(device))}
    rows, images = [], {}
    with torch.inference_mode():
        for name, (ref_path, dist_path) in pairs.items():
            ref, dist = (to_tensor(load_image(p)).to(device) for p in (ref_path, dist_path))
            images[name] = (ref, dist)
            ours = {"lpips": float(models["lpips"](dist, ref)[0]), "dists": float(models["dists"](dist, ref)[0]),
                    "psnr": float(psnr(dist, ref)[0])}
            row = {"pair": name, "size": [ref.shape[-1], ref.shape[-2]]}
            for metric, value in ours.items():
                row[metric] = {"ours": round(value, 6), "published": PUBLISHED[metric][name],
                               "equal": equal_at_precision(value, PUBLISHED[metric][name], PLACES[metric])}
            a, b = (t[0].permute(1, 2, 0).double().cpu().numpy() for t in (dist, ref))
            skimage_ssim = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                 channel_axis=2, data_range=1)
            row["ssim"] = {"ours": round(float(ssim(dist, ref)[0]), 6), "scikit_image": round(float(skimage_ssim), 6)}
            row["lpips_vgg"] = round(float(models["lpips_vgg"](dist, ref)[0]), 6)
            rows.append(row)
        ref, dist = next(iter(images.values()))
        a, b = (t[0].permute(1, 2, 0).double().cpu().numpy() for t in (dist, ref))

        def sync(fn):
            def run():
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            return run

        speed = {
            "psnr": milliseconds(sync(lambda: psnr(dist, ref)), args.repeats),
            "ssim": milliseconds(sync(lambda: ssim(dist, ref)), args.repeats),
            "lpips_alex": milliseconds(sync(lambda: models["lpips"](dist, ref)), args.repeats),
            "lpips_vgg": milliseconds(sync(lambda: models["lpips_vgg"](dist, ref)), args.repeats),
            "dists": milliseconds(sync(lambda: models["dists"](dist, ref)), args.repeats),
            "reference_scikit_image_ssim": milliseconds(lambda: structural_similarity(
                a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=2, data_range=1),
                args.repeats),
        }
    report = {
        "pairs": rows,
        "max_abs_difference": {m: round(max(abs(r[m]["ours"] - r[m]["published"]) for r in rows), 6)
                               for m in PUBLISHED},
        "all_equal_published": all(r[m]["equal"] for r in rows for m in PUBLISHED),
        "ssim_max_abs_difference_to_scikit_image": round(max(abs(r["ssim"]["ours"] - r["ssim"]["scikit_image"])
                                                             for r in rows), 6),
        "ms_per_pair": speed,
        "image_size": rows[0]["size"],
        "machine": {"device": str(device), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch_version": torch.__version__, "python": platform.python_version(),
                    "percept_version": percept.__version__},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.write:
        out = REPO / "docs" / "metrics_cpu.json"
        out.write_text(text + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
