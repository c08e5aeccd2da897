"""``percept explain``: look inside a network. Each method's options are generated from its settings dataclass
(:mod:`percept.understand.params`); each handler calls one ``explain_*`` function of :mod:`percept.understand`,
saves the figure with its record and prints a summary. This module holds ``register`` and the methods that read
one image (layers, filters, activations, saliency, attack); the gradient-ascent methods are in
:mod:`percept.cli.explain_ascent`, the feature-space methods in :mod:`percept.cli.explain_features`, what they
share in :mod:`percept.cli.explain_common`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..understand import params as P
from . import explain_ascent, explain_features
from .explain_common import add_options, run
from .commands import HELP
from .options import add_settings, settings_from_args


def _cmd_layers(args: argparse.Namespace) -> int:
    from ..understand.layers import explain_layers

    for name, shape in explain_layers(**settings_from_args(args, P.LayersParams)):
        print(name if shape is None else f"{name:<40}{'x'.join(map(str, shape))}")
    return 0


def _cmd_filters(args: argparse.Namespace) -> int:
    from ..understand.filters import explain_filters

    output, e = run(args, P.FiltersParams, explain_filters)
    n, _, h, w = e.result.shape
    print(f"wrote {output}: {n} first-layer filters of {e.record['params']['model']} ({h}x{w} px, RGB)")
    return 0


def _cmd_activations(args: argparse.Namespace) -> int:
    from ..understand.activations import explain_activations

    output, e = run(args, P.ActivationsParams, explain_activations, args.image)
    maps, channels = e.result.maps, e.result.channels
    print(f"wrote {output}: the {len(channels)} strongest of {maps.shape[0]} channels of "
          f"{e.record['params']['layer']} ({maps.shape[1]}x{maps.shape[2]}), strongest first: {channels[:8]}")
    return 0


def _cmd_saliency(args: argparse.Namespace) -> int:
    from ..understand.saliency import explain_saliency

    output, e = run(args, P.SaliencyParams, explain_saliency, args.image)
    r = e.result
    print(f"wrote {output} ({e.record['params']['method']}): explains {r.target_name!r}; top class {r.top[0]!r} "
          f"({r.top[1]:.1%})")
    return 0


def _cmd_attack(args: argparse.Namespace) -> int:
    from ..understand.attack import explain_attack

    output, e = run(args, P.AttackParams, explain_attack, args.image)
    r, rec = e.result, e.record
    goal = f"target {rec['target']!r}" if rec["target"] is not None else "untargeted"
    print(f"wrote {output} (original | perturbation x{r.amplification:.0f} | adversarial): {rec['original']!r} -> "
          f"{rec['new']!r} ({r.probability:.1%}), {goal}, {'success' if r.success else 'failed'}; L-inf "
          f"{r.linf * 255:.2f}/255, L2 {r.l2:.3f}")
    return 0


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("explain", help=HELP["explain"],
                       formatter_class=fmt,
                       description="Understanding CNNs. MODEL is an ImageNet classifier (efficientnet_lite0, "
                       "efficientnet_lite2 offline; resnet18, resnet50, mobilenet_v3_large, efficientnet_b0, "
                       "convnext_tiny via torchvision), a RUN folder from percept train, or for filters, "
                       "activations, layers, invert, dream and the feature-space methods also a feature network "
                       "(vgg19, vgg16, alexnet).",
                       epilog="examples:\n  percept explain layers efficientnet_lite0\n"
                       "  percept explain saliency cat.jpg -o cat_gradcam.png --method gradcam\n"
                       "  percept explain METHOD --help      # the options of one method")
    methods = p.add_subparsers(dest="method_name", metavar="METHOD", required=True)

    def method(name: str, help: str, example: str, cls: type, func: Callable[[argparse.Namespace], int],
               description: str | None = None) -> argparse.ArgumentParser:
        m = methods.add_parser(name, help=help, formatter_class=fmt, epilog=f"example:\n  {example}",
                               description=description)
        add_settings(m, cls, only=("model", "device"))
        m.set_defaults(func=func)
        return m

    method("layers", "list the layer names of MODEL with their output shapes (C x H x W at 224 px)",
           "percept explain layers --model efficientnet_lite0", P.LayersParams, _cmd_layers)
    m = method("filters", "the first layer's filters as an image grid",
               "percept explain filters --model alexnet -o filters.png", P.FiltersParams, _cmd_filters)
    add_options(m, P.FiltersParams, "grid image to write")
    m = method("activations", "feature maps of one layer for an image (strongest channels first)",
               "percept explain activations cat.jpg --layer _blocks.3 -o maps.png", P.ActivationsParams,
               _cmd_activations)
    m.add_argument("image", metavar="IMAGE", help="input image")
    add_options(m, P.ActivationsParams, "grid image to write")
    m = method("saliency", "which pixels the decision depends on: gradient, smoothgrad, guided, gradcam, occlusion",
               "percept explain saliency cat.jpg --method gradcam --whole -o gradcam.png", P.SaliencyParams,
               _cmd_saliency, "Options marked gradcam:, occlusion: or smoothgrad: apply to that method only.")
    m.add_argument("image", metavar="IMAGE", help="input image")
    add_options(m, P.SaliencyParams, "image and heat-map overlay, side by side")
    m = method("attack", "adversarial example: FGSM or PGD, untargeted or towards a class, within an L-inf budget",
               "percept explain attack panda.jpg --target gibbon --epsilon 4/255 -o gibbon.png", P.AttackParams,
               _cmd_attack)
    m.add_argument("image", metavar="IMAGE", help="input image (the classifier's centre crop is attacked)")
    add_options(m, P.AttackParams, "original | amplified perturbation | adversarial image, side by side")
    explain_features.register(method)
    explain_ascent.register(method)
