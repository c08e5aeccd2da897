"""Pretrained feature networks with named layers, and the registry of their weights."""

from .features import ARCHITECTURES, FeatureNet, layer_names
from .weights import DEFAULT_WEIGHTS, REGISTRY, Weights, get_feature_net, get_weights, list_weights

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_WEIGHTS",
    "REGISTRY",
    "FeatureNet",
    "Weights",
    "get_feature_net",
    "get_weights",
    "layer_names",
    "list_weights",
]
