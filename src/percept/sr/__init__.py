"""Super-resolution with perceptual losses (Johnson, Alahi & Fei-Fei 2016) and the reference networks SRResNet and
SRGAN (names imported lazily, PEP 562, to keep the CLI start fast).

:func:`train_sr` trains a network, :func:`upscale` upscales an image with it, a reference network or bicubic
interpolation, :func:`evaluate_sr` compares upscalers on photos degraded as in training (:func:`degrade`).
"""

from ..lazy import exports

_EXPORTS = {"train_sr": "train", "upscale": "upscale", "UpscaleResult": "upscale", "load_upscaler": "upscale",
            "evaluate_sr": "evaluate", "SrEvaluation": "evaluate", "degrade": "degrade",
            "bicubic_upscale": "degrade", "SRNet": "network", "SRResNet": "reference", "load_sr_net": "files",
            "save_sr_net": "files", "TrainSrParams": "params", "UpscaleParams": "params",
            "EvaluateSrParams": "params"}
__all__ = sorted(_EXPORTS)


__getattr__ = exports(__name__, _EXPORTS)
