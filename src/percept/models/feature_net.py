"""Convolutional feature stacks (VGG-19, VGG-16, AlexNet) with the layer names used in the papers.

A :class:`FeatureNet` is the convolutional part of a classifier with every layer named as in the
literature (``conv1_1``, ``relu1_1``, ``pool1``, ... for VGG; ``conv1`` ... ``pool5`` for AlexNet). Its
forward pass returns the requested layers as a dict and stops at the deepest one, so asking for
``relu4_2`` never runs conv5. Input is always an RGB batch in ``[0, 1]``: the preprocessing that belongs to
the loaded weights (Caffe BGR minus mean, or ImageNet mean/std) is part of the module.

:func:`mirror_layers` describes the decoder that inverts a VGG up to a layer (AdaIN's decoder,
:data:`DECODER_ARCHITECTURES`); :mod:`percept.style.decoder` builds it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PerceptError

# (out_channels per conv) per block; "M" marks a pooling layer. Same as torchvision's VGG configs.
_VGG_BLOCKS = {
    "vgg16": [2, 2, 3, 3, 3],
    "vgg19": [2, 2, 4, 4, 4],
}
_VGG_WIDTHS = [64, 128, 256, 512, 512]


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of an architecture: its name, channels, kernel size, stride and padding."""

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 1


@dataclass(frozen=True)
class PoolSpec:
    """One pooling layer: its name, kernel size and stride."""

    name: str
    kernel: int = 2
    stride: int = 2


@dataclass(frozen=True)
class UpsampleSpec:
    """Nearest-neighbour upsampling by ``scale``: what replaces a pooling layer in a decoder."""

    name: str
    scale: int = 2


def _vgg_layers(arch: str) -> list[ConvSpec | PoolSpec | str]:
    layers: list[ConvSpec | PoolSpec | str] = []
    in_ch = 3
    for block, (n_convs, width) in enumerate(zip(_VGG_BLOCKS[arch], _VGG_WIDTHS), start=1):
        for i in range(1, n_convs + 1):
            layers.append(ConvSpec(f"conv{block}_{i}", in_ch, width, 3))
            layers.append(f"relu{block}_{i}")
            in_ch = width
        layers.append(PoolSpec(f"pool{block}"))
    return layers


def _alexnet_layers() -> list[ConvSpec | PoolSpec | str]:
    return [
        ConvSpec("conv1", 3, 64, 11, stride=4, padding=2), "relu1", PoolSpec("pool1", 3, 2),
        ConvSpec("conv2", 64, 192, 5, padding=2), "relu2", PoolSpec("pool2", 3, 2),
        ConvSpec("conv3", 192, 384, 3), "relu3",
        ConvSpec("conv4", 384, 256, 3), "relu4",
        ConvSpec("conv5", 256, 256, 3), "relu5", PoolSpec("pool5", 3, 2),
    ]  # fmt: skip


ARCHITECTURES: dict[str, list[ConvSpec | PoolSpec | str]] = {
    "vgg19": _vgg_layers("vgg19"),
    "vgg16": _vgg_layers("vgg16"),
    "alexnet": _alexnet_layers(),
}


def _layer_name(spec: ConvSpec | PoolSpec | UpsampleSpec | str) -> str:
    return spec if isinstance(spec, str) else spec.name


