"""Settings of every ``explain`` method: one dataclass each, every default, help text and choice list written once.

The library functions (:func:`~percept.understand.saliency.explain_saliency`, ...) take these settings as keyword
arguments, the command line generates its options from the same fields, and every figure's record stores them
(so ``--params-from`` reproduces it). Inputs (images, folders) and run-time switches that do not change the result
(progress bars, the feature cache folder) are arguments of the functions, not settings.

A setting marked ``methods=(...)`` is used by those variants only (saliency methods, attacks); giving it another
value for another variant is an error, never silently ignored. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import PerceptError
from ..params import check_choices, default_of, device_setting, from_settings, setting

#: Layers ``explain invert`` reconstructs from when none are given, shallow to deep, by model.
INVERT_LAYERS: dict[str, list[str]] = {
    "vgg19": ["relu1_2", "relu2_2", "relu3_4", "relu4_4"],
    "vgg16": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"],
    "alexnet": ["relu1", "relu2", "relu3", "relu5"],
    "efficientnet_lite0": ["_blocks.0", "_blocks.2", "_blocks.4", "_blocks.10"],
    "efficientnet_lite2": ["_blocks.0", "_blocks.2", "_blocks.4", "_blocks.10"],
}
#: Layer ``explain dream`` amplifies when none is given, by model.
DREAM_LAYER: dict[str, str] = {"vgg19": "relu3_3", "vgg16": "relu3_3", "alexnet": "relu3",
                               "efficientnet_lite0": "_blocks.10", "efficientnet_lite2": "_blocks.10"}

SALIENCY_METHODS = ("gradient", "smoothgrad", "guided", "gradcam", "occlusion")
OCCLUSION_BASELINES = ("zero", "mean", "blur")
ATTACKS = ("pgd", "fgsm")
METRICS = ("cosine", "euclidean")
EMBEDDINGS = ("pca", "tsne", "both")
OPTIMIZERS = ("lbfgs", "adam")

CLASSIFIER = "efficientnet_lite0"
FEATURE_NET = "vgg19"
POOLED = "pooled penultimate features"


def _model(default: str = CLASSIFIER) -> Any:
    return setting(default, "network to explain (`percept models` lists them)", metavar="MODEL")


def _device() -> Any:
    return device_setting()


def _seed(what: str) -> Any:
    return setting(0, f"{what} seed")


def _feature_layer() -> Any:
    return setting("", "layer whose output, averaged over space, is the feature vector (see `percept explain "
                   f"layers`); empty = the {POOLED}, as percept train uses", metavar="LAYER")


def _batch(default: int) -> Any:
    return setting(default, "images per forward pass; bounds memory", metavar="N")


def _default_layers(table: dict[str, Any]) -> str:
    """``relu3_3 for vgg19, ...`` for help texts; models that share a value are named together."""
    by_value: dict[str, list[str]] = {}
    for model, value in table.items():
        by_value.setdefault(",".join(value) if isinstance(value, list) else value, []).append(model)
    return ", ".join(f"{value} for {'/'.join(models)}" for value, models in by_value.items())


@dataclass
class LayersParams:
    """``explain layers``: the layer names of a network with their output shapes."""

    model: str = _model()
    device: str = _device()


@dataclass
class FiltersParams:
    """``explain filters``: the first layer's filters as an image grid."""

    model: str = _model()
    columns: int = setting(8, "filters per row")
    device: str = _device()

    def __post_init__(self) -> None:
        _at_least(self, 1, "columns")


@dataclass
class ActivationsParams:
    """``explain activations``: the feature maps of one layer for an image, strongest channels first."""

    model: str = _model()
    layer: str = setting("", "layer name (see `percept explain layers`); required", metavar="LAYER")
    channels: int = setting(16, "how many channels to show")
    size: int = setting(224, "longest side of the image fed in, px")
    device: str = _device()

    def __post_init__(self) -> None:
        _at_least(self, 1, "channels")
        _at_least(self, 8, "size")


