"""Understanding CNNs: what a pretrained network learned and why it decides.

- Loading: :func:`percept.models.get_model` (any classifier percept can load, with class names and its evaluation
  preprocessing), :func:`load_network` (also the feature networks), hooks (:mod:`~percept.understand.hooks`),
  the layers with their shapes (:func:`layer_shapes`).
- Inside the network: first-layer filters (:mod:`~percept.understand.filters`), activation maps
  (:mod:`~percept.understand.activations`).
- Feature space: any layer as a cached feature extractor (:func:`layer_backbone`), nearest neighbours, PCA/t-SNE
  embeddings, top-activating patches.
- Why it decides: saliency maps (:func:`saliency`: gradient, SmoothGrad, guided backprop, Grad-CAM, occlusion) and
  adversarial examples (:func:`attack`: FGSM, PGD).
- Gradient ascent on the input: class images, feature inversion and DeepDream (:func:`class_image`,
  :func:`invert`, :func:`dream`).

Every method that draws also has an ``explain_*`` function (:func:`explain_saliency`, :func:`explain_attack`, ...)
that takes the settings of :mod:`percept.understand.params` as keyword arguments, loads the network by name and
returns an :class:`Explanation`: the figure, its record and the method's result. Names are imported lazily
(PEP 562), so ``percept --help`` does not import torch.
"""

import sys
from types import ModuleType

from ..lazy import exports

_MODULES = {
    "activations": ["ActivationMaps", "activation_maps", "explain_activations", "maps_grid", "strongest_channels"],
    "attack": ["AttackResult", "attack", "explain_attack", "perturbation_image"],
    ".models.classifier": ["Classifier"],  # the classifier object is the model registry's
    "class_image": ["ClassImageResult", "class_image", "explain_class_image"],
    "dream": ["DreamResult", "dream", "explain_dream"],
    "embedding": ["Embedding", "FolderEmbedding", "embedding", "embedding_figure", "explain_embedding"],
    "explanation": ["Explanation"],
    "layer_features": ["FolderFeatures", "LayerOutput", "Network", "folder_features", "layer_backbone", "load_network"],
    "filters": ["explain_filters", "filter_grid", "first_layer_filters"],
    "hooks": ["capture", "get_layer", "layer_names", "no_inplace"],
    "invert": ["Inversion", "InversionResult", "explain_invert", "invert"],
    "layers": ["explain_layers", "layer_shapes"],
    "neighbours": ["Neighbours", "explain_neighbours", "neighbours", "neighbours_grid"],
    "saliency": ["SaliencyResult", "explain_saliency", "saliency"],
    "top_patches": ["ReceptiveField", "TopPatches", "explain_top_patches", "patches_grid", "receptive_field",
                    "top_patches"],
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)


class _Package(ModuleType):
    """Importing a submodule named like one of its functions (``saliency``, ``attack``, ``invert``...) would make
    the package attribute the module; it stays the function, as with eager imports."""

    def __setattr__(self, name: str, value: object) -> None:
        if not (name in _EXPORTS and isinstance(value, ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
