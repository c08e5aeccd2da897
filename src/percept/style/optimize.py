"""Neural style transfer by optimisation (Gatys, Ecker & Bethge, CVPR 2016) and texture synthesis
(Gatys, Ecker & Bethge, NIPS 2015).

The image itself is optimised so that its features in a pretrained network match the content image's
features (:func:`percept.losses.content_loss`) and the style images' Gram matrices
(:func:`percept.losses.style_loss`; with a ``mask``, each style in its own region through guided Gram matrices,
Gatys et al. 2017, :mod:`percept.style.guided`), with a total-variation prior. Targets are computed once per scale and
every forward pass stops at the deepest layer in use. Coarse-to-fine stages start from the upsampled result
of the previous stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..device import is_out_of_memory, resolve_device
from ..errors import PerceptError
from ..image import (
    ImageInput,
    as_pil,
    combine_luminance_chroma,
    fit_size,
    image_list,
    load_image,
    luminance,
    match_color,
    match_luminance,
    resize,
    to_tensor,
)
from ..losses import ContentLoss, StyleLoss, range_loss, tv_loss
from ..models import FeatureNet, get_model
from ..params import from_settings, to_record
from ..record import describe_input, make_record
from .guided import RegionStyleLoss, load_masks, mask_record, resize_masks
from .params import StyleParams, method_settings, unused_settings


@dataclass
class Iterate:
    """Progress report passed to a ``callback`` after every iteration."""

    stage: int  # 0-based coarse-to-fine stage
    stages: int
    step: int  # 1-based step counted over all stages
    total_steps: int
    losses: dict[str, float]  # "content", "style", "tv", "total" (weighted)
    image: torch.Tensor  # current (1, 3, H, W) image, detached; do not modify


@dataclass
class StyleResult:
    """What every style method returns: :func:`stylize`, :func:`synthesize_texture`,
    :func:`~percept.style.adain_stylize.stylize_adain` and
    :func:`~percept.style.transform_stylize.stylize_with_model`."""

    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    record: dict[str, Any]  # percept.record.make_record: method, every setting, inputs, versions, facts
    history: list[dict[str, float]] = field(default_factory=list)  # losses at every step (optimisation)
    frames: list[torch.Tensor] = field(default_factory=list)  # snapshots every `frame_every` steps
    seconds: float = 0.0


#: Weight of :func:`percept.losses.range_loss`: strong enough that only a few pixels leave [0, 1].
RANGE_WEIGHT = 1e4


class _Objective:
    """Weighted content + style + TV loss against fixed targets, for one network and one scale."""

    def __init__(
        self,
        net: FeatureNet,
        params: StyleParams,
        content: torch.Tensor | None,
        styles: list[torch.Tensor],
        masks: torch.Tensor | None = None,
    ) -> None:
        """``masks``: ``(1, K, H, W)`` on the image's grid, one region per style (None: the styles blend)."""
        self.net = net
        self.params = params
        self.content_layers = params.resolved_content_layers() if content is not None and params.content_weight else []
        self.style_layers = params.resolved_style_layers()
        self.content_layer_weights = params.content_layer_weights or [1.0] * len(self.content_layers)
        self.style_layer_weights = params.style_layer_weights or [1.0] * len(self.style_layers)
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        with torch.no_grad():
            self.content_losses = []
            if self.content_layers:
                feats = net(content, self.content_layers)
                self.content_losses = [ContentLoss(feats[name]) for name in self.content_layers]
            style_feats = [net(s, self.style_layers) for s in styles]
            blend = params.style_blend_weights or [1.0] * len(styles)
            self.style_losses = [
                RegionStyleLoss([f[name] for f in style_feats], masks) if masks is not None
                else StyleLoss.from_features([f[name] for f in style_feats], blend) for name in self.style_layers
            ]

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.net(image, self.layers)
        p = self.params
        zero = image.new_zeros(())
        content = sum(
            (w * loss(feats[name]) for w, loss, name in zip(self.content_layer_weights, self.content_losses, self.content_layers)),
            zero,
        ) / max(1e-12, float(sum(self.content_layer_weights)))
        style = sum(
            (w * loss(feats[name]) for w, loss, name in zip(self.style_layer_weights, self.style_losses, self.style_layers)),
            zero,
        ) / max(1e-12, float(sum(self.style_layer_weights)))
        tv = tv_loss(image)
        out_of_range = range_loss(image)
        total = p.content_weight * content + p.style_weight * style + p.tv_weight * tv + RANGE_WEIGHT * out_of_range
        return total, {"content": content, "style": style, "tv": tv, "range": out_of_range, "total": total}


