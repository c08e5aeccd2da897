"""Understanding CNNs: what a pretrained network learned and why it decides.

- Loading: :func:`load_classifier` (any classifier percept can load, with class names and its evaluation
  preprocessing), :func:`load_network` (also the feature networks), hooks (:mod:`~percept.understand.hooks`).
- Inside the network: first-layer filters (:mod:`~percept.understand.filters`), activation maps
  (:mod:`~percept.understand.activations`).
- Feature space: any layer as a cached feature extractor (:func:`layer_backbone`), nearest neighbours, PCA/t-SNE
  embeddings, top-activating patches.
- Why it decides: saliency maps (:func:`saliency`: gradient, SmoothGrad, guided backprop, Grad-CAM, occlusion) and
  adversarial examples (:func:`attack`: FGSM, PGD).
- Gradient ascent on the input: class images, feature inversion and DeepDream (:func:`class_image`,
  :func:`invert`, :func:`dream`).
"""

from .activations import activation_maps, maps_grid, strongest_channels
from .attack import AttackResult, attack
from .classifier import Classifier, load_classifier
from .class_image import ClassImageResult, class_image
from .dream import DreamResult, dream
from .embedding import Embedding, embedding, embedding_figure
from .features import FolderFeatures, LayerOutput, Network, folder_features, layer_backbone, load_network
from .filters import filter_grid, first_layer_filters
from .hooks import capture, get_layer, layer_names, no_inplace
from .invert import Inversion, InversionResult, invert
from .neighbours import Neighbours, neighbours, neighbours_grid
from .saliency import saliency
from .top_patches import ReceptiveField, TopPatches, patches_grid, receptive_field, top_patches

__all__ = ["AttackResult", "Classifier", "ClassImageResult", "DreamResult", "Embedding", "FolderFeatures",
           "Inversion", "InversionResult", "LayerOutput", "Neighbours", "Network", "ReceptiveField", "TopPatches",
           "activation_maps", "attack", "capture", "class_image", "dream", "embedding", "embedding_figure",
           "filter_grid", "first_layer_filters", "folder_features", "get_layer", "invert", "layer_backbone",
           "layer_names", "load_classifier", "load_network", "maps_grid", "neighbours", "neighbours_grid",
           "no_inplace", "patches_grid", "receptive_field", "saliency", "strongest_channels", "top_patches"]
