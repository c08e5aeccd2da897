"""Video files with PyAV (which bundles FFmpeg): probe, read upright RGB frames, write H.264 with the audio copied.

Times are seconds from the first frame of the video stream. Frames are numpy ``(H, W, 3)`` uint8 RGB. Every
way a file can be bad (missing, not a video, corrupt, audio only, no decodable frame, a codec this FFmpeg
lacks) is a one-line :class:`PerceptError`. Writing is atomic (:func:`percept.image.atomic_write`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from pathlib import Path

import numpy as np

from ..errors import PerceptError
from ..image import atomic_write

#: Output containers by file extension (PyAV format names).
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: Frames within this many seconds of ``start`` count as at or after it (float times such as 0.1).
TIME_SLACK = 1e-3


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` finds. ``width``/``height`` are those of upright frames (rotation applied); ``rotation``
    is the clockwise turn, in degrees (0, 90, 180, 270), that makes the stored frames upright (the sense of the
    ``rotate`` tag); ``frames`` is estimated from duration and rate when the container does not store it
    (``frames_estimated``)."""

    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float
    rotation: int
    has_audio: bool
    codec: str
    frames_estimated: bool = False


def _av():
    try:
        import av
    except ImportError:
        raise PerceptError("video files need PyAV: pip install 'percept-cnn[video]'") from None
    return av


@contextmanager
def _open(path: str | os.PathLike, what: str = "video", video: bool = True):
    """The open container (and, if ``video``, its first video stream) of a readable file, else a one-line error."""
    av, path = _av(), Path(path)
    problem = ("not found" if not path.exists() else "is a directory, expected a video file" if path.is_dir()
               else "is empty (0 bytes)" if path.stat().st_size == 0 else None)
    if problem:
        raise PerceptError(f"{what} {str(path)!r} {problem}")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError:
        raise PerceptError(f"{what} {str(path)!r} is not a video file FFmpeg can read, or it is corrupt; check the "
                           "file or convert it to MP4 (H.264)") from None
    with container:
        if not video:
            yield container
            return
        if not container.streams.video:
            kind = "audio only" if container.streams.audio else "no video or audio"
            raise PerceptError(f"{what} {str(path)!r} has no video stream ({kind}); give a video file")
        if container.streams.video[0].codec_context is None:
            raise PerceptError(f"{what} {str(path)!r} uses a video codec this FFmpeg build cannot decode; "
                               "convert it to MP4 (H.264)")
        yield container, container.streams.video[0]