def _stage_inputs(
    content: Image.Image | None, styles: list[Image.Image], params: StyleParams, longest: int, device: torch.device
) -> tuple[tuple[int, int], torch.Tensor | None, list[torch.Tensor]]:
    """Output ``(w, h)``, content ``(1, 3, h, w)`` (None for textures) and style tensors for one stage.

    Applies colour preservation: luminance-only images, or styles recoloured to the content's statistics.
    """
    if content is not None:
        out_size = fit_size(*content.size, longest)
        content_t = to_tensor(content, size=out_size).to(device)
        style_ts = [to_tensor(s, longest=max(16, round(longest * params.style_scale))).to(device) for s in styles]
    else:  # texture: the source at its own pixel scale, relative to the final size
        out_size, content_t = (longest, longest), None
        scale = params.style_scale * longest / params.size
        style_ts = [to_tensor(s, longest=max(16, round(max(s.size) * scale))).to(device) for s in styles]
    if params.preserve_color == "luminance" and content_t is not None:
        content_t = luminance(content_t)
        style_ts = [match_luminance(luminance(s), content_t) for s in style_ts]
    elif params.preserve_color == "match" and content_t is not None:
        style_ts = [match_color(s.cpu(), content_t.cpu()).to(device) for s in style_ts]
    return out_size, content_t, style_ts


