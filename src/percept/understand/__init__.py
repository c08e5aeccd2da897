"""Understanding CNNs: what a pretrained network learned and why it decides (issue 5; in progress).

So far: :func:`load_classifier` (any classifier percept can load, with class names and its evaluation
preprocessing), the hook helpers of :mod:`~percept.understand.hooks`, first-layer filters
(:mod:`~percept.understand.filters`) and activation maps (:mod:`~percept.understand.activations`).
"""

from .activations import activation_maps, maps_grid, strongest_channels
from .classifier import Classifier, load_classifier
from .filters import filter_grid, first_layer_filters
from .hooks import capture, get_layer, layer_names, no_inplace

__all__ = ["Classifier", "activation_maps", "capture", "filter_grid", "first_layer_filters", "get_layer",
           "layer_names", "load_classifier", "maps_grid", "no_inplace", "strongest_channels"]
