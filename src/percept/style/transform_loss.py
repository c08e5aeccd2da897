"""Johnson et al.'s perceptual loss through a frozen loss network (content, Gram style, TV)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import PerceptError
from ..losses import content_loss, gram_matrix, style_loss, tv_loss
from ..models import FeatureNet

FORMAT = "percept-transform-net"
FORMAT_VERSION = 1
#: Johnson et al.: content at relu2_2 of VGG-16; the same depth for VGG-19.
LOSS_CONTENT_LAYERS = {"vgg16": ["relu2_2"], "vgg19": ["relu2_2"]}
LOSS_NETWORKS = tuple(LOSS_CONTENT_LAYERS)
#: Largest difference between the ONNX file's and PyTorch's output that passes the export check.
ONNX_TOLERANCE = 1e-4




class PerceptualLoss(nn.Module):
    """Johnson et al.'s perceptual loss for a batch whose samples may each have another style.

    Args:
        net: frozen loss network (:func:`percept.models.get_model`).
        styles: style images, each ``(1, 3, H, W)`` in [0, 1]; their Gram matrices are computed once.
        content_layers, style_layers: layer names of ``net``.
        content_weight, style_weight, tv_weight: weights of the three terms.
        style_layer_weights: relative weight of each style layer (``None``: equal), as ``percept.stylize``'s.

    Calling it with ``output`` and ``content`` ``(B, 3, H, W)`` and ``style_index`` ``(B,)`` returns a dict of
    scalars ``content``, ``style``, ``tv`` (unweighted; averaged over layers, the style layers with
    ``style_layer_weights``) and ``total`` (weighted sum). The style term is each sample's relative Gram error
    against its own style, averaged over the batch; for one image all three equal what :func:`percept.stylize`
    reports for the same layers and weights.
    """

    def __init__(self, net: FeatureNet, styles: Sequence[torch.Tensor], *, content_layers: Sequence[str],
                 style_layers: Sequence[str], content_weight: float, style_weight: float, tv_weight: float,
                 style_layer_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.net = net
        self.content_layers = net.validate_layers(content_layers)
        self.style_layers = net.validate_layers(style_layers)
        layer_weights = [1.0] * len(self.style_layers) if style_layer_weights is None else list(style_layer_weights)
        if len(layer_weights) != len(self.style_layers) or min(layer_weights) < 0 or not sum(layer_weights) > 0:
            raise PerceptError(f"give {len(self.style_layers)} style layer weights >= 0, not all 0 (one per style "
                               f"layer: {', '.join(self.style_layers)}), got {layer_weights}")
        self.register_buffer("layer_weights", torch.tensor(layer_weights, device=styles[0].device) / sum(layer_weights))
        self.weights = {"content": content_weight, "style": style_weight, "tv": tv_weight}
        with torch.no_grad():
            feats = [net(s, self.style_layers) for s in styles]
            for i, name in enumerate(self.style_layers):  # (S, C, C) per layer
                self.register_buffer(f"gram{i}", torch.cat([gram_matrix(f[name].float()) for f in feats]))

    def forward(self, output: torch.Tensor, content: torch.Tensor,
                style_index: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            targets = self.net(content, self.content_layers)
        feats = self.net(output, list(dict.fromkeys(self.style_layers + self.content_layers)))
        with torch.autocast(output.device.type, enabled=False):  # Gram sums overflow in float16
            c = torch.stack([content_loss(feats[n].float(), targets[n].float()) for n in self.content_layers]).mean()
            s = torch.stack([
                torch.stack([style_loss(feats[n][b : b + 1].float(), getattr(self, f"gram{i}")[k])
                             for b, k in enumerate(style_index.tolist())]).mean()
                for i, n in enumerate(self.style_layers)
            ]).mul(self.layer_weights).sum()
            tv = tv_loss(output.float())
            total = self.weights["content"] * c + self.weights["style"] * s + self.weights["tv"] * tv
        return {"content": c, "style": s, "tv": tv, "total": total}
