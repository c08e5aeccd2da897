"""Transfer learning: pretrained backbones as frozen feature extractors with linear classifiers, or fine-tuned.

Names are imported lazily (PEP 562) so that ``percept --help`` does not pay for scikit-learn and torchvision.
"""

from ..lazy import exports

_EXPORTS = {
    "DatasetSplit": "data", "scan_dataset": "data",
    "train_features": "linear", "train_finetune": "finetune", "train_auto": "auto",
    "evaluate": "runs", "load_run": "runs", "predict": "runs", "export_run": "export",
    "preview_augment": "augment",
    "AugmentOverrides": "params", "AugmentPreviewParams": "params", "EvaluateParams": "params",
    "ExportParams": "params", "FeaturesParams": "params", "PredictParams": "params",
    "AutoParams": "auto_params",
}  # fmt: skip
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)
