"""Acceptance of the gradient-ascent methods with real weights and the defaults of `percept explain`.

    .venv/bin/python benchmarks/visualise.py [--classes goldfish,flamingo,tarantula] [--out result.json]

Prints JSON: class-image (EfficientNet-Lite0, 224 px): start/end logit, gain, rank and probability per class;
invert (VGG-19, examples/content/chelsea_cat.jpg at 128 px): PSNR and feature error per layer; dream (VGG-19
relu3_3, the cat at 384 px): the layer's RMS activation before/after and their ratio (also for EfficientNet-Lite0
_blocks.10, for comparison); seconds per method; and the checks: gain >= 10 for every class, best PSNR of the
early layers (relu1_2, relu2_2) >= 20 dB, ratio >= 2.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from percept.cli import DREAM_LAYER, INVERT_LAYERS, _network, build_parser
from percept.image import load_image, to_tensor
from percept.models import get_model
from percept.understand import class_image, dream, invert

CAT = Path(__file__).resolve().parents[1] / "examples" / "content" / "chelsea_cat.jpg"


def defaults(method: str, *extra: str) -> argparse.Namespace:
    """The options `percept explain METHOD` runs with when none is given."""
    return build_parser().parse_args(["explain", method, *extra, "-o", "x.png"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", default="goldfish,flamingo,tarantula")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report: dict = {"torch_threads": torch.get_num_threads(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]}  # the CPU may be shared

    o = defaults("class-image", "--class", args.classes)
    classifier = get_model(o.model, device="cpu", kind="classifier")
    rows, started = [], time.perf_counter()
    for name in args.classes.split(","):
        r = class_image(classifier, name, size=o.size, steps=o.steps, lr=o.lr, decay=o.decay, jitter=o.jitter,
                        blur_every=o.blur_every, blur_sigma=o.blur_sigma, seed=o.seed)
        rows.append({"class": name, "start_logit": round(r.start_logit, 3), "end_logit": round(r.end_logit, 3),
                     "gain": round(r.gain, 3), "rank": r.rank, "probability": round(r.probability, 4)})
    report["class_image"] = {"model": classifier.id, "size": o.size or classifier.crop, "steps": o.steps,
                             "results": rows, "seconds": round(time.perf_counter() - started, 1)}

    o = defaults("invert", str(CAT))
    layers = INVERT_LAYERS[o.model].split(",")
    image = to_tensor(load_image(CAT), longest=o.size)
    started = time.perf_counter()
    r = invert(_network(o.model, "cpu"), image, layers, steps=o.steps, optimizer=o.optimizer,
               tv_weight=o.tv_weight, alpha_weight=o.alpha_weight, seed=o.seed)
    report["invert"] = {"model": o.model, "image": CAT.name, "size": list(image.shape[-2:]), "steps": o.steps,
                        "optimizer": o.optimizer, "tv_weight": o.tv_weight,
                        "results": [{"layer": inv.layer, "psnr_db": round(inv.psnr, 2), "feature_error": round(
                            inv.loss, 5)} for inv in r.inversions], "seconds": round(time.perf_counter() - started, 1)}

    o = defaults("dream", str(CAT))
    image = to_tensor(load_image(CAT), longest=o.size)
    report["dream"] = []
    for model in (o.model, "efficientnet_lite0"):
        started = time.perf_counter()
        r = dream(_network(model, "cpu"), image, DREAM_LAYER[model], octaves=o.octaves, octave_scale=o.octave_scale,
                  steps=o.steps, step_size=o.step_size, jitter=o.jitter, seed=o.seed)
        report["dream"].append({"model": model, "layer": r.layer, "size": list(image.shape[-2:]), "octaves": o.octaves,
                                "steps": o.steps, "step_size": o.step_size, "rms_before": round(r.norm_before, 4),
                                "rms_after": round(r.norm_after, 4), "ratio": round(r.ratio, 3),
                                "mean_square_ratio": round(r.ratio**2, 3),
                                "seconds": round(time.perf_counter() - started, 1)})

    early = [row["psnr_db"] for row in report["invert"]["results"] if row["layer"] in ("relu1_2", "relu2_2")]
    report["checks"] = {"class_image_gain_ge_10": all(row["gain"] >= 10 for row in report["class_image"]["results"]),
                        "invert_early_psnr_ge_20": max(early) >= 20,
                        "dream_ratio_ge_2": report["dream"][0]["ratio"] >= 2}
    report["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
