"""Every command: the module that builds it and the one line ``percept --help`` shows for it.

This table is all ``percept --help`` needs, so it builds no command's options (and imports no settings module); a
command's module is imported, and its options built, only when that command is run or asked for its help.
"""

#: command -> (module of :mod:`percept.cli` that registers it, one-line help)
COMMANDS = {
    "stylize": ("stylize",
                "paint a photo in the style of one or more paintings (optimisation, AdaIN or a trained network)"),
    "texture": ("stylize", "synthesise a new texture from a sample (Gatys et al.)"),
    "stylize-video": ("video", "paint a video in the style of paintings without flicker (optical flow, scene cuts)"),
    "info": ("stylize",
             "show the record of an output image (and the command that reproduces it) or of a style network"),
    "train-style": ("training",
                    "train a feed-forward style network (Johnson et al.; several styles: Dumoulin et al.)"),
    "train-adain": ("training", "train a decoder for AdaIN arbitrary style transfer"),
    "train": ("transfer", "train an image classifier on a pretrained backbone (transfer learning)"),
    "evaluate": ("transfer", "accuracy, per-class metrics and confusion matrix of one run or an ensemble"),
    "predict": ("transfer", "top-k classes of images with a trained run"),
    "lr-find": ("transfer", "learning-rate range test for fine-tuning: loss vs lr plot and a suggested lr"),
    "augment-preview": ("transfer", "draw a grid of augmented training samples"),
    "export": ("transfer", "save a trained run as one ONNX or TorchScript file that runs without percept"),
    "explain": ("explain", "look inside a pretrained network: filters, activations, saliency, layers"),
    "serve": ("service", "run the artwork web service: upload a photo, choose a style, get the painting"),
    "worker": ("service", "run artwork-service jobs from a Redis broker (scale-out of percept serve)"),
    "models": ("models", "list networks, weights, their availability here, and layer names"),
    "compare": ("metrics", "how similar images are to a reference: PSNR, SSIM, LPIPS, DISTS, feature distance"),
    "upscale": ("sr", "upscale an image 4 or 8 times with a super-resolution network (SRResNet, SRGAN, your own)"),
    "train-sr": ("sr", "train a super-resolution network with perceptual losses (Johnson et al.)"),
    "evaluate-sr": ("sr", "compare super-resolution networks against bicubic: PSNR, SSIM, LPIPS"),
    "gaze-train": ("gaze", "train a model of where people look on eye-tracking data (DeepGaze I and II)"),
    "gaze": ("gaze", "predict where people look in images: a fixation-density heat map"),
    "gaze-eval": ("gaze", "score a gaze model against fixations: LL, information gain, AUC, sAUC, NSS, CC"),
}

HELP = {name: text for name, (_module, text) in COMMANDS.items()}

#: The commands as ``percept --help`` lists them, by what they are for.
COMMAND_GROUPS = (
    ("style transfer", ("stylize", "stylize-video", "texture", "train-style", "train-adain")),
    ("transfer learning", ("train", "evaluate", "predict", "lr-find", "augment-preview", "export")),
    ("understanding CNNs", ("explain",)),
    ("artwork service", ("serve", "worker")),
    ("images and metrics", ("compare",)),
    ("super-resolution", ("upscale", "train-sr", "evaluate-sr")),
    ("where people look", ("gaze", "gaze-train", "gaze-eval")),
    ("tools", ("models", "info")),
)
