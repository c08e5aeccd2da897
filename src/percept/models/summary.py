"""What ``percept models`` prints: the registry grouped by kind, with availability on this machine, or one model.

:func:`describe` returns text, :func:`catalog_json` the same facts as JSON-ready data; nothing is loaded or
downloaded except when describing a model file (a style network's metadata is read from it).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

from ..params import from_settings
from .feature_net import ARCHITECTURES, layer_names
from .names import FEATURE_NET_LAYERS
from .params import DescribeParams
from .registry import ModelEntry, entry_for_path, get_entry, list_entries
from .weights import Weights, looks_like_path

_WIDTH = 100
#: The heading of each kind, and the option that chooses such a model on the command line.
HEADINGS = {
    "features": "feature networks (percept stylize --network NAME --weights NAME|FILE.pth)",
    "classifier": "classifiers (percept explain ... --model NAME|RUN_FOLDER)",
    "backbone": "transfer-learning backbones (percept train --backbone NAME)",
    "decoder": "decoders for AdaIN (percept stylize --method adain --decoder NAME|FILE)",
    "style-net": "style networks (percept stylize --model NAME|FILE.pt)",
    "metric": "perceptual metrics (percept compare A B --metric lpips,dists --lpips-net alex|vgg)",
    "upscaler": "super-resolution networks (percept upscale IN -o OUT --model NAME|SR.pt)",
    "gaze": "where people look (percept gaze IMAGE -o MAP.png --model NAME|GAZE.pt)",
}


def _fill(text: str, indent: int, hang: int | None = None) -> str:
    return textwrap.fill(text, _WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (hang or indent))


def _weights_lines(entry: ModelEntry, width: int) -> list[str]:
    lines = []
    for i, w in enumerate(entry.weights):
        mark = " (default)" if i == 0 else ""
        lines.append(f"  {w.id:<{width}}{w.preprocessing:<9} {w.availability()}{mark}")
        lines.append(_fill(w.meta.get("description", ""), 4))
        lines.append(_fill("sources, in order: " + "; ".join(s.describe() for s in w.sources), 4, 6))
    return lines


def _entry_text(entry: ModelEntry) -> list[str]:
    """One entry as in the full listing (after its kind's heading)."""
    if entry.kind == "features":
        width = max(len(w.id) for w in entry.weights) + 2
        return [entry.name, *_weights_lines(entry, width), _fill("layers: " + " ".join(layer_names(entry.name)), 2, 4)]
    if entry.kind == "decoder":
        return [line for w in entry.weights for line in (f"  {w.id:<34}{w.availability()}",
                                                        _fill(w.meta.get("description", ""), 4))]
    if entry.file:
        return [f"  {entry.name:<34}{entry.file}: give its path"]
    if entry.kind == "backbone":
        label = f"{entry.name} (conv features @ {FEATURE_NET_LAYERS[entry.name]})" \
            if entry.name in FEATURE_NET_LAYERS else entry.name
        return [f"  {label:<34}{entry.availability()}"]
    return [f"  {w.id:<34}{w.preprocessing:<9} {w.availability()}" for w in entry.weights]


def _listing(kind: str | None) -> str:
    blocks = []
    for heading_kind, heading in HEADINGS.items():
        entries = list_entries(heading_kind) if kind in (None, heading_kind) else []
        if not entries:
            continue
        lines = [heading]
        for entry in entries:
            lines += _entry_text(entry)
            if entry.kind == "features":
                lines.append("")
        blocks.append("\n".join(lines).rstrip())
    return "\n\n".join(blocks)


def _one(entry: ModelEntry) -> str:
    """Everything about one entry: its weights (descriptions, sources) and, for a feature network, its layers."""
    lines = [f"{entry.label}: {entry.description}", f"builder: {entry.builder}"]
    if entry.options or entry.weight_options:
        lines.append("options: " + ", ".join((*entry.options, *entry.weight_options)))
    if entry.file:
        lines.append(f"a path: {entry.file}")
    if entry.weights:
        width = max(len(w.id) for w in entry.weights) + 2
        lines += ["weights:", *_weights_lines(entry, width)]
        if entry.user_weights is not None:
            lines.append("  or a weights file (FILE.pth)")
    if entry.kind == "features":
        lines.append(_fill("layers: " + " ".join(layer_names(entry.name)), 0, 2))
    return "\n".join(lines)


def _style_net_text(path: Path) -> str:
    """A trained style network: its styles, its training and its loss network, and how to use it."""
    from ..style.transform_files import load_transform_net

    net = load_transform_net(path)
    meta = net.metadata
    t, loss = meta.get("training", {}), meta.get("loss_network", {})
    lines = [f"percept transform network (format {meta.get('format_version')}, percept {meta.get('percept_version')}): "
             f"{net.num_styles} style(s), channels {list(net.channels)}"]
    for i, style in enumerate(meta.get("styles", [])):
        digest = str(style.get("sha256"))[:12]
        lines.append(f"  style {i}: {style.get('name')} ({style.get('file')}, sha256 {digest}...)")
    if t:
        lines.append(f"trained {t.get('steps')} steps of {t.get('batch_size')} crops of {t.get('size')} px from "
                     f"{t.get('content_images')} photos; lr {t.get('lr')}; weights content {t.get('content_weight')}, "
                     f"style {t.get('style_weight')}, tv {t.get('tv_weight')}; amp {t.get('amp')}")
        if t.get("final_losses"):
            lines.append("final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in t["final_losses"].items()))
    if loss:
        lines.append(f"loss network: {loss.get('weights_id')}; content {loss.get('content_layers')}, style "
                     f"{loss.get('style_layers')}")
    pick = "" if net.num_styles == 1 else " --style-index K  (or --style-blend-weights W1,W2,...)"
    lines.append(f"use it: percept stylize PHOTO.jpg -o OUT.png --model {path}{pick}")
    return "\n".join(lines)


def _file_text(path: Path, kind: str | None) -> str:
    entry = entry_for_path(path, kind)
    if entry.kind == "style-net":
        return _style_net_text(path)
    if entry.name == "train_run":
        record = json.loads((path / "run.json").read_text())
        classes = record.get("classes", [])
        return (f"{path}: a {record.get('strategy')} run of percept train on {record.get('backbone')}; "
                f"{len(classes)} classes: {', '.join(classes)}\nuse it: percept explain ... --model {path}")
    if entry.file:  # a model file of another capability (e.g. an upscaler): loading it checks it
        entry.load_builder()(path, device="cpu")
        return f"{path}: {entry.label}, {entry.description}"
    weights = entry.get_weights(path)
    return f"{path}: {entry.label}; {weights.availability()}"


def _subject(name: str | os.PathLike, kind: str | None) -> list[ModelEntry] | Path:
    """The registered entries called ``name`` (of ``kind``), or the path of a model file or folder."""
    text = str(name)
    matches = [e for e in list_entries(kind) if e.name == text]
    if not matches and (isinstance(name, os.PathLike) or looks_like_path(text) or Path(text).exists()):
        return Path(text).expanduser()
    return matches or [get_entry(text, kind)]


def describe(name: str | os.PathLike | None = None, **settings: Any) -> str:
    """The text ``percept models`` prints; ``settings``: those of :class:`~percept.models.params.DescribeParams`.

    ``name=None``: every registered model grouped by kind (only ``kind``'s when given) with the availability of its
    weights here. A registered name: that entry (of ``kind``, else every kind it is registered under). A path: what
    the file or folder is (a style network's styles and training, a run's classes).
    """
    kind = from_settings(DescribeParams, settings).kind
    if name is None:
        return _listing(kind)
    subject = _subject(name, kind)
    if isinstance(subject, Path):
        return _file_text(subject, kind)
    return "\n\n".join(_one(e) for e in subject)


def _weights_json(w: Weights) -> dict[str, Any]:
    return {"id": w.id, "preprocessing": w.preprocessing, "status": w.availability(),
            "sources": [s.describe() for s in w.sources], "description": w.meta.get("description", "")}


def _entry_json(e: ModelEntry) -> dict[str, Any]:
    return {"name": e.name, "kind": e.kind, "description": e.description, "builder": e.builder,
            "options": [*e.options, *e.weight_options], "path": e.file or None,
            "weights": [_weights_json(w) for w in e.weights],
            **({"layers": layer_names(e.name)} if e.kind == "features" else {})}


def _file_json(path: Path, kind: str | None) -> dict[str, Any]:
    entry = entry_for_path(path, kind)
    if entry.kind == "style-net":
        from ..style.transform_files import load_transform_net

        return load_transform_net(path).metadata
    if entry.name == "train_run":
        return json.loads((path / "run.json").read_text())
    if entry.file:  # a model file of another capability: what it records
        return dict(getattr(entry.load_builder()(path, device="cpu"), "metadata", {}))
    return _weights_json(entry.get_weights(path))


def catalog_json(name: str | os.PathLike | None = None, **settings: Any) -> dict[str, Any]:
    """What :func:`describe` says, as JSON-ready data. Without a name: ``models`` (every entry of ``kind`` with its
    weights and their availability) and ``weights`` (the feature networks' weights), ``layers``, ``decoders``.
    With a registered name: ``models``, its entries. With a path: what the file records."""
    kind = from_settings(DescribeParams, settings).kind
    if name is not None:
        subject = _subject(name, kind)
        return _file_json(subject, kind) if isinstance(subject, Path) else {"models": [_entry_json(e) for e in subject]}
    features = [{"network": e.name, "weights": w.name, "default": i == 0, "preprocessing": w.preprocessing,
                 "status": w.availability(), "sources": [s.describe() for s in w.sources],
                 "description": w.meta.get("description", "")}
                for e in list_entries("features") for i, w in enumerate(e.weights)]
    decoders = [{"decoder": w.arch, "weights": w.name, "status": w.availability(),
                 "sources": [s.describe() for s in w.sources]} for e in list_entries("decoder") for w in e.weights]
    return {"models": [_entry_json(e) for e in list_entries(kind)], "weights": features,
            "layers": {a: layer_names(a) for a in ARCHITECTURES}, "decoders": decoders}
