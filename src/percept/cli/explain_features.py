"""``percept explain neighbours``, ``embedding`` and ``top-patches``: a folder of images in a layer's feature space."""

from __future__ import annotations

import argparse
from collections import Counter

from ..understand import params as P
from .explain_common import add_options, run

FEATURE_MODELS = "MODEL may also be a feature network (vgg19, vgg16, alexnet; layers relu1_1 ...). "


def _cmd_neighbours(args: argparse.Namespace) -> int:
    from ..understand.neighbours import explain_neighbours

    output, e = run(args, P.NeighboursParams, explain_neighbours, args.folder, args.queries,
                    cache_dir=args.cache_dir, progress=not args.quiet)
    r, params = e.result, e.record["params"]
    n, (q, k) = len(r.index.paths), r.indices.shape
    same = r.same_class[r.labelled]
    share = f"; {int(same.sum())} of {same.size} neighbours share their query's class folder" if same.size else ""
    print(f"wrote {output}: the {k} nearest of {n} images for {q} {'query' if q == 1 else 'queries'} "
          f"({params['model']}, {e.record['layer']}, {params['metric']} distance){share}; {r.index.cached} of {n} "
          "folder features from the cache")
    return 0


def _cmd_embedding(args: argparse.Namespace) -> int:
    from ..understand.embedding import explain_embedding

    output, e = run(args, P.EmbeddingParams, explain_embedding, args.folder, cache_dir=args.cache_dir,
                    progress=not args.quiet)
    index, embs = e.result.index, e.result.embeddings
    parts = [f"{'PCA' if x.method == 'pca' else 't-SNE'} {x.separation:.0%}"
             + (f" ({x.explained:.0%} of variance)" if x.explained is not None else "") for x in embs]
    print(f"wrote {output}: {len(index.paths)} images in {len(index.classes)} class folders; 1-NN class agreement "
          f"in 2-D: {', '.join(parts)}; {index.cached} of {len(index.paths)} features from the cache")
    return 0


def _cmd_top_patches(args: argparse.Namespace) -> int:
    from ..understand.top_patches import explain_top_patches

    output, e = run(args, P.TopPatchesParams, explain_top_patches, args.folder, progress=not args.quiet)
    r, rf = e.result, e.result.receptive_field
    counts = ", ".join(f"{name} {n}" for name, n in Counter(r.labels).most_common(5))
    print(f"wrote {output}: the {len(r.values)} strongest patches of {r.images} images for channel {r.channel} "
          f"of {r.layer} ({r.channels} channels; receptive field {'>= ' if rf.clipped else ''}{rf.size} px, "
          f"stride {rf.stride}; patches {r.patches.shape[-1]} px); activation {r.values[0]:.3g} to "
          f"{r.values[-1]:.3g}; class folders: {counts}")
    return 0


def register(method) -> None:
    """Add the feature-space methods with ``method(name, help, example, settings class, handler, description)``,
    the ``explain`` method factory of :mod:`percept.cli.explain`."""
    m = method("neighbours", "the images of a folder nearest to query images in a layer's feature space "
               "(cached index)", "percept explain neighbours photos/ cat.jpg dog.jpg -k 5 -o nn.png",
               P.NeighboursParams, _cmd_neighbours,
               "Index FOLDER (recursively) by a layer's pooled features (cached per network, weights and layer) "
               "and show the k nearest images of each QUERY, captioned with class folder and distance; green "
               "frames: same class folder as the query. " + FEATURE_MODELS)
    m.add_argument("folder", metavar="FOLDER", help="images to search (class folders name the classes)")
    m.add_argument("queries", metavar="QUERY", nargs="+", help="query image(s); one row each")
    add_options(m, P.NeighboursParams, "grid image to write", quiet=True, cache=True)
    m = method("embedding", "a folder's images in 2-D (PCA, t-SNE) by a layer's features, coloured by class folder",
               "percept explain embedding hymenoptera/val --method both -o embedding.png", P.EmbeddingParams,
               _cmd_embedding,
               "Scatter plots of FOLDER's images (recursively) by PCA and/or t-SNE of a layer's pooled, "
               "L2-normalised features (cached), one colour per class folder, with thumbnails. " + FEATURE_MODELS)
    m.add_argument("folder", metavar="FOLDER", help="images to embed (class folders give the colours)")
    add_options(m, P.EmbeddingParams, "figure to write", quiet=True, cache=True)
    m = method("top-patches", "the image patches of a folder that activate one channel of a layer most",
               "percept explain top-patches photos/ --layer _blocks.5 --channel 7 -o patches.png",
               P.TopPatchesParams, _cmd_top_patches,
               "Run FOLDER's images (recursively) through MODEL and show the k input patches whose unit in "
               "CHANNEL of LAYER responds most (at most --per-image per image); a patch is the receptive field of "
               "its unit, measured with a gradient probe. " + FEATURE_MODELS)
    m.add_argument("folder", metavar="FOLDER", help="images to search")
    add_options(m, P.TopPatchesParams, "grid image to write", quiet=True)
