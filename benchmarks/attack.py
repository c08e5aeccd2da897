"""Acceptance of targeted PGD: 20 photos from ../shared/data, each with a random target class (seeded).

    .venv/bin/python benchmarks/attack.py [--epsilon 0.0156863] [--steps 10] [--out result.json]

Prints JSON: per photo the original class, target, new class, its probability, success and the L-inf norm of
the perturbation (in 8-bit levels), and the success rate.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from percept.image import load_image
from percept.models import get_model
from percept.understand.attack import attack

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--epsilon", type=float, default=4 / 255)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    classifier = get_model(args.model, kind="classifier")
    hymenoptera = sorted((DATA / "datasets" / "hymenoptera" / "val").glob("*/*.jpg"))
    photos = sorted((DATA / "content").glob("*.jpg")) + hymenoptera
    photos = photos[: args.count]
    rng = random.Random(args.seed)
    rows, started = [], time.perf_counter()
    for path in photos:
        target = rng.randrange(len(classifier.classes))
        r = attack(classifier, classifier.prepare(load_image(path)), epsilon=args.epsilon, steps=args.steps,
                   target=target)
        rows.append({"photo": path.name, "original": classifier.classes[r.original_class],
                     "target": classifier.classes[target], "new": classifier.classes[r.new_class],
                     "probability": round(r.probability, 4), "success": r.success,
                     "linf_levels": round(r.linf * 255, 3)})
    summary = {"model": classifier.id, "epsilon": args.epsilon, "steps": args.steps, "photos": len(rows),
               "success_rate": sum(r["success"] for r in rows) / len(rows),
               "seconds": round(time.perf_counter() - started, 1), "results": rows}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
