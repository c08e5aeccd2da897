"""``percept train-sr``, ``upscale`` and ``evaluate-sr``: super-resolution with perceptual losses.

Options come from :class:`~percept.sr.params.TrainSrParams`, :class:`~percept.sr.params.UpscaleParams` and
:class:`~percept.sr.params.EvaluateSrParams`; each handler calls one library function and prints.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from ..sr.params import EvaluateSrParams, TrainSrParams, UpscaleParams
from .commands import HELP
from .options import add_settings, settings_from_args

TRAIN_EPILOG = """\
examples:
  percept train-sr --images coco/train2014 -o sr_x4.pt --device cuda                 # the paper's recipe
  percept train-sr --images photos/ -o sr_x4.pt --crop 96 --amp --max-minutes 30      # a CPU budget
  percept train-sr --images photos/ -o pixel_x4.pt --loss pixel --max-minutes 30
  percept train-sr --images photos/ -o sr_x8.pt --factor 8 --loss mix --feature-weight 0.002
  percept train-sr --images photos/ -o sr_x4.pt --crop 96 --resume --steps 4000       # go on training
  percept upscale small.jpg -o big.png --model sr_x4.pt
"""

UPSCALE_EPILOG = """\
examples:
  percept upscale small.jpg -o big.png                          # SRResNet, x4
  percept upscale small.jpg -o big.png --model srgan            # sharper textures (GAN), lower PSNR
  percept upscale small.jpg -o big.png --model sr_x4.pt         # a network of percept train-sr
  percept upscale small.jpg -o big.png --model bicubic --factor 8
  percept upscale large.png -o huge.png --model srresnet --tile 256   # less memory, same result
  percept upscale small.jpg -o again.png --params-from big.png  # reproduce a result
"""

EVALUATE_EPILOG = """\
examples:
  percept evaluate-sr srresnet srgan photos/                    # against bicubic, x4
  percept evaluate-sr sr_x4.pt pixel_x4.pt srresnet photos/ --json > results.json
  percept evaluate-sr sr_x8.pt photos/ --factor 8 --metrics psnr,ssim --channel y
  percept evaluate-sr srresnet photos/ --degradation bicubic    # the inputs SRResNet was trained on

PSNR (dB) and SSIM measure pixel fidelity: higher is better, and pixel-loss networks score best. LPIPS measures
perceptual distance: lower is better, and feature-loss and GAN networks score best although their PSNR is lower.
"""


def _cmd_train_sr(args: argparse.Namespace) -> int:
    from ..sr.train import train_sr

    settings = settings_from_args(args, TrainSrParams)
    record = train_sr(settings.pop("images"), args.output, resume=args.resume, progress=not args.quiet, **settings)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in record["final_losses"].items() if k != "total")
    stop = " (time limit; --resume --max-minutes M goes on)" if record["stopped"] == "time limit" else ""
    print(f"trained {record['steps']} steps{stop} in {record['seconds']:.1f}s on {record['device']}; mean losses of "
          f"the last steps: {losses}")
    print(f"wrote {args.output} (checkpoint {args.output}.ckpt, for --resume)")
    print(f"use it: percept upscale SMALL.png -o BIG.png --model {args.output}")
    return 0


def _cmd_upscale(args: argparse.Namespace) -> int:
    from ..image import check_writable, save_image
    from ..params import default_of
    from ..record import command_line, params_from
    from ..sr.upscale import upscale

    settings = {}
    if args.params_from:
        _, recorded = params_from(args.params_from, ["upscale"])
        settings.update({f.name: recorded[f.name] for f in fields(UpscaleParams) if f.name in recorded})
    settings.update(settings_from_args(args, UpscaleParams))
    output = check_writable(args.output)
    result = upscale(args.image, progress=not args.quiet, **settings)
    shown = {f.name: result.record["params"][f.name] for f in fields(UpscaleParams)
             if result.record["params"][f.name] != default_of(f)}
    record = {**result.record, "command": command_line(["upscale", args.image, "-o", output], shown)}
    save_image(result.image, output, record)
    w, h = record["size_px"]
    print(f"wrote {output} ({w}x{h}, x{record['factor']} with {record['params']['model']}) in {result.seconds:.1f}s "
          f"on {record['device']}")
    return 0


def _cmd_evaluate_sr(args: argparse.Namespace) -> int:
    from ..sr.evaluate import evaluate_sr

    result = evaluate_sr(args.models, args.images, progress=not args.quiet and not args.json,
                         **settings_from_args(args, EvaluateSrParams))
    if args.json:
        print(json.dumps(result.record, indent=1))
        return 0
    p = result.record["params"]
    print(f"x{p['factor']} super-resolution of {len(result.images)} image(s), {p['degradation']} degradation; "
          f"{result.record['border_px']} px border cut; PSNR/SSIM on {p['channel']}; mean over the images "
          "(* best)")
    print(result.table())
    return 0


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "train-sr", help=HELP["train-sr"], formatter_class=fmt, epilog=TRAIN_EPILOG,
        description="Trains the super-resolution network of Johnson, Alahi & Fei-Fei (2016) on crops of "
        "high-resolution photos: each crop is blurred and downsampled (--degradation) and the network learns to "
        "undo it, with a pixel loss, the paper's feature loss (VGG-16 relu2_2) or both. The paper: 288 px crops "
        "of 10k COCO photos, 200k steps of 4 on a GPU. Writes the model file at every checkpoint and keeps "
        "OUT.ckpt beside it: --resume continues (also to more --steps).")
    add_settings(p, TrainSrParams, required=("images",))
    p.add_argument("-o", "--output", required=True, metavar="SR.pt", help="model file to write (required)")
    p.add_argument("--resume", action="store_true", help="continue the training saved in OUT.ckpt, also to more "
                   "--steps (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    p.set_defaults(func=_cmd_train_sr)

    p = sub.add_parser(
        "upscale", help=HELP["upscale"], formatter_class=fmt, epilog=UPSCALE_EPILOG,
        description="Upscales an image 4 (or 8) times with a super-resolution network: SRResNet or SRGAN (Ledig "
        "et al. 2017, x4, shipped), a network trained with percept train-sr, or bicubic interpolation. The output "
        "records the settings (see percept info).")
    p.add_argument("image", metavar="IN", help="the low-resolution image")
    add_settings(p, UpscaleParams)
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output image; the settings are stored "
                   "in it (required)")
    p.add_argument("--params-from", metavar="PNG", help="start from the settings recorded in an earlier output of "
                   "percept upscale; explicit options override them (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    p.set_defaults(func=_cmd_upscale)

    p = sub.add_parser(
        "evaluate-sr", help=HELP["evaluate-sr"], formatter_class=fmt, epilog=EVALUATE_EPILOG,
        description="Degrades each photo of DIR as in training, upscales it with each MODEL and with bicubic "
        "interpolation, and prints PSNR, SSIM and LPIPS against the original photo (the mean over the photos; "
        "--json: every value and the record).")
    p.add_argument("models", metavar="MODEL", nargs="*", help="srresnet, srgan or a model file of percept train-sr "
                   "(bicubic is always compared)")
    p.add_argument("images", metavar="DIR", help="folder of high-resolution photos (or one image file)")
    add_settings(p, EvaluateSrParams)
    p.add_argument("--json", action="store_true", help="print every value and the record as JSON (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    p.set_defaults(func=_cmd_evaluate_sr)
