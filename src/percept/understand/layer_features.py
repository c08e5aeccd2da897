"""Any layer of any network as a feature extractor, and a folder's images as cached feature vectors.

The feature-space methods (:mod:`~percept.understand.neighbours`, :mod:`~percept.understand.embedding`,
:mod:`~percept.understand.top_patches`) share three pieces:

* :func:`load_network`: a classifier percept can load (EfficientNet-Lite0/-Lite2, torchvision's ImageNet models, a
  run folder from ``percept train``) or a feature network (vgg19, vgg16, alexnet), with its evaluation geometry.
* :class:`LayerOutput`: the output of one named layer, read through :func:`~percept.understand.hooks.capture`
  (hooks removed after every call, in-place activations switched off meanwhile); the forward pass stops right
  after the layer when the layer runs once per pass.
* :func:`layer_backbone`: a :class:`~percept.models.Backbone` whose vector is the layer's output averaged over
  space, with the layer in its cache id, so :func:`percept.transfer.feature_cache.embed_images` caches the vectors per
  network, weights and layer. Without a layer it is the network's pooled penultimate features: for a backbone name
  exactly ``get_model(name, kind="backbone")`` (the cache ``percept train`` fills), otherwise the last feature map,
  pooled.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..device import module_device
from ..errors import PerceptError
from ..image import find_images
from ..models.backbone import Backbone
from ..models.classifier import Classifier
from ..models.feature_net import FeatureNet
from ..models.names import BACKBONES, FEATURE_NET_LAYERS, FEATURE_NETWORKS
from .hooks import capture, get_layer


@dataclass
class Network:
    """A network whose layers are read, and how its inputs are prepared.

    Attributes:
        model: RGB ``(B, 3, H, W)`` in [0, 1] -> logits (a classifier) or, for a
            :class:`~percept.models.FeatureNet`, ``model(x, layers)`` -> ``{layer: (B, C, h, w)}``.
        name: what was asked for (``efficientnet_lite0``, ``vgg19``, a run folder).
        id: the weights' identity, part of every cache key (a digest of the parameters for run folders and
            models passed in, whose weights can change under the same name).
        resize, crop: evaluation geometry: short side resized to ``resize``, centre crop ``crop`` x ``crop``.
    """

    model: nn.Module
    name: str
    id: str
    resize: int
    crop: int

    @property
    def device(self) -> torch.device:
        return module_device(self.model)


def parameter_digest(model: nn.Module) -> str:
    """SHA-256 (first 12 hex digits) of every parameter and buffer of ``model``, in ``state_dict`` order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


def load_network(spec: str | os.PathLike | Network | Classifier | FeatureNet = "efficientnet_lite0", *,
                 device: str | torch.device = "auto") -> Network:
    """``spec`` as a :class:`Network` on ``device`` (``auto``: CUDA > MPS > CPU).

    ``spec``: a feature-network name (``vgg19``, ``vgg16``, ``alexnet``; resize 256, crop 224), a classifier name
    or a run folder (``get_model(spec, kind="classifier")``), or an object already loaded (a
    :class:`~percept.models.Classifier`, a :class:`~percept.models.FeatureNet`, a :class:`Network`), which keeps its
    device.
    """
    if isinstance(spec, Network):
        return spec
    if isinstance(spec, Classifier):
        return Network(spec.model, spec.id, f"{spec.id}#{parameter_digest(spec.model)}", spec.resize, spec.crop)
    if isinstance(spec, FeatureNet):
        return Network(spec, spec.arch, f"{spec.arch}#{parameter_digest(spec)}", 256, 224)
    from ..models import get_model

    if str(spec) in FEATURE_NETWORKS:
        net = get_model(str(spec), kind="features", device=device)
        return Network(net, str(spec), net.weights.id, 256, 224)
    classifier = get_model(spec, kind="classifier", device=device)
    ident = classifier.id if str(spec) in BACKBONES else f"{classifier.id}#{parameter_digest(classifier.model)}"
    return Network(classifier.model, str(spec), ident, classifier.resize, classifier.crop)


class _Stop(Exception):
    """Raised by a forward hook to end a forward pass once the layer wanted has run."""


