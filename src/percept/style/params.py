"""Settings of the style methods: one source of truth for defaults, help texts and records.

* :class:`StyleParams`: style transfer by optimisation (:func:`percept.stylize`) and texture synthesis
  (:func:`percept.synthesize_texture`; the fields marked ``texture=True``).
* :class:`AdainParams`: arbitrary style transfer in one forward pass (:func:`percept.stylize_adain`).
* :class:`NetworkParams`: a trained style network (:func:`percept.style.transform_stylize.stylize_with_model`).

The library functions take these fields as keyword arguments and read their defaults from here; the command line
generates its options from the same fields; every output records them (:func:`percept.params.to_record`), so
``--params-from`` can run the method again. :func:`method_settings` says which settings each method uses.
This module imports nothing heavy (no torch).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any

from ..errors import PerceptError
from ..params import check_choices, device_setting, setting
from ..record import command_line
from ..record import params_from as read_params

DEFAULT_STYLE_LAYERS = {
    "vgg19": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    "vgg16": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"],
    "alexnet": ["relu1", "relu2", "relu3", "relu4", "relu5"],
}
DEFAULT_CONTENT_LAYERS = {"vgg19": ["relu4_2"], "vgg16": ["relu3_3"], "alexnet": ["relu4"]}
PRESERVE_COLOR = ("none", "luminance", "match")
BLEND_HELP = "one weight per style when blending several (>= 0, normalised to sum 1; default: equal)"
MASK_HELP = ("styles by region: for two styles one mask (white: the first style, black: the second, grey blends); "
             "for more, one mask per style, comma-separated (mask1.png,mask2.png,...)")
MASK_BLEND = "style-blend-weights and a mask cannot be combined: the mask decides where each style goes"


def check_size(name: str, value: int) -> None:
    """One-line error for an image side outside 16 to 16384 pixels."""
    if not 16 <= value <= 16384:
        raise PerceptError(f"{name} {value} out of range; use 16 to 16384 pixels")


def check_blend_weights(weights: list[float] | None, count: int | None = None, *, what: str = "style image(s)"
                        ) -> list[float] | None:
    """``weights`` normalised to sum 1 (None when none are given); one-line errors for a wrong count (when
    ``count`` is known), a negative or non-finite weight, or a zero sum."""
    if not weights:
        return None
    values = [float(w) for w in weights]
    if count is not None and len(values) != count:
        raise PerceptError(f"style-blend-weights has {len(values)} values for {count} {what}; give one per style")
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise PerceptError(f"style-blend-weights must be >= 0 with a positive sum, got {values}")
    return [w / sum(values) for w in values]


@dataclass
class StyleParams:
    """Every setting of style transfer by optimisation (Gatys et al.) and of texture synthesis."""

    size: int = setting(512, "output size in pixels (longest side); textures are SIZE x SIZE", texture=True)
    iterations: int = setting(200, "optimisation steps per scale (one forward and backward pass each)",
                              texture=True)
    content_weight: float = setting(1.0, "weight of the content loss", texture=False)
    style_weight: float = setting(100.0, "weight of the style loss (losses are relative errors, see percept.losses)",
                                  texture=True)
    tv_weight: float = setting(10.0, "weight of the total-variation smoothness loss", texture=True)
    content_layers: list[str] = setting([], "content layers (default: relu4_2 for vgg19)", texture=False,
                                        metavar="LAYER,...")
    content_layer_weights: list[float] = setting([], "relative weight of each content layer (default: equal)",
                                                 texture=False, metavar="W,...")
    style_layers: list[str] = setting([], "style layers (default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 for "
                                      "vgg19)", texture=True, metavar="LAYER,...")
    style_layer_weights: list[float] = setting([], "relative weight of each style layer (default: equal)",
                                               texture=True, metavar="W,...")
    style_blend_weights: list[float] = setting([], BLEND_HELP, texture=True, metavar="W,...")
    mask: str = setting("", MASK_HELP, texture=False, metavar="MASK.png[,...]", shown="off")
    style_scale: float = setting(1.0, "style image size relative to the output (textures: to the source's own "
                                 "size)", texture=True)
    init: str = setting("content", "start image: content, noise, style or an image FILE", texture=False,
                        metavar="content|noise|style|FILE")
    optimizer: str = setting("lbfgs", "optimiser: lbfgs (best quality) or adam (less memory)", texture=True,
                             choices=("lbfgs", "adam"), metavar="lbfgs|adam")
    lr: float = setting(0.0, "learning rate (0 = default: 1.0 for lbfgs, 0.02 for adam)", texture=True)
    scales: str = setting("auto", "coarse-to-fine stages below --size, e.g. 256,512; auto = halve down to 256 "
                          "when size > 512; none = single scale", texture=True, metavar="auto|none|N,...")
    preserve_color: str = setting("none", "keep the content's colours: luminance (transfer luminance only) or "
                                  "match (recolour the style to the content first)", texture=False,
                                  choices=PRESERVE_COLOR, metavar="none|luminance|match")
    network: str = setting("vgg19", "feature network: vgg19, vgg16 or alexnet", texture=True)
    weights: str = setting("", "weights name (see `percept models`) or a state-dict FILE; empty = network default",
                           texture=True)
    preprocessing: str = setting("imagenet", "input normalisation for a weights FILE: imagenet or caffe",
                                 texture=True)
    pooling: str = setting("max", "pooling in the network: max or avg", texture=True)
    seed: int = setting(0, "random seed (noise init, determinism)", texture=True)
    device: str = device_setting(texture=True)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a one-line :class:`PerceptError` for any out-of-range or inconsistent setting."""
        check_size("size", self.size)
        if self.iterations < 0:
            raise PerceptError(f"iterations must be >= 0, got {self.iterations}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise PerceptError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.style_scale <= 0:
            raise PerceptError(f"style-scale must be > 0, got {self.style_scale}")
        check_choices(self)
        if self.content_layer_weights and len(self.content_layer_weights) != len(self.resolved_content_layers()):
            raise PerceptError("content-layer-weights needs one weight per content layer")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.resolved_style_layers()):
            raise PerceptError("style-layer-weights needs one weight per style layer")
        check_blend_weights(self.style_blend_weights)
        if self.has_mask and self.style_blend_weights:
            raise PerceptError(MASK_BLEND)
        self.stage_sizes()

    @property
    def has_mask(self) -> bool:
        return self.mask is not None and not (isinstance(self.mask, (str, list, tuple)) and len(self.mask) == 0)

    def resolved_content_layers(self) -> list[str]:
        return self.content_layers or DEFAULT_CONTENT_LAYERS.get(self.network, [])

    def resolved_style_layers(self) -> list[str]:
        return self.style_layers or DEFAULT_STYLE_LAYERS.get(self.network, [])

    def resolved_lr(self) -> float:
        return self.lr or (1.0 if self.optimizer == "lbfgs" else 0.02)

    def stage_sizes(self) -> list[int]:
        """Longest side of each coarse-to-fine stage, ending with ``size``."""
        spec = self.scales.strip().lower()
        if spec == "auto":
            stages = [self.size]
            while self.size > 512 and stages[0] // 2 >= 256:
                stages.insert(0, stages[0] // 2)
            return stages
        if spec in ("none", ""):
            return [self.size]
        try:
            coarse = [int(s) for s in spec.split(",") if s.strip()]
        except ValueError:
            raise PerceptError(f"scales {self.scales!r} must be auto, none or sizes like 256,512") from None
        if any(s < 16 or s > self.size for s in coarse) or coarse != sorted(coarse):
            raise PerceptError(f"scales {self.scales!r} must increase, be >= 16 and be <= size {self.size}")
        return sorted(set(coarse) | {self.size})


@dataclass
class AdainParams:
    """Every setting of AdaIN stylisation (Huang & Belongie 2017): one forward pass, any style."""

    alpha: float = setting(1.0, "style strength: 0 = the content through the network, 1 = full style")
    size: int = setting(512, "output size in pixels (longest side; any size, padded internally to a multiple of 8)")
    style_scale: float = setting(1.0, "style image size relative to the output; larger means smaller strokes")
    style_blend_weights: list[float] = setting([], BLEND_HELP, metavar="W,...")
    preserve_color: str = setting("none", "keep the content's colours: luminance (stylise the luminance only) or "
                                  "match (recolour the styles to the content first)", choices=PRESERVE_COLOR,
                                  metavar="none|luminance|match")
    mask: str = setting("", MASK_HELP, metavar="MASK.png[,...]", shown="off")
    decoder: str = setting("", "AdaIN decoder: a name from `percept models` or a file from `percept train-adain`",
                           metavar="NAME|FILE", shown="the shipped decoder")
    device: str = device_setting()

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise PerceptError(f"alpha must be between 0 (content) and 1 (full style), got {self.alpha}")
        check_size("size", self.size)
        if self.style_scale <= 0:
            raise PerceptError(f"style-scale must be > 0, got {self.style_scale}")
        check_size("style size", self.style_size)
        check_choices(self)
        check_blend_weights(self.style_blend_weights)
        if self.has_mask and self.style_blend_weights:
            raise PerceptError(MASK_BLEND)

    @property
    def style_size(self) -> int:
        """Longest side the style images are resized to."""
        return max(16, round(self.size * self.style_scale))

    @property
    def has_mask(self) -> bool:
        return self.mask is not None and not (isinstance(self.mask, (str, list, tuple)) and len(self.mask) == 0)


@dataclass
class NetworkParams:
    """Every setting of stylisation with a trained style network (Johnson et al., Dumoulin et al.)."""

    model: str = setting("", "a network from `percept train-style` (MODEL.pt or its training folder) or "
                         "multistyle26 (26 trained styles, choose with --style-index): one forward pass per image, "
                         "no STYLE argument", metavar="MODEL.pt", shown="off")
    style_index: int | None = setting(None, "which style of a multi-style network, 0-based (see `percept info "
                                      "MODEL.pt`)", metavar="K", shown="the only style of a one-style network")
    style_blend_weights: list[float] = setting([], "blend the styles of a multi-style network with these weights "
                                               "(>= 0, normalised to sum 1)", metavar="W,...")
    size: int | None = setting(None, "resize each image so its longest side is SIZE", shown="keep its size")
    tile: int | None = setting(None, "stylise in overlapping N-pixel tiles, for images too large for memory (e.g. "
                               "1024); the tiles share whole-image normalisation statistics, so there are no "
                               "seams", metavar="N", shown="off")
    overlap: int = setting(96, "pixels shared by neighbouring tiles")
    exact_statistics: bool = setting(False, "with tiles: compute the normalisation statistics on the "
                                     "full-resolution image (about 7x the work; the output then equals the untiled "
                                     "one) instead of a downscaled copy")
    stats_size: int | None = setting(None, "with tiles: longest side of the downscaled copy the statistics come "
                                     "from", metavar="N", shown="the tile size")
    batch_size: int = setting(4, "images of equal size stylised together")
    device: str = device_setting()

    def __post_init__(self) -> None:
        if self.style_index is not None and self.style_blend_weights:
            raise PerceptError("give a style index or style-blend-weights, not both")
        if self.batch_size < 1:
            raise PerceptError(f"batch size must be >= 1, got {self.batch_size}")
        if self.size is not None:
            check_size("size", self.size)
        check_blend_weights(self.style_blend_weights)


#: The settings class of each style method (what an output's record names as its ``method``).
METHODS: dict[str, type] = {"optimize": StyleParams, "texture": StyleParams, "adain": AdainParams,
                            "network": NetworkParams}


def method_settings(method: str) -> list[str]:
    """The names of the settings ``method`` uses, in their declaration order (texture: those marked
    ``texture=True``)."""
    if method not in METHODS:
        raise PerceptError(f"unknown style method {method!r}; use {', '.join(METHODS)}")
    return [f.name for f in fields(METHODS[method]) if method != "texture" or f.metadata.get("texture")]


def unused_settings(method: str, names: Any) -> list[str]:
    """Those of ``names`` that ``method`` does not use (sorted): the CLI refuses them in one line."""
    return sorted(set(names) - set(method_settings(method)))


def resolve_settings(command: str, explicit: dict[str, Any], *, method: str | None = None,
                     params_from: str | os.PathLike | None = None) -> tuple[str, dict[str, Any]]:
    """The method a ``stylize`` or ``texture`` command runs and its settings: ``explicit`` ones on top of those
    recorded in ``params_from`` (a percept output).

    The record's method decides what runs; an explicit ``method`` (or ``model``, which means ``network``) must
    agree with it. Without a record, ``method`` (default ``optimize``) runs. One-line errors for a record made by
    another method and for an explicit setting the method does not use.
    """
    if command == "texture":
        method = "texture"
    elif method is None and explicit.get("model"):
        method = "network"
    elif method == "network" and not explicit.get("model") and params_from is None:
        raise PerceptError("--method network needs a trained network: add --model MODEL.pt")
    allowed = [method] if method else [m for m in METHODS if m != "texture"]
    settings: dict[str, Any] = {}
    if params_from is not None:
        method, recorded = read_params(params_from, allowed)
        settings = {k: v for k, v in recorded.items() if k in method_settings(method)}
    method = method or "optimize"
    unused = unused_settings(method, explicit)
    if unused:
        flags = ", ".join("--" + name.replace("_", "-") for name in unused)
        raise PerceptError(f"{'--method ' + method if command == 'stylize' else command} does not use {flags}; "
                           "drop it" + ("s" if len(unused) > 1 else ""))
    merged = {**settings, **explicit}
    if method == "network":
        _check_tile_options(explicit, merged)
    return method, merged


#: Settings of a trained network that only tiled stylisation reads.
TILE_ONLY = ("overlap", "exact_statistics", "stats_size")


def _check_tile_options(explicit: dict[str, Any], merged: dict[str, Any]) -> None:
    """One-line errors for tile options without ``--tile`` and ``--batch-size`` with it (tiled images are
    stylised one at a time)."""
    flags = ", ".join("--" + n.replace("_", "-") for n in TILE_ONLY if n in explicit)
    if merged.get("tile") is None and flags:
        raise PerceptError(f"--method network does not use {flags} without --tile; add --tile N or drop "
                           + ("them" if "," in flags else "it"))
    if merged.get("tile") is not None and "batch_size" in explicit:
        raise PerceptError("--method network does not use --batch-size with --tile (tiled images are stylised one "
                           "at a time); drop it")


def reproducing_command(record: dict[str, Any], output: str | os.PathLike) -> str:
    """The ``percept`` command that makes ``record``'s output again as ``output``, every setting spelled out
    (inputs held in memory, not in files, appear as CONTENT, STYLE, SOURCE or MODEL.pt)."""
    method = record.get("method")
    if method not in METHODS:
        raise PerceptError(f"no command reproduces a {method!r} output")
    inputs = record.get("inputs") or {}

    def path(entry: dict[str, Any] | None, placeholder: str) -> str:
        return (entry or {}).get("path") or placeholder

    if method == "texture":
        words = ["texture", path(inputs.get("source"), "SOURCE")]
    else:
        styles = [path(s, "STYLE") for s in inputs.get("styles", [])]
        words = ["stylize", path(inputs.get("content"), "CONTENT"), *styles]
    words += ["-o", str(output)] + (["--method", "adain"] if method == "adain" else [])
    params = {k: record["params"][k] for k in method_settings(method) if k in record["params"]}
    if method == "network" and not params.get("model"):
        params["model"] = "MODEL.pt"
    if method in ("adain", "optimize") and not params.get("mask") and "mask" in inputs:
        params["mask"] = "MASK.png"
    return command_line(words, params)
