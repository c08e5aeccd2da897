"""``percept stylize-video``: style transfer for videos without flicker (optimisation, AdaIN or a trained network).

The options are generated from the settings of the video (:class:`percept.style.video_params.VideoParams`,
:class:`~percept.style.video_params.VideoRunParams`) and of the image method that paints each frame; the handler
merges them with a ``--params-from`` record, calls :func:`percept.stylize_video` once and prints what it wrote.
"""

from __future__ import annotations

import argparse
from typing import Any

from .commands import HELP
from .options import add_settings, settings_from_args

EPILOG = """\
examples:
  percept stylize-video clip.mp4 starry_night.jpg -o starry.mp4 --method adain --size 512
  percept stylize-video clip.mp4 wave.jpg -o wave.mp4 --size 256 --iterations 100       # optimisation
  percept stylize-video clip.mp4 wave.jpg -o part.mp4 --method adain --start 12 --duration 5
  percept stylize-video clip.mp4 -o net.mp4 --model starry.pt --temporal-blend 0.7       # trained network
  percept stylize-video clip.mp4 wave.jpg -o wave.mp4 --size 256 --passes 3              # steadier, slower
  percept stylize-video clip.mp4 wave.jpg -o again.mp4 --params-from wave.mp4            # reproduce a result

An interrupted run keeps its finished frames in OUT.frames/ beside the output: run the same command again to
continue. The record of each output is written beside it as OUT.mp4.json.
"""


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line: the video's and those of any image method."""
    from ..style.params import METHODS
    from ..style.video_params import VideoParams

    classes = dict.fromkeys((VideoParams, *METHODS.values()))
    return {k: v for cls in classes for k, v in settings_from_args(args, cls).items()}


def _cmd_stylize_video(args: argparse.Namespace) -> int:
    from ..style import stylize_video
    from ..style.video_params import VideoRunParams, resolve_video_settings

    settings = resolve_video_settings(_explicit(args), args.params_from)
    run = settings_from_args(args, VideoRunParams)
    result = stylize_video(args.video, args.styles, args.output, progress=not args.quiet, **run, **settings)
    w, h = result.size
    notes = [f"{result.frames} frames", f"{w}x{h}", f"{float(result.fps):.3g} fps",
             "with audio" if result.record.get("audio") else "no audio"]
    if result.resumed:
        notes.append(f"continued after {result.resumed} finished frames")
    if result.scene_cuts:
        notes.append(f"{len(result.scene_cuts)} scene cut(s)")
    print(f"wrote {result.path} ({', '.join(notes)}) in {result.seconds:.1f}s; record in {result.path}.json")
    return 0


def register(sub) -> None:
    from ..style.params import AdainParams, NetworkParams, StyleParams
    from ..style.video_params import NOT_FOR_VIDEO, VideoParams, VideoRunParams, video_settings

    p = sub.add_parser(
        "stylize-video", help=HELP["stylize-video"], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="Paint every frame of a video in the style of one or more paintings, without flicker (Ruder, "
        "Dosovitskiy & Brox 2016): the optical flow between frames carries each stylised frame on to the next, "
        "where it is reliable, and a scene cut starts afresh. Frame rate, frame count, size and audio are kept. "
        "Options a method does not use are refused.",
    )
    p.add_argument("video", metavar="IN", help="the video (MP4, MOV, MKV, ...)")
    p.add_argument("styles", metavar="STYLE", nargs="*", help="style image(s); several are blended (none with "
                   "--model)")
    g = p.add_argument_group("output")
    g.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="output video (.mp4, .m4v, .mov or "
                   ".mkv); its record is written beside it as OUT.mp4.json (required)")
    g.add_argument("--params-from", metavar="OUT.mp4", help="start from the settings recorded with a previous "
                   "output (its .json record, or the video beside it); explicit options override them "
                   "(default: off)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    shown = add_settings(p.add_argument_group("video options (also keyword arguments of percept.stylize_video)"),
                         VideoParams)
    add_settings(p.add_argument_group("work folder and flow cache"), VideoRunParams)

    video = list(shown)

    def image_options(method: str, cls: type, title: str) -> None:
        names = [n for n in video_settings(method) if n not in NOT_FOR_VIDEO[method] and n not in video]
        also = ", ".join("--" + n.replace("_", "-") for n in names if n in shown)
        group = p.add_argument_group(f"{title}; also {also}" if also else title)
        shown.extend(add_settings(group, cls, only=names, exclude=shown))

    image_options("optimize", StyleParams, "optimisation options (--method optimize), per frame")
    image_options("adain", AdainParams, "AdaIN options (--method adain), per frame")
    image_options("network", NetworkParams, "trained-network options (--model), per frame")
    p.set_defaults(func=_cmd_stylize_video)
