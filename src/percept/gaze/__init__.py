"""Predicting where people look: DeepGaze-style fixation densities trained on eye-tracking data.

- Data (:mod:`~percept.gaze.data`): a folder of stimuli with ``images.csv`` and ``fixations.csv``, checked line by
  line (:func:`load_data`), split by image (:func:`split_images`, :func:`kfold`).
- Features (:mod:`~percept.gaze.features`): frozen AlexNet / VGG-19 layers per image, cached on disk.
- Baselines: the kernel-density centre bias (:func:`fit_centre_bias`), the uniform density and a Gaussian blob.
- Models (:mod:`~percept.gaze.models`): DeepGaze I (linear readout) and II (readout network), blur, centre bias,
  log-softmax over pixels; trained by :func:`train_gaze` into a GAZE.pt file (:func:`load_gaze_model`).
- Use: :func:`predict_gaze` (densities of new images), :func:`evaluate_gaze` (LL, IG, AUC, sAUC, NSS, CC with the
  baselines beside; :mod:`~percept.gaze.metrics`).

Names are imported lazily (PEP 562): ``import percept.gaze`` imports no torch.
"""

from ..lazy import exports

_EXPORTS = {
    "FixationData": "data", "Split": "data", "Stimulus": "data", "kfold": "data", "load_data": "data",
    "split_images": "data", "WORK_SIZE": "data",
    "FeatureExtractor": "features", "FeatureSpec": "features",
    "CentreBias": "centre_bias", "fit_centre_bias": "centre_bias",
    "GaussianBlob": "baselines", "fit_gaussian_blob": "baselines", "uniform_log_density": "baselines",
    "DeepGaze": "models", "GaussianBlur": "models",
    "GazeModel": "files", "load_gaze_model": "files", "save_gaze_model": "files",
    "train_gaze": "train",
    "GazePrediction": "predict", "evaluate_gaze": "predict", "predict_gaze": "predict",
    "GazeEvalParams": "params", "GazeParams": "params", "GazeTrainParams": "params",
}  # fmt: skip
__all__ = sorted(_EXPORTS)
__getattr__ = exports(__name__, _EXPORTS)
