"""Understanding CNNs: what a pretrained network learned and why it decides (issue 5; in progress).

So far the foundation every method shares: :func:`load_classifier` (any classifier percept can load, with class
names and evaluation geometry) and the hook helpers of :mod:`percept.understand.hooks`.
"""

from .classifier import Classifier, load_classifier
from .hooks import capture, get_layer, layer_names, no_inplace

__all__ = ["Classifier", "capture", "get_layer", "layer_names", "load_classifier", "no_inplace"]
