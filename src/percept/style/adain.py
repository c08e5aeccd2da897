"""Arbitrary style transfer in real time with Adaptive Instance Normalisation (Huang & Belongie, ICCV 2017).

One forward pass instead of an optimisation. The encoder ``f`` (``vgg19:gatys`` up to relu4_1, reflection
padding, frozen) maps the content image ``c`` and the style image ``s`` to features; AdaIN gives the content
features the channel-wise mean ``mu`` and standard deviation ``sigma`` of the style features::

    t = AdaIN(f(c), f(s)) = sigma(f(s)) * (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))

and the decoder ``g`` (:mod:`percept.style.decoder`) turns ``t`` into the stylised image ``g(t)``. The paper's
test-time controls (its Sec. 7) are options of :func:`stylize_adain`:

* content-style trade-off: ``t = alpha * AdaIN(f(c), f(s)) + (1 - alpha) * f(c)``;
* style interpolation: a convex combination ``sum_k w_k AdaIN(f(c), f(s_k))`` of the targets of several styles;
* colour preservation: recolour the style to the content's colour statistics first, or transfer luminance only;
* spatial control: a mask gives the foreground style 1 and the background style 2, each region normalised with
  its own content statistics.

:func:`train_adain` trains a decoder as in the paper: content loss ``|f(g(t)) - t|^2`` at relu4_1, style loss
the squared differences of channel means and standard deviations of ``f(g(t))`` and ``f(s)`` at relu1_1,
relu2_1, relu3_1 and relu4_1, Adam with the learning rate decay of the paper's code.
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .. import __version__
from ..device import amp_dtype, channels_last, is_out_of_memory, resolve_device
from ..errors import InterruptedRun, PerceptError
from ..image import (
    atomic_write,
    check_writable,
    combine_luminance_chroma,
    find_images,
    fit_size,
    load_image,
    luminance,
    match_color,
    match_luminance,
    to_tensor,
)
from ..models import FeatureNet, get_feature_net
from ..models.sources import ADAIN_ENCODER, UserFile
from .decoder import Decoder, load_decoder, save_decoder
from .optimize import ImageInput, StyleResult, _as_pil, _describe_input

#: Layers of the paper's style loss; the last one is the AdaIN layer (content loss, decoder input).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
ADAIN_LAYER = ADAIN_ENCODER["layer"]
#: The encoder downsamples by 8 (three poolings); images are padded to a multiple of it.
_STRIDE = 8
PRESERVE_COLOR = ("none", "luminance", "match")


# ------------------------------------------------------------------------------------------ the operation


def mean_std(
    features: torch.Tensor, weights: torch.Tensor | None = None, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over the positions of ``features``.

    Args:
        features: ``(B, C, H, W)``.
        weights: optional ``(B, 1, H, W)`` or ``(1, 1, H, W)`` in ``[0, 1]``: the statistics of that region only
            (weighted mean and unbiased weighted variance; for a binary mask exactly those of the positions
            inside it).
        eps: added to the variance (as in the paper's code), so a flat channel has std ``sqrt(eps)``.

    Returns:
        ``(mean, std)``, each ``(B, C, 1, 1)``. The variance is unbiased (divides by ``N - 1``).
    """
    flat = features.flatten(2)
    if weights is None:
        return flat.mean(2)[..., None, None], (flat.var(2) + eps).sqrt()[..., None, None]
    w = weights.expand(features.shape[0], 1, *features.shape[2:]).flatten(2)
    total = w.sum(2, keepdim=True).clamp_min(1e-8)
    mean = (w * flat).sum(2, keepdim=True) / total
    dof = (total - w.pow(2).sum(2, keepdim=True) / total).clamp_min(1e-8)
    var = (w * (flat - mean).pow(2)).sum(2, keepdim=True) / dof
    return mean.unsqueeze(-1), (var + eps).sqrt().unsqueeze(-1)


