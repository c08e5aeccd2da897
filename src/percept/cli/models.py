"""``percept models``: every model of the registry, grouped by kind, and whether it is available here; or one."""

from __future__ import annotations

import argparse
import json

from .commands import HELP
from .options import add_settings, settings_from_args


def _cmd_models(args: argparse.Namespace) -> int:
    from ..models import catalog_json, describe
    from ..models.params import DescribeParams

    settings = settings_from_args(args, DescribeParams)
    if args.json:
        print(json.dumps(catalog_json(args.name, **settings), indent=2, sort_keys=args.name is not None))
    else:
        print(describe(args.name, **settings))
    return 0


def register(sub) -> None:
    from ..models.params import DescribeParams

    p = sub.add_parser("models", help=HELP["models"],
                       description="List every model percept can build (feature networks, classifiers, backbones, "
                       "decoders, style networks) with the availability of its weights here, or describe one.",
                       epilog="examples:\n  percept models\n  percept models vgg19\n  percept models --kind backbone\n"
                       "  percept models my_style.pt", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", nargs="?", default=None, metavar="NAME|FILE",
                   help="a model name (its weights, sources and layers) or a model file or run folder (what it holds)")
    add_settings(p, DescribeParams)
    p.add_argument("--json", action="store_true", help="print JSON instead of text (default: off)")
    p.set_defaults(func=_cmd_models)
