"""Parameters of optimisation-based style transfer and texture synthesis: one source of truth.

:class:`StyleParams` holds every setting with its default and help text. :func:`percept.stylize` and
:func:`percept.synthesize_texture` take them as keyword arguments, the CLI generates its options from the
same fields, and every output records them so a result can be reproduced exactly.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from ..errors import PerceptError

DEFAULT_STYLE_LAYERS = {
    "vgg19": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    "vgg16": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"],
    "alexnet": ["relu1", "relu2", "relu3", "relu4", "relu5"],
}
DEFAULT_CONTENT_LAYERS = {"vgg19": ["relu4_2"], "vgg16": ["relu3_3"], "alexnet": ["relu4"]}


def _opt(default: Any, help: str, *, texture: bool = True, metavar: str | None = None) -> Any:
    """A dataclass field carrying its CLI help; ``texture`` marks settings that also apply to textures."""
    meta = {"help": help, "texture": texture, "metavar": metavar}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class StyleParams:
    """Every setting of style transfer by optimisation (Gatys et al.) and of texture synthesis."""

    size: int = _opt(512, "output size in pixels (longest side); textures are SIZE x SIZE")
    iterations: int = _opt(200, "optimisation steps per scale (one forward and backward pass each)")
    content_weight: float = _opt(1.0, "weight of the content loss", texture=False)
    style_weight: float = _opt(100.0, "weight of the style loss (losses are relative errors, see percept.losses)")
    tv_weight: float = _opt(10.0, "weight of the total-variation smoothness loss")
    content_layers: list[str] = _opt(
        [], "content layers (default: relu4_2 for vgg19)", texture=False, metavar="LAYER,..."
    )
    content_layer_weights: list[float] = _opt(
        [], "relative weight of each content layer (default: equal)", texture=False, metavar="W,..."
    )
    style_layers: list[str] = _opt([], "style layers (default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 for vgg19)",
                                   metavar="LAYER,...")
    style_layer_weights: list[float] = _opt([], "relative weight of each style layer (default: equal)", metavar="W,...")
    style_blend_weights: list[float] = _opt(
        [], "one weight per style image when blending several (default: equal)", metavar="W,..."
    )
    style_scale: float = _opt(1.0, "style image size relative to the output (textures: to the source's own size)")
    init: str = _opt("content", "start image: content, noise, style or an image FILE", texture=False,
                     metavar="content|noise|style|FILE")
    optimizer: str = _opt("lbfgs", "optimiser: lbfgs (best quality) or adam (less memory)", metavar="lbfgs|adam")
    lr: float = _opt(0.0, "learning rate (0 = default: 1.0 for lbfgs, 0.02 for adam)")
    scales: str = _opt("auto", "coarse-to-fine stages below --size, e.g. 256,512; auto = halve down to 256 when "
                       "size > 512; none = single scale", metavar="auto|none|N,...")
    preserve_color: str = _opt("none", "keep the content's colours: luminance (transfer luminance only) or match "
                               "(recolour the style to the content first)", texture=False,
                               metavar="none|luminance|match")
    network: str = _opt("vgg19", "feature network: vgg19, vgg16 or alexnet")
    weights: str = _opt("", "weights name (see `percept models`) or a state-dict FILE; empty = network default")
    preprocessing: str = _opt("imagenet", "input normalisation for a weights FILE: imagenet or caffe")
    pooling: str = _opt("max", "pooling in the network: max or avg")
    seed: int = _opt(0, "random seed (noise init, determinism)")
    device: str = _opt("auto", "device: auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a one-line :class:`PerceptError` for any out-of-range or inconsistent setting."""
        if not 16 <= self.size <= 16384:
            raise PerceptError(f"size {self.size} out of range; use 16 to 16384 pixels")
        if self.iterations < 0:
            raise PerceptError(f"iterations must be >= 0, got {self.iterations}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise PerceptError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.style_scale <= 0:
            raise PerceptError(f"style-scale must be > 0, got {self.style_scale}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise PerceptError(f"unknown optimizer {self.optimizer!r}; use lbfgs or adam")
        if self.preserve_color not in ("none", "luminance", "match"):
            raise PerceptError(f"unknown preserve-color {self.preserve_color!r}; use none, luminance or match")
        if self.content_layer_weights and len(self.content_layer_weights) != len(self.resolved_content_layers()):
            raise PerceptError("content-layer-weights needs one weight per content layer")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.resolved_style_layers()):
            raise PerceptError("style-layer-weights needs one weight per style layer")
        if any(w < 0 for w in self.style_blend_weights) or (self.style_blend_weights and sum(self.style_blend_weights) <= 0):
            raise PerceptError("style-blend-weights must be >= 0 with a positive sum")
        self.stage_sizes()

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def param_fields(texture: bool = False):
    """The dataclass fields that the CLI exposes (all, or those that apply to texture synthesis)."""
    return [f for f in fields(StyleParams) if not texture or f.metadata["texture"]]


def field_default(f) -> Any:
    return f.default_factory() if f.default is MISSING else f.default
