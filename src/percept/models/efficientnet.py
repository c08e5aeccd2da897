"""EfficientNet-Lite ImageNet classifiers (Lite0, Lite2): the network, and its builder with pretrained weights.

EfficientNet-Lite (Tan & Le 2019, the TF "lite" variants) is EfficientNet without squeeze-excitation, with
ReLU6 instead of swish, and with the stem and head left unscaled. Module names follow the layout of the
converted checkpoints (``_conv_stem``, ``_blocks.N._expand_conv``, ..., ``_fc``) so their state dicts load
strictly. Convolutions use TensorFlow's "same" padding, computed from the input size at run time, so any
input size works and stride-2 layers pad asymmetrically exactly as the TF originals did.

Like percept's :class:`~percept.models.FeatureNet`, the network takes RGB in ``[0, 1]``: its ``preprocess``
submodule applies the TF normalisation ``(x * 255 - 127) / 128`` first::

    model = efficientnet_lite("efficientnet_lite0")                   # ImageNet classifier, eval mode
    x = model.weights.prepare(load_image("cat.jpg"))                  # (1, 3, 224, 224) in [0, 1]
    top5 = model(x).softmax(1).topk(5)                                # indices into model.categories
    model = efficientnet_lite("efficientnet_lite0", num_classes=5)    # pretrained backbone, new head

The weights entries are in :mod:`percept.models.catalog`; ``get_model("efficientnet_lite0")`` gives the frozen
:class:`~percept.models.Classifier` with class names.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PerceptError
from .preprocess import TFNormalize, preprocessing_module
from .weights import Weights

# --------------------------------------------------------------------------------------------- network


@dataclass(frozen=True)
class _Stage:
    """One row of the EfficientNet-B0/Lite0 table: ``repeats`` MBConv blocks sharing these settings."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


