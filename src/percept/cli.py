"""The ``percept`` command line. It only parses arguments and calls the library.

Options of ``stylize`` and ``texture`` are generated from :class:`percept.style.StyleParams`, so the CLI,
the Python API and the parameters recorded in every output share one set of names, defaults and help.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PerceptError

EPILOG_STYLIZE = """\
examples:
  percept stylize photo.jpg starry_night.jpg -o out.png --size 256
  percept stylize photo.jpg wave.jpg scream.jpg --style-blend-weights 0.7,0.3 -o blend.png
  percept stylize photo.jpg starry_night.jpg -o out.png --preserve-color luminance
  percept stylize photo.jpg starry_night.jpg -o big.png --size 1024        # 256 -> 512 -> 1024
  percept stylize photo.jpg starry_night.jpg -o out.png --save-every 10 --timelapse out.gif
  percept stylize --params-from out.png photo.jpg starry_night.jpg -o again.png   # reproduce a result
  percept stylize photo.jpg scream.jpg -o fast.png --method adain --alpha 0.8     # one forward pass
  percept stylize photo.jpg wave.jpg scream.jpg -o mix.png --method adain --style-blend-weights 0.5,0.5
  percept stylize photo.jpg wave.jpg scream.jpg -o split.png --method adain --mask fg_mask.png
  percept stylize photo.jpg -o out.png --model starry.pt                        # trained network (train-style)
  percept stylize photos/ -o styled/ --model styles.pt --blend 0.3,0.7          # a folder, two styles blended
  percept stylize huge.jpg -o huge_styled.png --model starry.pt --tile 1024     # tiles, no seams
"""

EPILOG_TEXTURE = """\
examples:
  percept texture pebbles.jpg -o pebbles_512.png --size 512
  percept texture red_peppers.jpg -o peppers.png --style-scale 0.5 --seed 3
"""


def _parse_list(kind: type):
    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return [kind(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}")

    return parse


def _add_param_options(parser: argparse.ArgumentParser, texture: bool) -> None:
    from .style.params import field_default, param_fields

    group = parser.add_argument_group("style options (also keyword arguments of percept.stylize)")
    parsers = {"int": int, "float": float, "str": str, "list[str]": _parse_list(str), "list[float]": _parse_list(float)}
    for f in param_fields(texture):
        flag = "--" + f.name.replace("_", "-")
        default = field_default(f)
        parse = parsers[str(f.type)]
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        suffix = f" (default: {shown})" if shown not in ("", []) else ""
        group.add_argument(
            flag, type=parse, default=argparse.SUPPRESS, metavar=f.metadata.get("metavar") or f.name.split("_")[-1].upper(),
            help=f"{f.metadata['help']}{suffix}",
        )


def _settings(args: argparse.Namespace, texture: bool) -> dict[str, Any]:
    """Explicit options, on top of parameters recorded in ``--params-from`` (if given)."""
    from .image import load_image, read_metadata
    from .style.params import param_fields

    names = {f.name for f in param_fields(texture)}
    settings: dict[str, Any] = {}
    if getattr(args, "params_from", None):
        load_image(args.params_from, what="--params-from image")  # one-line errors for bad files
        record = read_metadata(args.params_from)
        if not record or "params" not in record:
            raise PerceptError(f"{args.params_from!r} holds no percept parameters (was it made by percept?)")
        settings.update({k: v for k, v in record["params"].items() if k in names})
    settings.update({k: v for k, v in vars(args).items() if k in names})
    return settings


def _command_line(kind: str, inputs: Sequence[str], output: str, params: dict[str, Any], texture: bool) -> str:
    """The shell command that reproduces a result (every parameter spelled out)."""
    from .style.params import param_fields

    parts = ["percept", kind, *inputs, "-o", output]
    for f in param_fields(texture):
        value = params[f.name]
        if isinstance(value, list):
            if not value:
                continue
            value = ",".join(map(str, value))
        if value == "":
            continue
        parts += ["--" + f.name.replace("_", "-"), str(value)]
    return shlex.join(parts)


def _write_frames(frames: list, output: Path, every: int) -> Path:
    from .image import save_image

    folder = output.with_name(output.stem + "_frames")
    folder.mkdir(exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        save_image(frame, folder / f"step{i * every:05d}.png")
    return folder


def _run_style(args: argparse.Namespace, texture: bool) -> int:
    from .image import check_writable, save_gif, save_image
    from .style import synthesize_texture, stylize

    output = check_writable(args.output)
    if args.timelapse:
        check_writable(args.timelapse, what="timelapse")
        if Path(args.timelapse).suffix.lower() != ".gif":
            raise PerceptError(f"timelapse {args.timelapse!r} must end in .gif")
    settings = _settings(args, texture)
    frame_every = args.save_every
    if args.timelapse and not frame_every:
        iterations = settings.get("iterations", 200)
        frame_every = max(1, iterations // 25)
    if texture:
        result = synthesize_texture(args.source, progress=not args.quiet, frame_every=frame_every, **settings)
        inputs = [args.source]
    else:
        result = stylize(args.content, args.styles, progress=not args.quiet, frame_every=frame_every, **settings)
        inputs = [args.content, *args.styles]
    record = dict(result.params)
    record["command"] = _command_line("texture" if texture else "stylize", inputs, str(output), record["params"], texture)
    record["seconds"] = round(result.seconds, 2)
    if args.save_every:
        folder = _write_frames(result.frames, output, args.save_every)
        print(f"wrote {len(result.frames)} intermediate frames to {folder}/")
    if args.timelapse:
        save_gif([*result.frames, result.image], args.timelapse)
        print(f"wrote timelapse {args.timelapse} ({len(result.frames) + 1} frames)")
    save_image(result.image, output, record)
    first, last = result.history[0] if result.history else {}, result.history[-1] if result.history else {}
    w, h = result.image.shape[-1], result.image.shape[-2]
    losses = ", ".join(
        f"{k} {first[k]:.4g} -> {last[k]:.4g}" for k in ("content", "style", "tv", "total") if k in first
    )
    print(f"wrote {output} ({w}x{h}) in {result.seconds:.1f}s" + (f"; losses: {losses}" if losses else ""))
    return 0


#: Style options that AdaIN uses; the others only apply to optimisation.
ADAIN_PARAMS = {"size", "style_scale", "style_blend_weights", "preserve_color", "device"}


def _cmd_stylize(args: argparse.Namespace) -> int:
    if args.model:
        if args.styles:
            raise PerceptError(f"--model stylises with the style(s) it was trained on; drop the STYLE image(s) "
                               f"({', '.join(args.styles)}) or use --method adain for arbitrary styles")
        if args.method != "optimize":
            raise PerceptError("--model and --method adain exclude each other; choose one")
        return _run_model(args)
    if not args.styles:
        raise PerceptError("give at least one STYLE image after CONTENT (or a trained network with --model)")
    if args.method == "optimize":
        return _run_style(args, texture=False)
    return _run_adain(args)


#: Style options that a trained network (--model) uses.
MODEL_PARAMS = {"size", "device"}
#: Images of a folder read and stylised together (bounds memory for large folders).
MODEL_CHUNK = 32


def _model_inputs(content: str, output: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one file, or every image of a folder into the output folder as NAME.png."""
    from .image import IMAGE_EXTENSIONS, check_writable

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


def _run_model(args: argparse.Namespace) -> int:
    import time

    from .image import save_image
    from .style.transform_files import load_transform_net
    from .style.transform_stylize import style_vector, stylize_with_model

    if args.save_every or args.timelapse:
        raise PerceptError("--save-every and --timelapse show optimisation steps; a trained network has none")
    settings = _settings(args, texture=False)
    ignored = sorted(set(settings) - MODEL_PARAMS)
    if ignored:
        warnings.warn(f"--model ignores {', '.join('--' + n.replace('_', '-') for n in ignored)}", stacklevel=1)
    pairs = _model_inputs(args.content, args.output)
    net = load_transform_net(args.model, settings.get("device", "auto"))
    style = style_vector(net, style_index=args.style_index, blend=args.blend)
    names = [s.get("name", "?") for s in net.metadata.get("styles", [])]
    options = ["--model", args.model]
    if args.style_index is not None:
        options += ["--style-index", str(args.style_index)]
    if args.blend is not None:
        options += ["--blend", ",".join(map(str, args.blend))]
    if "size" in settings:
        options += ["--size", str(settings["size"])]
    if args.tile:
        options += ["--tile", str(args.tile), "--overlap", str(args.overlap)]
        options += ["--exact-statistics"] if args.exact_statistics else []
    device = str(next(net.parameters()).device)
    started = time.perf_counter()
    for start in range(0, len(pairs), MODEL_CHUNK):
        chunk = pairs[start : start + MODEL_CHUNK]
        t0 = time.perf_counter()
        results = stylize_with_model([src for src, _ in chunk], net, style_index=args.style_index, blend=args.blend,
                                     size=settings.get("size"), tile=args.tile, overlap=args.overlap,
                                     exact_statistics=args.exact_statistics, batch_size=args.batch_size,
                                     progress=not args.quiet)
        seconds = (time.perf_counter() - t0) / len(chunk)
        for (src, dst), image in zip(chunk, results):
            record = {
                "percept_version": __version__, "kind": "stylize (trained network)",
                "device": device, "weights_id": Path(args.model).name,
                "params": {"model": args.model, "styles": names, "style_weights": [round(float(w), 6) for w in style],
                           "size": settings.get("size"), "tile": args.tile, "overlap": args.overlap if args.tile else None,
                           "exact_statistics": args.exact_statistics},
                "model": {k: net.metadata.get(k) for k in ("styles", "architecture", "loss_network")},
                "command": shlex.join(["percept", "stylize", str(src), "-o", str(dst), *options]),
                "seconds": round(seconds, 3),
            }
            save_image(image, dst, record)
    total = time.perf_counter() - started
    w, h = results[-1].shape[-1], results[-1].shape[-2]
    what = f"{pairs[0][1]} ({w}x{h})" if len(pairs) == 1 else f"{len(pairs)} images to {args.output}/"
    mix = ", ".join(f"{n} {float(x):.2f}" for n, x in zip(names, style) if float(x) > 0)
    print(f"wrote {what} in {total:.1f}s (trained network; style: {mix})")
    return 0


