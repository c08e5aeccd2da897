"""Video style transfer without flicker (Ruder, Dosovitskiy & Brox, GCPR 2016): :func:`stylize_video`.

Frames are read upright at the output size, the optical flow between consecutive frames is computed (and cached)
in both directions, and each frame is stylised with an image method tied to the frames before it: optimisation
starts from the previous result moved along the flow and adds a temporal loss (:mod:`percept.style.temporal`);
AdaIN and trained networks mix the moved previous output into theirs where the flow is reliable. A scene cut
starts afresh. Every finished frame is a PNG in a work folder beside the output (``OUT.frames/``), so a rerun of
the same call continues an interrupted one; the video is written atomically at the end, with the audio, and its
record goes to ``OUT.mp4.json``. Design notes: docs/dev/video-stylize.md.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..device import resolve_device
from ..errors import InterruptedRun, PerceptError
from ..image import ImageInput, as_pil, atomic_write, image_list
from ..params import to_record
from ..record import describe_input, make_record
from ..video import FlowCache, consistency_mask, is_scene_cut, probe, read_frames, warp_tensor, write_video
from ..video.io import FORMATS, TIME_SLACK, even_size
from .params import AdainParams, NetworkParams, StyleParams
from .temporal import FrameOptimizer, blend, extra_pass, first_pass_frame, from_uint8, to_uint8
from .video_params import RECORD_METHOD, VideoParams, VideoRunParams, difference, recorded_params, sidecar, \
    split_settings, video_command

#: Bumped when the work folder's layout or what its frames mean changes (an older folder is then refused).
WORK_VERSION = 1


@dataclass
class VideoResult:
    """What :func:`stylize_video` returns (the video itself is at ``path``)."""

    path: Path
    record: dict[str, Any]  # also in path + ".json"
    frames: int
    size: tuple[int, int]  # (width, height)
    fps: Fraction
    resumed: int = 0  # frame results found finished in the work folder
    scene_cuts: list[int] = field(default_factory=list)  # frames that start a new shot (0-based, from start)
    seconds: float = 0.0


def _save_frame(path: Path, frame: np.ndarray) -> None:
    """One finished frame, written atomically (a run interrupted while writing leaves no partial frame)."""
    path.parent.mkdir(exist_ok=True)
    atomic_write(path, lambda tmp: Image.fromarray(frame).save(tmp, format="PNG", compress_level=1))


def _load_frame(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).copy()


def _fingerprint(item: Any) -> str:
    """A file's SHA-256, or a hash of an in-memory image's pixels (so a changed input is noticed on resume)."""
    import hashlib

    if isinstance(item, (str, os.PathLike)):
        return describe_input(item)["sha256"] if Path(item).is_file() else str(item)
    data = np.asarray(item.convert("RGB")) if isinstance(item, Image.Image) else item.detach().cpu().numpy()
    return hashlib.sha256(np.ascontiguousarray(data).tobytes() + str(data.shape).encode()).hexdigest()


class _WorkFolder:
    """``OUT.frames/``: ``settings.json`` (what the frames were made with) and ``passN/TTTTTT.png``."""

    def __init__(self, output: Path, identity: dict[str, Any], restart: bool) -> None:
        identity = json.loads(json.dumps(identity))  # as it reads back from settings.json (tuples become lists)
        self.folder = output.with_name(output.stem + ".frames")
        settings = self.folder / "settings.json"
        if self.folder.exists() and not settings.is_file() and (self.folder.is_file() or any(self.folder.iterdir())):
            raise PerceptError(f"{str(self.folder)!r} exists and is not a stylize-video work folder; move it or "
                               "choose another output name")
        if restart and self.folder.exists():
            shutil.rmtree(self.folder)
        if settings.is_file():
            try:
                old = json.loads(settings.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            if old != identity:
                raise PerceptError(f"{str(self.folder)!r} holds frames of a run with other settings "
                                   f"({difference(old, identity)}); add --restart to start over, or choose "
                                   "another output name")
        self.created = not self.folder.exists()
        self.folder.mkdir(exist_ok=True)
        atomic_write(settings, lambda tmp: Path(tmp).write_text(json.dumps(identity, indent=1, sort_keys=True)))

    def frame(self, run: int, t: int) -> Path:
        return self.folder / f"pass{run}" / f"{t:06d}.png"

    def latest(self, t: int, passes: int) -> Path | None:
        """The newest finished result of frame ``t`` (from the highest pass that has it)."""
        return next((p for p in (self.frame(r, t) for r in range(passes, 0, -1)) if p.is_file()), None)

    def finished(self) -> int:
        return sum(1 for _ in self.folder.glob("pass*/*.png"))


def _image_params(video: VideoParams, image: dict[str, Any], longest: int):
    """The image method's settings for frames whose longest side is ``longest``."""
    if video.method == "optimize":
        return StyleParams(**{**image, "size": longest})
    if video.method == "adain":
        return AdainParams(**{**image, "size": longest})
    return NetworkParams(**{**image, "size": None})


