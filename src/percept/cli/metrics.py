"""``percept compare``: how similar images are to a reference, on pixel and perceptual metrics.

The options are generated from :class:`percept.metrics.params.CompareParams`; the handler calls
:func:`percept.metrics.compare_images` once and prints its table or JSON.
"""

from __future__ import annotations

import argparse
import json

from .commands import HELP
from .options import add_settings, settings_from_args

EPILOG = """\
examples:
  percept compare photo.png photo.jpg                    # how much did JPEG change it? psnr, ssim, lpips, dists
  percept compare original.png a.png b.png c.png         # one row per image, against the same reference
  percept compare hr.png upscaled.png --metric psnr,ssim --channel y --crop 4   # super-resolution protocol
  percept compare a.png b.png --metric lpips --lpips-net vgg
  percept compare a.png b.png --metric feature --feature-layer relu3_4
  percept compare original.png small.jpg --resize        # resize each image to the reference's size first
  percept compare a.png b.png --json > report.json       # values and the record (settings, inputs, weights)
  percept compare a.png c.png --params-from report.json  # the same settings again

what the numbers mean (A is the reference, B each image compared with it):
  psnr     peak signal-to-noise ratio, dB: 10 log10(1 / mean squared pixel error). Higher is more similar;
           identical images give inf. Blind to structure: a 1-px shift can cost more than visible blur.
  ssim     structural similarity (Wang et al. 2004): local brightness, contrast and structure under an
           11x11 Gaussian window, averaged. 1 = identical; higher is more similar.
  lpips    learned perceptual distance (Zhang et al. 2018): AlexNet (or VGG) features, weighted per channel to
           agree with human judgements of which distortion is worse. 0 = identical; lower is more similar.
  dists    structure and texture distance (Ding et al. 2020) on VGG-16 features; tolerates a texture being
           resampled (grass for other grass). 0 = identical; lower is more similar.
  feature  mean squared difference of a network's activations at one layer (the perceptual loss of Johnson et
           al. 2016); its scale depends on the network and layer. 0 = identical; lower is more similar.
Images must have the same size (or give --resize or --size). The first run builds lpips/dists from offline
weights (`percept models --kind metric`).
"""


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..metrics import compare_images
    from ..metrics.compare import settings_from_report
    from ..metrics.params import CompareParams

    settings = settings_from_report(args.params_from) if args.params_from else {}
    settings.update(settings_from_args(args, CompareParams))
    result = compare_images(args.reference, args.images, progress=not args.quiet and not args.json, **settings)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.table())
    return 0


def register(sub) -> None:
    from ..metrics.params import CompareParams

    p = sub.add_parser(
        "compare", help=HELP["compare"], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Compare one or more images B with a reference A on pixel metrics (PSNR, SSIM) and perceptual "
        "metrics computed on pretrained networks (LPIPS, DISTS, feature distance); prints one row per image. "
        "Options of a metric that is not chosen are refused.",
    )
    p.add_argument("reference", metavar="A", help="the reference image")
    p.add_argument("images", metavar="B", nargs="+", help="image(s) to compare with the reference")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print JSON (values, which direction is better, the record) "
                   "instead of a table (default: off)")
    g.add_argument("--params-from", metavar="REPORT.json", help="start from the settings recorded in a report of "
                   "percept compare --json; explicit options override them (default: off)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    add_settings(p.add_argument_group("metrics (also keyword arguments of percept.metrics.compare_images)"),
                 CompareParams)
    p.set_defaults(func=_cmd_compare)