def _run_adain(args: argparse.Namespace) -> int:
    from .image import check_writable, save_image
    from .style.adain_stylize import stylize_adain
    from .style.params import StyleParams

    output = check_writable(args.output)
    settings = _settings(args, texture=False)
    ignored = sorted(set(settings) - ADAIN_PARAMS)
    if ignored:
        warnings.warn(f"--method adain ignores {', '.join('--' + n.replace('_', '-') for n in ignored)}",
                      stacklevel=1)
    if args.save_every or args.timelapse:
        raise PerceptError("--save-every and --timelapse show optimisation steps; --method adain has none")
    params = StyleParams(**{k: v for k, v in settings.items() if k in ADAIN_PARAMS})
    result = stylize_adain(
        args.content, args.styles, alpha=args.alpha, style_weights=params.style_blend_weights or None,
        preserve_color=params.preserve_color, mask=args.mask, size=params.size,
        style_size=max(16, round(params.size * params.style_scale)), decoder=args.decoder, device=params.device,
    )
    record = dict(result.params)
    options = ["--method", "adain", "--alpha", str(args.alpha), "--size", str(params.size),
               "--style-scale", str(params.style_scale), "--preserve-color", params.preserve_color]
    if params.style_blend_weights:
        options += ["--style-blend-weights", ",".join(map(str, params.style_blend_weights))]
    for flag, value in (("--mask", args.mask), ("--decoder", args.decoder)):
        if value:
            options += [flag, value]
    record["command"] = shlex.join(["percept", "stylize", args.content, *args.styles, "-o", str(output), *options])
    record["seconds"] = round(result.seconds, 2)
    save_image(result.image, output, record)
    w, h = result.image.shape[-1], result.image.shape[-2]
    print(f"wrote {output} ({w}x{h}) in {result.seconds:.1f}s (AdaIN, alpha {args.alpha})")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import (
        ARCHITECTURES,
        DECODERS,
        DEFAULT_WEIGHTS,
        get_weights,
        layer_names,
        list_classifiers,
        list_weights,
    )
    from .transfer.names import FEATURE_NET_LAYERS, TORCHVISION_BACKBONES

    rows = []
    for arch in ARCHITECTURES:
        for w in list_weights(arch):
            rows.append({
                "network": arch, "weights": w.name, "default": DEFAULT_WEIGHTS[arch] == w.name,
                "preprocessing": w.preprocessing, "status": w.availability(),
                "sources": [s.describe() for s in w.sources], "description": w.meta.get("description", ""),
            })
    if args.json:
        decoders = [{"decoder": w.arch, "weights": w.name, "status": w.availability(),
                     "sources": [src.describe() for src in w.sources]} for w in DECODERS.values()]
        print(json.dumps({"weights": rows, "layers": {a: layer_names(a) for a in ARCHITECTURES},
                          "decoders": decoders}, indent=2))
        return 0
    width = max(len(f"{r['network']}:{r['weights']}") for r in rows) + 2
    for arch in ARCHITECTURES:
        print(f"{arch}")
        for r in (r for r in rows if r["network"] == arch):
            mark = " (default)" if r["default"] else ""
            print(f"  {r['network'] + ':' + r['weights']:<{width}}{r['preprocessing']:<9} {r['status']}{mark}")
            print(textwrap.fill(r["description"], 100, initial_indent=" " * 4, subsequent_indent=" " * 4))
            print(textwrap.fill("sources, in order: " + "; ".join(r["sources"]), 100, initial_indent=" " * 4,
                                subsequent_indent=" " * 6))
        print(textwrap.fill("layers: " + " ".join(layer_names(arch)), 100, initial_indent="  ", subsequent_indent="    "))
        print()
    print("Use a network with --network NAME and weights with --weights NAME (or --weights FILE.pth).")
    print()
    print("decoders for AdaIN (percept stylize --method adain --decoder NAME|FILE)")
    for w in DECODERS.values():
        print(f"  {w.arch + ':' + w.name:<34}{w.availability()}")
        print(textwrap.fill(w.meta.get("description", ""), 100, initial_indent=" " * 4, subsequent_indent=" " * 4))
    print()
    print("classifiers and transfer-learning backbones (percept train --backbone NAME)")
    for entry in list_classifiers():
        print(f"  {entry.id:<34}{entry.availability()}")
    for name, layer in FEATURE_NET_LAYERS.items():
        print(f"  {name + ' (conv features @ ' + layer + ')':<34}{get_weights(name).availability()}")
    for name in TORCHVISION_BACKBONES:
        print(f"  {name:<34}torchvision weights: from the torch hub cache, downloaded on first use")
    return 0


