"""``percept gaze-train``, ``gaze`` and ``gaze-eval``: predict where people look (DeepGaze I and II).

Options come from :class:`~percept.gaze.params.GazeTrainParams`, :class:`~percept.gaze.params.GazeParams` and
:class:`~percept.gaze.params.GazeEvalParams`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import PerceptError
from ..gaze.params import GazeEvalParams, GazeParams, GazeTrainParams
from .commands import HELP
from .options import add_settings, settings_from_args

CACHE_HELP = "feature cache folder (default: $PERCEPT_CACHE/gaze or ~/.cache/percept/gaze)"
DATA_HELP = "folder with stimuli/, images.csv (image,width,height) and fixations.csv (image,x,y,...)"
DATA_LAYOUT = ("DATA holds stimuli/ (the images), images.csv with a row image,width,height per image and "
               "fixations.csv with a row image,x,y (pixels of the image, origin top left; more columns such as "
               "subject are allowed) per fixation.")


def _cmd_gaze_train(args: argparse.Namespace) -> int:
    from ..gaze.train import train_gaze

    if Path(args.output).suffix.lower() != ".pt":
        raise PerceptError(f"model file {args.output!r} must end in .pt")
    record = train_gaze(args.data, args.output, resume=args.resume, progress=not args.quiet,
                        cache_dir=args.cache_dir, **settings_from_args(args, GazeTrainParams))
    p, split = record["params"], record["split"]
    stop = {"time limit": " (time limit: --resume goes on)", "early stopping": " (early stopping)"}
    print(f"trained {p['model']} on {p['backbone']} features: {len(split['train'])} training images, "
          f"{len(split['val'])} for early stopping, {len(split['test'])} held out; best epoch {record['best_epoch']} "
          f"of {len(record['history'])}{stop.get(record['stopped'], '')} in {record['seconds']:.1f}s on "
          f"{record['device']}")
    print(f"validation log-likelihood {record['val_ll']:.3f} bits/fixation over uniform; centre bias "
          f"{record['val_ll_centre_bias']:.3f}; information gain {record['val_ig']:+.3f} bits/fixation")
    print(f"wrote {args.output}; evaluate it: percept gaze-eval {args.output} {args.data}")
    return 0


def _outputs(images: list[str], output: str) -> list[Path]:
    """One output file for one image; for several, ``output`` is a folder and each goes to ``NAME.png`` in it."""
    from ..image import check_writable

    if len(images) == 1:
        return [check_writable(output)]
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise PerceptError(f"several images need a folder for -o; {output!r} is a file")
    if not folder.parent.is_dir():
        raise PerceptError(f"folder {str(folder.parent)!r} does not exist; create it first")
    stems = [Path(image).stem for image in images]
    if len(set(stems)) < len(stems):
        raise PerceptError("two images have the same name; give them one at a time")
    folder.mkdir(exist_ok=True)
    return [check_writable(folder / f"{stem}.png") for stem in stems]


def _gaze_settings(args: argparse.Namespace) -> dict[str, Any]:
    given: dict[str, Any] = {}
    if args.params_from:
        from ..record import params_from

        _, recorded = params_from(args.params_from, ["gaze"])
        given.update({k: v for k, v in recorded.items() if k in GazeParams.__dataclass_fields__})
    given.update(settings_from_args(args, GazeParams))
    given.setdefault("model", GazeParams.model)
    return given


def _cmd_gaze(args: argparse.Namespace) -> int:
    from ..gaze.predict import predict_gaze
    from ..image import save_image
    from ..record import command_line

    settings = _gaze_settings(args)
    outputs = _outputs(args.images, args.output)
    predictions = predict_gaze(args.images, progress=not args.quiet, **settings)
    for image, output, prediction in zip(args.images, outputs, predictions):
        shown = {"model": settings["model"], "overlay": prediction.record["params"]["overlay"]}
        record = {**prediction.record, "command": command_line(["gaze", image, "-o", output], shown)}
        save_image(prediction.figure, output, record)
    h, w = predictions[-1].log_density.shape
    what = f"{outputs[0]} ({w}x{h})" if len(outputs) == 1 else f"{len(outputs)} maps to {args.output}/"
    kind = "over the photo" if predictions[-1].record["params"]["overlay"] else "heat map"
    print(f"wrote {what}: fixation density of {predictions[-1].record['model']} ({kind})")
    return 0


def format_table(result: dict[str, Any], sigma: float) -> str:
    """The evaluation as a text table: one row per model, the baselines first."""
    lines = [f"{'model':<15} {'LL':>7} {'IG':>7} {'AUC':>6} {'sAUC':>6} {'NSS':>6} {'CC':>6}"]
    for name, m in result["rows"].items():
        lines.append(f"{name:<15} {m['ll']:>7.3f} {m['ig']:>+7.3f} {m['auc']:>6.3f} {m['sauc']:>6.3f} "
                     f"{m['nss']:>6.3f} {m['cc']:>6.3f}")
    lines.append(f"LL: bits/fixation over uniform; IG: bits/fixation over the centre bias; CC against the fixation "
                 f"map blurred by {sigma:g} px (256-px grid)")
    return "\n".join(lines)


def _cmd_gaze_eval(args: argparse.Namespace) -> int:
    from ..gaze.predict import evaluate_gaze

    settings = settings_from_args(args, GazeEvalParams)
    result = evaluate_gaze(args.model, args.data, progress=not args.quiet and not args.json,
                           cache_dir=args.cache_dir, **settings)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = result["rows"]
    first = next(iter(rows.values()))
    which = f"all {first['images']}" if result["subset"] == "all" else f"{first['images']} {result['subset']}"
    print(f"{result['model']} on {which} images ({first['fixations']:,} fixations) of {args.data}")
    print(format_table(result, result["record"]["params"]["cc_sigma"]))
    return 0


def _run_options(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
    if cache:
        p.add_argument("--cache-dir", type=Path, default=None, help=CACHE_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "gaze-train", help=HELP["gaze-train"], formatter_class=fmt,
        description="Trains a model of where people look on eye-tracking data: DeepGaze I (Kümmerer et al. 2015: a "
        "linear readout of frozen AlexNet features) or DeepGaze II (2017: a small readout network on VGG-19 "
        "layers), each with a learnt Gaussian blur and a learnt weight on the centre bias, giving a fixation "
        "density per image, trained by the log-likelihood of the recorded fixations. " + DATA_LAYOUT + " The images "
        "are split by image into --folds folds; fold --fold is held out (gaze-eval scores it), a share of the rest "
        "decides early stopping. Features are computed once per image and cached, so a run on a few hundred images "
        "takes minutes on a CPU. GAZE.pt.ckpt holds the state after each epoch; --resume goes on from it.",
        epilog="examples:\n  percept gaze-train fixations/ -o gaze.pt\n"
        "  percept gaze-train fixations/ -o gaze2.pt --model deepgaze2\n"
        "  for i in 0 1 2 3 4; do percept gaze-train fixations/ -o fold$i.pt --fold $i; done   # cross-validation\n"
        "  percept gaze-train fixations/ -o all.pt --folds 1   # every image trains (nothing held out)\n"
        "  percept gaze-eval gaze.pt fixations/",
    )
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    add_settings(p, GazeTrainParams)
    p.add_argument("-o", "--output", required=True, metavar="GAZE.pt", help="model file to write (required)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in GAZE.pt.ckpt, also to more "
                   "--epochs (default: off)")
    _run_options(p)
    p.set_defaults(func=_cmd_gaze_train)

    p = sub.add_parser(
        "gaze", help=HELP["gaze"], formatter_class=fmt,
        description="Predicts where people look in each IMAGE and writes the fixation density as a heat map "
        "(brighter = more fixations expected), or over the photo with --overlay. The model that ships with percept "
        "(deepgaze2) is used unless --model names one trained by percept gaze-train. The settings are stored in "
        "the PNG; --params-from reproduces them.",
        epilog="examples:\n  percept gaze street.jpg -o street_gaze.png\n"
        "  percept gaze street.jpg -o street_overlay.png --overlay\n"
        "  percept gaze photos/*.jpg -o maps/ --model gaze.pt   # your own model; several images: -o is a folder",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image file(s)")
    add_settings(p, GazeParams)
    p.add_argument("-o", "--output", required=True, metavar="MAP.png", help="heat map to write; a folder for "
                   "several images (required)")
    p.add_argument("--params-from", metavar="PNG", help="start from the settings recorded in an earlier output of "
                   "percept gaze; explicit options override them (default: off)")
    _run_options(p, cache=False)
    p.set_defaults(func=_cmd_gaze)

    p = sub.add_parser(
        "gaze-eval", help=HELP["gaze-eval"], formatter_class=fmt,
        description="Scores a model against recorded fixations, beside three baselines fitted on the same training "
        "images: uniform, a Gaussian blob at the centre and the centre bias (a kernel density of the training "
        "fixations). LL: log-likelihood in bits per fixation over the uniform density; IG: information gain over "
        "the centre bias (bits per fixation); AUC (every pixel a negative), shuffled AUC (the fixations on the "
        "other images as negatives), NSS, and CC against the blurred fixation map. " + DATA_LAYOUT,
        epilog="examples:\n  percept gaze-eval gaze.pt fixations/\n"
        "  percept gaze-eval gaze.pt other_fixations/ --subset all --json > scores.json",
    )
    p.add_argument("model", metavar="MODEL", help="deepgaze2 (ships with percept) or a GAZE.pt written by percept "
                   "gaze-train")
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    add_settings(p, GazeEvalParams)
    p.add_argument("--json", action="store_true", help="print every score, per image too, as JSON (default: off)")
    _run_options(p)
    p.set_defaults(func=_cmd_gaze_eval)
