"""Settings of video style transfer (:func:`percept.stylize_video`, ``percept stylize-video``).

* :class:`VideoParams`: what the video is and how frames are tied together in time (recorded with the output).
* :class:`VideoRunParams`: how a run proceeds (keep the work folder, start over, where flows are cached); they never
  change the result, so they are not recorded.
* Each frame is stylised with the settings of its image method: :class:`~percept.style.params.StyleParams`
  (``optimize``), :class:`~percept.style.params.AdainParams` (``adain``) or
  :class:`~percept.style.params.NetworkParams` (``network``), less the few that make no sense for a video
  (:data:`NOT_FOR_VIDEO`).

:func:`split_settings` checks a flat ``**settings`` dict and refuses, in one line naming the method, what the method
does not use. The record is a JSON sidecar ``OUT.mp4.json`` (a video file cannot hold a PNG text chunk);
:func:`read_video_record` reads it back for ``--params-from``. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import PerceptError
from ..params import check_choices, from_settings, setting
from ..record import command_line
from .params import METHODS, check_size, method_settings

VIDEO_METHODS = ("optimize", "adain", "network")
FLOW_METHODS = ("dis", "farneback")
#: Image settings a video does not use: the size is the video's, a still mask does not follow motion, each shot
#: starts from its content (as an image does by default), frames go through a trained network one at a time (each
#: is blended with the one before).
NOT_FOR_VIDEO = {"optimize": ("size", "mask", "init"), "adain": ("size", "mask"), "network": ("size", "batch_size")}
#: Video settings that only some methods use (the others are used by every method).
METHOD_ONLY = {"temporal_weight": ("optimize",), "long_term": ("optimize",), "later_iterations": ("optimize",),
               "passes": ("optimize",), "temporal_blend": ("adain", "network")}
RECORD_METHOD = "stylize-video"


@dataclass
class VideoParams:
    """The video-level settings of :func:`percept.stylize_video`."""

    method: str = setting("optimize", "optimize: Gatys et al. with a temporal loss, best quality, slow; adain: any "
                          "style in one forward pass per frame; network: a trained network (--model)",
                          choices=VIDEO_METHODS, shown="network with --model, else optimize")
    start: float = setting(0.0, "where to begin, in seconds from the start of the video", metavar="SECONDS")
    duration: float | None = setting(None, "how many seconds to stylise", metavar="SECONDS", shown="to the end")
    size: int | None = setting(None, "longest side of the output in pixels (both sides rounded to even numbers); "
                               "smaller is much faster", shown="the video's size")
    temporal_weight: float = setting(1000.0, "optimize: weight of the temporal loss: how strongly each frame is pulled "
                                     "towards the previous stylised frame moved along the optical flow, where the "
                                     "flow is reliable (0 = none)")
    long_term: list[int] = setting([1, 2, 4], "optimize: earlier frames the temporal loss looks back to (1 = only the "
                                   "previous one); an earlier frame counts only where the closer ones are "
                                   "unreliable, e.g. behind a passing object", metavar="J,...")
    later_iterations: int | None = setting(None, "optimize: steps for each frame after the first of a shot "
                                           "(it starts from the previous frame moved along the flow, close to its "
                                           "result), and for every frame of the extra passes", metavar="N",
                                           shown="half of --iterations")
    passes: int = setting(1, "optimize: passes over the clip, alternating backward and forward in time; each pass after the "
                          "first starts every frame from a blend of its last result and its neighbour in that "
                          "direction moved along the flow, and pulls it towards that neighbour (steadier, slower)")
    temporal_blend: float = setting(0.85, "adain and network: how much of the previous output, moved along the optical flow, is mixed "
                                    "into each frame where the flow is reliable, keeping the frame's own stroke contrast (0 = frames "
                                    "stylised on their own; below 1)")
    flow: str = setting("dis", "optical flow method: dis (fast, accurate) or farneback", choices=FLOW_METHODS)
    scene_cut: float = setting(0.32, "a frame starts a new shot when less than this share of its pixels reliably "
                               "continues the previous frame; a new shot starts afresh (no temporal term)")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.start < 0 or (self.duration is not None and self.duration <= 0):
            raise PerceptError(f"need start >= 0 and duration > 0 seconds, got start {self.start}, duration "
                               f"{self.duration}")
        if self.size is not None:
            check_size("size", self.size)
        if self.temporal_weight < 0:
            raise PerceptError(f"temporal-weight must be >= 0, got {self.temporal_weight}")
        if not self.long_term or 1 not in self.long_term or any(j < 1 or j > 16 for j in self.long_term):
            raise PerceptError(f"long-term must list earlier frames between 1 and 16 including 1 (e.g. 1,2,4), "
                               f"got {self.long_term}")
        self.long_term = sorted(set(int(j) for j in self.long_term))
        if self.later_iterations is not None and self.later_iterations < 0:
            raise PerceptError(f"later-iterations must be >= 0, got {self.later_iterations}")
        if not 1 <= self.passes <= 100:
            raise PerceptError(f"passes must be between 1 and 100, got {self.passes}")
        if not 0.0 <= self.temporal_blend < 1.0:
            raise PerceptError(f"temporal-blend must be >= 0 and below 1, got {self.temporal_blend}")
        if not 0.0 <= self.scene_cut <= 1.0:
            raise PerceptError(f"scene-cut must be a share between 0 and 1, got {self.scene_cut}")


@dataclass
class VideoRunParams:
    """How a :func:`percept.stylize_video` run proceeds; never changes the result (not recorded)."""

    keep_frames: bool = setting(False, "keep the work folder OUT.frames/ (every stylised frame as a PNG) after the "
                                "video is written")
    restart: bool = setting(False, "delete the frames of an earlier run in OUT.frames/ and start over (needed "
                            "when the settings changed)")
    flow_cache: str = setting("", "folder that keeps the optical flow of each video between runs", metavar="DIR",
                              shown="inside the work folder, removed with it")


def video_settings(method: str) -> list[str]:
    """The names of the settings ``stylize_video`` uses with ``method``: video ones, then the image method's."""
    if method not in VIDEO_METHODS:
        raise PerceptError(f"unknown method {method!r}; use {', '.join(VIDEO_METHODS)}")
    own = [f.name for f in fields(VideoParams) if method in METHOD_ONLY.get(f.name, VIDEO_METHODS)]
    return own + [n for n in method_settings(method) if n not in NOT_FOR_VIDEO[method] and n not in own]