def layer_names(arch: str) -> list[str]:
    """All layer names of an architecture, in forward order (e.g. ``conv1_1, relu1_1, ...``)."""
    if arch not in ARCHITECTURES:
        raise PerceptError(f"unknown network {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return [_layer_name(s) for s in ARCHITECTURES[arch]]


def mirror_layers(arch: str, layer: str) -> list[ConvSpec | UpsampleSpec | str]:
    """The decoder that inverts ``arch`` up to ``layer`` (Huang & Belongie 2017): the convolutions in reverse
    order with input and output channels swapped (``dconv4_1`` inverts ``conv4_1``), each followed by a ReLU
    (``drelu4_1``) except the last one, which outputs RGB, and a 2x nearest upsampling in place of each pooling
    layer (``up3`` for ``pool3``). Only for VGG (stride-1 convolutions, 2x2 pooling)."""
    if not arch.startswith("vgg") or layer not in layer_names(arch):
        raise PerceptError(f"cannot mirror {arch!r} up to {layer!r}: give a VGG network and one of its layers")
    out: list[ConvSpec | UpsampleSpec | str] = []
    for spec in reversed(ARCHITECTURES[arch][: layer_names(arch).index(layer) + 1]):
        if isinstance(spec, ConvSpec):
            suffix = spec.name.removeprefix("conv")
            out += [ConvSpec(f"dconv{suffix}", spec.out_channels, spec.in_channels, spec.kernel, 1, spec.padding),
                    f"drelu{suffix}"]
        elif isinstance(spec, PoolSpec):
            out.append(UpsampleSpec(f"up{spec.name.removeprefix('pool')}", spec.stride))
    return out[:-1]


#: Decoders by name: AdaIN's inverts VGG-19 relu4_1 features ``(B, 512, H/8, W/8)`` to RGB ``(B, 3, H, W)``.
DECODER_ARCHITECTURES: dict[str, list[ConvSpec | UpsampleSpec | str]] = {
    "adain_decoder": mirror_layers("vgg19", "relu4_1"),
}


def conv_specs(arch: str) -> list[ConvSpec]:
    """The convolutions of an architecture or decoder, in forward order: what a weights file must provide."""
    layers = ARCHITECTURES[arch] if arch in ARCHITECTURES else DECODER_ARCHITECTURES[arch]
    return [s for s in layers if isinstance(s, ConvSpec)]


@functools.lru_cache(maxsize=None)
def smallest_input(arch: str, last: int, padding_mode: str = "zeros") -> int:
    """Smallest input side for which layers ``0..last`` of ``arch`` all produce >= 1 px (computed once).

    Reflection padding also needs every convolution's input to be larger than its padding."""
    for size in range(1, 4097):
        side = size
        for spec in ARCHITECTURES[arch][: last + 1]:
            if isinstance(spec, ConvSpec):
                if padding_mode == "reflect" and side <= spec.padding:
                    break
                side = (side + 2 * spec.padding - spec.kernel) // spec.stride + 1
            elif isinstance(spec, PoolSpec):
                side = (side - spec.kernel) // spec.stride + 1
            if side < 1:
                break
        else:
            return size
    return 4097


class FeatureNet(nn.Module):
    """A pretrained convolutional stack with named layers.

    Args:
        arch: ``"vgg19"``, ``"vgg16"`` or ``"alexnet"``.
        preprocess: module mapping RGB in ``[0, 1]`` to what the weights expect; it is applied first.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. found average pooling gives smoother
            style transfer results).
        padding_mode: ``"zeros"`` (as trained, Caffe and torchvision) or ``"reflect"`` (mirror the border
            pixels; AdaIN's encoder, fewer border artefacts in images generated through the network).
        last: build the layers up to this one only (``None``: all): a smaller network, e.g. AdaIN's encoder
            ends at ``relu4_1``.

    Call ``net(x, layers)`` with ``x`` of shape ``(B, 3, H, W)`` in ``[0, 1]`` to get a dict
    ``{name: (B, C, H', W')}`` of the requested layers; computation stops at the deepest requested layer.
    """

    def __init__(
        self, arch: str, preprocess: nn.Module | None = None, pooling: str = "max", padding_mode: str = "zeros",
        last: str | None = None,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise PerceptError(f"unknown pooling {pooling!r}; use max or avg")
        if padding_mode not in ("zeros", "reflect"):
            raise PerceptError(f"unknown padding mode {padding_mode!r}; use zeros or reflect")
        self.arch = arch
        self.pooling = pooling
        self.padding_mode = padding_mode
        self.preprocess = preprocess if preprocess is not None else nn.Identity()
        self.layers = nn.ModuleDict()
        for spec in ARCHITECTURES[arch]:
            if isinstance(spec, ConvSpec):
                module: nn.Module = nn.Conv2d(
                    spec.in_channels, spec.out_channels, spec.kernel, spec.stride, spec.padding,
                    padding_mode=padding_mode,
                )
            elif isinstance(spec, PoolSpec):
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                module = pool(spec.kernel, spec.stride)
            else:
                module = nn.ReLU(inplace=False)
            self.layers[_layer_name(spec)] = module
            if _layer_name(spec) == last:
                break
        if last is not None and last not in self.layers:
            raise PerceptError(f"unknown layer {last!r} for {arch}; run `percept models` for the names")
        self.last = last
        self._order = {name: i for i, name in enumerate(self.layers)}

    @property
    def layer_names(self) -> list[str]:
        """Layer names in forward order."""
        return list(self.layers)

    def validate_layers(self, layers: Iterable[str]) -> list[str]:
        """Return ``layers`` as a list, or raise a one-line error naming the first unknown layer."""
        layers = list(layers)
        for name in layers:
            if name not in self._order:
                examples = ", ".join(n for n in self.layers if n.startswith("relu"))
                if self.last is not None and name in _all_layer_names(self.arch):
                    raise PerceptError(f"layer {name!r} is past the last layer ({self.last}) this {self.arch} "
                                       "was built with")
                raise PerceptError(
                    f"unknown layer {name!r} for {self.arch}; valid layers include {examples} "
                    f"(run `percept models` for all names)"
                )
        return layers

    def min_input_size(self, layers: Sequence[str]) -> int:
        """Smallest input side (pixels) for which every layer up to the deepest of ``layers`` is >= 1 px."""
        last = max(self._order[name] for name in self.validate_layers(layers))
        return smallest_input(self.arch, last, self.padding_mode)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run up to the deepest layer in ``layers`` and return those activations by name."""
        wanted = set(self.validate_layers(layers))
        if not wanted:
            return {}
        last = max(self._order[name] for name in wanted)
        need = smallest_input(self.arch, last, self.padding_mode)
        if min(x.shape[-2:]) < need:
            raise PerceptError(
                f"image of {x.shape[-1]}x{x.shape[-2]} px is too small for layer(s) {', '.join(sorted(wanted))} "
                f"of {self.arch}: every side needs >= {need} px; use a larger size"
            )
        out: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        for i, (name, module) in enumerate(self.layers.items()):
            h = module(h)
            if name in wanted:
                out[name] = h
            if i == last:
                break
        return out


def _all_layer_names(arch: str) -> list[str]:
    return [_layer_name(spec) for spec in ARCHITECTURES[arch]]


def build_feature_net(weights, *, pooling: str = "max", padding_mode: str = "zeros", last: str | None = None,
                      device: str | torch.device = "cpu") -> FeatureNet:
    """A :class:`FeatureNet` with the pretrained ``weights`` (a :class:`~percept.models.weights.Weights` entry of
    a feature network), its preprocessing attached, frozen, in eval mode, on ``device``.

    ``pooling``: ``max`` or ``avg``; ``padding_mode``: ``zeros`` (as the weights were trained) or ``reflect``
    (AdaIN's encoder); ``last``: build the layers up to this one only, and read only their tensors.
    :func:`percept.models.get_model` resolves names to ``weights`` and calls this.
    """
    from .preprocess import preprocessing_module

    with torch.device("meta"):  # skip the random initialisation the pretrained tensors replace
        net = FeatureNet(weights.arch, pooling=pooling, padding_mode=padding_mode, last=last)
    # copies (the decoded tensors are shared, and may be memory-mapped), of the layers built only
    state = {k: v.clone() for k, v in weights.load_state_dict().items() if k.split(".")[0] in net.layers}
    net.preprocess = preprocessing_module(weights.preprocessing)
    missing, unexpected = net.layers.load_state_dict(state, strict=False, assign=True)
    if unexpected or [k for k in missing if k.split(".")[0].startswith("conv")]:
        raise PerceptError(f"weights {weights.id} do not match {weights.arch}: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    net.weights = weights  # type: ignore[attr-defined]
    net.requires_grad_(False)
    return net.eval().to(device)
