"""Temporal consistency of stylised video frames (Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos",
GCPR 2016).

* Optimisation: :class:`TemporalObjective` wraps the image objective of :mod:`percept.style.optimize` and adds
  ``weight * sum_j mean(c_j * (x - w_j)^2)``, the previous stylised frames ``w_j`` moved onto the current frame by
  the optical flow, each trusted only on its mask ``c_j`` (:func:`long_term_masks`: an earlier frame only where
  the closer ones are unreliable). :class:`FrameOptimizer` runs the existing optimiser on it for one frame.
* Feed-forward methods: :func:`blend` mixes the moved previous output into the new one where the flow is reliable.

Images are ``(1, 3, H, W)`` float tensors in ``[0, 1]``; masks ``(1, 1, H, W)`` float in ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..device import is_out_of_memory
from ..errors import PerceptError
from ..image import combine_luminance_chroma, luminance, resize, to_tensor
from ..models import get_model
from ..video import compute_flow, consistency_mask, warp_tensor
from .optimize import _check_big_enough, _first_image, _Objective, _optimise, _stage_inputs
from .params import StyleParams

#: Weight of the frame's own previous-pass result in the initialisation of the extra passes (the paper's delta).
MULTIPASS_DELTA = 0.5

Prior = tuple[torch.Tensor, torch.Tensor]  # (moved earlier frame (1, 3, H, W), its weight map (1, 1, H, W))


def long_term_masks(masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The paper's ``c_long``: mask ``j`` less what the closer frames' masks already cover, at least 0.

    ``masks`` are ordered from the closest earlier frame (the previous one) to the farthest.
    """
    out, covered = [], None
    for mask in masks:
        out.append(mask if covered is None else (mask - covered).clamp(min=0))
        covered = mask if covered is None else covered + mask
    return out


class TemporalObjective:
    """The loss of ``base`` (a callable ``image -> (total, parts)``) plus the weighted temporal term.

    ``parts`` gains ``temporal`` (unweighted: the mean over pixels and channels of ``c * (x - w)^2``, summed over
    the priors) and its ``total`` includes ``weight * temporal``.
    """

    def __init__(self, base: Callable, priors: Sequence[Prior], weight: float) -> None:
        self.base, self.priors, self.weight = base, list(priors), float(weight)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = self.base(image)
        temporal = sum(((image - target).pow(2) * mask).mean() for target, mask in self.priors)
        temporal = temporal if isinstance(temporal, torch.Tensor) else image.new_zeros(())
        total = total + self.weight * temporal
        return total, {**parts, "temporal": temporal, "total": total}


#: Gaussian widths (pixels, coarse first) at which :func:`blend` gives the mix back the stylised frame's contrast.
DETAIL_SIGMAS = (8.0, 1.5)
#: The most :func:`blend` amplifies the mix's deviation from its local mean.
DETAIL_GAIN = 4.0


def _local_mean(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(N, C, H, W)``, separable (two 1-D passes), edges reflected (OpenCV's on the CPU)."""
    radius = int(2 * sigma)
    if image.device.type == "cpu" and image.dtype == torch.float32 and not image.requires_grad \
            and min(image.shape[-2:]) > radius:
        import cv2

        planes = image.reshape(-1, *image.shape[-2:]).numpy()
        blurred = [cv2.GaussianBlur(plane, (2 * radius + 1, 2 * radius + 1), sigma, sigmaY=sigma,
                                    borderType=cv2.BORDER_REFLECT_101) for plane in planes]
        return torch.from_numpy(np.stack(blurred)).reshape(image.shape)
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).repeat(image.shape[1], 1, 1, 1)  # (C, 1, 1, K)
    channels = image.shape[1]
    out = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode="reflect"), kernel, groups=channels)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.transpose(2, 3), groups=channels)


def restore_detail(mixed: torch.Tensor, reference: torch.Tensor, sigmas: Sequence[float] = DETAIL_SIGMAS,
                   max_gain: float = DETAIL_GAIN) -> torch.Tensor:
    """``mixed`` with the local contrast of ``reference`` at each scale of ``sigmas`` (coarse first).

    Averaging two images whose brush strokes do not line up lowers the contrast of the strokes; here the deviation
    of ``mixed`` from its local mean (Gaussian, width ``sigma``) is scaled up by ``reference``'s local standard
    deviation over its own, between 1 and ``max_gain``, so the strokes keep their strength (never reduced, never
    pushed beyond the reference's). Shapes ``(N, 3, H, W)``.
    """
    for sigma in sigmas:
        mean, ref_mean = _local_mean(mixed, sigma), _local_mean(reference, sigma)
        var = _local_mean((mixed - mean) ** 2, sigma).mean(1, keepdim=True)
        ref_var = _local_mean((reference - ref_mean) ** 2, sigma).mean(1, keepdim=True)
        gain = ((ref_var + 1e-6) / (var + 1e-6)).sqrt().clamp(1.0, max_gain)
        mixed = mean + gain * (mixed - mean)
    return mixed.clamp(0, 1)


