"""Settings of the fixation-prediction entry points: training (:class:`GazeTrainParams`), prediction
(:class:`GazeParams`) and evaluation (:class:`GazeEvalParams`).

:func:`percept.gaze.train.train_gaze`, :func:`percept.gaze.predict.predict_gaze` and
:func:`percept.gaze.predict.evaluate_gaze` take these fields as keyword arguments; ``percept gaze-train``, ``percept
gaze`` and ``percept gaze-eval`` generate their options from them. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PerceptError
from ..params import device_setting, setting

#: The trainable models: DeepGaze I (one linear readout) and DeepGaze II (a small readout network).
MODELS = ("deepgaze1", "deepgaze2")
#: The frozen ImageNet feature networks the readout reads.
BACKBONES = ("alexnet", "vgg19")
#: The network each model reads unless told otherwise (as in the papers).
DEFAULT_BACKBONE = {"deepgaze1": "alexnet", "deepgaze2": "vgg19"}
#: The layers read per network: AlexNet's three layers at stride 16 (DeepGaze I found conv5 carries most of the
#: prediction), and the five VGG-19 layers of DeepGaze II.
DEFAULT_LAYERS = {"alexnet": ["relu3", "relu4", "relu5"],
                  "vgg19": ["conv5_1", "relu5_1", "relu5_2", "conv5_3", "relu5_4"]}
#: DeepGaze II's readout: 1x1 convolutions with these output channels, softplus between them.
DEFAULT_READOUT = [8, 16, 2, 1]
#: What gaze-eval evaluates on.
SUBSETS = ("auto", "held-out", "all")


def _positive(params: Any, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if value is not None and not value >= 1:
            raise PerceptError(f"{name.replace('_', '-')} must be >= 1, got {value}")


@dataclass
class GazeTrainParams:
    """Training a DeepGaze readout on eye-tracking data (Kümmerer et al. 2015, 2017)."""

    model: str = setting("deepgaze1", "deepgaze1: one linear readout of the features; deepgaze2: a readout "
                         "network of 1x1 convolutions", choices=MODELS)
    backbone: str | None = setting(None, "frozen ImageNet network whose features are read: alexnet or vgg19",
                                   metavar="NETWORK", shown="alexnet for deepgaze1, vgg19 for deepgaze2")
    layers: list[str] | None = setting(None, "layers read (comma list; all are resampled to the grid of the "
                                       "largest)", shown="relu3,relu4,relu5 for alexnet, "
                                       "conv5_1,relu5_1,relu5_2,conv5_3,relu5_4 for vgg19")
    feature_size: int = setting(384, "the network sees each image resized to this longer side, px", metavar="PX")
    readout: list[int] | None = setting(None, "deepgaze2 only: output channels of its 1x1 convolutions (the last "
                                        "must be 1)", shown="8,16,2,1")
    folds: int = setting(5, "split the images into K folds (by image, seeded); 1 trains on every image",
                         metavar="K")
    fold: int = setting(0, "the fold held out from training (0 .. K-1); gaze-eval evaluates on it", metavar="I")
    val_fraction: float = setting(0.1, "share of the training images kept for early stopping", metavar="F")
    epochs: int = setting(40, "most passes over the training images; may be raised when resuming")
    patience: int = setting(5, "stop after this many epochs without a better validation log-likelihood",
                            metavar="N")
    batch_size: int = setting(8, "images per optimisation step")
    lr: float = setting(0.001, "Adam learning rate")
    seed: int = setting(0, "seeds the split, the initialisation and the order of the images")
    max_minutes: float | None = setting(None, "stop (and keep a checkpoint to resume from) after this many minutes",
                                        metavar="M")
    device: str = device_setting()

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise PerceptError(f"unknown model {self.model!r}; use {', '.join(MODELS)}")
        if self.backbone is not None and self.backbone not in BACKBONES:
            raise PerceptError(f"unknown backbone {self.backbone!r}; use {', '.join(BACKBONES)}")
        if self.readout is not None and self.model != "deepgaze2":
            raise PerceptError(f"--model {self.model} does not use --readout; drop it (or use --model deepgaze2)")
        _positive(self, "feature_size", "folds", "epochs", "patience", "batch_size")
        if self.feature_size < 64:
            raise PerceptError(f"feature-size must be >= 64 px, got {self.feature_size}")
        if not 0 <= self.fold < self.folds:
            raise PerceptError(f"fold must be 0 .. {self.folds - 1} for {self.folds} folds, got {self.fold}")
        if not 0 < self.val_fraction < 1:
            raise PerceptError(f"val-fraction must be between 0 and 1, got {self.val_fraction}")
        if not self.lr > 0:
            raise PerceptError(f"lr must be > 0, got {self.lr}")
        if self.max_minutes is not None and not self.max_minutes >= 0:
            raise PerceptError(f"max-minutes must be >= 0, got {self.max_minutes}")
        if self.readout is not None:
            self.readout = [int(c) for c in self.readout]
            if not self.readout or self.readout[-1] != 1 or min(self.readout) < 1:
                raise PerceptError(f"readout channels must be >= 1 and end with 1, got {self.readout}")
        if self.layers is not None:
            self.layers = [str(layer) for layer in self.layers]
            if not self.layers:
                raise PerceptError("give at least one layer")

    @property
    def network(self) -> str:
        """The backbone, resolved."""
        return self.backbone or DEFAULT_BACKBONE[self.model]

    @property
    def read_layers(self) -> list[str]:
        """The layers, resolved."""
        return list(self.layers or DEFAULT_LAYERS[self.network])

    @property
    def readout_channels(self) -> list[int]:
        """The readout's output channels: ``[1]`` (a linear readout) for deepgaze1."""
        return [1] if self.model == "deepgaze1" else list(self.readout or DEFAULT_READOUT)


@dataclass
class GazeParams:
    """Predicting where people look in images with a trained model."""

    model: str = setting("deepgaze2", "deepgaze2 (ships with percept: DeepGaze II trained on the fixations of 500 "
                         "scene photos) or a GAZE.pt written by percept gaze-train", metavar="MODEL")
    overlay: bool = setting(False, "draw the density over the photo instead of on its own")
    device: str = device_setting()


@dataclass
class GazeEvalParams:
    """Evaluating a trained model against fixations, with the uniform, Gaussian-blob and centre-bias baselines."""

    subset: str = setting("auto", "images evaluated: held-out (the fold the model never saw), all, or auto "
                          "(held-out when DATA is the data the model was trained on, else all)", choices=SUBSETS)
    cc_sigma: float = setting(8.0, "CC compares the prediction with the fixation map blurred by a Gaussian of this "
                              "sigma, px of the 256-px working grid", metavar="PX")
    device: str = device_setting()

    def __post_init__(self) -> None:
        if self.subset not in SUBSETS:
            raise PerceptError(f"unknown subset {self.subset!r}; use {', '.join(SUBSETS)}")
        if not self.cc_sigma > 0:
            raise PerceptError(f"cc-sigma must be > 0, got {self.cc_sigma}")
