"""``percept explain class-image``, ``invert`` and ``dream``: gradient ascent on the input of a network."""

from __future__ import annotations

import argparse

from ..understand import params as P
from .explain_common import add_options, run

ANY_MODEL = ("MODEL is a feature network (vgg19, vgg16, alexnet) or a classifier (its module names, see `percept "
             "explain layers`).")


def _cmd_class_image(args: argparse.Namespace) -> int:
    from ..understand.class_image import explain_class_image

    output, e = run(args, P.ClassImageParams, explain_class_image, progress=not args.quiet)
    parts = [f"{name!r} logit {r.start_logit:.2f} -> {r.end_logit:.2f} (+{r.gain:.2f}), rank {r.rank}, "
             f"p {r.probability:.3f}" for name, r in zip(e.record["classes"], e.result)]
    print(f"wrote {output}: {'; '.join(parts)}")
    return 0


def _cmd_invert(args: argparse.Namespace) -> int:
    from ..understand.invert import explain_invert

    output, e = run(args, P.InvertParams, explain_invert, args.image, progress=not args.quiet)
    r = e.result
    parts = [f"{inv.layer} {inv.psnr:.1f} dB (feature error {inv.loss:.4f})" for inv in r.inversions]
    print(f"wrote {output} (original | {' | '.join(e.record['layers'])}, {r.original.shape[-1]}x"
          f"{r.original.shape[-2]} px): PSNR {', '.join(parts)}")
    return 0


def _cmd_dream(args: argparse.Namespace) -> int:
    from ..understand.dream import explain_dream

    output, e = run(args, P.DreamParams, explain_dream, args.image, progress=not args.quiet)
    r = e.result
    print(f"wrote {output} ({r.image.shape[-1]}x{r.image.shape[-2]} px): {r.layer} RMS activation "
          f"{r.norm_before:.3f} -> {r.norm_after:.3f} (x{r.ratio:.2f})")
    return 0


def register(method) -> None:
    """Add the gradient-ascent methods with ``method(name, help, example, settings class, handler,
    description)``, the ``explain`` method factory of :mod:`percept.cli.explain`."""
    m = method("class-image", "the image a classifier finds most typical of a class (gradient ascent on its logit)",
               "percept explain class-image --class goldfish,flamingo -o classes.png", P.ClassImageParams,
               _cmd_class_image,
               "Class visualisation (Simonyan et al. 2014) with Yosinski et al. 2015's regularisers: gradient "
               "ascent on the class logit from a grey image with faint seeded noise, each step jittered, decayed "
               "towards grey (L2) and clamped to [0, 1], blurred every few steps. Several classes are drawn side "
               "by side.")
    add_options(m, P.ClassImageParams, "image(s) to write, side by side", quiet=True)
    m = method("invert", "reconstruct an image from one layer's features, for several layers (Mahendran & Vedaldi)",
               "percept explain invert cat.jpg --layers relu1_2,relu2_2,relu3_4,relu4_4 -o invert.png",
               P.InvertParams, _cmd_invert,
               "Feature inversion (Mahendran & Vedaldi 2015): for each layer, an image is optimised from seeded "
               "noise so that its features match the photo's (relative squared error) under a total-variation "
               "prior. Writes original | layer 1 | layer 2 ... and prints each PSNR. " + ANY_MODEL)
    m.add_argument("image", metavar="IMAGE", help="image to reconstruct")
    add_options(m, P.InvertParams, "original and reconstructions, side by side", quiet=True)
    m = method("dream", "DeepDream: amplify what a layer sees in a photo, over several octaves",
               "percept explain dream cat.jpg --layer relu3_3 -o dream.png", P.DreamParams, _cmd_dream,
               "DeepDream (Mordvintsev et al. 2015): normalised, jittered gradient ascent on the mean square of a "
               "layer's activations, from the smallest octave of the photo up, carrying the detail from octave to "
               "octave. " + ANY_MODEL)
    m.add_argument("image", metavar="IMAGE", help="photo to dream into")
    add_options(m, P.DreamParams, "dreamed image", quiet=True)