def _first_image(
    params: StyleParams,
    out_size: tuple[int, int],
    content: torch.Tensor | None,
    styles: list[torch.Tensor],
    init: Image.Image | None,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """The image optimisation starts from: seeded noise (textures, ``init=noise``), content, style or a file."""
    if content is None or params.init == "noise":
        return torch.rand(1, 3, out_size[1], out_size[0], generator=generator).to(device)
    if params.init == "content":
        return content.clone()
    if params.init == "style":
        return resize(styles[0], out_size)
    image = to_tensor(init, size=out_size).to(device)
    return luminance(image) if params.preserve_color == "luminance" else image


def _check_big_enough(
    net: FeatureNet, params: StyleParams, content: torch.Tensor | None, styles: list[torch.Tensor]
) -> None:
    """One clear error (instead of a shape error deep in PyTorch) when an image is too small for a layer."""
    checks = [("style image", s, params.resolved_style_layers()) for s in styles]
    if content is not None:
        checks.append(("output", content, params.resolved_content_layers() + params.resolved_style_layers()))
    for what, image, layers in checks:
        need = net.min_input_size(layers)
        if min(image.shape[-2:]) < need:
            h, w = image.shape[-2:]
            raise PerceptError(
                f"{what} is {w}x{h} px at this scale, too small for {max(layers, key=net.layer_names.index)} of "
                f"{net.arch} (needs >= {need} px per side); raise --size or --style-scale, or use shallower layers"
            )


def _optimise(
    objective: _Objective,
    start: torch.Tensor,
    params: StyleParams,
    on_step: Callable[[torch.Tensor, dict[str, torch.Tensor]], None],
) -> torch.Tensor:
    """Run ``params.iterations`` loss evaluations from ``start``; return the optimised image."""
    image = start.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    if params.iterations == 0:
        return image.detach()
    if params.optimizer == "lbfgs":
        # No line search: N evaluations (forward + backward) give N - 1 image updates. Tolerances at 0 so it
        # only stops early if the search direction stops descending.
        opt = torch.optim.LBFGS(
            [image], lr=params.resolved_lr(), max_iter=params.iterations, max_eval=params.iterations,
            tolerance_grad=0.0, tolerance_change=0.0, history_size=100,
        )
        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            total, parts = objective(image)
            total.backward()
            on_step(image, parts)
            return total

        opt.step(closure)
    else:
        opt = torch.optim.Adam([image], lr=params.resolved_lr())
        for _ in range(params.iterations):
            opt.zero_grad(set_to_none=True)
            total, parts = objective(image)
            total.backward()
            opt.step()
            with torch.no_grad():
                image.clamp_(0, 1)
            on_step(image, parts)
    return image.detach().clamp(0, 1)


def _run(
    *,
    content: ImageInput | None,
    styles: Sequence[ImageInput],
    params: StyleParams,
    callback: Callable[[Iterate], None] | None,
    progress: bool,
    frame_every: int,
    method: str,
) -> StyleResult:
    started = time.perf_counter()
    if not styles:
        raise PerceptError("give at least one style image")
    if params.style_blend_weights and len(params.style_blend_weights) != len(styles):
        raise PerceptError(
            f"style-blend-weights has {len(params.style_blend_weights)} values for {len(styles)} style images"
        )
    device = resolve_device(params.device)
    torch.manual_seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed)

    content_pil = as_pil(content, what="content image") if content is not None else None
    style_pils = [as_pil(s, what="style image" if content is not None else "texture source") for s in styles]
    masks = None
    if params.has_mask and content_pil is not None:
        masks = load_masks(params.mask, len(styles), fit_size(*content_pil.size, params.size))
    init_pil = None
    if method == "optimize" and params.init not in ("content", "noise", "style"):
        init_pil = load_image(params.init, what="init image")

    net = get_model(
        params.network, params.weights or None, kind="features", pooling=params.pooling,
        preprocessing=params.preprocessing, device=device,
    )
    net.validate_layers(params.resolved_content_layers() if method == "optimize" else [])
    net.validate_layers(params.resolved_style_layers())

    stage_sizes = params.stage_sizes()
    total_steps = params.iterations * len(stage_sizes)
    bar = tqdm(total=total_steps, desc=method, unit="it", disable=not progress, dynamic_ncols=True, leave=True)
    history: list[dict[str, float]] = []
    frames: list[torch.Tensor] = []
    image: torch.Tensor | None = None
    try:
        for stage, longest in enumerate(stage_sizes):
            out_size, content_t, style_ts = _stage_inputs(content_pil, style_pils, params, longest, device)
            _check_big_enough(net, params, content_t, style_ts)
            if image is not None:  # coarse-to-fine: continue from the previous stage
                start = resize(image, out_size)
            else:
                start = _first_image(params, out_size, content_t, style_ts, init_pil, generator, device)
            stage_masks = resize_masks(masks, out_size).to(device) if masks is not None else None
            objective = _Objective(net, params, content_t, style_ts, stage_masks)

            def on_step(img: torch.Tensor, parts: dict[str, torch.Tensor], _stage: int = stage) -> None:
                values = {k: float(v.detach()) for k, v in parts.items()}
                history.append({"stage": _stage, **values})
                step = len(history)
                bar.update(1)
                if step % 5 == 0 or step == total_steps:
                    bar.set_postfix(size=max(out_size), content=f"{values['content']:.3g}",
                                    style=f"{values['style']:.3g}", tv=f"{values['tv']:.3g}",
                                    total=f"{values['total']:.3g}", refresh=False)
                if frame_every and step % frame_every == 0:
                    frames.append(img.detach().clamp(0, 1).cpu())
                if callback is not None:
                    callback(Iterate(_stage, len(stage_sizes), step, total_steps, values, img.detach()))

            image = _optimise(objective, start, params, on_step)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise PerceptError(
            f"out of memory on {device} at {max(out_size)} px; lower --size, use --optimizer adam or --device cpu"
        ) from None
    finally:
        bar.close()

    assert image is not None
    if params.preserve_color == "luminance" and content_pil is not None:
        image = combine_luminance_chroma(image, to_tensor(content_pil, size=tuple(image.shape[-1:-3:-1])).to(device))

    names = method_settings(method)
    inputs = ({"content": describe_input(content), "styles": [describe_input(s) for s in styles]}
              if method == "optimize" else {"source": describe_input(styles[0])})
    if init_pil is not None:
        inputs["init"] = describe_input(params.init)
    mask_param = ""
    if masks is not None:
        mask_param, inputs["mask"] = mask_record(params.mask)
    seconds = time.perf_counter() - started
    record = make_record(
        method, {k: v for k, v in to_record(replace(params, mask=mask_param)).items() if k in names}, inputs=inputs,
        weights_id=net.weights.id, device=str(device),  # type: ignore[attr-defined]
        final_losses=history[-1] if history else None, size_px=list(image.shape[-1:-3:-1]),
        seconds=round(seconds, 2),
    )
    return StyleResult(image.cpu(), record, history, frames, seconds)


