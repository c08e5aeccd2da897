"""Every pretrained network percept uses, built through one registry.

:func:`get_model` builds a model by name (``list_models()``, ``percept models``): feature networks with named
layers (``FeatureNet``), ImageNet classifiers and trained runs (``Classifier``), transfer-learning backbones
(``Backbone``), the AdaIN decoder and trained style networks. :func:`describe` is what ``percept models`` prints.

Names are imported lazily (PEP 562), so that reading :mod:`percept.models.names` does not import torch.
"""

from ..lazy import exports

_EXPORTS = {
    "get_model": "registry", "list_models": "registry", "get_entry": "registry", "list_entries": "registry",
    "get_weights": "registry", "list_weights": "registry", "ModelEntry": "registry", "register": "registry",
    "describe": "summary", "catalog_json": "summary",
    "FeatureNet": "feature_net", "ARCHITECTURES": "feature_net", "layer_names": "feature_net",
    "Classifier": "classifier", "Backbone": "backbone",
    "EfficientNetLite": "efficientnet", "efficientnet_lite": "efficientnet",
    "Weights": "weights", "ClassifierWeights": "weights",
    "Normalized": "preprocess", "PREPROCESSING": "preprocess",
    "TTA_VIEWS": "views", "view_transform": "views",
    "imagenet_categories": "imagenet",
    "KINDS": "names", "BACKBONES": "names", "FEATURE_NETWORKS": "names",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)
