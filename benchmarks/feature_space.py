"""Feature-space figures: k-NN accuracy of hymenoptera val against train by layer, 2-D class agreement of the
PCA and t-SNE embeddings, and the seconds of a first (uncached) and a cached run.

    .venv/bin/python benchmarks/feature_space.py [--model efficientnet_lite0] [--layers -,_blocks.10,_blocks.5]
        [--cache-dir DIR] [--out result.json]

``-`` is the default layer (the pooled penultimate features). Use an empty --cache-dir for honest first-run times.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from percept.understand import embedding, folder_features, layer_backbone
from percept.understand.neighbours import nearest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "datasets" / "hymenoptera"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layers", default="-,_blocks.10,_blocks.5")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    rows = []
    for layer in args.layers.split(","):
        layer = None if layer == "-" else layer
        backbone = layer_backbone(args.model, layer=layer, device="cpu")
        timings = []
        for _ in range(2):  # first (uncached unless the cache is warm) and cached
            started = time.perf_counter()
            train = folder_features(backbone, DATA / "train", cache_dir=args.cache_dir, batch_size=args.batch_size)
            val = folder_features(backbone, DATA / "val", cache_dir=args.cache_dir, batch_size=args.batch_size)
            timings.append((time.perf_counter() - started, train.cached + val.cached))
        indices, _ = nearest(train, val.features, k=args.k)
        neighbour_labels = np.array(train.labels)[indices]  # (Q, k)
        top1 = float(np.mean(neighbour_labels[:, 0] == np.array(val.labels)))
        vote = [Counter(row).most_common(1)[0][0] for row in neighbour_labels]
        majority = float(np.mean(np.array(vote) == np.array(val.labels)))
        shared = float(np.mean(neighbour_labels == np.array(val.labels)[:, None]))
        started = time.perf_counter()
        embs = embedding(backbone, val, methods=("pca", "tsne"))
        rows.append({
            "layer": layer or "pooled penultimate features", "dim": backbone.dim,
            "knn_top1": round(top1, 4), f"knn_majority_{args.k}": round(majority, 4),
            f"neighbours_sharing_class_{args.k}": round(shared, 4),
            "pca_1nn_agreement": round(embs[0].separation, 4), "pca_explained": round(embs[0].explained, 4),
            "tsne_1nn_agreement": round(embs[1].separation, 4),
            "embedding_seconds": round(time.perf_counter() - started, 2),
            "features_seconds_first": round(timings[0][0], 2), "cached_first": timings[0][1],
            "features_seconds_cached": round(timings[1][0], 2), "cached_second": timings[1][1],
        })
        print(json.dumps(rows[-1]), flush=True)
    result = {"model": args.model, "data": "hymenoptera: train 244 indexed, val 153 queried", "k": args.k,
              "device": "cpu", "threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(),
              "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