def stylize(
    content: ImageInput,
    styles: ImageInput | Sequence[ImageInput],
    *,
    callback: Callable[[Iterate], None] | None = None,
    progress: bool = False,
    frame_every: int = 0,
    **settings: Any,
) -> StyleResult:
    """Paint ``content`` in the style of ``styles`` by optimising the image (Gatys et al. 2016).

    Args:
        content: content image: a path, a PIL image or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
        styles: one style image or several (blended by ``style_blend_weights``, or each in its region of
            ``mask``).
        callback: called with an :class:`Iterate` after every step.
        progress: show a tqdm progress bar with the current losses.
        frame_every: keep a snapshot every N steps in ``result.frames`` (0 = none).
        **settings: any field of :class:`~percept.style.params.StyleParams` (``size``, ``iterations``,
            ``style_weight``, ``preserve_color``, ``seed``, ...). ``mask``: styles by region (guided Gram
            matrices, Gatys et al. 2017): for two styles one mask (white: the first style, black: the second, grey
            blends), for K styles K masks (a list, or files comma-separated); image files, PIL images or tensors
            in ``[0, 1]`` with the content's aspect ratio (see :mod:`percept.style.guided`).

    Returns:
        A :class:`StyleResult` whose ``image`` is ``(1, 3, H, W)`` with longest side ``size`` and whose
        ``record`` (method ``optimize``) holds every setting, the inputs and the final losses.
    """
    params = from_settings(StyleParams, settings)
    return _run(content=content, styles=image_list(styles), params=params, callback=callback, progress=progress,
                frame_every=frame_every, method="optimize")


def synthesize_texture(
    source: ImageInput,
    *,
    callback: Callable[[Iterate], None] | None = None,
    progress: bool = False,
    frame_every: int = 0,
    **settings: Any,
) -> StyleResult:
    """Synthesise a new ``size x size`` texture with the Gram statistics of ``source`` (Gatys et al. 2015).

    Style loss only (plus TV), starting from seeded noise. Accepts the same settings as :func:`stylize`
    except those about content; the ``record``'s method is ``texture``.
    """
    content_only = [k for k in unused_settings("texture", settings) if k in method_settings("optimize")]
    if content_only:
        raise PerceptError(f"{content_only[0]} does not apply to texture synthesis")
    params = from_settings(StyleParams, {**settings, "content_weight": 0.0, "init": "noise"})
    return _run(content=None, styles=[source], params=params, callback=callback, progress=progress,
                frame_every=frame_every, method="texture")