def _feed_forward(video: VideoParams, image_params, styles: list[Image.Image]) -> Callable[[np.ndarray], torch.Tensor]:
    """Stylise one frame ``(H, W, 3)`` uint8 with AdaIN or a trained network: ``(1, 3, H, W)`` on the CPU."""
    settings = {k: v for k, v in to_record(image_params).items() if k != "model"}
    if video.method == "adain":
        from .adain_stylize import stylize_adain

        return lambda frame: stylize_adain(Image.fromarray(frame), styles, **settings).image
    from .transform_stylize import stylize_with_model

    def run(frame: np.ndarray) -> torch.Tensor:
        out = stylize_with_model(from_uint8(frame), image_params.model, **settings).image
        if out.shape[-2:] != frame.shape[:2]:
            out = torch.nn.functional.interpolate(out, size=frame.shape[:2], mode="bilinear", align_corners=False)
        return out

    return run


def stylize_video(video: str | os.PathLike, styles: ImageInput | Sequence[ImageInput] | None,
                  output: str | os.PathLike, *, progress: bool = False, keep_frames: bool = False,
                  restart: bool = False, flow_cache: str | os.PathLike = "", **settings: Any) -> VideoResult:
    """Stylise a video without flicker and write it (with its audio) to ``output``.

    Args:
        video: the video file (anything FFmpeg reads; frames are turned upright).
        styles: style image(s) (paths, PIL images or tensors); none for ``method="network"``.
        output: ``.mp4`` (recommended), ``.m4v``, ``.mov`` or ``.mkv``; written atomically at the end. The record
            goes to ``output + ".json"``; finished frames to the work folder ``OUT.frames/`` beside it.
        progress: show one progress bar over the frames, with the time left.
        keep_frames, restart, flow_cache: see :class:`~percept.style.video_params.VideoRunParams`. A call with
            the same settings as an interrupted one continues it; other settings are refused unless ``restart``.
        **settings: any field of :class:`~percept.style.video_params.VideoParams` (``method``, ``start``,
            ``duration``, ``size``, ``temporal_weight``, ``long_term``, ``later_iterations``, ``passes``,
            ``temporal_blend``, ``flow``, ``scene_cut``) and of the method's image settings (``StyleParams``,
            ``AdainParams`` or ``NetworkParams``, e.g. ``iterations``, ``alpha``, ``model``, ``device``). A setting
            the method does not use is a one-line error.

    Returns:
        A :class:`VideoResult`; the output has the source's frame rate, frame count, size (or ``size``) and audio.
    """
    started = time.perf_counter()
    run = VideoRunParams(keep_frames=keep_frames, restart=restart, flow_cache=str(flow_cache or ""))
    params, image_settings = split_settings(settings)
    output = Path(output)
    if output.suffix.lower() not in FORMATS or output.is_dir():
        raise PerceptError(f"output {str(output)!r} must be a video file named .mp4 (recommended), .m4v, .mov or .mkv")
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise PerceptError(f"output folder {str(output.parent)!r} does not exist; create it first")
    info = probe(video)
    width, height = even_size(info.width, info.height, params.size) if params.size else (info.width, info.height)
    style_list = [] if styles is None else image_list(styles)
    if params.method == "network" and style_list:
        raise PerceptError("a trained network stylises with the style(s) it was trained on; drop the STYLE image(s) "
                           "or use --method adain for arbitrary styles")
    if params.method != "network" and not style_list:
        raise PerceptError("give at least one STYLE image (or a trained network with --model)")
    style_pils = [as_pil(s, what="style image") for s in style_list]
    image_params = _image_params(params, image_settings, max(width, height))
    if params.method != "network" and image_params.style_blend_weights and \
            len(image_params.style_blend_weights) != len(style_pils):
        raise PerceptError(f"style-blend-weights has {len(image_params.style_blend_weights)} values for "
                           f"{len(style_pils)} style images; give one per style")
    values = recorded_params(params, image_params)
    inputs: dict[str, Any] = {"video": describe_input(video), "styles": [describe_input(s) for s in style_list]}
    if params.method == "network":
        from .transform_stylize import describe_model

        inputs["model"] = describe_model(image_params.model)
    identity = {"version": WORK_VERSION, "params": values,
                "inputs": {"video": inputs["video"]["sha256"], "styles": [_fingerprint(s) for s in style_list],
                           **({"model": inputs["model"].get("sha256")} if "model" in inputs else {})}}
    work = _WorkFolder(output, identity, run.restart)
    try:
        frames, cuts, resumed = _stylise(video, params, image_params, style_pils, run, work, info, progress)
    except KeyboardInterrupt:
        raise InterruptedRun(f"interrupted; {work.finished()} finished frames are kept in {str(work.folder)!r}: run "
                             "the same command again to continue") from None
    except BaseException:
        if work.created and work.finished() == 0:
            shutil.rmtree(work.folder, ignore_errors=True)
        raise
    passes = params.passes if params.method == "optimize" else 1
    paths = [work.latest(t, passes) for t in range(frames)]
    write_video(output, (_load_frame(p) for p in paths), fps=info.fps, audio_from=video, start=params.start,
                duration=params.duration)
    seconds = time.perf_counter() - started
    record = make_record(RECORD_METHOD, values, inputs=inputs, frames=frames, fps=str(info.fps),
                         size_px=[width // 2 * 2, height // 2 * 2], scene_cuts=cuts, audio=info.has_audio,
                         device=str(resolve_device(image_params.device)), seconds=round(seconds, 2))
    record["command"] = video_command(record, output)
    atomic_write(sidecar(output), lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True)))
    if not run.keep_frames:
        shutil.rmtree(work.folder, ignore_errors=True)
    return VideoResult(output, record, frames, (width // 2 * 2, height // 2 * 2), info.fps, resumed, cuts, seconds)


def _enumerate(frames: Iterable[np.ndarray]) -> Iterator[tuple[int, np.ndarray, None]]:
    for t, frame in enumerate(frames):
        yield t, frame, None


def _styled_ahead(frames: Iterable[np.ndarray], engine: Callable[[np.ndarray], torch.Tensor],
                  needed: Callable[[int], bool]) -> Iterator[tuple[int, np.ndarray, torch.Tensor | None]]:
    """``(t, frame, engine(frame))`` (``None`` where not ``needed(t)``), each stylised one frame ahead in a
    worker thread: the network paints frame ``t + 1`` while frame ``t`` gets its flow, blend and file."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        queue: deque = deque()
        for t, frame in enumerate(frames):
            queue.append((t, frame, pool.submit(engine, frame) if needed(t) else None))
            if len(queue) > 1:
                t0, frame0, job = queue.popleft()
                yield t0, frame0, None if job is None else job.result()
        for t0, frame0, job in queue:
            yield t0, frame0, None if job is None else job.result()


def _saver(work: _WorkFolder, bar) -> Callable[[int, int, np.ndarray], None]:
    """Save frame ``t`` of pass ``run``, then drop its result of the pass before (no longer needed)."""
    def save(run: int, t: int, frame: np.ndarray) -> None:
        _save_frame(work.frame(run, t), frame)
        work.frame(run - 1, t).unlink(missing_ok=True)
        bar.update(1)

    return save


def _stylise(video, params: VideoParams, image_params, styles: list[Image.Image], run: VideoRunParams,
             work: _WorkFolder, info, progress: bool) -> tuple[int, list[int], int]:
    """Every pass over the frames; returns ``(frames, scene cuts, frame results found finished)``."""
    optimize = params.method == "optimize"
    device = resolve_device(image_params.device) if optimize else torch.device("cpu")
    engine = FrameOptimizer(image_params, styles, params.temporal_weight, device) if optimize else \
        _feed_forward(params, image_params, styles)
    passes = params.passes if optimize else 1
    later = params.later_iterations if params.later_iterations is not None else \
        (image_params.iterations // 2 if optimize else 0)
    use_flow = optimize or params.temporal_blend > 0
    cache = FlowCache(run.flow_cache or work.folder / "flow", video, size=params.size, method=params.flow) \
        if use_flow else None
    offset = math.ceil((params.start - TIME_SLACK) * float(info.fps)) if params.start > 0 else 0
    estimate = max(1, info.frames - offset)
    if params.duration is not None:
        estimate = min(estimate, math.ceil(params.duration * float(info.fps)))
    found = {r: sum(1 for _ in work.frame(r, 0).parent.glob("*.png")) for r in range(1, passes + 1)}
    current = max([r for r in found if found[r]], default=1)  # pass r + 1 begins only once pass r is complete
    bar = tqdm(total=estimate * passes, initial=(current - 1) * estimate + found[current], unit="frame",
               desc=f"stylize-video ({params.method})", disable=not progress, dynamic_ncols=True)
    inputs: list[np.ndarray] = []  # every input frame when extra passes need them
    recent: list[tuple[int, np.ndarray, np.ndarray | None]] = []  # (t, input, output) of the last few frames
    cuts, shot, count, previous = [], 0, 0, None
    reach = max(params.long_term) if optimize else 1
    torch.manual_seed(getattr(image_params, "seed", 0))
    try:
        frames = read_frames(video, start=params.start, duration=params.duration, size=params.size)
        needed = (lambda t: current == 1 and not work.frame(1, t).is_file())  # noqa: E731
        for t, frame, ahead in (_enumerate(frames) if optimize else _styled_ahead(frames, engine, needed)):
            count, forward, backward, mask = t + 1, None, None, None
            if t > 0 and cache is not None:
                forward, backward = cache.flows(offset + t, previous, frame)
                mask = consistency_mask(forward, backward)
            if t > 0 and mask is not None and is_scene_cut(mask, params.scene_cut):
                shot = t
                cuts.append(t)
            if passes > 1:
                inputs.append(frame)
            path, out = work.frame(1, t), None
            if current > 1 or path.is_file():
                out = _load_frame(path) if current == 1 else None
            else:
                if optimize:
                    styled = first_pass_frame(engine, frame, t - shot, recent, backward, mask, params.long_term,
                                              later, params.flow, image_params.seed + t)
                else:
                    styled = ahead
                    if t > shot and params.temporal_blend > 0:
                        moved, _ = warp_tensor(from_uint8(recent[-1][2]), torch.from_numpy(backward))
                        styled = blend(styled, moved, torch.from_numpy(mask)[None, None], params.temporal_blend)
                out = to_uint8(styled)
                _save_frame(path, out)
                if optimize:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in engine.last.items() if k in ("style", "temporal")},
                                    refresh=False)
                bar.update(1)
            recent = (recent + [(t, frame, out)])[-reach:]
            previous = frame
        if count == 0:
            raise PerceptError(f"no frames from {params.start} s for the duration asked; check --start and "
                               "--duration")

        def pair(t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # from the cache, written in the first pass
            forward, backward = cache.flows(offset + t, inputs[t - 1], inputs[t])
            return forward, backward, consistency_mask(forward, backward)

        resumed = (current - 1) * count + found[current]
        for r in range(max(2, current), passes + 1):
            extra_pass(engine, r, inputs, pair, set(cuts), later, done=lambda r, t: work.frame(r, t).is_file(),
                       load=lambda r, t: _load_frame(work.frame(r, t)), save=_saver(work, bar))
    finally:
        bar.close()
    return count, cuts, resumed