def _flags(names: list[str]) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def split_settings(settings: dict[str, Any]) -> tuple[VideoParams, dict[str, Any]]:
    """``(video params, the image method's settings)`` of a flat settings dict; one-line errors for an unknown
    setting and for one the method does not use. The method is ``method``, else ``network`` when ``model`` is
    given, else ``optimize``."""
    known = {f.name for cls in (VideoParams, *METHODS.values()) for f in fields(cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise PerceptError(f"unknown setting {unknown[0]!r}; see `percept stylize-video --help`")
    method = settings.get("method") or ("network" if settings.get("model") else "optimize")
    if method == "network" and not settings.get("model"):
        raise PerceptError("--method network needs a trained network: add --model MODEL.pt")
    unused = sorted(set(settings) - set(video_settings(method)) - {"method"})
    if unused:
        raise PerceptError(f"--method {method} does not use {_flags(unused)}; drop "
                           + ("them" if len(unused) > 1 else "it"))
    own = {f.name for f in fields(VideoParams)}
    video = from_settings(VideoParams, {**{k: v for k, v in settings.items() if k in own}, "method": method})
    image = {k: v for k, v in settings.items() if k not in own}
    if method == "network" and image.get("tile") is None and any(k in image for k in ("overlap", "stats_size",
                                                                                       "exact_statistics")):
        raise PerceptError("--method network does not use --overlap, --stats-size or --exact-statistics without "
                           "--tile; add --tile N or drop them")
    return video, image


def recorded_params(video: VideoParams, image_params: Any) -> dict[str, Any]:
    """Every setting the method uses, defaults included, as one flat dict (what the record stores)."""
    from ..params import to_record

    names = video_settings(video.method)
    values = {**to_record(image_params), **to_record(video)}
    return {name: values[name] for name in names}


def difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first setting or input that differs between two work-folder identities, in words."""
    for part in ("params", "inputs"):
        a, b = old.get(part) or {}, new.get(part) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                if part == "inputs":
                    return f"the {key} changed"
                return f"{key.replace('_', '-')} {a.get(key, 'unset')}, now {b.get(key, 'unset')}"
    return "made by another percept version"


def sidecar(output: str | os.PathLike) -> Path:
    """Where the record of a video output is kept: ``OUT.mp4.json`` beside ``OUT.mp4``."""
    output = Path(output)
    return output.with_name(output.name + ".json")


def read_video_record(path: str | os.PathLike) -> dict[str, Any]:
    """The record of a ``stylize-video`` output: ``path`` itself when it is the ``.json`` sidecar, else the sidecar
    beside it. One-line errors for a missing, unreadable or foreign record."""
    path = Path(path)
    record_file = path if path.suffix.lower() == ".json" else sidecar(path)
    if not record_file.is_file():
        raise PerceptError(f"no record for {str(path)!r}: expected {str(record_file)!r} beside it (stylize-video "
                           "writes one with every video); give that file or the video beside it")
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PerceptError(f"the record {str(record_file)!r} cannot be read ({exc}); give another output") from None
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise PerceptError(f"{str(record_file)!r} holds no percept parameters (was it made by percept?)")
    if record.get("method") != RECORD_METHOD:
        raise PerceptError(f"{str(record_file)!r} was made by {record.get('method')!r}; --params-from here "
                           f"reproduces {RECORD_METHOD} outputs only")
    return record


def resolve_video_settings(explicit: dict[str, Any], params_from: str | os.PathLike | None) -> dict[str, Any]:
    """Explicit settings on top of those recorded with a previous output (``--params-from``). The recorded method
    runs; an explicit ``method`` (or ``model``, which means ``network``) must agree with it."""
    if params_from is None:
        return dict(explicit)
    recorded = read_video_record(params_from)["params"]
    method = recorded.get("method")
    wanted = explicit.get("method") or ("network" if explicit.get("model") else method)
    if wanted != method:
        raise PerceptError(f"{str(params_from)!r} was made with --method {method}; drop --method {wanted} (or "
                           "--model) to reproduce it, or leave out --params-from")
    return {**{k: v for k, v in recorded.items() if k in video_settings(method)}, **explicit}


def video_command(record: dict[str, Any], output: str | os.PathLike) -> str:
    """The ``percept stylize-video`` command that makes ``record``'s output again as ``output``."""
    inputs = record.get("inputs") or {}
    styles = [(s or {}).get("path") or "STYLE" for s in inputs.get("styles", [])]
    video = (inputs.get("video") or {}).get("path") or "VIDEO"
    params = dict(record["params"])
    if params.get("method") == "network" and not params.get("model"):
        params["model"] = "MODEL.pt"
    return command_line(["stylize-video", video, *styles, "-o", str(output)], params)