def adain(
    content_feat: torch.Tensor,
    style_feat: torch.Tensor,
    eps: float = 1e-5,
    *,
    content_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Adaptive instance normalisation: normalise each content channel, then scale and shift it by the style's.

    Args:
        content_feat: ``(B, C, H, W)``.
        style_feat: ``(B, C, H', W')`` or ``(1, C, H', W')`` (any spatial size: only its statistics count).
        eps: added to both variances (see :func:`mean_std`).
        content_mask: optional ``(B or 1, 1, H, W)`` weights in ``[0, 1]``: normalise with the statistics of that
            region of the content (spatial control). The output is defined everywhere.

    Returns:
        ``(B, C, H, W)`` whose channel means and stds (inside ``content_mask``) are the style's.
    """
    c_mean, c_std = mean_std(content_feat, content_mask, eps)
    s_mean, s_std = mean_std(style_feat, eps=eps)
    return (content_feat - c_mean) / c_std * s_std + s_mean


class AdaIN(nn.Module):
    """:func:`adain` as a module: ``AdaIN()(content_feat, style_feat)``."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, content_feat: torch.Tensor, style_feat: torch.Tensor) -> torch.Tensor:
        return adain(content_feat, style_feat, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


def adain_target(
    content_feat: torch.Tensor,
    style_feats: Sequence[torch.Tensor],
    *,
    alpha: float = 1.0,
    weights: Sequence[float] | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The decoder input ``t`` for one content and one or more styles (the paper's test-time controls).

    Args:
        content_feat: ``(B, C, H, W)`` content features ``f(c)``.
        style_feats: features ``(1, C, H_k, W_k)`` of each style.
        alpha: content-style trade-off in ``[0, 1]``: ``t = alpha * target + (1 - alpha) * f(c)``.
        weights: one per style, the convex combination ``target = sum_k w_k AdaIN(f(c), f(s_k))`` (normalised
            to sum 1; default equal).
        mask: ``(B or 1, 1, H, W)`` in ``[0, 1]`` (two styles exactly): ``target = m * AdaIN_m(f(c), f(s_1)) +
            (1 - m) * AdaIN_{1-m}(f(c), f(s_2))``, where ``AdaIN_m`` normalises with the content's statistics
            inside ``m``.

    Returns:
        ``t``, shaped like ``content_feat``.
    """
    if mask is not None:
        if len(style_feats) != 2:
            raise PerceptError(f"a mask needs exactly two styles (foreground, background), got {len(style_feats)}")
        fg = adain(content_feat, style_feats[0], content_mask=mask)
        bg = adain(content_feat, style_feats[1], content_mask=1 - mask)
        target = mask * fg + (1 - mask) * bg
    else:
        weights = _normalised_weights(weights, len(style_feats))
        target = sum(w * adain(content_feat, s) for w, s in zip(weights, style_feats))
    return alpha * target + (1 - alpha) * content_feat


def mean_std_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's style loss at one layer: ``mse(mu(F), mu(S)) + mse(sigma(F), sigma(S))`` (scalar).

    ``features`` ``(B, C, H, W)``; ``target`` ``(B or 1, C, H', W')``. Means over batch and channels.
    """
    mean, std = mean_std(features)
    t_mean, t_std = mean_std(target)
    return F.mse_loss(mean, t_mean.expand_as(mean)) + F.mse_loss(std, t_std.expand_as(std))


def _normalised_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise PerceptError(f"style weights has {len(weights)} values for {n} style image(s); give one per style")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise PerceptError(f"style weights must be >= 0 with a positive sum, got {weights}")
    return [w / sum(weights) for w in weights]


# -------------------------------------------------------------------------------------------- the network


class AdaINNet(nn.Module):
    """Encoder ``f`` + AdaIN + decoder ``g``.

    Args:
        encoder: a :class:`~percept.models.FeatureNet` (``vgg19:gatys``, reflection padding; frozen).
        decoder: a :class:`~percept.style.decoder.Decoder` for that encoder.

    ``net(content, style, alpha)`` stylises a batch ``(B, 3, H, W)`` in ``[0, 1]`` with one style
    ``(1, 3, H', W')`` and returns ``(B, 3, H, W)`` in ``[0, 1]``; build one with :func:`load_adain` and reuse it
    (for video frames, say) to skip loading the weights again.
    """

    def __init__(self, encoder: FeatureNet, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> relu4_1 features ``(B, 512, H // 8, W // 8)``."""
        return self.encoder(image, [ADAIN_LAYER])[ADAIN_LAYER]

    def decode(self, target: torch.Tensor) -> torch.Tensor:
        """Features ``(B, 512, h, w)`` -> image ``(B, 3, 8h, 8w)``, not clamped."""
        return self.decoder(target)

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        padded, (h, w) = pad_to_multiple(content, _STRIDE)
        target = adain_target(self.encode(padded), [self.encode(style)], alpha=alpha)
        return self.decode(target)[..., :h, :w].clamp(0, 1)


def load_adain(decoder: str | os.PathLike | None = None, *, device: str | torch.device = "cpu") -> AdaINNet:
    """The AdaIN network with pretrained weights, frozen, in eval mode, on ``device``.

    ``decoder``: a registered decoder name (default: the published ``coco_wikiart``) or a decoder file (see
    :mod:`percept.style.decoder`).
    """
    return AdaINNet(_encoder(device), load_decoder(decoder, device=device)).eval()


@functools.lru_cache(maxsize=2)
def _shared_adain(decoder: str | None, stamp: tuple[int, int] | None, device: torch.device) -> AdaINNet:
    """:func:`load_adain` kept between :func:`stylize_adain` calls; ``stamp`` (mtime, size) of a decoder file
    makes a rewritten file load again."""
    return load_adain(decoder, device=device)


def _encoder(device: str | torch.device) -> FeatureNet:
    arch, weights = ADAIN_ENCODER["encoder"].split(":")
    return get_feature_net(arch, weights, padding_mode=ADAIN_ENCODER["padding_mode"], device=device)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflection-pad ``(B, C, H, W)`` on the bottom and right to multiples of ``multiple``; return it and
    the original ``(H, W)`` (crop the result back with ``[..., :H, :W]``)."""
    h, w = image.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == pad_w == 0:
        return image, (h, w)
    return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect"), (h, w)


# ------------------------------------------------------------------------------------------ stylisation


def _mask_tensor(mask: ImageInput, out_size: tuple[int, int]) -> torch.Tensor:
    """``mask`` (file, PIL image or tensor in [0, 1], 1 = foreground) -> ``(1, 1, h, w)`` at ``out_size=(w, h)``."""
    if isinstance(mask, (str, os.PathLike, Image.Image)):
        pil = (mask if isinstance(mask, Image.Image) else load_image(mask, what="mask")).convert("L")
        m = to_tensor(pil.convert("RGB"))[:, :1]
    elif isinstance(mask, torch.Tensor):
        m = mask.detach().float().cpu()
        while m.dim() > 2 and m.shape[0] == 1:
            m = m[0]
        if m.dim() != 2:
            raise PerceptError(f"mask tensor must have shape (H, W), (1, H, W) or (1, 1, H, W), got "
                               f"{tuple(mask.shape)}")
        if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise PerceptError("mask tensor values must lie in [0, 1] (1 = foreground, style 1)")
        m = m[None, None]
    else:
        raise PerceptError(f"mask must be an image file, a PIL image or a tensor, not {type(mask).__name__}")
    (w, h), (mw, mh) = out_size, (m.shape[-1], m.shape[-2])
    if abs(math.log((mw / mh) / (w / h))) > 0.02:
        raise PerceptError(f"mask is {mw}x{mh} px but the content is {w}x{h}: give a mask with the content's "
                           "aspect ratio")
    return F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def stylize_adain(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    alpha: float = 1.0,
    style_weights: Sequence[float] | None = None,
    preserve_color: str = "none",
    mask: ImageInput | None = None,
    size: int = 512,
    style_size: int | None = None,
    decoder: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
) -> StyleResult:
    """Paint ``content`` in the style of ``styles`` in one forward pass (AdaIN, Huang & Belongie 2017).

    Args:
        content: a path, a PIL image or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        styles: one style image or several (same kinds as ``content``).
        alpha: content-style trade-off in ``[0, 1]``: 0 reconstructs the content through the network, 1 is full
            style.
        style_weights: one weight per style (>= 0, normalised to sum 1) for style interpolation; default equal.
        preserve_color: ``none``; ``match`` (recolour each style to the content's colour mean and covariance
            first); or ``luminance`` (stylise the luminance only, keep the content's colours, YIQ).
        mask: spatial control with exactly two styles: an image file, PIL image or tensor ``(H, W)``/``(1, H,
            W)``/``(1, 1, H, W)`` in ``[0, 1]`` with the content's aspect ratio; white (1) gets style 1, black (0)
            style 2; grey blends.
        size: longest side of the output in pixels (aspect ratio kept; any size, padded internally to a
            multiple of 8).
        style_size: longest side the style images are resized to (default: ``size``); larger means smaller
            strokes relative to the output.
        decoder: a registered decoder name or a decoder file (from :func:`train_adain`); default the published
            decoder.
        device: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns:
        A :class:`~percept.style.optimize.StyleResult` whose ``image`` is ``(1, 3, H, W)`` in ``[0, 1]`` on the
        CPU and whose ``params`` record every setting, the inputs (with SHA-256 of files), the encoder and decoder.
        Deterministic: the same inputs give the same image on the same device.
    """
    started = time.perf_counter()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image, torch.Tensor)) else list(styles)
    if not styles:
        raise PerceptError("give at least one style image")
    if not 0.0 <= alpha <= 1.0:
        raise PerceptError(f"alpha must be between 0 (content) and 1 (full style), got {alpha}")
    if preserve_color not in PRESERVE_COLOR:
        raise PerceptError(f"unknown preserve-color {preserve_color!r}; use {', '.join(PRESERVE_COLOR)}")
    style_size = size if style_size is None else style_size
    for name, value in (("size", size), ("style size", style_size)):
        if not 16 <= value <= 16384:
            raise PerceptError(f"{name} {value} out of range; use 16 to 16384 pixels")
    if mask is not None and len(styles) != 2:
        raise PerceptError(f"a mask needs exactly two style images (foreground, background), got {len(styles)}")
    if mask is not None and style_weights is not None:
        raise PerceptError("style weights and a mask cannot be combined: the mask decides where each style goes")
    weights = None if mask is not None else _normalised_weights(style_weights, len(styles))

    content_pil = _as_pil(content, "content image")
    style_pils = [_as_pil(s, "style image") for s in styles]
    out_size = fit_size(*content_pil.size, size)
    mask_t = _mask_tensor(mask, out_size) if mask is not None else None
    dev = resolve_device(device)
    decoder_file = Path(decoder) if decoder is not None and Path(decoder).is_file() else None
    stamp = (decoder_file.stat().st_mtime_ns, decoder_file.stat().st_size) if decoder_file else None
    net = _shared_adain(None if decoder is None else str(decoder), stamp, dev)

    content_t = to_tensor(content_pil, size=out_size)
    style_ts = [to_tensor(s, longest=style_size) for s in style_pils]
    if preserve_color == "match":
        style_ts = [match_color(s, content_t) for s in style_ts]
    elif preserve_color == "luminance":
        style_ts = [match_luminance(luminance(s), luminance(content_t)) for s in style_ts]
    source = luminance(content_t) if preserve_color == "luminance" else content_t
    try:
        with torch.inference_mode():
            padded, (h, w) = pad_to_multiple(source.to(dev), _STRIDE)
            content_feat = net.encode(padded)
            style_feats = [net.encode(s.to(dev)) for s in style_ts]
            feat_mask = None
            if mask_t is not None:
                feat_mask = F.interpolate(pad_to_multiple(mask_t.to(dev), _STRIDE)[0],
                                          size=content_feat.shape[-2:], mode="area")
            target = adain_target(content_feat, style_feats, alpha=alpha, weights=weights, mask=feat_mask)
            image = net.decode(target)[..., :h, :w].clamp(0, 1).cpu()
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise PerceptError(f"out of memory on {dev} at {size} px; lower the size or use device cpu") from None
    if preserve_color == "luminance":
        image = combine_luminance_chroma(image, content_t)

    entry = net.decoder.weights
    source_file = entry.locate()
    decoder_record = {"id": entry.id, **{k: v for k, v in net.decoder.meta.items() if k != "history"}}
    if isinstance(source_file[0], UserFile):
        decoder_record.update(_describe_input(source_file[1]))
    record = {
        "percept_version": __version__,
        "torch_version": torch.__version__,
        "kind": "adain",
        "params": {"alpha": alpha, "style_weights": weights, "preserve_color": preserve_color, "size": size,
                   "style_size": style_size, "decoder": None if decoder is None else str(decoder),
                   "device": str(device)},
        "weights_id": net.encoder.weights.id,
        "encoder": dict(ADAIN_ENCODER),
        "decoder": decoder_record,
        "device": str(dev),
        "content": _describe_input(content),
        "styles": [_describe_input(s) for s in styles],
        "mask": _describe_input(mask) if mask is not None else None,
        "size_px": [image.shape[-1], image.shape[-2]],
    }
    return StyleResult(image, record, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------------------------- training


def adain_loss(
    net: AdaINNet, content: torch.Tensor, style: torch.Tensor, *, content_weight: float = 1.0,
    style_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training objective of the decoder for a batch of content and style images ``(B, 3, S, S)``.

    ``t = AdaIN(f(c), f(s))``; content loss ``mse(f(g(t)), t)`` at relu4_1; style loss ``sum_l
    mean_std_loss(f_l(g(t)), f_l(s))`` over :data:`STYLE_LAYERS`. Returns the weighted total and the parts
    (``content``, ``style``, ``total``). Gradients reach the decoder only (the encoder is frozen).
    """
    with torch.no_grad():
        style_feats = net.encoder(style, STYLE_LAYERS)
        target = adain(net.encode(content), style_feats[ADAIN_LAYER])
    out_feats = net.encoder(net.decode(target), STYLE_LAYERS)
    # float32 losses also under autocast: low-precision means and variances are too coarse for the style loss
    content_loss = F.mse_loss(out_feats[ADAIN_LAYER].float(), target.float())
    style_loss = sum(mean_std_loss(out_feats[name].float(), style_feats[name].float()) for name in STYLE_LAYERS)
    total = content_weight * content_loss + style_weight * style_loss
    return total, {"content": content_loss, "style": style_loss, "total": total}


class _Batches(Dataset):
    """Item ``step`` -> a batch of content and of style crops ``(B, 3, size, size)`` each.

    Images are drawn at random and cropped at random from a generator seeded by ``(seed, step)``: the batches
    are the same with any number of loader workers and after resuming. Each image is first resized so that its
    shorter side is ``load_size``. An unreadable image is skipped (with a warning) for the next one.
    """

    def __init__(self, contents: list[Path], styles: list[Path], batch_size: int, size: int, load_size: int,
                 seed: int) -> None:
        self.contents, self.styles = contents, styles
        self.batch_size, self.size, self.load_size, self.seed = batch_size, size, load_size, seed

    def _crop(self, files: list[Path], generator: torch.Generator) -> torch.Tensor:
        index = int(torch.randint(len(files), (1,), generator=generator))
        for k in range(len(files)):
            path = files[(index + k) % len(files)]
            try:
                image = load_image(path)
                break
            except PerceptError as exc:
                warnings.warn(f"skipping {exc}", stacklevel=2)
        else:
            raise PerceptError(f"no readable images among {len(files)} files in {files[0].parent}")
        scale = self.load_size / min(image.size)
        image = image.resize((max(self.size, round(image.width * scale)), max(self.size, round(image.height * scale))),
                             Image.Resampling.BILINEAR)
        x = int(torch.randint(image.width - self.size + 1, (1,), generator=generator))
        y = int(torch.randint(image.height - self.size + 1, (1,), generator=generator))
        return to_tensor(image.crop((x, y, x + self.size, y + self.size)))[0]

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        content = torch.stack([self._crop(self.contents, generator) for _ in range(self.batch_size)])
        style = torch.stack([self._crop(self.styles, generator) for _ in range(self.batch_size)])
        return content, style


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".ckpt")


#: Settings that must not change when a run is resumed (``steps`` may grow).
_FIXED_ON_RESUME = ("content_dir", "style_dir", "batch_size", "lr", "lr_decay", "size", "load_size",
                    "content_weight", "style_weight", "init", "seed", "log_every")


def train_adain(
    content_dir: str | os.PathLike,
    style_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-4,
    lr_decay: float = 5e-5,
    size: int = 256,
    load_size: int = 512,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    init: str | os.PathLike = "shipped",
    seed: int = 0,
    checkpoint_every: int = 1000,
    log_every: int = 100,
    device: str | torch.device = "auto",
    workers: int | None = None,
    amp: bool | None = None,
    resume: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train an AdaIN decoder on photos (``content_dir``) and paintings (``style_dir``); write it to ``out``.

    Each step draws ``batch_size`` random content and style images (searched recursively), resizes each so
    its shorter side is ``load_size`` and takes a random ``size`` x ``size`` crop; it minimises
    ``content_weight * content + style_weight * style`` (:func:`adain_loss`) with Adam at learning rate
    ``lr / (1 + lr_decay * step)``, as the paper's code (which trains 160,000 steps of batch 8 on MS-COCO and
    WikiArt).

    Args:
        steps: total number of steps (may be raised when resuming).
        init: ``shipped`` (start from the published decoder: fine-tuning), ``random`` (from scratch, seeded), or
            a decoder file to continue from.
        seed: seeds the random initialisation and every batch (reproducible, also across resumes).
        checkpoint_every: write ``OUT.ckpt`` (decoder, optimiser, losses) every N steps; an interrupted run
            continues from it with ``resume=True`` and the same settings. It is removed when the run completes.
        log_every: ``history`` holds the mean losses of every N steps.
        workers: image-loading processes (default: 0 on the CPU, up to 8 on an accelerator).
        amp: mixed precision (``None``: on CUDA only): float16 autocast with loss scaling on CUDA/MPS, bfloat16
            on the CPU; the networks then also run channels-last on CUDA and the CPU. The losses stay float32.
        progress: show a progress bar with the current losses.

    Returns:
        The run record: ``out``, ``params``, ``history`` (``step``, ``content``, ``style``, ``total``),
        ``final_losses``, ``device``, ``seconds``, ``resumed``. The decoder file holds the params and history too;
        use it with ``stylize_adain(..., decoder=out)``.
    """
    started = time.perf_counter()
    for name, value in (("steps", steps), ("batch size", batch_size), ("checkpoint every", checkpoint_every),
                        ("log every", log_every)):
        if value < 1:
            raise PerceptError(f"{name} must be >= 1, got {value}")
    if lr <= 0 or lr_decay < 0 or content_weight < 0 or style_weight < 0:
        raise PerceptError("lr must be > 0; lr decay, content weight and style weight must be >= 0")
    if not 16 <= size <= load_size:
        raise PerceptError(f"crop size {size} must be >= 16 and <= load size {load_size}")
    if Path(out).is_dir():
        raise PerceptError(f"decoder file {str(out)!r} is a directory; give a file name such as decoder.pth")
    out = check_writable(out, what="decoder file", image=False)
    checkpoint_file = _checkpoint_path(out)
    if resume and not checkpoint_file.is_file():
        done = " (it already finished)" if out.is_file() else ""
        raise PerceptError(f"no interrupted run to resume for {str(out)!r}{done}; drop --resume to start one")
    if not resume and checkpoint_file.is_file():
        raise PerceptError(f"{str(checkpoint_file)!r} holds an interrupted run; add --resume to continue it, or "
                           "choose another output file")
    if str(init) not in ("shipped", "random") and not Path(init).is_file():
        raise PerceptError(f"init {str(init)!r} is neither shipped, random nor an existing decoder file")
    contents = find_images(content_dir, "content")
    style_files = find_images(style_dir, "style")
    params = {"content_dir": str(Path(content_dir).resolve()), "style_dir": str(Path(style_dir).resolve()),
              "steps": steps, "batch_size": batch_size, "lr": lr, "lr_decay": lr_decay, "size": size,
              "load_size": load_size, "content_weight": content_weight, "style_weight": style_weight,
              "init": str(init), "seed": seed, "log_every": log_every,
              "n_content_images": len(contents), "n_style_images": len(style_files)}

    dev = resolve_device(device)
    dtype = amp_dtype(amp, dev)
    params["amp"] = str(dtype).removeprefix("torch.") if dtype is not None else None
    torch.manual_seed(seed)
    decoder = Decoder() if str(init) == "random" else load_decoder(None if str(init) == "shipped" else init)
    net = AdaINNet(_encoder(dev), decoder.to(dev).requires_grad_(True).train())
    if channels_last(dev, dtype):
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.decoder.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    autocast = torch.autocast(dev.type, dtype=dtype) if dtype is not None else nullcontext()
    state: dict[str, Any] = {"step": 0, "history": [], "window": {"content": 0.0, "style": 0.0, "total": 0.0}}
    if resume:
        try:
            saved = torch.load(checkpoint_file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure means a damaged checkpoint
            raise PerceptError(f"{str(checkpoint_file)!r} is damaged ({type(exc).__name__}); delete it and start "
                               "again") from None
        changed = [k for k in _FIXED_ON_RESUME if saved["params"].get(k) != params[k]]
        if changed:
            what = ", ".join(f"{k} {saved['params'].get(k)!r} -> {params[k]!r}" for k in changed)
            raise PerceptError(f"cannot resume {str(out)!r} with different settings ({what}); use the original "
                               "options or another output file")
        if saved["step"] >= steps:
            raise PerceptError(f"the interrupted run already did {saved['step']} steps; give more than that")
        net.decoder.load_state_dict(saved["decoder"])
        optimizer.load_state_dict(saved["optimizer"])
        if "scaler" in saved:
            scaler.load_state_dict(saved["scaler"])
        state = {key: saved[key] for key in state}

    if workers is None:
        workers = 0 if dev.type == "cpu" else min(8, os.cpu_count() or 1)
    batches = _Batches(contents, style_files, batch_size, size, load_size, seed)
    loader = DataLoader(batches, batch_size=None, sampler=range(state["step"], steps), num_workers=workers,
                        pin_memory=dev.type == "cuda")
    bar = tqdm(total=steps, initial=state["step"], desc="train AdaIN decoder", unit="step", disable=not progress,
               dynamic_ncols=True)
    saved_step = state["step"] if resume else None
    try:
        for content, style in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr / (1.0 + lr_decay * state["step"])
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                total, parts = adain_loss(net, content.to(dev, non_blocking=True), style.to(dev, non_blocking=True),
                                          content_weight=content_weight, style_weight=style_weight)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            state["step"] += 1
            for key, value in parts.items():
                state["window"][key] += float(value.detach()) / log_every
            if state["step"] % log_every == 0:
                state["history"].append({"step": state["step"], **state["window"]})
                state["window"] = dict.fromkeys(state["window"], 0.0)
                bar.set_postfix({k: f"{v:.3g}" for k, v in state["history"][-1].items() if k != "step"},
                                refresh=False)
            bar.update(1)
            if state["step"] % checkpoint_every == 0 and state["step"] < steps:
                checkpoint = {**state, "params": params, "decoder": net.decoder.state_dict(),
                              "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}
                atomic_write(checkpoint_file, lambda tmp: torch.save(checkpoint, tmp))
                saved_step = state["step"]
    except KeyboardInterrupt:
        bar.close()
        where = (f"{str(checkpoint_file)!r} holds the state after step {saved_step}: run the same command with "
                 "--resume to continue") if saved_step is not None else \
            f"no checkpoint was written yet (every {checkpoint_every} steps); start again"
        raise InterruptedRun(f"training interrupted at step {state['step']}; {where}") from None
    bar.close()
    if state["step"] % log_every:  # the last, partial window
        n = state["step"] % log_every
        state["history"].append({"step": state["step"], **{k: v * log_every / n for k, v in state["window"].items()}})
    history = state["history"]
    save_decoder(net.decoder, out, params=params, history=history)
    checkpoint_file.unlink(missing_ok=True)
    return {
        "out": str(out),
        "percept_version": __version__,
        "encoder": dict(ADAIN_ENCODER),
        "params": params,
        "history": history,
        "final_losses": history[-1] if history else None,
        "device": str(dev),
        "resumed": resume,
        "seconds": round(time.perf_counter() - started, 2),
    }
