"""Understanding CNNs: what a pretrained network learned and why it decides (issue 5; in progress).

So far: :func:`load_classifier` (any classifier percept can load, with class names and its evaluation
preprocessing), the hook helpers of :mod:`~percept.understand.hooks`, first-layer filters
(:mod:`~percept.understand.filters`), activation maps (:mod:`~percept.understand.activations`) and saliency
maps (:func:`~percept.understand.saliency.saliency`: gradient, SmoothGrad, Grad-CAM, occlusion) and adversarial
examples (:func:`~percept.understand.attack.attack`: FGSM, PGD).
"""

from .activations import activation_maps, maps_grid, strongest_channels
from .attack import AttackResult, attack
from .classifier import Classifier, load_classifier
from .filters import filter_grid, first_layer_filters
from .hooks import capture, get_layer, layer_names, no_inplace
from .saliency import saliency

__all__ = ["AttackResult", "Classifier", "activation_maps", "attack", "capture", "filter_grid",
           "first_layer_filters", "get_layer", "layer_names", "load_classifier", "maps_grid", "no_inplace",
           "saliency", "strongest_channels"]
