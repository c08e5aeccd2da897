"""``percept stylize``, ``texture`` and ``info``: style transfer by optimisation, AdaIN or a trained network.

The options are generated from the settings of each method (:mod:`percept.style.params`); the handlers find the
method and its settings (:func:`percept.style.params.resolve_settings`: explicit options on top of a
``--params-from`` record), call one library function and save ``result.image`` with ``result.record`` and the
command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import PerceptError
from .commands import HELP
from .options import add_output_options, add_settings, settings_from_args

EPILOG_STYLIZE = """\
examples:
  percept stylize photo.jpg starry_night.jpg -o out.png --size 256
  percept stylize photo.jpg wave.jpg scream.jpg --style-blend-weights 0.7,0.3 -o blend.png
  percept stylize photo.jpg starry_night.jpg -o out.png --preserve-color luminance
  percept stylize photo.jpg wave.jpg scream.jpg -o regions.png --mask fg_mask.png  # white: wave, black: scream
  percept stylize photo.jpg a.jpg b.jpg c.jpg -o three.png --mask ma.png,mb.png,mc.png  # one mask per style
  percept stylize photo.jpg starry_night.jpg -o big.png --size 1024        # 256 -> 512 -> 1024
  percept stylize photo.jpg starry_night.jpg -o out.png --save-every 10 --timelapse out.gif
  percept stylize --params-from out.png photo.jpg starry_night.jpg -o again.png   # reproduce a result
  percept stylize photo.jpg scream.jpg -o fast.png --method adain --alpha 0.8     # one forward pass
  percept stylize photo.jpg wave.jpg scream.jpg -o mix.png --method adain --style-blend-weights 0.5,0.5
  percept stylize photo.jpg wave.jpg scream.jpg -o split.png --method adain --mask fg_mask.png
  percept stylize photo.jpg -o out.png --model starry.pt                        # trained network (train-style)
  percept stylize photos/ -o styled/ --model styles.pt --style-blend-weights 0.3,0.7   # a folder, two styles
  percept stylize huge.jpg -o huge_styled.png --model starry.pt --tile 1024     # tiles, no seams
  percept stylize photo.jpg -o out.png --model multistyle26 --style-index 19    # 26 trained styles, no training
"""

EPILOG_TEXTURE = """\
examples:
  percept texture colorful_zigzag_256.jpg -o zigzag_512.png --size 512
  percept texture red_peppers.jpg -o peppers.png --style-scale 0.5 --seed 3
  percept texture colorful_zigzag_256.jpg -o again.png --params-from zigzag_512.png      # reproduce a result
"""

#: Images of a folder read and stylised together by a trained network (bounds memory for large folders).
MODEL_CHUNK = 32


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, of any method."""
    from ..style.params import METHODS

    return {k: v for cls in dict.fromkeys(METHODS.values()) for k, v in settings_from_args(args, cls).items()}


def _resolve(args: argparse.Namespace, command: str) -> tuple[str, dict[str, Any]]:
    from ..style.params import resolve_settings

    return resolve_settings(command, _explicit(args), method=getattr(args, "method", None),
                            params_from=args.params_from)


def _save(result: Any, output: Path) -> dict[str, Any]:
    """Write ``result.image`` with its record and the command that reproduces it; return that record."""
    from ..image import save_image
    from ..style.params import reproducing_command

    record = {**result.record, "command": reproducing_command(result.record, output)}
    save_image(result.image, output, record)
    return record


def _no_steps(args: argparse.Namespace, method: str) -> None:
    if args.save_every or args.timelapse:
        raise PerceptError(f"--save-every and --timelapse show optimisation steps; {method} has none")


def _cmd_stylize(args: argparse.Namespace) -> int:
    method, settings = _resolve(args, "stylize")
    if method == "network":
        if args.styles:
            raise PerceptError(f"a trained network stylises with the style(s) it was trained on; drop the STYLE "
                               f"image(s) ({', '.join(args.styles)}) or use --method adain for arbitrary styles")
        return _run_network(args, settings)
    if not args.styles:
        raise PerceptError("give at least one STYLE image after CONTENT (or a trained network with --model)")
    if method == "adain":
        return _run_adain(args, settings)
    return _run_optimize(args, settings, "optimize")


def _cmd_texture(args: argparse.Namespace) -> int:
    return _run_optimize(args, _resolve(args, "texture")[1], "texture")


