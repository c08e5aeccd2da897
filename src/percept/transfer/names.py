"""Names of the backbones and classifiers (no heavy imports: the CLI reads them to build its help)."""

TORCHVISION_BACKBONES = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
FEATURE_NET_LAYERS = {"vgg16": "relu5_3", "vgg19": "relu5_4", "alexnet": "relu5"}
BACKBONES = ("efficientnet_lite0", "efficientnet_lite2", *FEATURE_NET_LAYERS, *TORCHVISION_BACKBONES)
CLASSIFIERS = ("logreg", "svm", "softmax")
#: Fine-tuning optimisers and their default learning rate and weight decay.
OPTIMIZER_DEFAULTS = {"adamw": {"lr": 5e-4, "weight_decay": 0.05}, "sgd": {"lr": 1e-2, "weight_decay": 5e-4}}
SCHEDULES = ("cosine", "onecycle")