def _model_info(args: argparse.Namespace) -> int:
    from .style.transform_files import load_transform_net

    net = load_transform_net(args.image)
    meta = net.metadata
    if args.json:
        print(json.dumps(meta, indent=2, sort_keys=True))
        return 0
    t, loss = meta.get("training", {}), meta.get("loss_network", {})
    print(f"percept transform network (format {meta.get('format_version')}, percept {meta.get('percept_version')}): "
          f"{net.num_styles} style(s), channels {list(net.channels)}")
    for i, style in enumerate(meta.get("styles", [])):
        print(f"  style {i}: {style.get('name')} ({style.get('file')}, sha256 {str(style.get('sha256'))[:12]}...)")
    if t:
        print(f"trained {t.get('steps')} steps of {t.get('batch_size')} crops of {t.get('size')} px from "
              f"{t.get('content_images')} photos; lr {t.get('lr')}; weights content {t.get('content_weight')}, "
              f"style {t.get('style_weight')}, tv {t.get('tv_weight')}; amp {t.get('amp')}")
        if t.get("final_losses"):
            print("final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in t["final_losses"].items()))
    if loss:
        print(f"loss network: {loss.get('weights_id')}; content {loss.get('content_layers')}, style "
              f"{loss.get('style_layers')}")
    pick = "" if net.num_styles == 1 else " --style-index K  (or --blend W1,W2,...)"
    print(f"use it: percept stylize PHOTO.jpg -o OUT.png --model {args.image}{pick}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .image import load_image, read_metadata

    if Path(args.image).suffix.lower() == ".pt" or Path(args.image).is_dir():
        return _model_info(args)
    load_image(args.image, what="image")
    record = read_metadata(args.image)
    if not record:
        raise PerceptError(f"{args.image!r} holds no percept parameters")
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return 0
    print(f"made by percept {record.get('percept_version')} ({record.get('kind')}) on {record.get('device')} "
          f"with weights {record.get('weights_id')} in {record.get('seconds')}s")
    if record.get("final_losses"):
        print(f"final losses: {record['final_losses']}")
    print("reproduce with:")
    print("  " + record.get("command", "(no command recorded)"))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    import logging

    from .service.broker import run_worker
    from .service.config import check_broker_url

    if not args.broker:
        raise PerceptError("give the Redis URL of percept serve --broker: --broker URL or $PERCEPT_BROKER")
    check_broker_url(args.broker)
    if args.iterations < 0:
        raise PerceptError(f"iterations must be >= 0, got {args.iterations}")
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)
    logging.basicConfig(level=logging.INFO, format="percept: %(name)s: %(message)s")
    try:
        run_worker(args.broker, device=args.device, iterations=args.iterations, burst=args.burst)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("redis", "rq"):
            raise
        raise PerceptError(f"percept worker needs {exc.name}, which is not installed; pip install "
                           "'percept[service]'") from None
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .transfer import train_features, train_finetune

    common = dict(backbone=args.backbone, val_fraction=args.val_fraction, seed=args.seed, device=args.device,
                  progress=not args.quiet)
    if args.strategy == "finetune":
        record = train_finetune(
            args.data, args.output, pretrained=not args.scratch, epochs=args.epochs, head_epochs=args.head_epochs,
            unfreeze=args.unfreeze, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
            momentum=args.momentum, schedule=args.schedule, dropout=args.dropout, head_init=args.head_init,
            label_smoothing=args.label_smoothing, augment=args.augment, augment_overrides=_augment_overrides(args),
            patience=args.patience, reuse_head=args.reuse_head, amp=args.amp, workers=args.workers,
            resume=args.resume, batch_size=args.batch_size or 16, **common,
        )
        if not record:  # a data-parallel worker process (rank > 0): rank 0 reports
            return 0
    else:
        record = train_features(args.data, args.output, classifier=args.classifier, C=args.C,
                                augment=args.augment, augment_overrides=_augment_overrides(args),
                                augment_copies=args.augment_copies, batch_size=args.batch_size or 32,
                                cache_dir=args.cache_dir, **common)
    counts = record["counts"]
    print(f"{len(record['classes'])} classes, {sum(counts['train'].values())} training / "
          f"{sum(counts['val'].values())} validation images ({record['layout']})"
          + (f"; skipped {len(record['skipped'])} unreadable file(s)" if record["skipped"] else ""))
    sizes = list(counts["train"].values())
    if max(sizes) >= 1.5 * min(sizes):
        print(f"class imbalance: largest/smallest training class = {max(sizes) / min(sizes):.1f}")
    if args.strategy == "finetune":
        how = "fine-tuned" if not args.scratch else "trained from scratch"
        print(f"{record['backbone']} {how}: best validation accuracy {record['metrics']['val_accuracy']:.3f} "
              f"at epoch {record['best_epoch']} of {len(record['history'])} in {record['seconds']:.1f}s")
        print(record["diagnostics"]["text"])
        print(f"wrote run to {args.output}/ (run.json, model.pt, history.csv, learning_curves.png, diagnostics.png)")
        return 0
    print(f"{record['backbone']} features + {record['classifier']} (C={record['C']:.3g}): "
          f"train accuracy {record['metrics']['train_accuracy']:.3f}, "
          f"validation accuracy {record['metrics']['val_accuracy']:.3f} in {record['seconds']:.1f}s")
    print(f"wrote run to {args.output}/ (run.json, classifier.joblib)")
    return 0


AUGMENT_FLAGS = ("vflip", "rotation", "lighting", "erasing", "mixup", "cutmix")


def _augment_overrides(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in AUGMENT_FLAGS if getattr(args, name) is not None}


def _add_augment_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("augmentation (fine-tuning; features with --augment-copies)")
    g.add_argument("--augment", choices=("none", "light", "strong"), default="light",
                   help="preset: light = random resized crop, horizontal flip, colour jitter; strong adds rotation, "
                   "PCA lighting, random erasing, mixup and cutmix (default: light)")
    g.add_argument("--vflip", type=float, help="probability of a vertical flip (default: from the preset)")
    g.add_argument("--rotation", type=float, help="maximum rotation in degrees (default: from the preset)")
    g.add_argument("--lighting", type=float, help="AlexNet PCA lighting noise std, e.g. 0.1 (default: from the preset)")
    g.add_argument("--erasing", type=float, help="probability of random erasing / cutout (default: from the preset)")
    g.add_argument("--mixup", type=float, help="mixup Beta alpha, 0 = off (default: from the preset)")
    g.add_argument("--cutmix", type=float, help="cutmix Beta alpha, 0 = off (default: from the preset)")


def _cmd_augment_preview(args: argparse.Namespace) -> int:
    import torch
    from torchvision.utils import make_grid

    from .image import check_writable, load_image, save_image
    from .transfer.augment import get_augment, image_transform
    from .transfer.data import scan_dataset

    output = check_writable(args.output)
    aug = get_augment(args.augment, **_augment_overrides(args))
    if aug is None:
        raise PerceptError("augmentation preset 'none' has nothing to preview; use light or strong")
    torch.manual_seed(args.seed)
    samples = scan_dataset(args.data, seed=args.seed).train
    picks = [samples[i] for i in torch.randperm(len(samples))[: args.images].tolist()]
    transform = image_transform(args.size, aug)
    tiles = [transform(load_image(path)) for path, _ in picks for _ in range(args.per_image)]
    grid = make_grid(torch.stack(tiles), nrow=args.per_image, padding=4, pad_value=1.0)
    save_image(grid.unsqueeze(0), output, {"augment": aug.to_dict(), "data": str(args.data)})
    print(f"wrote {output}: {len(picks)} images x {args.per_image} augmented samples ({args.augment} preset)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .transfer import evaluate

    if args.confusion_png:
        from .image import check_writable

        check_writable(args.confusion_png, what="--confusion-png")
    runs, data = args.runs, None
    if len(runs) > 1 and not (Path(runs[-1]) / "run.json").exists() and Path(runs[-1]).is_dir():
        runs, data = runs[:-1], runs[-1]  # `evaluate RUN [RUN ...] DATA`
    report = evaluate(runs, data, batch_size=args.batch_size or 32, device=args.device, cache_dir=args.cache_dir,
                      progress=not args.quiet and not args.json, tta=args.tta)
    if args.confusion_png:
        from .transfer.plots import plot_confusion_matrix

        plot_confusion_matrix(report["confusion_matrix"], report["classes"], args.confusion_png)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    kind = f"ensemble of {len(report['runs'])} runs" if len(report["runs"]) > 1 else report["runs"][0]
    print(f"{kind}: accuracy {report['accuracy']:.4f} on {report['n_images']} images")
    width = max(len(c) for c in report["classes"]) + 2
    print(f"{'class':<{width}}precision  recall  f1     support")
    for name, m in report["per_class"].items():
        print(f"{name:<{width}}{m['precision']:<11.3f}{m['recall']:<8.3f}{m['f1']:<7.3f}{m['support']}")
    return 0


def _cmd_lr_find(args: argparse.Namespace) -> int:
    from .image import check_writable
    from .transfer.finetune import find_learning_rate
    from .transfer.lr_find import plot_lr_finder

    output = check_writable(args.output)
    result = find_learning_rate(
        args.data, backbone=args.backbone, unfreeze=args.unfreeze, optimizer=args.optimizer,
        weight_decay=args.weight_decay, augment=args.augment, augment_overrides=_augment_overrides(args),
        batch_size=args.batch_size or 16, seed=args.seed, start_lr=args.start_lr, end_lr=args.end_lr,
        steps=args.steps, device=args.device, progress=not args.quiet,
    )
    phase = "head only" if str(args.unfreeze) == "0" else f"top {args.unfreeze} stages + head"
    plot_lr_finder(result, output, title=f"lr range test: {args.backbone}, {phase}, {args.optimizer}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    stop = "diverged" if result.diverged else "did not diverge"
    print(f"{len(result.lrs)} steps from {result.lrs[0]:.1e} to {result.lrs[-1]:.1e} ({stop}); "
          f"lowest loss at lr {result.min_loss_lr:.2e}")
    print(f"suggested lr: {result.suggestion:.2e} (steepest descent); plot in {output}")
    print(f"use it: percept train {args.data} -o RUN --strategy finetune --optimizer {args.optimizer} "
          f"--lr {result.suggestion:.2g}" + (f" --unfreeze {args.unfreeze}" if str(args.unfreeze) != "0" else ""))
    return 0


def _cmd_train_adain(args: argparse.Namespace) -> int:
    from .style.adain_train import train_adain

    record = train_adain(
        args.content_dir, args.style_dir, args.output, steps=args.steps, batch_size=args.batch_size or 8, lr=args.lr,
        size=args.size, content_weight=args.content_weight, style_weight=args.style_weight, init=args.init,
        seed=args.seed, checkpoint_every=args.checkpoint_every, device=args.device, workers=args.workers,
        amp=args.amp, resume=args.resume, progress=not args.quiet,
    )
    losses = record["final_losses"]
    print(f"trained an AdaIN decoder for {args.steps} steps in {record['seconds']:.1f}s on {record['device']}; "
          f"final losses: content {losses['content']:.4g}, style {losses['style']:.4g}")
    print(f"wrote {args.output}; use it: percept stylize CONTENT STYLE -o OUT.png --method adain "
          f"--decoder {args.output}")
    return 0


def _training_folder(model: Path) -> Path:
    """Where ``train-style -o MODEL.pt`` keeps its checkpoint, samples and train.json: ``MODEL_training/``."""
    return model.with_name(model.stem + "_training")


def _cmd_train_style(args: argparse.Namespace) -> int:
    from .style.transform_train import train_transform_net

    model = Path(args.output)
    if model.suffix.lower() != ".pt":
        raise PerceptError(f"model file {args.output!r} must end in .pt")
    folder = _training_folder(model)
    record = train_transform_net(
        args.styles, args.content_dir, folder, model_file=model, size=args.size, style_size=args.style_size,
        steps=args.steps, batch_size=args.batch_size or 4, lr=args.lr, lr_schedule=args.lr_schedule,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        network=args.network, weights=args.weights, style_layer_weights=args.style_layer_weights,
        sample_every=args.sample_every, checkpoint_every=args.checkpoint_every, sample_content=args.sample_content,
        seed=args.seed, device=args.device, amp=args.amp, workers=args.workers, resume=args.resume,
        max_minutes=args.max_minutes, progress=not args.quiet,
    )
    losses, steps = record["training"]["final_losses"], record["training"]["steps"]
    stop = " (time limit; --resume --max-minutes M goes on)" if record["stopped"] == "time limit" else ""
    print(f"trained {steps} steps{stop} in {record['seconds']:.1f}s on {record['device']}; losses (mean of the last "
          f"100 steps): content {losses['content']:.4g}, style {losses['style']:.4g}, tv {losses['tv']:.4g}")
    print(f"wrote {model} (samples, checkpoint and train.json in {folder}/)")
    styles = "" if len(args.styles) == 1 else " --style-index 0"
    print(f"use it: percept stylize PHOTO.jpg -o OUT.png --model {model}{styles}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from .transfer import predict

    results = predict(args.run, args.images, top_k=args.top_k, batch_size=args.batch_size or 32, device=args.device,
                      cache_dir=args.cache_dir)
    if args.format == "json":
        print(json.dumps([{"path": r["path"], "top": [{"class": c, "probability": p} for c, p in r["top"]]}
                          for r in results], indent=2))
    elif args.format == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["path", "rank", "class", "probability"])
        for r in results:
            for rank, (c, p) in enumerate(r["top"], start=1):
                writer.writerow([r["path"], rank, c, f"{p:.6f}"])
    else:
        for r in results:
            print(r["path"])
            for c, p in r["top"]:
                print(f"  {p:7.2%}  {c}")
    return 0


EPILOG_EXPORT = """\
examples:
  percept export runs/ants_bees -o ants_bees.onnx
  percept export runs/ants_bees_ft -o ants_bees.pt --format torchscript

The file maps float32 (B, 3, crop, crop) RGB in [0, 1] to class probabilities (B, K); the sidecar
FILE.json names the classes and the preprocessing (resize shorter side, centre crop). Run it without percept:
  import json, numpy as np, onnxruntime as ort; from PIL import Image
  spec = json.load(open("ants_bees.onnx.json")); r, c = spec["preprocessing"]["resize"], spec["preprocessing"]["crop"]
  img = Image.open("photo.jpg").convert("RGB"); img = img.resize((r * img.width // min(img.size), r * img.height // min(img.size)), Image.BILINEAR)
  left, top = round((img.width - c) / 2), round((img.height - c) / 2)
  x = np.asarray(img.crop((left, top, left + c, top + c)), np.float32).transpose(2, 0, 1)[None] / 255
  print(dict(zip(spec["classes"], ort.InferenceSession("ants_bees.onnx").run(None, {"image": x})[0][0])))
"""


def _cmd_export(args: argparse.Namespace) -> int:
    if Path(args.run).is_file():  # a style network from train-style
        return _export_style_net(args)
    if args.style_index is not None or args.blend is not None:
        raise PerceptError("--style-index and --blend apply to style networks (MODEL.pt from train-style)")
    from .transfer.export import export_run

    record = export_run(args.run, args.output, format=args.format, opset=args.opset)
    fmt = record["format"] + (f" opset {record['opset']}" if "opset" in record else "")
    shape = "x".join(map(str, record["input"]["shape"]))
    pre = record["preprocessing"]
    print(f"wrote {args.output} ({fmt}; {len(record['classes'])} classes; input {shape} RGB in [0, 1] after resize "
          f"{pre['resize']} + centre crop {pre['crop']}; output probabilities) and {args.output}.json")
    return 0


def _export_style_net(args: argparse.Namespace) -> int:
    from .style.transform_export import export_transform_net

    if args.format != "onnx":
        raise PerceptError("style networks export to ONNX only; drop --format torchscript")
    record = export_transform_net(args.run, args.output, style_index=args.style_index, blend=args.blend,
                                  opset=args.opset)
    print(f"wrote {args.output} (onnx opset {record['opset']}; float32 (B, 3, H, W) RGB in [0, 1] -> stylised, any "
          f"size >= 8 px; style weights {record['style_weights']}; max difference to PyTorch "
          f"{record['verified_max_abs_diff']:.1e}) and {args.output}.json")
    return 0


FEATURE_NETWORKS = ("vgg19", "vgg16", "alexnet")


def _network(spec: str, device: str):
    """A feature network by name (vgg19, vgg16, alexnet) or any classifier :func:`load_classifier` takes."""
    from .device import resolve_device
    from .understand import load_classifier

    if spec in FEATURE_NETWORKS:
        from .models import get_feature_net

        return get_feature_net(spec, device=resolve_device(device))
    return load_classifier(spec, device=device).model


def _cmd_explain_layers(args: argparse.Namespace) -> int:
    import torch

    from .models import FeatureNet
    from .understand import capture, layer_names

    model = _network(args.model, args.device)
    if isinstance(model, FeatureNet):
        print("\n".join(model.layer_names))
        return 0
    names = layer_names(model)
    with torch.no_grad(), capture(model, names, detach=True) as acts:
        model(torch.rand(1, 3, 224, 224, device=next(model.parameters()).device))
    for name in (n for n in names if n in acts):  # containers that are never called themselves are left out
        print(f"{name:<40}{'x'.join(map(str, acts[name].shape[1:]))}")
    return 0


def _cmd_explain_filters(args: argparse.Namespace) -> int:
    from .image import check_writable, save_image
    from .understand import filter_grid, first_layer_filters

    output = check_writable(args.output)
    filters = first_layer_filters(_network(args.model, args.device))
    save_image(filter_grid(filters, columns=args.columns), output, {"kind": "explain filters", "model": args.model})
    print(f"wrote {output}: {filters.shape[0]} first-layer filters of {args.model} "
          f"({filters.shape[2]}x{filters.shape[3]} px, RGB)")
    return 0


def _cmd_explain_activations(args: argparse.Namespace) -> int:
    from .image import check_writable, load_image, save_image, to_tensor
    from .understand import activation_maps, maps_grid, strongest_channels

    output = check_writable(args.output)
    image = to_tensor(load_image(args.image), longest=args.size)
    maps = activation_maps(_network(args.model, args.device), image, args.layer)
    channels = strongest_channels(maps, min(args.channels, maps.shape[0]))
    save_image(maps_grid(maps, channels), output, {"kind": "explain activations", "model": args.model,
                                                   "layer": args.layer, "channels": channels})
    print(f"wrote {output}: the {len(channels)} strongest of {maps.shape[0]} channels of {args.layer} "
          f"({maps.shape[1]}x{maps.shape[2]}), strongest first: {channels[:8]}")
    return 0


def _explain_inputs(args: argparse.Namespace):
    """``(output path, classifier, PIL image)`` of an ``explain`` method that explains a classifier on an image;
    the output is checked first, before any loading."""
    from .image import check_writable, load_image
    from .understand import load_classifier

    output = check_writable(args.output)
    return output, load_classifier(args.model, device=args.device), load_image(args.image)


def _cmd_explain_saliency(args: argparse.Namespace) -> int:
    import torch

    from .image import save_image, to_tensor
    from .understand import saliency
    from .understand.saliency import overlay

    output, classifier, pil = _explain_inputs(args)
    x = to_tensor(pil, longest=classifier.resize) if args.whole else classifier.prepare(pil).cpu()
    options = {"gradcam": {"layer": args.layer}, "occlusion": {"window": args.window, "stride": args.stride,
               "baseline": args.baseline, "batch_size": args.batch_size},
               "smoothgrad": {"samples": args.samples, "noise": args.noise, "batch_size": args.batch_size,
                              "seed": args.seed}}.get(args.method, {})
    heat, index = saliency(classifier, x, method=args.method, target=args.target,
                           **{k: v for k, v in options.items() if v is not None})
    top = classifier.top(x, 1)[0][0]
    save_image(torch.cat([x.cpu(), overlay(x, heat)], dim=3), output,
               {"kind": f"explain saliency ({args.method})", "model": classifier.id, "class": classifier.classes[index],
                "top": top[0]})
    print(f"wrote {output} ({args.method}): explains {classifier.classes[index]!r}; top class {top[0]!r} "
          f"({top[1]:.1%})")
    return 0


def _cmd_explain_attack(args: argparse.Namespace) -> int:
    import torch

    from .image import save_image
    from .understand.attack import attack

    output, classifier, pil = _explain_inputs(args)
    x = classifier.prepare(pil)
    r = attack(classifier, x, method=args.attack, epsilon=args.epsilon / 255, target=args.target, steps=args.steps)
    shown = (0.5 + r.perturbation / (2 * max(r.linf, 1e-12))).clamp(0, 1)  # amplified to the full range
    names = classifier.classes
    save_image(torch.cat([x.cpu(), shown, r.image], dim=3), output,
               {"kind": f"explain attack ({args.attack})", "model": classifier.id, "original": names[r.original_class],
                "new": names[r.new_class], "target": None if r.target is None else names[r.target],
                "epsilon_levels": args.epsilon, "success": r.success})
    goal = f"target {names[r.target]!r}" if r.target is not None else "untargeted"
    print(f"wrote {output} (original | perturbation x{0.5 / max(r.linf, 1e-12):.0f} | adversarial): "
          f"{names[r.original_class]!r} -> {names[r.new_class]!r} ({r.probability:.1%}), {goal}, "
          f"{'success' if r.success else 'failed'}; L-inf {r.linf * 255:.2f}/255, L2 {r.l2:.3f}")
    return 0


def _feature_inputs(args: argparse.Namespace):
    """``(output path, image paths of FOLDER)`` of a feature-space ``explain`` method, checked before any loading;
    QUERY images, where the method has them, are checked too."""
    from .image import check_writable, find_images, load_image

    output = check_writable(args.output)
    paths = find_images(args.folder, "image")
    for query in getattr(args, "queries", None) or []:
        load_image(query, what="query image")
    return output, paths


def _cmd_explain_neighbours(args: argparse.Namespace) -> int:
    from .image import save_image
    from .understand import layer_backbone, neighbours, neighbours_grid

    output, _ = _feature_inputs(args)
    backbone = layer_backbone(args.model, layer=args.layer, device=args.device)
    r = neighbours(backbone, args.folder, args.queries, k=args.k, metric=args.metric, cache_dir=args.cache_dir,
                   batch_size=args.batch_size or 32, progress=not args.quiet)
    layer = args.layer or "pooled penultimate features"
    save_image(neighbours_grid(r, cell=args.cell), output,
               {"kind": "explain neighbours", "model": args.model, "layer": layer, "folder": str(args.folder),
                "metric": args.metric, "queries": [str(q) for q in r.queries],
                "neighbours": [[str(p) for p in row] for row in r.paths], "classes": r.labels,
                "distances": [[round(float(d), 4) for d in row] for row in r.distances]})
    n, (q, k) = len(r.index.paths), r.indices.shape
    same = r.same_class[r.labelled]
    share = f"; {int(same.sum())} of {same.size} neighbours share their query's class folder" if same.size else ""
    print(f"wrote {output}: the {k} nearest of {n} images for {q} {'query' if q == 1 else 'queries'} "
          f"({args.model}, {layer}, {args.metric} distance){share}; {r.index.cached} of {n} folder features "
          "from the cache")
    return 0


def _cmd_explain_embedding(args: argparse.Namespace) -> int:
    from .image import save_image
    from .understand import embedding, embedding_figure, folder_features, layer_backbone

    output, _ = _feature_inputs(args)
    backbone = layer_backbone(args.model, layer=args.layer, device=args.device)
    index = folder_features(backbone, args.folder, cache_dir=args.cache_dir, batch_size=args.batch_size or 32,
                            progress=not args.quiet)
    methods = ("pca", "tsne") if args.method == "both" else (args.method,)
    embs = embedding(backbone, index, methods=methods, seed=args.seed, perplexity=args.perplexity)
    layer = args.layer or "pooled penultimate features"
    where = "/".join(Path(args.folder).resolve().parts[-2:])
    title = f"{args.model}, {layer}: {len(index.paths)} images of {where}"
    save_image(embedding_figure(embs, thumbnails=args.thumbnails, title=title, seed=args.seed), output,
               {"kind": f"explain embedding ({args.method})", "model": args.model, "layer": layer,
                "folder": str(args.folder), "classes": index.classes, "seed": args.seed,
                "separation": {e.method: round(e.separation, 4) for e in embs}})
    parts = [f"{'PCA' if e.method == 'pca' else 't-SNE'} {e.separation:.0%}"
             + (f" ({e.explained:.0%} of variance)" if e.explained is not None else "") for e in embs]
    print(f"wrote {output}: {len(index.paths)} images in {len(index.classes)} class folders; 1-NN class agreement "
          f"in 2-D: {', '.join(parts)}; {index.cached} of {len(index.paths)} features from the cache")
    return 0


def _cmd_explain_top_patches(args: argparse.Namespace) -> int:
    from collections import Counter

    from .image import save_image
    from .understand import patches_grid, top_patches

    output, _ = _feature_inputs(args)
    r = top_patches(args.model, args.folder, layer=args.layer, channel=args.channel, k=args.k,
                    per_image=args.per_image, patch=args.patch, batch_size=args.batch_size or 16, device=args.device,
                    progress=not args.quiet)
    rf = r.receptive_field
    save_image(patches_grid(r, columns=args.columns, cell=args.cell), output,
               {"kind": "explain top-patches", "model": args.model, "layer": args.layer, "channel": args.channel,
                "folder": str(args.folder), "sources": [str(p) for p in r.paths], "classes": r.labels,
                "activations": [round(float(v), 4) for v in r.values], "boxes": r.boxes.tolist(),
                "receptive_field": rf.size, "stride": rf.stride})
    counts = ", ".join(f"{name} {n}" for name, n in Counter(r.labels).most_common(5))
    print(f"wrote {output}: the {len(r.values)} strongest patches of {r.images} images for channel {args.channel} "
          f"of {args.layer} ({r.channels} channels; receptive field {'>= ' if rf.clipped else ''}{rf.size} px, "
          f"stride {rf.stride}; patches {r.patches.shape[-1]} px); activation {r.values[0]:.3g} to "
          f"{r.values[-1]:.3g}; class folders: {counts}")
    return 0


def _cmd_explain_class_image(args: argparse.Namespace) -> int:
    import torch

    from .image import check_writable, save_image
    from .understand import load_classifier
    from .understand.class_image import class_image

    output = check_writable(args.output)
    classifier = load_classifier(args.model, device=args.device)
    targets = [classifier.class_index(t) for t in args.target.split(",")]  # every name checked before any work
    results = [class_image(classifier, t, size=args.size, steps=args.steps, lr=args.lr, decay=args.decay,
                           jitter=args.jitter, blur_every=args.blur_every, blur_sigma=args.blur_sigma, seed=args.seed,
                           progress=not args.quiet) for t in targets]
    names = [classifier.classes[r.target] for r in results]
    save_image(torch.cat([r.image for r in results], dim=3), output,
               {"kind": "explain class-image", "model": classifier.id, "classes": names, "steps": args.steps,
                "lr": args.lr, "decay": args.decay, "jitter": args.jitter, "blur_every": args.blur_every,
                "blur_sigma": args.blur_sigma, "seed": args.seed,
                "logits": [[round(r.start_logit, 3), round(r.end_logit, 3)] for r in results]})
    parts = [f"{name!r} logit {r.start_logit:.2f} -> {r.end_logit:.2f} (+{r.gain:.2f}), rank {r.rank}, "
             f"p {r.probability:.3f}" for name, r in zip(names, results)]
    print(f"wrote {output}: {'; '.join(parts)}")
    return 0


#: --layers of ``explain invert`` and --layer of ``explain dream`` when not given, by model.
INVERT_LAYERS = {"vgg19": "relu1_2,relu2_2,relu3_4,relu4_4", "vgg16": "relu1_2,relu2_2,relu3_3,relu4_3",
                 "alexnet": "relu1,relu2,relu3,relu5", "efficientnet_lite0": "_blocks.0,_blocks.2,_blocks.4,_blocks.10",
                 "efficientnet_lite2": "_blocks.0,_blocks.2,_blocks.4,_blocks.10"}
DREAM_LAYER = {"vgg19": "relu3_3", "vgg16": "relu3_3", "alexnet": "relu3", "efficientnet_lite0": "_blocks.10",
               "efficientnet_lite2": "_blocks.10"}


def _default_layer(args: argparse.Namespace, value: str | None, defaults: dict[str, str], option: str) -> str:
    if value:
        return value
    if args.model not in defaults:
        raise PerceptError(f"give {option} for {args.model} (`percept explain layers --model {args.model}` lists "
                           "the names)")
    return defaults[args.model]


def _cmd_explain_invert(args: argparse.Namespace) -> int:
    from .image import check_writable, load_image, save_image, to_tensor
    from .understand.invert import invert

    output = check_writable(args.output)
    layers = _default_layer(args, args.layers, INVERT_LAYERS, "--layers").split(",")
    image = to_tensor(load_image(args.image), longest=args.size)
    r = invert(_network(args.model, args.device), image, layers, steps=args.steps, optimizer=args.optimizer,
               tv_weight=args.tv_weight, alpha_weight=args.alpha_weight, seed=args.seed, progress=not args.quiet)
    save_image(r.strip(), output,
               {"kind": "explain invert", "model": args.model, "layers": layers, "size": args.size,
                "steps": args.steps, "optimizer": args.optimizer, "tv_weight": args.tv_weight,
                "alpha_weight": args.alpha_weight, "seed": args.seed,
                "psnr": {inv.layer: round(inv.psnr, 2) for inv in r.inversions},
                "feature_error": {inv.layer: round(inv.loss, 5) for inv in r.inversions}})
    parts = [f"{inv.layer} {inv.psnr:.1f} dB (feature error {inv.loss:.4f})" for inv in r.inversions]
    print(f"wrote {output} (original | {' | '.join(layers)}, {image.shape[-1]}x{image.shape[-2]} px): PSNR "
          f"{', '.join(parts)}")
    return 0


def _cmd_explain_dream(args: argparse.Namespace) -> int:
    from .image import check_writable, load_image, save_image, to_tensor
    from .understand.dream import dream

    output = check_writable(args.output)
    layer = _default_layer(args, args.layer, DREAM_LAYER, "--layer")
    image = to_tensor(load_image(args.image), longest=args.size)
    r = dream(_network(args.model, args.device), image, layer, octaves=args.octaves, octave_scale=args.octave_scale,
              steps=args.steps, step_size=args.step_size, jitter=args.jitter, seed=args.seed, progress=not args.quiet)
    save_image(r.image, output,
               {"kind": "explain dream", "model": args.model, "layer": layer, "size": args.size,
                "octaves": args.octaves, "octave_scale": args.octave_scale, "steps": args.steps,
                "step_size": args.step_size, "jitter": args.jitter, "seed": args.seed,
                "norm_before": round(r.norm_before, 4), "norm_after": round(r.norm_after, 4)})
    print(f"wrote {output} ({image.shape[-1]}x{image.shape[-2]} px): {layer} RMS activation {r.norm_before:.3f} -> "
          f"{r.norm_after:.3f} (x{r.ratio:.2f})")
    return 0


SERVICE_PACKAGES = {"fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "limits", "pydantic", "filelock",
                    "rq", "redis"}


def _cmd_serve(args: argparse.Namespace) -> int:
    """Start the artwork service: web app, job store and embedded workers (or the Redis broker) in one process."""
    try:
        import uvicorn

        from .service.app import create_app
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SERVICE_PACKAGES:
            raise
        raise PerceptError(f"the service needs {exc.name}, which is not installed; pip install 'percept[service]'"
                           ) from None
    import logging

    from limits import parse

    from .service.config import MIB, ServiceConfig, redact_url
    from .service.core import Service
    from .service.safety import is_loopback

    limits = {"max_upload_bytes": int(args.max_upload_mb * MIB), "max_pixels": args.max_pixels,
              "max_size": args.max_size, "queue_cap": args.queue_cap, "rate_limit": args.rate_limit}
    try:
        rate = parse(args.rate_limit)
    except ValueError:
        raise PerceptError(f"--rate-limit {args.rate_limit!r} is not a rate; write it like 30/minute") from None
    if not is_loopback(args.host):
        if not args.public:
            raise PerceptError(f"--host {args.host} would expose the service beyond this machine; add --public "
                               "(safe limits) or keep --host 127.0.0.1")
        safe = ServiceConfig(data_dir=Path("."))
        safe_rate = parse(safe.rate_limit)
        limits = {name: min(value, getattr(safe, name)) for name, value in limits.items() if name != "rate_limit"}
        faster = rate.amount / rate.get_expiry() > safe_rate.amount / safe_rate.get_expiry()
        limits.update(rate_limit=safe.rate_limit if faster else args.rate_limit, allow_private_webhooks=False)
        print(f"percept: warning: serving on {args.host}, reachable from other machines: limits capped at their "
              f"defaults, webhooks to private addresses refused, listing every job off. Put it behind an HTTPS "
              "proxy; anyone with a job's link can see that job.", file=sys.stderr)
    config = ServiceConfig.from_env(data_dir=args.data_dir, workers=args.workers, broker=args.broker,
                                    device=args.device, iterations=args.iterations, smtp_url=args.smtp,
                                    mail_from=args.mail_from, public_url=args.public_url, host=args.host,
                                    port=args.port, **limits)
    logging.basicConfig(level=logging.INFO, format="percept: %(name)s: %(message)s")
    service = Service(config)
    service.start()
    try:
        print(f"percept: serving http://{args.host}:{args.port}/ (data: {config.data_dir}; "
              f"{'jobs via ' + redact_url(config.broker) if config.broker else f'{config.workers} embedded worker(s)'})")
        uvicorn.run(create_app(service, manage=False), host=args.host, port=args.port, log_level="info")
    finally:
        service.stop()
    return 0


def _add_compute_options(p: argparse.ArgumentParser, *, batch: str, cache: bool = True) -> None:
    """--batch-size (``batch`` describes its default), --device, --cache-dir (if ``cache``) and --quiet."""
    p.add_argument("--batch-size", type=int, default=None, help=f"images per batch; bounds memory (default: {batch})")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps (default: auto)")
    if cache:
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="feature cache folder (default: $PERCEPT_CACHE/features or ~/.cache/percept/features)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="percept",
        description="Reuse ImageNet-pretrained CNNs: neural style transfer, texture synthesis and transfer learning.",
        epilog="Run `percept COMMAND --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"percept {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "stylize", help="paint a photo in the style of one or more paintings (Gatys et al.)", formatter_class=fmt,
        description="Neural style transfer by optimisation (Gatys, Ecker & Bethge 2016): the output image is "
        "optimised so its VGG features match the content photo and the Gram matrices of the style image(s).",
        epilog=EPILOG_STYLIZE,
    )
    p.add_argument("content", metavar="CONTENT", help="content photo")
    p.add_argument("styles", metavar="STYLE", nargs="*", help="style image(s); several are blended")
    p.add_argument("--method", choices=("optimize", "adain"), default="optimize",
                   help="optimize: Gatys et al., best quality, minutes; adain: any style in one forward pass "
                   "(Huang & Belongie), seconds (default: optimize)")
    _add_common(p)
    g = p.add_argument_group("AdaIN options (--method adain; also size, style-scale, style-blend-weights, "
                             "preserve-color, device)")
    g.add_argument("--alpha", type=float, default=1.0,
                   help="style strength: 0 = the content through the network, 1 = full style (default: 1.0)")
    g.add_argument("--mask", metavar="MASK.png", help="two styles by region: white gets the first style, black "
                   "the second (default: off)")
    g.add_argument("--decoder", metavar="NAME|FILE", help="AdaIN decoder: a name from `percept models` or a file "
                   "from `percept train-adain` (default: the shipped decoder)")
    g = p.add_argument_group("trained-network options (--model; also size (default: keep the image's size), "
                             "device). CONTENT may be a folder: -o is then a folder")
    g.add_argument("--model", metavar="MODEL.pt", help="a network from `percept train-style`: one forward pass "
                   "per image, no STYLE argument (default: off)")
    g.add_argument("--style-index", type=int, default=None, metavar="K",
                   help="which style of a multi-style network, 0-based (see `percept info MODEL.pt`)")
    g.add_argument("--blend", type=_parse_list(float), default=None, metavar="W1,W2,...",
                   help="blend the styles of a multi-style network with these weights (normalised to sum 1)")
    g.add_argument("--tile", type=int, default=None, metavar="N",
                   help="stylise in overlapping N-pixel tiles, for images too large for memory (e.g. 1024); "
                   "the tiles share whole-image normalisation statistics, so there are no seams (default: off)")
    g.add_argument("--overlap", type=int, default=96, help="pixels shared by neighbouring tiles (default: 96)")
    g.add_argument("--exact-statistics", action="store_true",
                   help="with --tile: compute the normalisation statistics on the full-resolution image (about 7x "
                   "the work; output then equals the untiled one) instead of a downscaled copy (default: off)")
    g.add_argument("--batch-size", type=int, default=4,
                   help="images of equal size stylised together (default: 4)")
    _add_param_options(p, texture=False)
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser(
        "texture", help="synthesise a new texture from a sample (Gatys et al.)", formatter_class=fmt,
        description="Texture synthesis (Gatys, Ecker & Bethge 2015): seeded noise is optimised until its Gram "
        "matrices match the source's. The output size does not depend on the source's size.",
        epilog=EPILOG_TEXTURE,
    )
    p.add_argument("source", metavar="SOURCE", help="texture sample image")
    _add_common(p)
    _add_param_options(p, texture=True)
    p.set_defaults(func=lambda a: _run_style(a, texture=True))

    from .transfer.names import BACKBONES, CLASSIFIERS, OPTIMIZER_DEFAULTS, SCHEDULES

    p = sub.add_parser(
        "train", help="train an image classifier on a pretrained backbone (transfer learning)", formatter_class=fmt,
        description="Transfer learning from an ImageNet-pretrained backbone. --strategy features: the frozen "
        "network's features are computed once (cached on disk) and a linear classifier is fitted on top. --strategy "
        "finetune: a new head is trained, then the top of the backbone with discriminative learning rates. DATA is "
        "DATA/train/<class>/* and DATA/val/<class>/*, or DATA/<class>/* split by a seeded stratified split.",
        epilog="examples:\n  percept train data/hymenoptera -o runs/ants_bees\n"
        "  percept train flowers/ -o runs/flowers --backbone vgg16 --classifier svm --val-fraction 0.25\n"
        "  percept train data/hymenoptera -o runs/ft --strategy finetune --augment strong\n"
        "  percept train data/hymenoptera -o runs/ft --strategy finetune --resume      # after Ctrl-C\n"
        "  torchrun --nproc-per-node 2 -m percept train data/hymenoptera -o runs/ddp --strategy finetune",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder")
    p.add_argument("-o", "--output", required=True, metavar="RUN", help="run folder to write (required)")
    p.add_argument("--backbone", default="efficientnet_lite0", choices=BACKBONES, metavar="NAME",
                   help=f"pretrained network: {', '.join(BACKBONES)} (default: efficientnet_lite0)")
    p.add_argument("--strategy", default="features", choices=("features", "finetune"),
                   help="features: frozen backbone + linear classifier (fast); finetune: new head, then the top "
                   "of the backbone with discriminative learning rates (default: features)")
    p.add_argument("--classifier", default="logreg", choices=CLASSIFIERS,
                   help="linear classifier: logreg (multinomial logistic regression), svm (linear SVM) or softmax "
                   "(a softmax layer trained in PyTorch with label smoothing) (default: logreg)")
    p.add_argument("--C", type=float, default=None,
                   help="inverse regularisation strength (default: chosen by 5-fold cross-validation)")
    p.add_argument("--augment-copies", type=int, default=0, metavar="N",
                   help="features strategy: also fit on N augmented copies of each training image (--augment "
                   "preset; cached like plain features) (default: 0)")
    g = p.add_argument_group("fine-tuning options (--strategy finetune)")
    g.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs after the head epochs (default: 8)")
    g.add_argument("--head-epochs", type=int, default=2, help="epochs training only the new head (default: 2)")
    g.add_argument("--unfreeze", default="4", metavar="K|all",
                   help="top backbone stages to fine-tune (default: 4)")
    g.add_argument("--scratch", action="store_true",
                   help="baseline: the same architecture from random weights, all layers trained for "
                   "head-epochs + epochs at --lr (default: off)")
    g.add_argument("--optimizer", choices=OPTIMIZER_DEFAULTS, default="adamw",
                   help="adamw, or sgd with Nesterov momentum (default: adamw)")
    g.add_argument("--lr", type=float, default=None,
                   help="head learning rate; unfrozen stages get lr/3 and lr/9 (default: "
                   + ", ".join(f"{v['lr']:g} for {k}" for k, v in OPTIMIZER_DEFAULTS.items()) + "; see percept lr-find)")
    g.add_argument("--weight-decay", type=float, default=None, help="weight decay (default: "
                   + ", ".join(f"{v['weight_decay']:g} for {k}" for k, v in OPTIMIZER_DEFAULTS.items()) + ")")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    g.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                   help="learning-rate schedule per phase: cosine decay, or onecycle (30%% warm-up, then anneal) "
                   "(default: cosine)")
    g.add_argument("--dropout", type=float, default=0.2, help="dropout before the new head (default: 0.2)")
    g.add_argument("--head-init", choices=("kaiming", "xavier"), default="kaiming",
                   help="initialisation of the new head (default: kaiming)")
    g.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing (default: 0.1)")
    g.add_argument("--reuse-head", action="store_true",
                   help="start the head rows of classes named like ImageNet classes (e.g. daisy) from the "
                   "pretrained classifier; EfficientNet-Lite backbones (default: off)")
    g.add_argument("--patience", type=int, default=4,
                   help="stop after this many fine-tuning epochs without a better validation accuracy; the best "
                   "epoch is restored (default: 4)")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision (float16 autocast + loss scaling) (default: on for CUDA, off elsewhere)")
    g.add_argument("--workers", type=int, default=None,
                   help="data-loading processes (default: 0 on CPU, up to 8 on a GPU)")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in RUN from its last finished epoch (default: off)")
    _add_augment_options(p)
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="validation share when DATA has no train/val folders (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the split and the classifier (default: 0)")
    _add_compute_options(p, batch="32 for features, 16 for fine-tuning")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate", help="accuracy, per-class metrics and confusion matrix of one run or an ensemble",
        formatter_class=fmt,
        description="Evaluate RUN on its own validation split, or on DATA (its val/ folder if it has one, else "
        "every image). Several runs are evaluated as an ensemble (averaged probabilities).",
        epilog="examples:\n  percept evaluate runs/ants_bees\n  percept evaluate runs/a runs/b data/test --json",
    )
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folder(s), optionally followed by a DATA folder")
    p.add_argument("--json", action="store_true", help="print one JSON object; `accuracy` is in [0, 1] (default: off)")
    p.add_argument("--confusion-png", type=Path, metavar="FILE.png",
                   help="also draw the confusion matrix to this PNG (default: off)")
    p.add_argument("--tta", choices=("none", "flip", "flip+crops"), default="none",
                   help="test-time augmentation: average over the mirror image (flip) and the four corner crops "
                   "(flip+crops) (default: none)")
    _add_compute_options(p, batch="32")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "lr-find", help="learning-rate range test for fine-tuning: loss vs lr plot and a suggested lr",
        formatter_class=fmt,
        description="Trains a few mini-batches with the learning rate growing geometrically (Smith 2015, as "
        "fastai's lr_find) and plots the loss against it; the suggested lr is where the loss falls fastest. "
        "Nothing is saved but the plot: model and optimiser are reset afterwards.",
        epilog="examples:\n  percept lr-find data/hymenoptera -o lr_head.png              # the head phase\n"
        "  percept lr-find data/hymenoptera -o lr_ft.png --unfreeze 4   # head + top 4 stages (lr/9, lr/3, lr)\n"
        "  percept lr-find data/flowers -o lr.png --optimizer sgd --steps 200",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder (as for percept train)")
    p.add_argument("-o", "--output", required=True, metavar="PLOT.png", help="loss-vs-lr plot to write (required)")
    p.add_argument("--backbone", default="efficientnet_lite0", choices=BACKBONES, metavar="NAME",
                   help="pretrained network (default: efficientnet_lite0)")
    p.add_argument("--unfreeze", default="0", metavar="K|all",
                   help="0 = head only; K = also the top K stages with discriminative lrs (default: 0)")
    p.add_argument("--optimizer", choices=OPTIMIZER_DEFAULTS, default="adamw", help="optimiser (default: adamw)")
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay (default: as percept train)")
    p.add_argument("--start-lr", type=float, default=1e-7, help="first learning rate (default: 1e-07)")
    p.add_argument("--end-lr", type=float, default=1.0, help="last learning rate (default: 1.0)")
    p.add_argument("--steps", type=int, default=100, help="mini-batches to run (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print the whole curve as JSON (default: off)")
    _add_augment_options(p)
    _add_compute_options(p, batch="16", cache=False)
    p.set_defaults(func=_cmd_lr_find)

    p = sub.add_parser("predict", help="top-k classes of images with a trained run", formatter_class=fmt,
                       epilog="examples:\n  percept predict runs/ants_bees photo.jpg more_photos/ --top-k 2")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    p.add_argument("--top-k", type=int, default=5, help="classes to show per image (default: 5)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)")
    _add_compute_options(p, batch="32")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "export", help="save a trained run as one ONNX or TorchScript file that runs without percept",
        formatter_class=fmt,
        description="Export RUN (either strategy) as one model: float32 (B, 3, crop, crop) RGB in [0, 1] -> class "
        "probabilities (B, K), with the backbone's normalisation inside and a features run's scaler and linear "
        "classifier folded into one layer. Writes FILE and FILE.json (classes, input, preprocessing); the file "
        "is reloaded and checked against percept's model before it is renamed into place.",
        epilog=EPILOG_EXPORT,
    )
    p.add_argument("run", metavar="RUN|MODEL.pt", help="run folder (from percept train) or style network (from "
                   "percept train-style)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="model file to write, e.g. model.onnx or model.pt; FILE.json is written beside it (required)")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                   help="onnx (needs pip install onnx onnxruntime, or 'percept[export]') or torchscript "
                   "(torch.jit.load; traced) (default: onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: torch's, 20)")
    p.add_argument("--style-index", type=int, default=None, metavar="K",
                   help="style network with several styles: bake in style K (default: its only style)")
    p.add_argument("--blend", type=_parse_list(float), default=None, metavar="W1,W2,...",
                   help="style network with several styles: bake in this blend (default: off)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("augment-preview", help="draw a grid of augmented training samples", formatter_class=fmt,
                       epilog="examples:\n  percept augment-preview data/hymenoptera -o grid.png --augment strong")
    p.add_argument("data", metavar="DATA", help="dataset folder (training images are sampled)")
    p.add_argument("-o", "--output", required=True, metavar="GRID.png", help="output image (required)")
    p.add_argument("--images", type=int, default=6, help="how many training images (rows) (default: 6)")
    p.add_argument("--per-image", type=int, default=6, help="augmented samples per image (columns) (default: 6)")
    p.add_argument("--size", type=int, default=160, help="tile size in pixels (default: 160)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_augment_options(p)
    p.set_defaults(func=_cmd_augment_preview)

    p = sub.add_parser(
        "train-adain", help="train a decoder for AdaIN arbitrary style transfer", formatter_class=fmt,
        description="Trains the decoder of AdaIN (Huang & Belongie 2017) on photos and paintings: content loss "
        "to the AdaIN target in VGG-19 relu4_1, style loss on the channel means and stds of relu1_1..relu4_1. "
        "The paper trains 160,000 steps of 8 images (MS-COCO + WikiArt) on a GPU; percept ships that decoder, so "
        "train only to adapt it (--init shipped) or to study the method.",
        epilog="examples:\n  percept train-adain --content-dir photos/ --style-dir paintings/ -o decoder.pt "
        "--steps 2000\n  percept train-adain --content-dir coco/ --style-dir wikiart/ -o decoder.pt --steps 160000 "
        "--init random --device cuda\n  percept stylize cat.jpg wave.jpg -o out.png --method adain --decoder "
        "decoder.pt",
    )
    p.add_argument("--content-dir", required=True, metavar="DIR", help="photos, searched recursively (required)")
    p.add_argument("--style-dir", required=True, metavar="DIR", help="paintings, searched recursively (required)")
    p.add_argument("-o", "--output", required=True, metavar="DECODER.pt", help="decoder file to write (required)")
    p.add_argument("--steps", type=int, required=True, help="training steps (batches) (required)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate, decayed as lr/(1+5e-5*step) "
                   "(default: 0.0001)")
    p.add_argument("--size", type=int, default=256, help="training crop size in pixels (default: 256)")
    p.add_argument("--content-weight", type=float, default=1.0, help="weight of the content loss (default: 1.0)")
    p.add_argument("--style-weight", type=float, default=10.0, help="weight of the style loss (default: 10.0)")
    p.add_argument("--init", default="shipped", metavar="shipped|random|FILE",
                   help="start from the shipped decoder, random weights or a decoder file (default: shipped)")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                   help="write OUT.ckpt every N steps for --resume (default: 1000)")
    p.add_argument("--workers", type=int, default=None, help="image-loading processes (default: 0 on CPU, up to "
                   "8 on a GPU)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision: float16 on CUDA, bfloat16 on CPU (default: on for CUDA, off elsewhere)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted training (default: off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_compute_options(p, batch="8", cache=False)
    p.set_defaults(func=_cmd_train_adain)

    p = sub.add_parser(
        "train-style", help="train a feed-forward style network (Johnson et al.; several styles: Dumoulin et al.)",
        formatter_class=fmt,
        description="Trains the transform network of Johnson, Alahi & Fei-Fei (2016) to paint photos in the style "
        "of STYLE in one forward pass, with the perceptual loss of percept stylize (content at relu2_2, Gram style "
        "at relu1_2..relu4_3 of VGG-16, total variation). Several STYLE images train one network with conditional "
        "instance norm (Dumoulin et al. 2017): pick or blend them with stylize --style-index/--blend. Writes "
        "MODEL.pt at every checkpoint and keeps checkpoint.pt, samples/ and train.json in MODEL_training/. "
        "Quality recipe (the paper): photos such as COCO train2014 (80k), --size 256, --steps 40000, a GPU "
        "(mixed precision and channels-last on CUDA by default); the paper took about 4 h on a 2016 GPU. On a CPU, --size 128 "
        "--amp --max-minutes 20 gives a usable network (see docs/feedforward.md).",
        epilog="examples:\n"
        "  percept train-style starry.jpg --content-dir coco/train2014 -o starry.pt --device cuda\n"
        "  percept train-style starry.jpg --content-dir photos/ -o starry.pt --size 128 --amp --max-minutes 20\n"
        "  percept train-style wave.jpg scream.jpg udnie.jpg --content-dir coco/ -o three.pt   # one network\n"
        "  percept train-style starry.jpg --content-dir photos/ -o starry.pt --resume --steps 60000\n"
        "  percept stylize photo.jpg -o out.png --model three.pt --blend 0.5,0.5,0",
    )
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several train one multi-style network")
    p.add_argument("--content-dir", required=True, metavar="DIR", help="photos, searched recursively (required)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="model file to write (required)")
    p.add_argument("--steps", type=int, default=40000, help="training steps (batches) in all (default: 40000)")
    p.add_argument("--max-minutes", type=float, default=None, metavar="M",
                   help="stop after M minutes, saving the network; --resume continues (default: off)")
    p.add_argument("--size", type=int, default=256, help="side of the square training crops, px (default: 256)")
    p.add_argument("--style-size", type=int, default=None, help="longest side of the style image(s) for the "
                   "Gram matrices (default: --size)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
    p.add_argument("--lr-schedule", choices=("constant", "linear"), default="constant",
                   help="constant (Johnson et al.) or linear decay to 0 at --steps, for short runs (default: constant)")
    p.add_argument("--content-weight", type=float, default=1.0, help="content loss weight (default: 1.0)")
    p.add_argument("--style-weight", type=float, default=3.0, help="style loss weight; higher = stronger style "
                   "(default: 3.0)")
    p.add_argument("--tv-weight", type=float, default=10.0, help="total-variation weight (smoothness) (default: 10.0)")
    p.add_argument("--network", choices=("vgg16", "vgg19"), default="vgg16", help="loss network (default: vgg16)")
    p.add_argument("--weights", default=None, metavar="NAME|FILE", help="loss network weights (default: the "
                   "network's default in `percept models`)")
    p.add_argument("--style-layer-weights", type=_parse_list(float), default=None, metavar="W,...",
                   help="relative weight of each style layer, in order (VGG-16: relu1_2, relu2_2, relu3_3, relu4_3; "
                   "default: equal)")
    p.add_argument("--sample-every", type=int, default=500, metavar="N",
                   help="write MODEL_training/samples/step_N.png every N steps (default: 500)")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                   help="save MODEL.pt and the checkpoint every N steps (default: 500)")
    p.add_argument("--sample-content", metavar="PHOTO", help="photo the samples show (default: the first photo)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision: float16 on CUDA, bfloat16 on CPU (default: on for CUDA, off elsewhere)")
    p.add_argument("--workers", type=int, default=None, help="image-loading processes (default: 0 on CPU, up to "
                   "8 on a GPU)")
    p.add_argument("--resume", action="store_true", help="continue the training in MODEL_training/ (default: off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_compute_options(p, batch="4", cache=False)
    p.set_defaults(func=_cmd_train_style)

    p = sub.add_parser("explain", help="look inside a pretrained network: filters, activations, saliency, layers",
                       formatter_class=fmt,
                       description="Understanding CNNs. MODEL is an ImageNet classifier (efficientnet_lite0, "
                       "efficientnet_lite2 offline; resnet18, resnet50, mobilenet_v3_large, efficientnet_b0, "
                       "convnext_tiny via torchvision), a RUN folder from percept train, or for filters, "
                       "activations and layers also a feature network (vgg19, vgg16, alexnet).")
    methods = p.add_subparsers(dest="method_name", metavar="METHOD", required=True)

    def method(name: str, help: str, example: str, model: str = "efficientnet_lite0") -> argparse.ArgumentParser:
        m = methods.add_parser(name, help=help, formatter_class=fmt, epilog=f"example:\n  {example}")
        m.add_argument("--model", default=model, metavar="MODEL", help=f"network to explain (default: {model})")
        m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
        return m

    m = method("layers", "list the layer names of MODEL with their output shapes (C x H x W at 224 px)",
               "percept explain layers --model efficientnet_lite0")
    m.set_defaults(func=_cmd_explain_layers)
    m = method("filters", "the first layer's filters as an image grid",
               "percept explain filters --model alexnet -o filters.png")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="grid image to write (required)")
    m.add_argument("--columns", type=int, default=8, help="filters per row (default: 8)")
    m.set_defaults(func=_cmd_explain_filters)
    m = method("activations", "feature maps of one layer for an image (strongest channels first)",
               "percept explain activations cat.jpg --layer _blocks.3 -o maps.png")
    m.add_argument("image", metavar="IMAGE", help="input image")
    m.add_argument("--layer", required=True, help="layer name (see percept explain layers) (required)")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="grid image to write (required)")
    m.add_argument("--channels", type=int, default=16, help="how many channels to show (default: 16)")
    m.add_argument("--size", type=int, default=224, help="longest side of the image fed in, px (default: 224)")
    m.set_defaults(func=_cmd_explain_activations)
    m = method("saliency", "which pixels the decision depends on: gradient, smoothgrad, guided, gradcam, "
               "occlusion",
               "percept explain saliency cat.jpg --method gradcam --whole -o gradcam.png")
    m.add_argument("image", metavar="IMAGE", help="input image")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="image and heat-map overlay, side by side (required)")
    m.add_argument("--method", choices=("gradient", "smoothgrad", "guided", "gradcam", "occlusion"), default="gradcam",
                   help="saliency method (default: gradcam)")
    m.add_argument("--class", dest="target", default=None, metavar="NAME|INDEX",
                   help="class to explain (default: the top class)")
    m.add_argument("--whole", action="store_true", help="the whole image, longest side at the classifier's resize "
                   "size, instead of its centre crop (default: off)")
    m.add_argument("--layer", default=None, help="gradcam: layer (default: the last feature map)")
    m.add_argument("--window", type=int, default=None,
                   help="occlusion: patch size, px (default: a third of the image's shorter side)")
    m.add_argument("--stride", type=int, default=None,
                   help="occlusion: step between patches, px (default: a quarter of the window)")
    m.add_argument("--baseline", choices=("zero", "mean", "blur"), default=None,
                   help="occlusion: what replaces the patch: black, the image's mean colour or its blurred self "
                   "(default: zero)")
    m.add_argument("--samples", type=int, default=None, help="smoothgrad: noisy copies (default: 32)")
    m.add_argument("--noise", type=float, default=None, help="smoothgrad: noise std (default: 0.15)")
    m.add_argument("--batch-size", type=int, default=None, help="occlusion/smoothgrad: images per forward pass "
                   "(default: 32 / 16)")
    m.add_argument("--seed", type=int, default=None, help="smoothgrad: noise seed (default: 0)")
    m.set_defaults(func=_cmd_explain_saliency)
    m = method("attack", "adversarial example: FGSM or PGD, untargeted or towards a class, within an L-inf budget",
               "percept explain attack panda.jpg --target gibbon -o gibbon.png")
    m.add_argument("image", metavar="IMAGE", help="input image (the classifier's centre crop is attacked)")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="original | amplified perturbation | adversarial image, side by side (required)")
    m.add_argument("--attack", choices=("pgd", "fgsm"), default="pgd", help="attack method (default: pgd)")
    m.add_argument("--target", default=None, metavar="NAME|INDEX",
                   help="class to turn the image into (default: untargeted, any other class)")
    m.add_argument("--epsilon", type=float, default=4.0,
                   help="L-inf budget in 8-bit levels: 4 = every pixel changes by at most 4/255 (default: 4)")
    m.add_argument("--steps", type=int, default=20, help="pgd: gradient steps (default: 20)")
    m.set_defaults(func=_cmd_explain_attack)

    feature_models = ("MODEL may also be a feature network (vgg19, vgg16, alexnet; layers relu1_1 ...). ")
    layer_help = ("layer whose output, averaged over space, is the feature vector (see percept explain layers) "
                  "(default: the pooled penultimate features, as percept train uses)")

    def feature_options(m: argparse.ArgumentParser, batch: str, cache: bool = True) -> None:
        m.add_argument("--batch-size", type=int, default=None,
                       help=f"images per forward pass; bounds memory (default: {batch})")
        if cache:
            m.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder (default: "
                           "$PERCEPT_CACHE/features or ~/.cache/percept/features)")
        m.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")

    m = method("neighbours", "the images of a folder nearest to query images in a layer's feature space "
               "(cached index)", "percept explain neighbours photos/ cat.jpg dog.jpg -k 5 -o nn.png")
    m.description = ("Index FOLDER (recursively) by a layer's pooled features (cached per network, weights and "
                     "layer) and show the k nearest images of each QUERY, captioned with class folder and "
                     "distance; green frames: same class folder as the query. " + feature_models)
    m.add_argument("folder", metavar="FOLDER", help="images to search (class folders name the classes)")
    m.add_argument("queries", metavar="QUERY", nargs="+", help="query image(s); one row each")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="grid image to write (required)")
    m.add_argument("-k", type=int, default=5, help="neighbours per query (default: 5)")
    m.add_argument("--layer", default=None, help=layer_help)
    m.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine",
                   help="distance between feature vectors (default: cosine)")
    m.add_argument("--cell", type=int, default=112, help="thumbnail side in the grid, px (default: 112)")
    feature_options(m, "32")
    m.set_defaults(func=_cmd_explain_neighbours)
    m = method("embedding", "a folder's images in 2-D (PCA, t-SNE) by a layer's features, coloured by class folder",
               "percept explain embedding hymenoptera/val --method both -o embedding.png")
    m.description = ("Scatter plots of FOLDER's images (recursively) by PCA and/or t-SNE of a layer's pooled, "
                     "L2-normalised features (cached), one colour per class folder, with thumbnails. "
                     + feature_models)
    m.add_argument("folder", metavar="FOLDER", help="images to embed (class folders give the colours)")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="figure to write (required)")
    m.add_argument("--method", choices=("pca", "tsne", "both"), default="both",
                   help="projection(s), side by side (default: both)")
    m.add_argument("--layer", default=None, help=layer_help)
    m.add_argument("--perplexity", type=float, default=None,
                   help="t-SNE perplexity (default: min(30, (images - 1) / 3))")
    m.add_argument("--seed", type=int, default=0, help="t-SNE and thumbnail-choice seed (default: 0)")
    m.add_argument("--thumbnails", type=int, default=40, help="images drawn at their points per panel (default: 40)")
    feature_options(m, "32")
    m.set_defaults(func=_cmd_explain_embedding)
    m = method("top-patches", "the image patches of a folder that activate one channel of a layer most",
               "percept explain top-patches photos/ --layer _blocks.5 --channel 7 -o patches.png")
    m.description = ("Run FOLDER's images (recursively) through MODEL and show the k input patches whose unit in "
                     "CHANNEL of LAYER responds most (at most --per-image per image); a patch is the receptive "
                     "field of its unit, measured with a gradient probe. " + feature_models)
    m.add_argument("folder", metavar="FOLDER", help="images to search")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="grid image to write (required)")
    m.add_argument("--layer", required=True, help="layer with a feature map (see percept explain layers) (required)")
    m.add_argument("--channel", type=int, required=True, help="channel of the layer, from 0 (required)")
    m.add_argument("-k", type=int, default=16, help="patches to show (default: 16)")
    m.add_argument("--per-image", type=int, default=1, help="most patches taken from one image (default: 1)")
    m.add_argument("--patch", type=int, default=None,
                   help="patch side, px (default: the unit's receptive field, at most the network's crop)")
    m.add_argument("--columns", type=int, default=8, help="patches per row (default: 8)")
    m.add_argument("--cell", type=int, default=96, help="side of each patch in the grid, px (default: 96)")
    feature_options(m, "16", cache=False)
    m.set_defaults(func=_cmd_explain_top_patches)

    m = method("class-image", "the image a classifier finds most typical of a class (gradient ascent on its logit)",
               "percept explain class-image --class goldfish,flamingo -o classes.png")
    m.description = ("Class visualisation (Simonyan et al. 2014) with Yosinski et al. 2015's regularisers: gradient "
                     "ascent on the class logit from a grey image with faint seeded noise, each step jittered, "
                     "decayed towards grey (L2) and clamped to [0, 1], blurred every few steps. Several classes "
                     "are drawn side by side.")
    m.add_argument("--class", dest="target", required=True, metavar="NAME|INDEX[,...]",
                   help="class(es) to draw, comma-separated (required)")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="image(s) to write, side by side "
                   "(required)")
    m.add_argument("--size", type=int, default=None, help="image side, px (default: the classifier's crop, 224 for "
                   "efficientnet_lite0)")
    m.add_argument("--steps", type=int, default=200, help="gradient-ascent steps (default: 200)")
    m.add_argument("--lr", type=float, default=0.02,
                   help="mean change of a pixel per step, in [0, 1] units (default: 0.02)")
    m.add_argument("--decay", type=float, default=0.005, help="L2 decay towards grey per step (default: 0.005)")
    m.add_argument("--jitter", type=int, default=16, help="largest random shift per step, px (default: 16)")
    m.add_argument("--blur-every", type=int, default=4, help="blur every N steps; 0 = never (default: 4)")
    m.add_argument("--blur-sigma", type=float, default=1.0, help="blur std, px (default: 1.0)")
    m.add_argument("--seed", type=int, default=0, help="start-noise and jitter seed (default: 0)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    m.set_defaults(func=_cmd_explain_class_image)
    m = method("invert", "reconstruct an image from one layer's features, for several layers (Mahendran & Vedaldi)",
               "percept explain invert cat.jpg --layers relu1_2,relu2_2,relu3_4,relu4_4 -o invert.png",
               model="vgg19")
    m.description = ("Feature inversion (Mahendran & Vedaldi 2015): for each layer, an image is optimised from "
                     "seeded noise so that its features match the photo's (relative squared error) under a "
                     "total-variation prior. Writes original | layer 1 | layer 2 ... and prints each PSNR. MODEL "
                     "is a feature network (vgg19, vgg16, alexnet) or a classifier (its module names).")
    m.add_argument("image", metavar="IMAGE", help="image to reconstruct")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="original and reconstructions, side by side (required)")
    m.add_argument("--layers", default=None, metavar="LAYER[,...]",
                   help=f"layers to invert from, comma-separated (default: {INVERT_LAYERS['vgg19']} for vgg19, "
                   f"{INVERT_LAYERS['vgg16']} for vgg16, {INVERT_LAYERS['alexnet']} for alexnet, "
                   f"{INVERT_LAYERS['efficientnet_lite0']} for efficientnet_lite0/2; required for other models)")
    m.add_argument("--size", type=int, default=128, help="longest side of the image, px (default: 128)")
    m.add_argument("--steps", type=int, default=200, help="loss evaluations (lbfgs) or steps (adam) per layer "
                   "(default: 200)")
    m.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs", help="optimizer (default: lbfgs)")
    m.add_argument("--tv-weight", type=float, default=0.5, help="total-variation prior weight (default: 0.5)")
    m.add_argument("--alpha-weight", type=float, default=0.0, help="alpha-norm (alpha 6) prior weight "
                   "(default: 0 = off)")
    m.add_argument("--seed", type=int, default=0, help="start-noise seed (default: 0)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    m.set_defaults(func=_cmd_explain_invert)
    m = method("dream", "DeepDream: amplify what a layer sees in a photo, over several octaves",
               "percept explain dream cat.jpg --layer relu3_3 -o dream.png", model="vgg19")
    m.description = ("DeepDream (Mordvintsev et al. 2015): normalised, jittered gradient ascent on the mean square "
                     "of a layer's activations, from the smallest octave of the photo up, carrying the detail from "
                     "octave to octave. MODEL is a feature network (vgg19, vgg16, alexnet) or a classifier (its "
                     "module names).")
    m.add_argument("image", metavar="IMAGE", help="photo to dream into")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png", help="dreamed image (required)")
    m.add_argument("--layer", default=None, help=f"layer to amplify (default: {DREAM_LAYER['vgg19']} for vgg19 and "
                   f"vgg16, {DREAM_LAYER['alexnet']} for alexnet, {DREAM_LAYER['efficientnet_lite0']} for "
                   "efficientnet_lite0/2; required for other models)")
    m.add_argument("--size", type=int, default=384, help="longest side of the image, px (default: 384)")
    m.add_argument("--octaves", type=int, default=3, help="scales, each --octave-scale smaller (default: 3)")
    m.add_argument("--octave-scale", type=float, default=1.4, help="size ratio between octaves (default: 1.4)")
    m.add_argument("--steps", type=int, default=10, help="gradient steps per octave (default: 10)")
    m.add_argument("--step-size", type=float, default=0.006,
                   help="mean change of a pixel per step, in [0, 1] units (default: 0.006, the original's 1.5/255)")
    m.add_argument("--jitter", type=int, default=32, help="largest random shift per step, px (default: 32)")
    m.add_argument("--seed", type=int, default=0, help="jitter seed (default: 0)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    m.set_defaults(func=_cmd_explain_dream)

    p = sub.add_parser(
        "serve", help="run the artwork web service: upload a photo, choose a style, get the painting",
        formatter_class=fmt, description="The artwork service: a web page and a JSON API (docs at /docs). Jobs "
        "live in a SQLite file and images on disk under --data-dir, so they survive restarts. Without --broker "
        "jobs run on --workers threads in this process; with --broker they run on `percept worker` processes.",
        epilog="examples:\n  percept serve                                  # http://127.0.0.1:8000/\n"
        "  percept serve --workers 2 --device cuda\n"
        "  percept serve --broker redis://localhost:6379/0 --workers 0   # then: percept worker --broker ...\n"
        "  PERCEPT_SMTP_URL=smtp://user:pass@mail.example.org:587 percept serve --mail-from art@example.org\n"
        "  percept serve --host 0.0.0.0 --public --public-url https://art.example.org",
    )
    from .service.config import ServiceConfig

    service_defaults = ServiceConfig(data_dir=Path("."))
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback needs --public "
                   "(default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="jobs database, uploads, results and the secret (default: $XDG_DATA_HOME/percept/service, "
                   "i.e. ~/.local/share/percept/service)")
    p.add_argument("--workers", type=int, default=1, help="embedded worker threads; ignored with --broker "
                   "(default: 1)")
    p.add_argument("--broker", metavar="redis://HOST:6379/0", default=None,
                   help="run jobs on `percept worker` processes through Redis (RQ); $PERCEPT_BROKER keeps a password "
                   "out of `ps` (default: $PERCEPT_BROKER, else off: embedded workers)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps "
                   "(default: auto)")
    p.add_argument("--iterations", type=int, default=0, metavar="N", help="L-BFGS steps per stage of method "
                   "quality (default: 0 = by size: 150 up to 256 px, 100 up to 512 px, 60 above)")
    p.add_argument("--public", action="store_true", help="allow a --host reachable from other machines; caps the "
                   "limits below at their defaults and refuses webhooks to private addresses (default: off)")
    p.add_argument("--public-url", default=None, metavar="URL", help="base URL for links in notifications "
                   "(default: $PERCEPT_PUBLIC_URL, else http://HOST:PORT)")
    g = p.add_argument_group("limits")
    g.add_argument("--max-upload-mb", type=float, default=service_defaults.max_upload_bytes / 2**20,
                   help="largest uploaded image, MiB (default: %(default)g)")
    g.add_argument("--max-pixels", type=int, default=service_defaults.max_pixels,
                   help="most pixels of an uploaded image, checked before decoding (default: %(default)d)")
    g.add_argument("--max-size", type=int, default=service_defaults.max_size,
                   help="largest output side, px (default: %(default)d)")
    g.add_argument("--queue-cap", type=int, default=service_defaults.queue_cap,
                   help="queued plus running jobs at most; more get 503 (default: %(default)d)")
    g.add_argument("--rate-limit", default=service_defaults.rate_limit, metavar="N/PERIOD",
                   help="job submissions per client address, e.g. 30/minute or 500/hour (default: %(default)s)")
    g = p.add_argument_group("notifications")
    g.add_argument("--smtp", metavar="smtp://USER:PASS@HOST:PORT", default=None,
                   help="mail server for 'done' emails; smtps:// for TLS; prefer $PERCEPT_SMTP_URL, which keeps the "
                   "password out of the process list (default: $PERCEPT_SMTP_URL, else no email)")
    g.add_argument("--mail-from", metavar="ADDRESS", default=None,
                   help=f"sender of those emails (default: $PERCEPT_MAIL_FROM, else {service_defaults.mail_from})")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("models", help="list networks, weights, their availability here, and layer names")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: off)")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("info", help="show the parameters recorded in an output image (and how to reproduce it) "
                       "or in a style network")
    p.add_argument("image", metavar="IMAGE|MODEL.pt", help="a PNG written by percept, or a network from "
                   "percept train-style")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON (default: off)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("worker", help="run artwork-service jobs from a Redis broker (scale-out of percept serve)",
                       formatter_class=fmt, description="Run jobs of `percept serve --broker URL` on this machine.\n"
                       "A worker needs only the Redis URL: jobs bring their inputs and take their results back\n"
                       "through Redis (no shared disk, no data dir). Start one per GPU, on any machine that\n"
                       "reaches Redis; never expose Redis publicly (password, private network, rediss:// TLS).",
                       epilog="examples:\n  export PERCEPT_BROKER=redis://:PASSWORD@10.0.0.5:6379/0\n"
                       "  percept worker --device cuda\n  percept worker --broker redis://localhost:6379/0 --burst")
    p.add_argument("--broker", default=os.environ.get("PERCEPT_BROKER"), metavar="URL", help="Redis URL, e.g. "
                   "redis://localhost:6379/0, redis://:PASSWORD@host:6379/0 or rediss://... (TLS) (default: "
                   "$PERCEPT_BROKER; prefer the variable when the URL has a password: it stays out of `ps`)")
    p.add_argument("--device", default="auto", help="device: auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps "
                   "(default: auto)")
    p.add_argument("--iterations", type=int, default=0, metavar="N", help="L-BFGS steps per stage of method "
                   "quality (default: 0 = as percept serve says, else by size: 150 up to 256 px, 100 up to "
                   "512 px, 60 above)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty (default: wait for jobs)")
    p.add_argument("--nice", type=int, default=10, help="lower this process's CPU priority by N (POSIX), so that "
                   "a web server on the same machine stays responsive while it paints (default: 10)")
    p.set_defaults(func=_cmd_worker)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="output image; parameters are stored in it (PNG text chunk) (required)")
    g.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also write every N-th step to OUT_frames/ (default: 0 = off)")
    g.add_argument("--timelapse", metavar="OUT.gif", help="assemble the intermediate steps into an animated GIF "
                   "(default: off)")
    g.add_argument("--params-from", metavar="PNG", help="start from the parameters recorded in a previous "
                   "percept output; explicit options override them (default: off)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")


OUT_OF_MEMORY_FIX = ("lower --size or --batch-size, use --optimizer adam (stylize) or --tile (feed-forward), "
                     "or --device cpu")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"percept: warning: {message}\n"
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if getattr(args, "save_every", 0) < 0:
        parser.error("--save-every must be >= 0")
    try:
        return args.func(args)
    except PerceptError as exc:
        print(f"percept: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("percept: interrupted; no output written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print(f"percept: error: out of memory; {OUT_OF_MEMORY_FIX}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - last resort: one line, full traceback on request
        if os.environ.get("PERCEPT_DEBUG"):
            raise
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (CUDA/MPS)
            print(f"percept: error: out of GPU memory; {OUT_OF_MEMORY_FIX}", file=sys.stderr)
            return 3
        print(f"percept: internal error: {type(exc).__name__}: {exc} (set PERCEPT_DEBUG=1 for the traceback "
              "and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
