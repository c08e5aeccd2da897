"""Names of the transfer-learning choices (no heavy imports: the CLI reads them to build its help). The backbone
names are the model registry's (:data:`percept.models.names.BACKBONES`)."""

CLASSIFIERS = ("logreg", "svm", "softmax")
#: Fine-tuning optimisers and their default learning rate and weight decay.
OPTIMIZER_DEFAULTS = {"adamw": {"lr": 5e-4, "weight_decay": 0.05}, "sgd": {"lr": 1e-2, "weight_decay": 5e-4}}
SCHEDULES = ("cosine", "onecycle")