def _run_optimize(args: argparse.Namespace, settings: dict[str, Any], method: str) -> int:
    from ..image import check_writable, save_gif, save_image
    from ..params import defaults
    from ..style import StyleParams, stylize, synthesize_texture

    output = check_writable(args.output)
    if args.timelapse:
        check_writable(args.timelapse, what="timelapse")
        if Path(args.timelapse).suffix.lower() != ".gif":
            raise PerceptError(f"timelapse {args.timelapse!r} must end in .gif")
    frame_every = args.save_every
    if args.timelapse and not frame_every:
        frame_every = max(1, settings.get("iterations", defaults(StyleParams)["iterations"]) // 25)
    run = dict(progress=not args.quiet, frame_every=frame_every, **settings)
    if method == "texture":
        result = synthesize_texture(args.source, **run)
    else:
        result = stylize(args.content, args.styles, **run)
    if args.save_every:
        folder = output.with_name(output.stem + "_frames")
        folder.mkdir(exist_ok=True)
        for i, frame in enumerate(result.frames, start=1):
            save_image(frame, folder / f"step{i * args.save_every:05d}.png")
        print(f"wrote {len(result.frames)} intermediate frames to {folder}/")
    if args.timelapse:
        save_gif([*result.frames, result.image], args.timelapse)
        print(f"wrote timelapse {args.timelapse} ({len(result.frames) + 1} frames)")
    _save(result, output)
    first, last = (result.history[0], result.history[-1]) if result.history else ({}, {})
    losses = ", ".join(f"{k} {first[k]:.4g} -> {last[k]:.4g}" for k in ("content", "style", "tv", "total")
                       if k in first)
    w, h = result.image.shape[-1], result.image.shape[-2]
    print(f"wrote {output} ({w}x{h}) in {result.seconds:.1f}s" + (f"; losses: {losses}" if losses else ""))
    return 0


def _run_adain(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from ..image import check_writable
    from ..style import stylize_adain

    output = check_writable(args.output)
    _no_steps(args, "--method adain")
    result = stylize_adain(args.content, args.styles, **settings)
    _save(result, output)
    w, h = result.image.shape[-1], result.image.shape[-2]
    print(f"wrote {output} ({w}x{h}) in {result.seconds:.1f}s (AdaIN, alpha {result.record['params']['alpha']})")
    return 0


def _model_inputs(content: str, output: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one file, or every image of a folder into the output folder as NAME.png."""
    from ..image import IMAGE_EXTENSIONS, check_writable

    source = Path(content)
    if not source.is_dir():
        return [(source, check_writable(output))]
    images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not images:
        raise PerceptError(f"no images in folder {content!r} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise PerceptError(f"CONTENT is a folder, so -o must be a folder too; {output!r} is a file")
    if not folder.parent.is_dir():
        raise PerceptError(f"folder {str(folder.parent)!r} does not exist; create it first")
    folder.mkdir(exist_ok=True)
    return [(p, check_writable(folder / f"{p.stem}.png")) for p in images]


def _run_network(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    import time

    from ..style import stylize_with_model

    _no_steps(args, "a trained network")
    pairs = _model_inputs(args.content, args.output)
    started = time.perf_counter()
    for start in range(0, len(pairs), MODEL_CHUNK):
        chunk = pairs[start : start + MODEL_CHUNK]
        results = stylize_with_model([src for src, _ in chunk], progress=not args.quiet, **settings)
        for (_, dst), result in zip(chunk, results):
            record = _save(result, dst)
    w, h = result.image.shape[-1], result.image.shape[-2]
    what = f"{pairs[0][1]} ({w}x{h})" if len(pairs) == 1 else f"{len(pairs)} images to {args.output}/"
    mix = ", ".join(f"{name} {weight:.2f}" for name, weight in
                    zip(record["style_names"], record["style_blend_weights_normalised"]) if weight > 0)
    print(f"wrote {what} in {time.perf_counter() - started:.1f}s (trained network; style: {mix})")
    return 0


def _model_info(args: argparse.Namespace) -> int:
    from ..models import catalog_json, describe

    if args.json:
        print(json.dumps(catalog_json(args.image, kind="style-net"), indent=2, sort_keys=True))
    else:
        print(describe(args.image, kind="style-net"))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from ..models import list_models
    from ..record import read_record
    from ..style.params import METHODS, reproducing_command

    if args.image in list_models("style-net") or Path(args.image).suffix.lower() == ".pt" or Path(args.image).is_dir():
        return _model_info(args)
    record = read_record(args.image, what="image")
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return 0
    method = record.get("method") or record.get("kind")
    made = [f"made by percept {record.get('percept_version')} ({method})"]
    made += [f"on {record['device']}"] if record.get("device") else []
    made += [f"with weights {record['weights_id']}"] if record.get("weights_id") else []
    made += [f"in {record['seconds']}s"] if record.get("seconds") is not None else []
    print(" ".join(made))
    for role, value in (record.get("inputs") or {}).items():
        entries = value if isinstance(value, list) else [value]
        print(f"{role}: " + ", ".join(str(e.get("name") or e.get("path") or f"(in memory: {e.get('type')})")
                                      if isinstance(e, dict)
                                      else str(e) for e in entries))
    print("settings: " + ", ".join(f"{k} {v}" for k, v in record["params"].items()))
    if record.get("final_losses"):
        print("final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in record["final_losses"].items()
                                           if isinstance(v, float)))
    command = record.get("command")
    if not command and method in METHODS:
        command = reproducing_command(record, "OUT.png")
    print("reproduce with:")
    print("  " + (command or "(no command recorded)"))
    return 0


def register(sub) -> None:
    from ..style.params import (
        METHODS,
        AdainParams,
        NetworkParams,
        StyleParams,
        method_settings,
    )

    fmt = argparse.RawDescriptionHelpFormatter

    def uses(method: str, shown: list[str]) -> str:
        shared = [n for n in method_settings(method) if n in shown]
        return ", ".join("--" + n.replace("_", "-") for n in shared)

    p = sub.add_parser(
        "stylize", help=HELP["stylize"], formatter_class=fmt, epilog=EPILOG_STYLIZE,
        description="Neural style transfer. By optimisation (Gatys, Ecker & Bethge 2016; the default): the output "
        "image is optimised so its VGG features match the content photo and the Gram matrices of the style "
        "image(s). With --method adain: any style in one forward pass (Huang & Belongie 2017). With --model: a "
        "network trained by `percept train-style`. Options a method does not use are refused.",
    )
    p.add_argument("content", metavar="CONTENT", help="content photo (with --model also a folder: -o is then a "
                   "folder)")
    p.add_argument("styles", metavar="STYLE", nargs="*", help="style image(s); several are blended")
    p.add_argument("--method", choices=tuple(m for m in METHODS if m != "texture"), default=None,
                   help="optimize: Gatys et al., best quality, minutes; adain: any style in one forward pass, "
                   "seconds; network: a trained network (--model) (default: the method of --params-from, else "
                   "network with --model, else optimize)")
    add_output_options(p)
    shown = add_settings(p.add_argument_group("optimisation options (also keyword arguments of "
                                              "percept.stylize)"), StyleParams, only=method_settings("optimize"))
    g = p.add_argument_group(f"AdaIN options (--method adain; also {uses('adain', shown)})")
    shown += add_settings(g, AdainParams, exclude=shown)
    g = p.add_argument_group(f"trained-network options (--model; also {uses('network', shown)}; --size default: "
                             "keep the image's size)")
    add_settings(g, NetworkParams, exclude=shown)
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser(
        "texture", help=HELP["texture"], formatter_class=fmt,
        description="Texture synthesis (Gatys, Ecker & Bethge 2015): seeded noise is optimised until its Gram "
        "matrices match the source's. The output size does not depend on the source's size.",
        epilog=EPILOG_TEXTURE,
    )
    p.add_argument("source", metavar="SOURCE", help="texture sample image")
    add_output_options(p)
    add_settings(p.add_argument_group("texture options (also keyword arguments of percept.synthesize_texture)"),
                 StyleParams, only=method_settings("texture"))
    p.set_defaults(func=_cmd_texture)

    p = sub.add_parser("info", help=HELP["info"], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  percept info out.png            # what made it, and the command that "
                       "reproduces it\n  percept info out.png --json     # the whole record\n"
                       "  percept info starry.pt          # a trained style network: styles, training, losses")
    p.add_argument("image", metavar="IMAGE|MODEL.pt", help="an image written by percept, or a network from "
                   "percept train-style")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON (default: off)")
    p.set_defaults(func=_cmd_info)
