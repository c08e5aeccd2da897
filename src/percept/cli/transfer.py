"""``percept train``, ``evaluate``, ``predict``, ``lr-find`` and ``augment-preview``: transfer learning.

Options come from the settings classes of :mod:`percept.transfer.params` (``export`` is in :mod:`.transfer_export`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from ..errors import PerceptError
from ..params import defaults
from ..transfer.auto_params import AutoParams
from ..transfer.finetune_params import FinetuneParams, LrFindParams
from ..transfer.params import (
    AugmentOverrides,
    AugmentPreviewParams,
    EvaluateParams,
    FeaturesParams,
    PredictParams,
)
from . import transfer_export
from .commands import HELP
from .options import add_settings, settings_from_args

_FEATURES = {f.name for f in dataclasses.fields(FeaturesParams)}
_FINETUNE = {f.name for f in dataclasses.fields(FinetuneParams)}
_AUGMENT = ("augment", "augment_overrides")  # the augmentation group of every command that augments
#: Settings of both strategies, of the features strategy only and of fine-tuning only (``train`` refuses an
#: option of the other strategy).
SHARED = tuple(f.name for f in dataclasses.fields(FeaturesParams) if f.name in _FINETUNE and f.name not in _AUGMENT)
FEATURES_ONLY = tuple(f.name for f in dataclasses.fields(FeaturesParams) if f.name not in _FINETUNE)
FINETUNE_ONLY = tuple(f.name for f in dataclasses.fields(FinetuneParams) if f.name not in _FEATURES)
_AUTO = {f.name for f in dataclasses.fields(AutoParams)}
#: Settings of ``--strategy auto`` only (its other settings are shared with both strategies).
AUTO_ONLY = tuple(f.name for f in dataclasses.fields(AutoParams) if f.name not in _FEATURES)
#: The fine-tuning settings that ``lr-find`` offers (the range test refuses any others).
LR_FIND_OPTIONS = ("backbone", "optimizer", "weight_decay", "batch_size", "seed", "device")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _refuse(given: Iterable[str], strategy: str) -> None:
    """One line for options that only ``--strategy strategy`` uses."""
    given = list(given)
    if given:
        names = ", ".join(map(_flag, given))
        raise PerceptError(f"{names} {'applies' if len(given) == 1 else 'apply'} to --strategy {strategy} only; "
                           f"drop {'it' if len(given) == 1 else 'them'} or add --strategy {strategy}")


def _augment_settings(args: argparse.Namespace, cls: type) -> dict:
    """``augment`` (from ``cls``) and ``augment_overrides`` given on the command line."""
    settings = settings_from_args(args, cls, only=("augment",))
    overrides = settings_from_args(args, AugmentOverrides)
    if overrides:
        settings["augment_overrides"] = overrides
    return settings


def _add_augment_options(p: argparse.ArgumentParser, cls: type, title: str) -> None:
    g = p.add_argument_group(title)
    add_settings(g, cls, only=("augment",))
    add_settings(g, AugmentOverrides)


# --- train ----------------------------------------------------------------------------------------------------------

def _train_auto(args: argparse.Namespace, progress: bool) -> dict:
    """``--strategy auto``: options that fix part of the recipe are refused (auto chooses the recipe itself)."""
    recipe = [name for name in (*FEATURES_ONLY, *FINETUNE_ONLY, *_AUGMENT) if hasattr(args, name)
              and name not in _AUTO] + [name for name in AugmentOverrides.__dataclass_fields__ if hasattr(args, name)]
    if recipe or args.resume:
        names = ", ".join(map(_flag, recipe + (["resume"] if args.resume else [])))
        raise PerceptError(f"{names}: --strategy auto chooses the recipe itself; drop "
                           f"{'it' if len(recipe) + args.resume == 1 else 'them'} or choose --strategy features "
                           "or finetune")
    from ..transfer.auto import train_auto

    return train_auto(args.data, args.output, progress=progress, **settings_from_args(args, AutoParams))


def _auto_summary(auto: dict) -> str:
    """One line: the chosen recipe and what each candidate scored."""
    def score(c: dict) -> str:
        if "skipped" in c:
            return f"{c['name']} skipped"
        if c["strategy"] == "finetune":
            return f"finetune {c['holdout_accuracy']:.3f} held out (features {c['features_holdout_accuracy']:.3f})"
        return f"{c['name']} {'n/a' if c['cv_accuracy'] is None else format(c['cv_accuracy'], '.3f')}"

    recipe = "".join(f", {k}={v}" for k, v in auto["recipe"].items())
    return (f"auto: chose {auto['chosen']} ({auto['strategy']}{recipe}); training-image accuracy: "
            + ", ".join(score(c) for c in auto["candidates"]))


def _cmd_train(args: argparse.Namespace) -> int:
    progress = not args.quiet
    if args.strategy != "auto":
        _refuse([name for name in AUTO_ONLY if hasattr(args, name)], "auto")
    if args.strategy == "auto":
        record = _train_auto(args, progress)
    elif args.strategy == "finetune":
        settings = {**settings_from_args(args, FinetuneParams), **_augment_settings(args, FinetuneParams)}
        _refuse([name for name in FEATURES_ONLY if hasattr(args, name)], "features")
        from ..transfer.finetune import train_finetune

        record = train_finetune(args.data, args.output, resume=args.resume, progress=progress, **settings)
        if not record:  # a data-parallel worker process (rank > 0): rank 0 reports
            return 0
    else:
        settings = {**settings_from_args(args, FeaturesParams), **_augment_settings(args, FeaturesParams)}
        _refuse([name for name in FINETUNE_ONLY if hasattr(args, name)] + (["resume"] if args.resume else []),
                "finetune")
        if "augment" in settings and not settings.get("augment_copies"):
            raise PerceptError("--augment applies to fine-tuning or to augmented copies; add --augment-copies N "
                               "or --strategy finetune")
        from ..transfer.linear import train_features

        record = train_features(args.data, args.output, progress=progress, **settings)
    counts = record["counts"]
    print(f"{len(record['classes'])} classes, {sum(counts['train'].values())} training / "
          f"{sum(counts['val'].values())} validation images ({record['layout']})"
          + (f"; skipped {len(record['skipped'])} unreadable file(s)" if record["skipped"] else ""))
    sizes = list(counts["train"].values())
    if max(sizes) >= 1.5 * min(sizes):
        print(f"class imbalance: largest/smallest training class = {max(sizes) / min(sizes):.1f}")
    if "auto" in record:
        print(_auto_summary(record["auto"]))
    if record["strategy"] == "finetune":
        how = "fine-tuned" if record["params"]["pretrained"] else "trained from scratch"
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


def _register_train(sub, fmt) -> None:
    p = sub.add_parser(
        "train", help=HELP["train"], formatter_class=fmt,
        description="Transfer learning from an ImageNet-pretrained backbone. --strategy features: the frozen "
        "network's features are computed once (cached on disk) and a linear classifier is fitted on top. --strategy "
        "finetune: the new head starts from the fitted linear classifier, then the top of the backbone is trained "
        "with discriminative learning rates. --strategy auto: several poolings of the frozen features (and "
        "fine-tuning when it fits the time budget) are compared on the training images only and the best is "
        "kept; the choice is printed and kept in run.json. DATA is DATA/train/<class>/* and "
        "DATA/val/<class>/*, or DATA/<class>/* split by a seeded stratified split. Options another strategy uses "
        "are refused.",
        epilog="examples:\n  percept train data/hymenoptera -o runs/ants_bees\n"
        "  percept train flowers/ -o runs/flowers --backbone vgg16 --classifier svm --val-fraction 0.25\n"
        "  percept train data/hymenoptera -o runs/ft --strategy finetune --augment strong\n"
        "  percept train data/hymenoptera -o runs/ft --strategy finetune --resume      # after Ctrl-C\n"
        "  percept train textures/ -o runs/tex --strategy auto --budget-minutes 10\n"
        "  torchrun --nproc-per-node 2 -m percept train data/hymenoptera -o runs/ddp --strategy finetune",
    )
    p.add_argument("data", metavar="DATA", help="dataset folder")
    p.add_argument("-o", "--output", required=True, metavar="RUN", help="run folder to write (required)")
    p.add_argument("--strategy", default="features", choices=("features", "finetune", "auto"),
                   help="features: frozen backbone + linear classifier (fast); finetune: the head starts from the "
                   "fitted linear classifier, then the top of the backbone is trained with discriminative learning "
                   "rates; auto: compare poolings (by cross-validation) and fine-tuning (on held-out images) on the "
                   "training images within --budget-minutes and keep the best (default: features)")
    add_settings(p.add_argument_group("all strategies"), FeaturesParams, only=SHARED)
    features, finetune = defaults(FeaturesParams), defaults(FinetuneParams)
    for action in p._actions:  # a default that differs between the strategies shows both
        if action.dest in SHARED and features[action.dest] != finetune[action.dest]:
            action.help = action.help.replace(f"(default: {features[action.dest]})", f"(default: "
                                              f"{features[action.dest]} for features, {finetune[action.dest]} for "
                                              "fine-tuning)")
    add_settings(p.add_argument_group("frozen features (--strategy features)"), FeaturesParams, only=FEATURES_ONLY)
    g = p.add_argument_group("fine-tuning (--strategy finetune)")
    add_settings(g, FinetuneParams, only=FINETUNE_ONLY)
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in RUN from its last finished epoch (default: off)")
    add_settings(p.add_argument_group("automatic choice (--strategy auto)"), AutoParams, only=AUTO_ONLY)
    _add_augment_options(p, FeaturesParams, "augmentation (fine-tuning; features with --augment-copies)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")
    p.set_defaults(func=_cmd_train)


# --- evaluate, predict ----------------------------------------------------------------------------------------------

def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..transfer import evaluate

    runs, data = args.runs, None
    if len(runs) > 1 and not (Path(runs[-1]) / "run.json").exists() and Path(runs[-1]).is_dir():
        runs, data = runs[:-1], runs[-1]  # `evaluate RUN [RUN ...] DATA`
    report = evaluate(runs, data, progress=not args.quiet and not args.json, confusion_png=args.confusion_png,
                      **settings_from_args(args, EvaluateParams))
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


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..transfer import predict

    results = predict(args.run, args.images, **settings_from_args(args, PredictParams))
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


def _register_evaluate(sub, fmt) -> None:
    p = sub.add_parser(
        "evaluate", help=HELP["evaluate"],
        formatter_class=fmt,
        description="Evaluate RUN on its own validation split, or on DATA (its val/ folder if it has one, else "
        "every image). Several runs are evaluated as an ensemble (averaged probabilities).",
        epilog="examples:\n  percept evaluate runs/ants_bees\n  percept evaluate runs/a runs/b data/test --json",
    )
    p.add_argument("runs", metavar="RUN", nargs="+", help="run folder(s), optionally followed by a DATA folder")
    p.add_argument("--json", action="store_true", help="print one JSON object; `accuracy` is in [0, 1] (default: off)")
    p.add_argument("--confusion-png", type=Path, metavar="FILE.png",
                   help="also draw the confusion matrix to this PNG (default: off)")
    add_settings(p, EvaluateParams)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")
    p.set_defaults(func=_cmd_evaluate)


def _register_predict(sub, fmt) -> None:
    p = sub.add_parser("predict", help=HELP["predict"], formatter_class=fmt,
                       epilog="examples:\n  percept predict runs/ants_bees photo.jpg more_photos/ --top-k 2")
    p.add_argument("run", metavar="RUN", help="run folder")
    p.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)")
    add_settings(p, PredictParams)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")
    p.set_defaults(func=_cmd_predict)


# --- lr-find, augment-preview ---------------------------------------------------------------------------------------

def _cmd_lr_find(args: argparse.Namespace) -> int:
    from ..image import check_writable
    from ..transfer.lr_find import find_learning_rate, plot_lr_finder

    output = check_writable(args.output)
    settings = {**settings_from_args(args, FinetuneParams, only=LR_FIND_OPTIONS),
                **_augment_settings(args, FinetuneParams)}
    lr_range = {**defaults(LrFindParams), **settings_from_args(args, LrFindParams)}
    result = find_learning_rate(args.data, progress=not args.quiet, **lr_range, **settings)
    used = {**defaults(FinetuneParams), **settings}
    unfreeze = str(lr_range["unfreeze"])
    phase = "head only" if unfreeze == "0" else f"top {unfreeze} stages + head"
    plot_lr_finder(result, output, title=f"lr range test: {used['backbone']}, {phase}, {used['optimizer']}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    stop = "diverged" if result.diverged else "did not diverge"
    print(f"{len(result.lrs)} steps from {result.lrs[0]:.1e} to {result.lrs[-1]:.1e} ({stop}); "
          f"lowest loss at lr {result.min_loss_lr:.2e}")
    print(f"suggested lr: {result.suggestion:.2e} (steepest descent); plot in {output}")
    print(f"use it: percept train {args.data} -o RUN --strategy finetune --optimizer {used['optimizer']} "
          f"--lr {result.suggestion:.2g}" + (f" --unfreeze {unfreeze}" if unfreeze != "0" else ""))
    return 0


def _register_lr_find(sub, fmt) -> None:
    p = sub.add_parser(
        "lr-find", help=HELP["lr-find"],
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
    add_settings(p.add_argument_group("range"), LrFindParams)
    add_settings(p.add_argument_group("fine-tuning settings (as percept train --strategy finetune)"),
                 FinetuneParams, only=LR_FIND_OPTIONS)
    _add_augment_options(p, FinetuneParams, "augmentation")
    p.add_argument("--json", action="store_true", help="print the whole curve as JSON (default: off)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (default: off)")
    p.set_defaults(func=_cmd_lr_find)


def _cmd_augment_preview(args: argparse.Namespace) -> int:
    from ..transfer.augment import preview_augment

    settings = {**settings_from_args(args, AugmentPreviewParams), **_augment_settings(args, AugmentPreviewParams)}
    record = preview_augment(args.data, args.output, **settings)
    params = record["params"]
    print(f"wrote {args.output}: {len(record['inputs']['images'])} images x {params['per_image']} augmented samples "
          f"({params['augment']} preset)")
    return 0


def _register_augment_preview(sub, fmt) -> None:
    p = sub.add_parser("augment-preview", help=HELP["augment-preview"], formatter_class=fmt,
                       epilog="examples:\n  percept augment-preview data/hymenoptera -o grid.png --augment strong")
    p.add_argument("data", metavar="DATA", help="dataset folder (training images are sampled)")
    p.add_argument("-o", "--output", required=True, metavar="GRID.png", help="output image (required)")
    add_settings(p, AugmentPreviewParams, exclude=("augment",))
    _add_augment_options(p, AugmentPreviewParams, "augmentation")
    p.set_defaults(func=_cmd_augment_preview)


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    _register_train(sub, fmt)
    _register_evaluate(sub, fmt)
    _register_lr_find(sub, fmt)
    _register_predict(sub, fmt)
    transfer_export.register(sub)
    _register_augment_preview(sub, fmt)