def blend(stylised: torch.Tensor, moved_previous: torch.Tensor, mask: torch.Tensor, amount: float) -> torch.Tensor:
    """``m * (b * prev + (1 - b) * x) + (1 - m) * x``, the moved previous output mixed in where reliable, with the
    contrast of ``stylised`` restored (:func:`restore_detail`: a plain mix blurs strokes that do not line up)."""
    mixed = stylised + amount * mask * (moved_previous - stylised)
    return restore_detail(mixed, stylised) if amount > 0 else mixed


def multipass_start(previous_pass: torch.Tensor, moved_neighbour: torch.Tensor, mask: torch.Tensor,
                    delta: float = MULTIPASS_DELTA) -> torch.Tensor:
    """Start of a frame in an extra pass: ``delta * c * neighbour + (1 - delta * c) * last result``."""
    return previous_pass + delta * mask * (moved_neighbour - previous_pass)


def moved_start(moved: torch.Tensor, valid: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Start of a frame from the previous result moved along the flow; what entered the frame comes from the
    content (``valid`` ``(1, 1, H, W)``: 1 where the moved image has a source pixel)."""
    return moved * valid + content * (1 - valid)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` in ``[0, 1]`` -> ``(H, W, 3)`` uint8, rounded (as :func:`percept.image.to_pil`)."""
    return (image.detach()[0].float().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def from_uint8(frame: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float in ``[0, 1]`` on ``device``."""
    return torch.from_numpy(np.array(frame, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(255).to(device)


class FrameOptimizer:
    """Stylise video frames by optimisation (:mod:`percept.style.optimize`), with temporal priors.

    Args:
        params: the image settings; ``size`` is the frames' longest side.
        styles: the style images, loaded once.
        weight: the temporal weight.
        device: where the network runs.
    """

    def __init__(self, params: StyleParams, styles: Sequence[Image.Image], weight: float,
                 device: torch.device) -> None:
        self.params, self.styles, self.weight, self.device = params, list(styles), weight, device
        self.net = get_model(params.network, params.weights or None, kind="features", pooling=params.pooling,
                             preprocessing=params.preprocessing, device=device)
        self.net.validate_layers(params.resolved_content_layers())
        self.net.validate_layers(params.resolved_style_layers())
        self.luminance = params.preserve_color == "luminance"
        self.checked = False
        self.last: dict[str, float] = {}  # the losses of the last step (shown by the progress bar)

    def _record(self, _image: torch.Tensor, parts: dict[str, torch.Tensor]) -> None:
        self.last = {k: float(v.detach()) for k, v in parts.items()}

    def __call__(self, frame: np.ndarray, *, start: torch.Tensor | None, priors: Sequence[Prior], iterations: int,
                 seed: int) -> torch.Tensor:
        """One stylised frame ``(1, 3, H, W)`` on the device.

        Args:
            frame: the content, ``(H, W, 3)`` uint8.
            start: where optimisation starts (colour, on the device); ``None``: a new shot, started like an image
                (from the content) and coarse to fine through the ``scales`` stages.
            priors: the temporal terms (colour targets; turned to luminance with ``preserve_color=luminance``).
            iterations: optimisation steps (per stage for a new shot).
            seed: the seed of a noise start.
        """
        params = replace(self.params, iterations=iterations)
        content = Image.fromarray(frame)
        stages = params.stage_sizes() if start is None else [params.size]
        generator = torch.Generator().manual_seed(seed)
        if self.luminance:
            priors = [(luminance(target), mask) for target, mask in priors]
        image = None
        try:
            for longest in stages:
                out_size, content_t, style_ts = _stage_inputs(content, self.styles, params, longest, self.device)
                if not self.checked:
                    _check_big_enough(self.net, params, content_t, style_ts)
                    self.checked = True
                if image is not None:
                    begin = resize(image, out_size)
                elif start is not None:
                    begin = luminance(start) if self.luminance else start
                else:
                    begin = _first_image(params, out_size, content_t, style_ts, None, generator, self.device)
                objective = _Objective(self.net, params, content_t, style_ts)
                if longest == stages[-1] and priors and self.weight > 0:
                    objective = TemporalObjective(objective, priors, self.weight)
                image = _optimise(objective, begin, params, self._record)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            raise PerceptError(f"out of memory on {self.device} at {params.size} px; lower --size or use --optimizer "
                               "adam") from None
        assert image is not None
        if self.luminance:
            image = combine_luminance_chroma(image, to_tensor(content).to(self.device))
        return image.clamp(0, 1)


def _mask(mask: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(mask).to(device)[None, None]


def first_pass_frame(engine: FrameOptimizer, frame: np.ndarray, t: int, recent: Sequence[tuple], backward, mask,
                     long_term: Sequence[int], iterations: int, flow_method: str, seed: int) -> torch.Tensor:
    """Frame number ``t`` of its shot (0: the shot's first) in the first pass: the first from scratch, the others
    from the previous result moved along the flow, with the temporal loss over the earlier frames ``long_term``.

    Args:
        recent: ``(index, input, output)`` of the frames before, uint8, oldest first (at least ``max(long_term)``
            of them, or all since the shot began).
        backward, mask: the backward flow of frame ``t`` (to ``t - 1``) and its reliability mask.
        iterations: optimisation steps of a frame after the first (the first gets the image's ``iterations``).
        flow_method: for the long-term flows; seed: of a noise start.
    """
    device = engine.device
    if t == 0:
        return engine(frame, start=None, priors=[], iterations=engine.params.iterations, seed=seed)
    earlier = list(recent)[::-1]  # the previous frame first
    content, start, targets, masks = from_uint8(frame, device), None, [], []
    for j in long_term:
        if j > t or j > len(earlier):
            break
        _, earlier_input, earlier_output = earlier[j - 1]
        if j == 1:
            flow_back, reliable = backward, mask
        else:  # long-term: the flow between the two frames directly, both ways
            flow_back = compute_flow(frame, earlier_input, flow_method)
            reliable = consistency_mask(compute_flow(earlier_input, frame, flow_method), flow_back)
        moved, valid = warp_tensor(from_uint8(earlier_output, device), torch.from_numpy(flow_back).to(device))
        if j == 1:
            start = moved_start(moved, valid[:, None], content)
        targets.append(moved)
        masks.append(_mask(reliable, device))
    return engine(frame, start=start, priors=list(zip(targets, long_term_masks(masks))), iterations=iterations,
                  seed=seed)


def extra_pass(engine: FrameOptimizer, run: int, inputs: Sequence[np.ndarray], flows: Callable, cuts: set[int],
               iterations: int, *, done: Callable[[int, int], bool], load: Callable[[int, int], np.ndarray],
               save: Callable[[int, int, np.ndarray], None]) -> None:
    """Pass ``run`` (2, 3, ...) over all frames: backward in time when even, forward when odd (Ruder et al. 2016,
    multi-pass). Each frame starts from its last result blended with its neighbour of this pass (the one processed
    just before) moved along the flow, and the temporal loss pulls it towards that neighbour.

    Args:
        inputs: every input frame.
        flows: ``t -> (forward, backward, mask)`` of the pair ``(t - 1, t)``, ``t >= 1``.
        cuts: frames that start a shot (no neighbour across a cut).
        done, load, save: whether frame ``t`` of pass ``r`` is finished; its result; store it.
    """
    count, backward_in_time = len(inputs), run % 2 == 0
    for t in (range(count - 1, -1, -1) if backward_in_time else range(count)):
        if done(run, t):
            continue
        last = from_uint8(load(run - 1, t), engine.device)
        neighbour, pair = (t + 1, t + 1) if backward_in_time else (t - 1, t)  # flows(pair) joins t and neighbour
        start, priors = last, []
        if 0 <= neighbour < count and pair not in cuts:
            forward, backward, mask = flows(pair)
            # t + 1 onto t: the pair's forward flow and its mask with the roles swapped; t - 1 onto t: as stored
            flow, reliable = (forward, consistency_mask(backward, forward)) if backward_in_time else (backward, mask)
            moved, _ = warp_tensor(from_uint8(load(run, neighbour), engine.device),
                                   torch.from_numpy(flow).to(engine.device))
            weight = _mask(reliable, engine.device)
            start, priors = multipass_start(last, moved, weight), [(moved, weight)]
        save(run, t, to_uint8(engine(inputs[t], start=start, priors=priors, iterations=iterations,
                                     seed=engine.params.seed + t)))
