"""Pretrained feature networks with named layers, and the registry of their weights."""

from .efficientnet import EfficientNetLite, get_classifier, list_classifiers
from .features import ARCHITECTURES, FeatureNet, layer_names
from .weights import (
    DECODERS,
    DEFAULT_WEIGHTS,
    REGISTRY,
    Weights,
    get_decoder_weights,
    get_feature_net,
    get_weights,
    list_weights,
)

__all__ = [
    "ARCHITECTURES",
    "DECODERS",
    "DEFAULT_WEIGHTS",
    "REGISTRY",
    "EfficientNetLite",
    "FeatureNet",
    "Weights",
    "get_classifier",
    "get_decoder_weights",
    "get_feature_net",
    "get_weights",
    "layer_names",
    "list_classifiers",
    "list_weights",
]