def _frame_rate(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else Fraction(25)


def _duration(container, stream) -> float:
    """Seconds of the video stream (of the file when the stream does not say; 0 when neither does)."""
    return float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1_000_000


def _decoded(container, stream, path) -> Iterator:
    """Decoded frames from the current position; packets FFmpeg cannot decode are skipped; none at all is an error."""
    av, count, failed = _av(), 0, 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                failed += 1
                continue
            count += len(frames)
            yield from frames
    except av.error.FFmpegError as exc:
        raise PerceptError(f"video {str(path)!r} is corrupt ({exc.strerror or exc}); check the file or re-encode "
                           "it") from None
    if count == 0:
        extra = f" ({failed} packets could not be decoded)" if failed else ""
        raise PerceptError(f"video {str(path)!r} has no decodable video frames{extra}; check the file or re-encode it")


def _rotation(frame, stream) -> int:
    """Clockwise degrees (0/90/180/270) that make frames upright: the display matrix, else a ``rotate`` tag."""
    if frame.rotation:  # FFmpeg's counter-clockwise angle of the display matrix
        return int(round(-frame.rotation / 90)) * 90 % 360
    tags = {key.lower(): value for key, value in stream.metadata.items()}
    try:
        return int(round(float(tags.get("rotate", 0)) / 90)) * 90 % 360
    except ValueError:
        return 0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count, duration, rotation, audio and codec of a video file (decodes one frame)."""
    with _open(path) as (container, stream):
        first = next(_decoded(container, stream, path))
        rotation = _rotation(first, stream)
        fps, duration = _frame_rate(stream), _duration(container, stream)
        frames = stream.frames or max(1, round(duration * fps))
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        return VideoInfo(width=width, height=height, fps=fps, frames=int(frames), duration=duration,
                         rotation=rotation, has_audio=bool(container.streams.audio),
                         codec=stream.codec_context.name, frames_estimated=not stream.frames)


def even_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """``(w, h)`` scaled so that the longest side is about ``longest``, aspect ratio kept, both even (>= 2)."""
    scale = longest / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def read_frames(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None,
                size: int | None = None) -> Iterator[np.ndarray]:
    """Upright RGB frames of a video, ``(H, W, 3)`` uint8, one at a time.

    Args:
        path: the video file.
        start: seconds from the first frame; decoding starts at the keyframe before it and the frames before
            ``start`` are dropped, so the first frame is the first one at or after ``start``.
        duration: seconds to read (frames with time in ``[start, start + duration)``); ``None`` reads to the end.
        size: longest side of the frames returned (aspect ratio kept, both sides even); ``None`` keeps the
            file's size.
    """
    if start < 0 or (duration is not None and duration <= 0) or (size is not None and size < 2):
        raise PerceptError(f"need start >= 0 s, duration > 0 s and size >= 2 px, got start={start}, "
                           f"duration={duration}, size={size}")
    with _open(path) as (container, stream):
        origin, tb, fps = stream.start_time or 0, stream.time_base, _frame_rate(stream)
        end, length = None if duration is None else start + duration, _duration(container, stream)
        if start > 0 and length and start >= length:
            raise PerceptError(f"start {start} s is past the end of video {str(path)!r} ({length:.3f} s)")
        try:  # to the keyframe at or before start; the frames before start are decoded and dropped
            if start > 0:
                container.seek(origin + int(start / tb), stream=stream, backward=True, any_frame=False)
        except _av().error.FFmpegError:
            raise PerceptError(f"cannot seek in video {str(path)!r}; re-encode it (e.g. to MP4, H.264)") from None
        rotation = target = None
        for index, frame in enumerate(_decoded(container, stream, path)):
            t = float((frame.pts - origin) * tb) if frame.pts is not None else index / fps
            if t < start - TIME_SLACK:
                continue
            if end is not None and t >= end - TIME_SLACK:
                break
            if rotation is None:
                rotation = _rotation(frame, stream)
                turned = rotation in (90, 270)
                if size is not None:
                    w, h = even_size(*((frame.height, frame.width) if turned else (frame.width, frame.height)), size)
                    target = (h, w) if turned else (w, h)
            if target is not None and target != (frame.width, frame.height):
                frame = frame.reformat(width=target[0], height=target[1], format="rgb24",
                                       interpolation="AREA" if target[0] < frame.width else "BICUBIC")
            rgb = frame.to_ndarray(format="rgb24")
            yield np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90)) if rotation else rgb


def _can_remux(av, fmt: str, template) -> bool:
    """Whether ``template``'s packets can be copied into a ``fmt`` file (an in-memory header write is tried)."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as trial:
            trial.add_stream_from_template(template)
            trial.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError, TypeError):
        return False


def _copy_audio(av, out, source, dst, remux: bool, start: float, end: float) -> None:
    """The audio of ``source`` in ``[start, end)`` (times of its video) into ``dst``: whole packets when ``remux``
    (those that begin before ``start`` are left out), else decoded, cut to the sample and encoded (AAC)."""
    src, video = source.streams.audio[0], (source.streams.video or [None])[0]
    origin, tb = float((video.start_time or 0) * video.time_base) if video is not None else 0.0, src.time_base
    offset = int(round((start + origin) / tb))
    source.seek(offset, stream=src, backward=True, any_frame=False)
    for packet in source.demux(src):
        if packet.pts is None or (remux and packet.pts < offset):
            continue
        if float(packet.pts * tb) - origin >= end:
            break
        if remux:
            packet.dts = packet.pts - offset if packet.dts is None else packet.dts - offset
            packet.pts -= offset
            packet.stream = dst
            out.mux(packet)
            continue
        for frame in packet.decode():
            t, rate, samples = float(frame.pts * tb) - origin, frame.sample_rate, frame.to_ndarray()
            if not frame.format.is_planar:  # packed (1, n * channels) -> planar (channels, n)
                samples = samples.reshape(-1, len(frame.layout.channels)).T
            first, stop = max(0, round((start - t) * rate)), min(samples.shape[1], round((end - t) * rate))
            if stop <= first:
                continue
            piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, first:stop]),
                                               format=frame.format.planar.name, layout=dst.layout.name)
            piece.sample_rate, piece.time_base = rate, Fraction(1, rate)
            piece.pts = round(t * rate) + first - round(start * rate)
            out.mux(dst.encode(piece))
    if not remux:
        out.mux(dst.encode())