class LayerOutput(nn.Module):
    """``(B, 3, H, W)`` RGB in [0, 1] -> the output of ``layer`` of ``network``, e.g. ``(B, C, h, w)``.

    ``layer`` is a module name (see :func:`~percept.understand.hooks.layer_names`, ``percept explain layers``) or,
    for a :class:`~percept.models.FeatureNet`, one of its layer names (``relu4_1``). One probe pass at
    ``probe_size`` px (on construction) checks the name, records the output shape (:attr:`probe_shape`) and counts
    how often the layer runs per pass: a layer that runs once ends the pass early (nothing after it is computed); a
    module shared by several places (EfficientNet's ReLU6) is read at its last call, after the whole pass. Outputs
    stay in the autograd graph (call under ``torch.no_grad()`` when no gradient is wanted).
    """

    def __init__(self, network: nn.Module, layer: str, *, probe_size: int = 224) -> None:
        super().__init__()
        self.network, self.layer = network, layer
        self.feature_net = isinstance(network, FeatureNet)
        if self.feature_net:
            network.validate_layers([layer])
            self.calls = 1
        else:
            module = get_layer(network, layer)
            count = [0]
            handle = module.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
            try:
                with torch.no_grad():
                    network(torch.zeros(1, 3, probe_size, probe_size, device=self.device))
            finally:
                handle.remove()
            if count[0] == 0:
                raise PerceptError(f"layer {layer!r} is never run by the network's forward pass; choose another "
                                   "(percept explain layers lists the ones that run)")
            self.calls = count[0]
        with torch.no_grad():
            self.probe_shape = tuple(self(torch.zeros(1, 3, probe_size, probe_size, device=self.device)).shape[1:])

    @property
    def device(self) -> torch.device:
        return module_device(self.network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_net:
            return self.network(x, [self.layer])[self.layer]
        with capture(self.network, [self.layer]) as acts:
            if self.calls == 1:
                handle = get_layer(self.network, self.layer).register_forward_hook(_raise_stop)
                try:
                    self.network(x)
                except _Stop:
                    pass
                finally:
                    handle.remove()
            else:
                self.network(x)
        return acts[self.layer]


def _raise_stop(*_args) -> None:
    raise _Stop


class PooledLayer(nn.Module):
    """``(B, 3, H, W)`` -> ``(B, C)``: a :class:`LayerOutput` averaged over space (a 2-D output is kept as is)."""

    def __init__(self, reader: LayerOutput) -> None:
        super().__init__()
        self.reader = reader
        if len(reader.probe_shape) not in (1, 3):
            shape = ", ".join(map(str, reader.probe_shape))
            raise PerceptError(f"layer {reader.layer!r} gives a tensor of shape (B, {shape}); choose a layer with a "
                               "feature map (B, C, h, w) or a vector (B, C)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.reader(x)
        return out.mean(dim=(2, 3)) if out.dim() == 4 else out


def default_layer(network: Network) -> str:
    """The last module of a classifier whose output is a feature map (found with one probe pass), or a
    feature network's deepest ReLU of the transfer backbones (``relu5_4`` for vgg19)."""
    if isinstance(network.model, FeatureNet):
        return FEATURE_NET_LAYERS.get(network.model.arch, network.model.layer_names[-1])
    from .saliency import last_feature_layer

    return last_feature_layer(Classifier(network.model, [], network.resize, network.crop, network.id, lambda i: i))


def layer_backbone(network: str | os.PathLike | Network | Classifier | FeatureNet = "efficientnet_lite0", *,
                   layer: str | None = None, device: str | torch.device = "auto") -> Backbone:
    """A frozen :class:`~percept.models.Backbone` mapping ``(B, 3, crop, crop)`` in [0, 1] to ``(B, C)``:
    ``layer``'s output averaged over space, on the network's device.

    ``layer=None`` gives the pooled penultimate features: for a backbone name (``efficientnet_lite0``, ``vgg19``,
    ``resnet18``, ...) exactly ``get_model(name, kind="backbone")`` (the vectors ``percept train`` caches),
    otherwise :func:`default_layer`. The layer is part of ``weights_id`` and so of the cache id.
    """
    if layer is None and isinstance(network, (str, os.PathLike)) and str(network) in BACKBONES:
        from ..models import get_model

        return get_model(str(network), kind="backbone", device=device)
    net = load_network(network, device=device)
    layer = layer or default_layer(net)
    pooled = PooledLayer(LayerOutput(net.model, layer, probe_size=net.crop))
    pooled.requires_grad_(False).eval()
    return Backbone(net.name, f"{net.id}@{layer}", pooled, pooled.reader.probe_shape[0], net.resize, net.crop)


def class_label(path: Path, root: Path) -> str:
    """The class of an image in the class-folder layout: the name of its parent folder (``ants`` for
    ``hymenoptera/train/ants/x.jpg``, so train and val images of a class share it); images directly in ``root`` are
    labelled with ``root``'s own name."""
    parent = Path(path).parent
    return Path(root).resolve().name if parent.resolve() == Path(root).resolve() else parent.name


@dataclass
class FolderFeatures:
    """Feature vectors of every image of a folder.

    Attributes:
        root: the folder.
        paths: the ``N`` images, sorted (recursive).
        labels: their classes (:func:`class_label`: the parent folder's name).
        features: ``(N, D)`` float32.
        cached: how many vectors came from the cache.
        backbone: the backbone's cache id.
    """

    root: Path
    paths: list[Path]
    labels: list[str]
    features: np.ndarray
    cached: int
    backbone: str

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))


def embed_paths(backbone: Backbone, paths: Sequence[Path], *, cache_dir: Path | None = None, batch_size: int = 32,
                progress: bool = False) -> tuple[np.ndarray, int]:
    """:func:`~percept.transfer.feature_cache.embed_images` on the backbone's device: ``((N, D) float32, cache hits)``.

    Every image is checked to be readable first, so a bad file is a one-line error naming it."""
    from ..image import load_image
    from ..transfer.feature_cache import embed_images

    if batch_size < 1:
        raise PerceptError(f"batch size must be >= 1, got {batch_size}")
    for path in paths:
        if not Path(path).is_file():
            load_image(path)  # raises the one-line error (not found, a directory)
    return embed_images(backbone, list(paths), cache_dir=cache_dir, batch_size=batch_size,
                        device=module_device(backbone.model), progress=progress)


def folder_features(backbone: Backbone, folder: str | os.PathLike, *, cache_dir: Path | None = None,
                    batch_size: int = 32, progress: bool = False) -> FolderFeatures:
    """Index every image under ``folder`` (recursively) by ``backbone``; vectors are cached (see
    :func:`~percept.transfer.feature_cache.embed_images`: keyed by the backbone's cache id and the file's bytes), and
    computed ``batch_size`` images at a time, which bounds memory."""
    root = Path(folder)
    paths = find_images(root, "image")
    features, hits = embed_paths(backbone, paths, cache_dir=cache_dir, batch_size=batch_size, progress=progress)
    return FolderFeatures(root, paths, [class_label(p, root) for p in paths], features, hits, backbone.cache_id)