#: The base network (Lite0 = B0 without squeeze-excitation), from TF's ``efficientnet_lite_builder.py``.
_STAGES = (
    _Stage(1, 3, 1, 1, 32, 16),
    _Stage(2, 3, 2, 6, 16, 24),
    _Stage(2, 5, 2, 6, 24, 40),
    _Stage(3, 3, 2, 6, 40, 80),
    _Stage(3, 5, 1, 6, 80, 112),
    _Stage(4, 5, 2, 6, 112, 192),
    _Stage(1, 3, 1, 6, 192, 320),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class _Variant:
    width: float  # channel multiplier
    depth: float  # repeat multiplier
    resolution: int  # training input size
    dropout: float  # dropout before the classifier


VARIANTS = {
    "lite0": _Variant(1.0, 1.0, 224, 0.2),
    "lite2": _Variant(1.1, 1.2, 260, 0.3),
}

#: TF batch norm: epsilon 1e-3, moving-average decay 0.99, i.e. PyTorch momentum 0.01.
_BN = {"eps": 1e-3, "momentum": 0.01}


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale ``channels`` by ``width`` and round to a multiple of ``divisor``, never losing over 10%."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(repeats * depth))


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "same" padding: output size ``ceil(input / stride)``.

    Stride 1 pads ``kernel // 2`` on each side (odd kernels). Larger strides pad
    ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total per axis of size ``n``, computed in ``forward``; an odd
    total puts the extra pixel at the bottom/right, as TF does (224 px, k3 s2: 0 top, 1 bottom).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        padding = kernel_size // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != (1, 1):
            pads = []
            for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):  # W then H
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _drop_connect(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of the residual branch with probability ``rate``, rescale the rest."""
    if not training or rate <= 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: 1x1 expand, depthwise kxk, 1x1 project.

    ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / stride), ceil(W / stride))``; a residual
    connection (with drop-connect while training) when stride is 1 and the channel count is unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int, drop_connect: float):
        super().__init__()
        hidden = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, **_BN)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, **_BN)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_connect = drop_connect

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.residual:
            x = _drop_connect(x, self.drop_connect, self.training) + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 or -Lite2 ImageNet classifier taking RGB in ``[0, 1]``.

    Args:
        variant: ``lite0`` (4.65 M parameters, 224 px) or ``lite2`` (6.09 M, 260 px).
        num_classes: size of the final linear layer ``_fc``.
        dropout: dropout before ``_fc``; ``None`` for the variant's (0.2 for Lite0, 0.3 for Lite2).
        drop_connect: stochastic-depth rate of the last block (block ``i`` of ``n`` uses ``rate * i / n``).

    Attributes:
        feature_dim: channels of :meth:`forward_features` (1280 for every Lite variant).
        blocks: the MBConv blocks in order (``nn.ModuleList``), e.g. to freeze all but the top K.
    """

    def __init__(self, variant: str = "lite0", num_classes: int = 1000, dropout: float | None = None,
                 drop_connect: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        if variant not in VARIANTS:
            raise PerceptError(f"unknown EfficientNet variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        spec = VARIANTS[variant]
        self.variant = variant
        self.feature_dim = _HEAD_CHANNELS
        self.preprocess: nn.Module = TFNormalize()

        # Lite does not scale the stem, the head, or the repeats of the first and last stages.
        self._conv_stem = SameConv2d(3, _STEM_CHANNELS, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(_STEM_CHANNELS, **_BN)
        layout = []  # (in, out, kernel, stride, expand) per block
        in_channels = _STEM_CHANNELS
        for i, stage in enumerate(_STAGES):
            fixed = i in (0, len(_STAGES) - 1)
            repeats = stage.repeats if fixed else _round_repeats(stage.repeats, spec.depth)
            out_channels = _round_channels(stage.out_channels, spec.width)
            for r in range(repeats):
                layout.append((in_channels, out_channels, stage.kernel, stage.stride if r == 0 else 1, stage.expand))
                in_channels = out_channels
        n = len(layout)
        self._blocks = nn.ModuleList(
            MBConvBlock(*args, drop_connect=drop_connect * i / n) for i, args in enumerate(layout)
        )
        self._conv_head = SameConv2d(in_channels, _HEAD_CHANNELS, 1)
        self._bn1 = nn.BatchNorm2d(_HEAD_CHANNELS, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self._dropout = nn.Dropout(spec.dropout if dropout is None else dropout)
        self._fc = nn.Linear(_HEAD_CHANNELS, num_classes)

    @property
    def blocks(self) -> nn.ModuleList:
        """The MBConv blocks, input side first (Lite0: 16, Lite2: 21)."""
        return self._blocks

    @property
    def num_classes(self) -> int:
        return self._fc.out_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, 1280, ceil(H / 32), ceil(W / 32))`` after head conv, BN, ReLU6."""
        x = self.act(self._bn0(self._conv_stem(self.preprocess(x))))
        for block in self._blocks:
            x = block(x)
        return self.act(self._bn1(self._conv_head(x)))

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        """Global average pooling: ``(B, C, h, w) -> (B, C)``."""
        return feats.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] -> logits ``(B, num_classes)``."""
        return self._fc(self._dropout(self.pool(self.forward_features(x))))

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, blocks={len(self._blocks)}, num_classes={self.num_classes}"


#: The variant of each registered EfficientNet-Lite name.
VARIANT_OF = {"efficientnet_lite0": "lite0", "efficientnet_lite2": "lite2"}


def efficientnet_lite(
    name: str = "efficientnet_lite0",
    weights: str | os.PathLike | Weights | None = "imagenet",
    *,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
) -> EfficientNetLite:
    """Build an :class:`EfficientNetLite` with pretrained weights, in eval mode, on ``device``.

    Parameters stay trainable (freeze what you like, e.g. all but ``model.blocks[-k:]`` and the head).

    Args:
        name: ``efficientnet_lite0`` or ``efficientnet_lite2``.
        weights: ``"imagenet"``, a state-dict path, or ``None`` for random initialisation.
        num_classes: size of the classifier head; ``None`` keeps the checkpoint's (1000 for ImageNet). A
            different size loads everything but ``_fc`` and initialises a new head.
        device: where to put the network.

    The model gets ``model.weights`` (the :class:`~percept.models.weights.ClassifierWeights` entry, ``None``
    without weights) and ``model.categories`` (class names of the head, ``None`` for a new head).
    """
    if name not in VARIANT_OF:
        raise PerceptError(f"unknown classifier {name!r} for efficientnet_lite(); choose one of "
                           f"{', '.join(VARIANT_OF)}")
    if weights is None:
        model = EfficientNetLite(VARIANT_OF[name], num_classes or 1000)
        model.weights, model.categories = None, None  # type: ignore[assignment]
        return model.eval().to(device)

    from .registry import get_weights

    entry = get_weights(name, weights, kind="classifier")
    state = entry.load_state_dict()
    pretrained_classes = state["_fc.weight"].shape[0] if "_fc.weight" in state else None
    new_head = num_classes is not None and num_classes != pretrained_classes
    if new_head:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    model = EfficientNetLite(VARIANT_OF[name], num_classes if new_head else pretrained_classes or 1000)
    model.preprocess = preprocessing_module(entry.preprocessing)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch: another variant's checkpoint, say
        reason = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise PerceptError(f"weights {entry.id} do not fit {name}: {reason}") from None
    if unexpected or [k for k in missing if not (new_head and k.startswith("_fc."))]:
        raise PerceptError(
            f"weights {entry.id} do not match {name}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model.weights = entry  # type: ignore[assignment]
    same_head = not new_head and pretrained_classes == entry.num_classes
    model.categories = entry.categories if same_head else None  # type: ignore[assignment]
    return model.eval().to(device)