def _check_frame(frame, shape=None) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 2:
        raise PerceptError(f"video frames must be (H, W, 3) uint8 RGB arrays of at least 2x2 pixels, got "
                           f"{arr.dtype} {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise PerceptError(f"all video frames must have the same size: {arr.shape} after {shape}")
    return arr


def _write(tmp: str, fmt: str, frames: Iterator, first: np.ndarray, fps: Fraction, audio_from, start: float,
           duration: float | None) -> None:
    av = _av()
    height, width = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2  # yuv420p needs even sides
    with av.open(tmp, "w", format=fmt) as out, \
            _open(audio_from, "audio source", video=False) if audio_from is not None else nullcontext() as source:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"  # mpeg4 is always built in
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "18", "preset": "medium"}
        else:
            video.bit_rate = int(width * height * float(fps) * 0.3)
        audio = remux = None
        if source is not None and source.streams.audio:  # every stream is added before the first packet
            src = source.streams.audio[0]  # PCM is re-encoded: its packets are long, and MP4 players lack it
            remux = not src.codec_context.name.startswith("pcm_") and _can_remux(av, fmt, src)
            audio = (out.add_stream_from_template(src) if remux else
                     out.add_stream("aac", rate=src.sample_rate,
                                    layout={1: "mono", 2: "stereo"}.get(len(src.layout.channels), src.layout.name)))
        count = 0
        for arr in chain([first], frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_check_frame(arr, first.shape)[:height, :width]),
                                               format="rgb24")
            frame.pts = count
            out.mux(video.encode(frame))
            count += 1
        out.mux(video.encode())
        if audio is not None:
            span = min(count / fps, duration if duration is not None else float("inf"))
            _copy_audio(av, out, source, audio, remux, start, start + float(span))


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps, audio_from=None,
                start: float = 0.0, duration: float | None = None) -> Path:
    """Write RGB frames as an H.264 (``libx264``, yuv420p; ``mpeg4`` where missing) video, atomically.

    Args:
        path: ``.mp4``, ``.m4v``, ``.mov`` or ``.mkv``; a temporary file in its folder is renamed onto it at the end,
            so on any failure ``path`` is left as it was.
        frames: ``(H, W, 3)`` uint8 RGB arrays, all the same size; odd sides lose their last row/column.
        fps: frame rate (a ``Fraction`` such as ``VideoInfo.fps``, an int, or a float).
        audio_from: a file whose audio (if any) is copied for the same span: its packets when the container takes
            them, else re-encoded to AAC. Packets that begin before ``start`` are left out; the audio outlasts the
            frames written by at most one packet (about 21 ms for AAC at 48 kHz).
        start: where in ``audio_from`` the frames begin (seconds, as given to :func:`read_frames`).
        duration: the longest span of audio to copy.
    """
    av, path = _av(), Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None or path.is_dir():
        raise PerceptError(f"output video {str(path)!r} must be a file named .mp4 (recommended), .m4v, .mov or .mkv")
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise PerceptError(f"output folder {str(path.parent)!r} does not exist; create it first")
    fps = Fraction(fps).limit_denominator(100_000) if isinstance(fps, float) else Fraction(fps)
    if fps <= 0:
        raise PerceptError(f"fps must be positive, got {fps}")
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise PerceptError(f"no frames to write to {str(path)!r}")
    first = _check_frame(first)
    try:
        atomic_write(path, lambda tmp: _write(tmp, fmt, iterator, first, fps, audio_from, start, duration))
    except av.error.FFmpegError as exc:
        raise PerceptError(f"could not write video {str(path)!r} ({exc.strerror or exc}); check the free disk "
                           "space and the frames") from None
    return path
