"""torchvision's ImageNet classifiers (ResNet-18/50, MobileNetV3-Large, EfficientNet-B0, ConvNeXt-T).

Their weights come from the torch hub cache, downloaded there on first use; the registry's entries
(:data:`percept.models.catalog.TORCHVISION_WEIGHTS`) name the torchvision weights of each and its evaluation
geometry. torchvision is imported only when a network is built (it takes seconds).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import WeightsUnavailableError
from .weights import Weights


def torchvision_network(arch: str, weights: Weights | None) -> tuple[nn.Module, str | None]:
    """torchvision's ``arch`` with the torchvision weights that ``weights`` names (``None``: random initialisation,
    nothing downloaded), and the torchvision name of those weights (e.g. ``ResNet18_Weights.IMAGENET1K_V1``).

    The network expects ImageNet-normalised input (wrap it in :class:`~percept.models.preprocess.Normalized`).
    Unavailable weights are a one-line :class:`~percept.errors.WeightsUnavailableError`.
    """
    import torchvision

    enum = None if weights is None else torchvision.models.get_model_weights(arch)[weights.meta["torchvision_weights"]]
    try:
        model = torchvision.models.get_model(arch, weights=enum)
    except Exception as exc:  # noqa: BLE001 - offline, a blocked proxy, a damaged cache file
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise WeightsUnavailableError(
            f"torchvision weights for {arch} unavailable ({reason}): cannot load torchvision's {arch} without them; "
            f"they download on first use (needs internet) into {torch.hub.get_dir()}/checkpoints; offline, use "
            "efficientnet_lite0, efficientnet_lite2 or vgg16"
        ) from None
    return model, None if enum is None else str(enum)


def remove_classifier(model: nn.Module) -> int:
    """Replace the last linear layer of a torchvision classifier by the identity; return its input size (the
    dimension of the features it now outputs)."""
    if hasattr(model, "fc"):
        dim, model.fc = model.fc.in_features, nn.Identity()
    else:  # mobilenet, efficientnet, convnext: the last Linear of `classifier`
        dim = model.classifier[-1].in_features
        model.classifier[-1] = nn.Identity()
    return dim
