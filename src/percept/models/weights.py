"""Sets of pretrained weights: where their tensors come from, the preprocessing they expect, their metadata.

In the spirit of torchvision's ``WeightsEnum``: a :class:`Weights` entry knows its architecture, where its tensors
come from (tried in order), the preprocessing its network expects and its metadata, so nobody can pair a set of
weights with the wrong normalisation. The registry (:mod:`percept.models.registry`) lists, for every model, the
entries it can take; :func:`resolve_weights` turns what a caller gives (a registered name, ``None`` for the
default, a file path) into an entry.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..errors import PerceptError, WeightsUnavailableError
from .formats import StateDict, check_shapes
from .imagenet import imagenet_categories
from .names import did_you_mean
from .sources import HubDownload, Source, SourceUnavailable


@dataclass(frozen=True)
class Weights:
    """One set of pretrained weights for a network (or a decoder).

    Attributes:
        arch: architecture name (``vgg19``, ``efficientnet_lite0``, ``resnet18``; ``adain_decoder`` for a decoder).
        name: short name, unique per architecture (``gatys``, ``caffe``, ``imagenet1k_v1``; the path of a file).
        preprocessing: ``"caffe"``, ``"imagenet"`` or ``"tf"`` (see :mod:`percept.models.preprocess`); ``"none"``
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
        """Decode the tensors (canonical layer names) from the first available source; shapes are checked."""
        source, path = self.locate()
        stat = path.stat()
        return _decode_cached(source, path, self.arch, (stat.st_mtime_ns, stat.st_size))


#: Bump when the decoded form of any weights changes, so that stale decoded copies are not read.
DECODED_VERSION = 1


def decoded_cache_file(path: Path, arch: str, stamp: tuple[int, int]) -> Path | None:
    """Where the decoded tensors of a registered weights file are kept (``$PERCEPT_CACHE/weights`` or
    ``~/.cache/percept/weights``); ``None`` when ``PERCEPT_WEIGHTS_CACHE=0`` turns the cache off."""
    if os.environ.get("PERCEPT_WEIGHTS_CACHE", "1") == "0":
        return None
    import hashlib

    base = Path(os.environ.get("PERCEPT_CACHE") or Path.home() / ".cache" / "percept") / "weights"
    key = hashlib.sha256(f"{path.resolve()}|{stamp}|{arch}|{DECODED_VERSION}".encode()).hexdigest()[:20]
    return base / f"{arch}-{key}.pt"


@functools.lru_cache(maxsize=8)
def _decode_cached(source: Source, path: Path, arch: str, stamp: tuple[int, int]) -> StateDict:
    """Decoded, shape-checked tensors; ``stamp`` (mtime, size) makes a rewritten file decode again.

    Registered weights (package files, the torch hub cache) are decoded once per machine into a plain PyTorch
    file (:func:`decoded_cache_file`) that later processes memory-map: no format conversion, no checks again,
    and only the tensors a network uses are read from disk. Files given by the user are decoded every time.
    The tensors may be memory-mapped: copy them before changing them in place.
    """
    from .sources import UserFile

    cached = None if isinstance(source, UserFile) else decoded_cache_file(path, arch, stamp)
    if cached is not None and cached.is_file():
        try:
            return torch.load(cached, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 - a damaged cache file is decoded again and replaced
            pass
    state = check_shapes(arch, source.decode(path), str(path))
    if cached is not None:
        try:
            from ..image import atomic_write

            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cached, lambda tmp: torch.save({k: v.contiguous() for k, v in state.items()}, tmp))
        except (OSError, RuntimeError):  # a read-only home or a full disk: decode every time
            pass
    return state


@dataclass(frozen=True)
class ClassifierWeights(Weights):
    """One set of pretrained weights for an ImageNet classifier.

    On top of :class:`Weights` (``arch``, ``name``, ``preprocessing``, ``sources``, ``meta``): the evaluation input
    size, the short side to resize to before centre-cropping, and the number of classes of the pretrained head
    (``categories`` names them when they are ImageNet's).
    """

    input_size: int = 224
    resize_size: int = 256
    num_classes: int = 1000

    @property
    def categories(self) -> tuple[str, ...] | None:
        """Class names of the pretrained head, index order (ImageNet for a 1000-class head)."""
        return imagenet_categories() if self.num_classes == 1000 else None

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """Evaluation input: resize the short side to ``resize_size`` (bicubic), centre-crop ``input_size``.

        Returns ``(1, 3, input_size, input_size)`` RGB in [0, 1] (the model normalises it itself).
        """
        from ..image import to_tensor

        image = image.convert("RGB")
        w, h = image.size
        scale = self.resize_size / min(w, h)
        size = (max(self.input_size, round(w * scale)), max(self.input_size, round(h * scale)))
        left, top = (size[0] - self.input_size) // 2, (size[1] - self.input_size) // 2
        resized = image.resize(size, Image.Resampling.BICUBIC)
        return to_tensor(resized.crop((left, top, left + self.input_size, top + self.input_size)))


def looks_like_path(value: object) -> bool:
    """Whether ``value`` names a file rather than a registered name (a path object, or text with / \\ or .)."""
    return isinstance(value, os.PathLike) or any(c in str(value) for c in "/\\.")


def resolve_weights(
    arch: str,
    table: Sequence[Weights],
    weights: str | os.PathLike | Weights | None,
    user_file: Callable[[Path], Weights] | None,
    *,
    noun: str = "",
) -> Weights:
    """The entry of ``table`` that ``weights`` names: ``None`` for the first (the default), a registered name, an
    entry itself, or a file path (an ad-hoc entry made by ``user_file``). ``noun`` names the weights in errors
    (``decoder``: "unknown decoder 'x'"; by default "unknown weights 'x' for ARCH")."""
    if isinstance(weights, Weights):
        if weights.arch != arch:
            raise PerceptError(f"weights {weights.id} belong to {weights.arch}, not {arch}")
        return weights
    if weights is None:
        weights = table[0].name
    for entry in table:
        if entry.name == str(weights) and not isinstance(weights, os.PathLike):
            return entry
    if user_file is None or not looks_like_path(weights):
        names = [w.name for w in table]
        what = f"{noun} {str(weights)!r}" if noun else f"weights {str(weights)!r} for {arch}"
        hint = f" or give a {noun + ' ' if noun else ''}file path" if user_file is not None else ""
        raise PerceptError(f"unknown {what}{did_you_mean(str(weights), names)}; choose one of {', '.join(names)}{hint}")
    return user_file(Path(weights).expanduser())
