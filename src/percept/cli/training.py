"""``percept train-style`` and ``train-adain``: train feed-forward style networks and AdaIN decoders.

Options come from :class:`~percept.style.training_params.TrainStyleParams` and
:class:`~percept.style.training_params.TrainAdainParams`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PerceptError
from ..style.training_params import TrainAdainParams, TrainStyleParams
from .commands import HELP
from .options import add_settings, settings_from_args


def _add_run_options(p: argparse.ArgumentParser, output: str, resume: str) -> None:
    """-o (required), --resume and --quiet: where to write and how to run, not settings of the result."""
    p.add_argument("-o", "--output", required=True, metavar=output, help=f"{output.split('.')[0].lower()} file to "
                   "write (required)")
    p.add_argument("--resume", action="store_true", help=f"{resume} (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")


def _cmd_train_adain(args: argparse.Namespace) -> int:
    from ..style.adain_train import train_adain

    settings = settings_from_args(args, TrainAdainParams)
    record = train_adain(settings.pop("content_dir"), settings.pop("style_dir"), args.output, resume=args.resume,
                         progress=not args.quiet, **settings)
    losses = record["final_losses"]
    print(f"trained an AdaIN decoder for {record['params']['steps']} steps in {record['seconds']:.1f}s on "
          f"{record['device']}; final losses: content {losses['content']:.4g}, style {losses['style']:.4g}")
    print(f"wrote {args.output}; use it: percept stylize CONTENT STYLE -o OUT.png --method adain "
          f"--decoder {args.output}")
    return 0


def _training_folder(model: Path) -> Path:
    """Where ``train-style -o MODEL.pt`` keeps its checkpoint, samples and train.json: ``MODEL_training/``."""
    return model.with_name(model.stem + "_training")


def _cmd_train_style(args: argparse.Namespace) -> int:
    from ..style.transform_train import train_transform_net

    model = Path(args.output)
    if model.suffix.lower() != ".pt":
        raise PerceptError(f"model file {args.output!r} must end in .pt")
    folder = _training_folder(model)
    settings = settings_from_args(args, TrainStyleParams)
    record = train_transform_net(args.styles, settings.pop("content_dir"), folder, model_file=model,
                                 resume=args.resume, progress=not args.quiet, **settings)
    losses, steps = record["training"]["final_losses"], record["training"]["steps"]
    stop = " (time limit; --resume --max-minutes M goes on)" if record["stopped"] == "time limit" else ""
    print(f"trained {steps} steps{stop} in {record['seconds']:.1f}s on {record['device']}; losses (mean of the last "
          f"100 steps): content {losses['content']:.4g}, style {losses['style']:.4g}, tv {losses['tv']:.4g}")
    print(f"wrote {model} (samples, checkpoint and train.json in {folder}/)")
    styles = "" if len(args.styles) == 1 else " --style-index 0"
    print(f"use it: percept stylize PHOTO.jpg -o OUT.png --model {model}{styles}")
    return 0


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "train-adain", help=HELP["train-adain"], formatter_class=fmt,
        description="Trains the decoder of AdaIN (Huang & Belongie 2017) on photos and paintings: content loss "
        "to the AdaIN target in VGG-19 relu4_1, style loss on the channel means and stds of relu1_1..relu4_1. "
        "The paper trains 160,000 steps of 8 images (MS-COCO + WikiArt) on a GPU; percept ships that decoder, so "
        "train only to adapt it (--init shipped) or to study the method. The checkpoint DECODER.pt.ckpt is "
        "written every --checkpoint-every steps; --resume continues from it.",
        epilog="examples:\n  percept train-adain --content-dir photos/ --style-dir paintings/ -o decoder.pt "
        "--steps 2000\n  percept train-adain --content-dir coco/ --style-dir wikiart/ -o decoder.pt --steps 160000 "
        "--init random --device cuda\n  percept stylize cat.jpg wave.jpg -o out.png --method adain --decoder "
        "decoder.pt",
    )
    add_settings(p, TrainAdainParams, required=("content_dir", "style_dir", "steps"))
    _add_run_options(p, "DECODER.pt", "continue an interrupted training")
    p.set_defaults(func=_cmd_train_adain)

    p = sub.add_parser(
        "train-style", help=HELP["train-style"],
        formatter_class=fmt,
        description="Trains the transform network of Johnson, Alahi & Fei-Fei (2016) to paint photos in the style "
        "of STYLE in one forward pass, with the perceptual loss of percept stylize (content at relu2_2, Gram style "
        "at relu1_2..relu4_3 of VGG-16, total variation). Several STYLE images train one network with conditional "
        "instance norm (Dumoulin et al. 2017): pick or blend them with stylize --style-index/--style-blend-weights. "
        "Writes MODEL.pt at every checkpoint and keeps checkpoint.pt, samples/ and train.json in MODEL_training/. "
        "Quality recipe (the paper): photos such as COCO train2014 (80k), --size 256, --steps 40000, a GPU "
        "(mixed precision and channels-last on CUDA by default); the paper took about 4 h on a 2016 GPU. On a CPU, "
        "--size 128 --amp --max-minutes 20 gives a usable network (see docs/feedforward.md).",
        epilog="examples:\n"
        "  percept train-style starry.jpg --content-dir coco/train2014 -o starry.pt --device cuda\n"
        "  percept train-style starry.jpg --content-dir photos/ -o starry.pt --size 128 --amp --max-minutes 20\n"
        "  percept train-style wave.jpg scream.jpg udnie.jpg --content-dir coco/ -o three.pt   # one network\n"
        "  percept train-style starry.jpg --content-dir photos/ -o starry.pt --resume --steps 60000\n"
        "  percept stylize photo.jpg -o out.png --model three.pt --style-blend-weights 0.5,0.5,0",
    )
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several train one multi-style network")
    add_settings(p, TrainStyleParams, required=("content_dir",))
    _add_run_options(p, "MODEL.pt", "continue the training in MODEL_training/, also to more --steps")
    p.set_defaults(func=_cmd_train_style)