@dataclass
class SaliencyParams:
    """``explain saliency``: which pixels the decision depends on (the image and a heat-map overlay)."""

    model: str = _model()
    method: str = setting("gradcam", "saliency method", choices=SALIENCY_METHODS)
    target: str = setting("", "class to explain, a name or index; empty = the top class", metavar="NAME|INDEX",
                          flag="--class")
    whole: bool = setting(False, "the whole image, longest side at the classifier's resize size, instead of its "
                          "centre crop")
    layer: str = setting("", "gradcam: layer; empty = the last feature map", metavar="LAYER", methods=("gradcam",))
    window: int = setting(0, "occlusion: patch size, px; 0 = a third of the image's shorter side",
                          methods=("occlusion",))
    stride: int = setting(0, "occlusion: step between patches, px; 0 = a quarter of the window",
                          methods=("occlusion",))
    baseline: str = setting("zero", "occlusion: what replaces the patch: black, the image's mean colour or its "
                            "blurred self", choices=OCCLUSION_BASELINES, methods=("occlusion",))
    samples: int = setting(32, "smoothgrad: noisy copies", methods=("smoothgrad",))
    noise: float = setting(0.15, "smoothgrad: noise std", methods=("smoothgrad",))
    batch_size: int = setting(0, "occlusion/smoothgrad: images per forward pass; 0 = 32 for occlusion, 16 for "
                              "smoothgrad", metavar="N", methods=("occlusion", "smoothgrad"))
    seed: int = setting(0, "smoothgrad: noise seed", methods=("smoothgrad",))
    device: str = _device()

    def __post_init__(self) -> None:
        check_choices(self)
        _only_for(self, self.method, "saliency method")
        _at_least(self, 0, "window", "stride", "batch_size")
        _at_least(self, 1, "samples")

    def method_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~percept.understand.saliency.saliency` for :attr:`method` (settings
        left at 0/empty take the method's own default)."""
        names = [f.name for f in fields(self) if self.method in f.metadata.get("methods", ())]
        return {name: getattr(self, name) for name in names if getattr(self, name) not in (0, "")
                or name == "seed"}


@dataclass
class AttackParams:
    """``explain attack``: an adversarial example within an L-inf budget (original | perturbation | adversarial)."""

    model: str = _model()
    attack: str = setting("pgd", "attack method", choices=ATTACKS)
    target: str = setting("", "class to turn the image into, a name or index; empty = untargeted (any other "
                          "class)", metavar="NAME|INDEX")
    epsilon: float = setting(4 / 255, "L-inf budget as a fraction of the [0, 1] range: 4/255 = every pixel "
                             "changes by at most four 8-bit levels", metavar="FRACTION", shown="4/255")
    steps: int = setting(20, "pgd: gradient steps", methods=("pgd",))
    device: str = _device()

    def __post_init__(self) -> None:
        check_choices(self)
        _only_for(self, self.attack, "attack")
        if not 0 < self.epsilon <= 1:
            raise PerceptError(f"epsilon must be in (0, 1] (a fraction of the [0, 1] range; 4/255 = 0.0157), got "
                               f"{self.epsilon}")


@dataclass
class NeighboursParams:
    """``explain neighbours``: the images of a folder nearest to query images in a layer's feature space."""

    model: str = _model()
    k: int = setting(5, "neighbours per query", flag="-k")
    layer: str = _feature_layer()
    metric: str = setting("cosine", "distance between feature vectors", choices=METRICS)
    cell: int = setting(112, "thumbnail side in the grid, px")
    batch_size: int = _batch(32)
    device: str = _device()

    def __post_init__(self) -> None:
        check_choices(self)
        _at_least(self, 1, "k", "batch_size")
        _at_least(self, 8, "cell")


@dataclass
class EmbeddingParams:
    """``explain embedding``: a folder's images in 2-D (PCA, t-SNE) by a layer's features, coloured by class."""

    model: str = _model()
    method: str = setting("both", "projection(s), side by side", choices=EMBEDDINGS)
    layer: str = _feature_layer()
    perplexity: float = setting(0.0, "t-SNE perplexity; 0 = min(30, (images - 1) / 3)")
    seed: int = _seed("t-SNE and thumbnail-choice")
    thumbnails: int = setting(40, "images drawn at their points per panel")
    batch_size: int = _batch(32)
    device: str = _device()

    def __post_init__(self) -> None:
        check_choices(self)
        _at_least(self, 0, "perplexity", "thumbnails")
        _at_least(self, 1, "batch_size")

    def methods(self) -> tuple[str, ...]:
        return ("pca", "tsne") if self.method == "both" else (self.method,)


@dataclass
class TopPatchesParams:
    """``explain top-patches``: the image patches of a folder that activate one channel of a layer most."""

    model: str = _model()
    layer: str = setting("", "layer with a feature map (see `percept explain layers`); required", metavar="LAYER")
    channel: int | None = setting(None, "channel of the layer, from 0; required", metavar="N")
    k: int = setting(16, "patches to show", flag="-k")
    per_image: int = setting(1, "most patches taken from one image", metavar="N")
    patch: int = setting(0, "patch side, px; 0 = the unit's receptive field, at most the network's crop")
    columns: int = setting(8, "patches per row")
    cell: int = setting(96, "side of each patch in the grid, px")
    batch_size: int = _batch(16)
    device: str = _device()

    def __post_init__(self) -> None:
        _at_least(self, 1, "k", "per_image", "columns", "batch_size")
        _at_least(self, 0, "patch")
        _at_least(self, 8, "cell")


@dataclass
class ClassImageParams:
    """``explain class-image``: the image a classifier finds most typical of a class (several side by side)."""

    model: str = _model()
    target: list[str] = setting([], "class(es) to draw, names or indices, comma-separated; required",
                                metavar="NAME|INDEX[,...]", flag="--class")
    size: int = setting(0, "image side, px; 0 = the classifier's crop (224 for efficientnet_lite0)")
    steps: int = setting(200, "gradient-ascent steps")
    lr: float = setting(0.02, "mean change of a pixel per step, in [0, 1] units")
    decay: float = setting(0.005, "L2 decay towards grey per step")
    jitter: int = setting(16, "largest random shift per step, px")
    blur_every: int = setting(4, "blur every N steps; 0 = never", metavar="N")
    blur_sigma: float = setting(1.0, "blur std, px")
    seed: int = _seed("start-noise and jitter")
    device: str = _device()

    def __post_init__(self) -> None:
        self.target = _names(self.target)


@dataclass
class InvertParams:
    """``explain invert``: an image reconstructed from one layer's features, for several layers."""

    model: str = _model(FEATURE_NET)
    layers: list[str] = setting([], f"layers to invert from; empty = {_default_layers(INVERT_LAYERS)}; required "
                                "for other models", metavar="LAYER,...")
    size: int = setting(128, "longest side of the image, px")
    steps: int = setting(200, "loss evaluations (lbfgs) or steps (adam) per layer")
    optimizer: str = setting("lbfgs", "optimizer", choices=OPTIMIZERS)
    tv_weight: float = setting(0.5, "total-variation prior weight")
    alpha_weight: float = setting(0.0, "alpha-norm (alpha 6) prior weight; 0 = off")
    seed: int = _seed("start-noise")
    device: str = _device()

    def __post_init__(self) -> None:
        self.layers = _names(self.layers)
        check_choices(self)
        _at_least(self, 8, "size")

    def resolved_layers(self) -> list[str]:
        """:attr:`layers`, or the model's default layers (a one-line error for a model without defaults)."""
        return list(self.layers) or list(_model_default(INVERT_LAYERS, self.model, "--layers"))


@dataclass
class DreamParams:
    """``explain dream``: DeepDream, what a layer sees in a photo amplified over several octaves."""

    model: str = _model(FEATURE_NET)
    layer: str = setting("", f"layer to amplify; empty = {_default_layers(DREAM_LAYER)}; required for other "
                         "models", metavar="LAYER")
    size: int = setting(384, "longest side of the image, px")
    octaves: int = setting(3, "scales, each --octave-scale smaller")
    octave_scale: float = setting(1.4, "size ratio between octaves")
    steps: int = setting(10, "gradient steps per octave")
    step_size: float = setting(0.006, "mean change of a pixel per step, in [0, 1] units (the original's 1.5/255)")
    jitter: int = setting(32, "largest random shift per step, px")
    seed: int = _seed("jitter")
    device: str = _device()

    def __post_init__(self) -> None:
        _at_least(self, 8, "size")

    def resolved_layer(self) -> str:
        """:attr:`layer`, or the model's default layer (a one-line error for a model without one)."""
        return self.layer or _model_default(DREAM_LAYER, self.model, "--layer")


#: Every method that writes an image: its settings class, by the name its records carry (``explain NAME``).
PARAMS: dict[str, type] = {"filters": FiltersParams, "activations": ActivationsParams, "saliency": SaliencyParams,
                           "attack": AttackParams, "neighbours": NeighboursParams, "embedding": EmbeddingParams,
                           "top-patches": TopPatchesParams, "class-image": ClassImageParams,
                           "invert": InvertParams, "dream": DreamParams}


def explain_settings(cls: type, settings: dict[str, Any]) -> Any:
    """The settings dataclass ``cls`` from keyword arguments (one-line errors for unknown names, bad values)."""
    return from_settings(cls, settings, what=f"setting of {record_method(cls)}")


def record_method(cls: type) -> str:
    """``explain saliency``: the method name the records of ``cls``'s outputs carry."""
    return "explain " + next(name for name, c in {"layers": LayersParams, **PARAMS}.items() if c is cls)


def _names(value: Any) -> list[str]:
    """A list of names from a list or a comma-separated string (Python callers may give either)."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


def _model_default(table: dict[str, Any], model: str, option: str) -> Any:
    if model not in table:
        raise PerceptError(f"give {option} for {model} (`percept explain layers --model {model}` lists the names)")
    return table[model]


def _at_least(params: Any, low: float, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if value < low:
            raise PerceptError(f"{name.replace('_', '-')} must be >= {low}, got {value}")


def _only_for(params: Any, variant: str, what: str) -> None:
    """A one-line error for a setting that ``variant`` does not use but that differs from its default."""
    for f in fields(params):
        used_by = f.metadata.get("methods")
        if used_by and variant not in used_by and getattr(params, f.name) != default_of(f):
            raise PerceptError(f"{f.name.replace('_', '-')} applies to {' and '.join(used_by)} only, not to the "
                               f"{variant} {what}; leave it out")
