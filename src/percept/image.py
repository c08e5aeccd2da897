"""Image I/O and colour operations.

Tensors are float RGB batches ``(B, 3, H, W)`` in ``[0, 1]``. Loading turns every way an input can be bad
(missing, empty, not an image, truncated, zero-size, too large) into a one-line :class:`PerceptError`.
Saving is atomic (temporary file, then rename) and records parameters in the PNG (text chunk ``percept``)
or, for other formats, in a JSON sidecar.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import PerceptError

#: Largest input accepted, in pixels (same order as Pillow's decompression-bomb limit).
MAX_INPUT_PIXELS = 16384 * 16384
METADATA_KEY = "percept"


#: File extensions read as images when a folder is searched.
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}


def find_images(folder: str | os.PathLike, what: str) -> list[Path]:
    """Every image file under ``folder`` (recursively, sorted), or a one-line error naming the ``what`` folder."""
    root = Path(folder)
    if not root.is_dir():
        raise PerceptError(f"{what} folder {str(root)!r} not found")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise PerceptError(f"no images under {what} folder {str(root)!r} (looked for "
                           f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files

def load_image(path: str | os.PathLike, *, what: str = "image") -> Image.Image:
    """Open ``path`` as an RGB ``PIL.Image`` (EXIF orientation applied), or raise a one-line error.

    ``what`` names the input in messages (e.g. ``"content image"``).
    """
    path = Path(path)
    if not path.exists():
        raise PerceptError(f"{what} {str(path)!r} not found")
    if path.is_dir():
        raise PerceptError(f"{what} {str(path)!r} is a directory, expected an image file")
    if path.stat().st_size == 0:
        raise PerceptError(f"{what} {str(path)!r} is empty (0 bytes)")
    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w == 0 or h == 0:
                raise PerceptError(f"{what} {str(path)!r} has zero size ({w}x{h})")
            if w * h > MAX_INPUT_PIXELS:
                raise Image.DecompressionBombError(f"{w}x{h}")
            img = ImageOps.exif_transpose(img)
            img.load()
            return img.convert("RGB")
    except PerceptError:
        raise
    except Image.DecompressionBombError:
        raise PerceptError(
            f"{what} {str(path)!r} is too large (over {MAX_INPUT_PIXELS // 10**6} megapixels); downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise PerceptError(f"{what} {str(path)!r} is not an image file Pillow can read (e.g. PNG, JPEG, WebP)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PerceptError(f"{what} {str(path)!r} is corrupt or truncated ({exc})") from None


#: What the library accepts as an image: a file path, a PIL image or a ``(1, 3, H, W)`` tensor in ``[0, 1]``.
ImageInput = str | os.PathLike | Image.Image | torch.Tensor


def image_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """One image or a sequence of them, as a list."""
    return [images] if isinstance(images, (str, os.PathLike, Image.Image, torch.Tensor)) else list(images)


def as_pil(image: ImageInput, *, what: str = "image") -> Image.Image:
    """An RGB PIL image from a path (one-line errors naming ``what``), a PIL image or a tensor (8-bit rounded)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, torch.Tensor):
        return to_pil(image)
    return load_image(image, what=what)


def as_tensor(image: ImageInput, *, longest: int | None = None, what: str = "image") -> torch.Tensor:
    """``(1, 3, H, W)`` float in ``[0, 1]`` on the CPU, resized so its longest side is ``longest`` if given.

    A tensor (``(1, 3, H, W)`` or ``(3, H, W)``) is used as it is, without a round trip through 8 bits."""
    if not isinstance(image, torch.Tensor):
        return to_tensor(as_pil(image, what=what), longest=longest)
    out = image.detach().float().cpu()
    out = out.unsqueeze(0) if out.dim() == 3 else out
    if out.dim() != 4 or out.shape[:2] != (1, 3):
        raise PerceptError(f"a {what} tensor must be (1, 3, H, W) or (3, H, W) RGB in [0, 1], got "
                           f"{tuple(image.shape)}")
    if longest is not None:
        out = resize(out, fit_size(out.shape[-1], out.shape[-2], longest)).clamp(0, 1)
    return out


def fit_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """``(w, h)`` scaled so that the longest side is ``longest`` pixels (aspect ratio kept, >= 1 px)."""
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_tensor(img: Image.Image, longest: int | None = None, size: tuple[int, int] | None = None, *,
              resample: Image.Resampling = Image.Resampling.LANCZOS) -> torch.Tensor:
    """PIL image -> ``(1, 3, H, W)`` float tensor in ``[0, 1]``.

    Resized (``resample``, antialiased when shrinking: Lanczos by default) to ``size=(w, h)`` if given, else so
    its longest side is ``longest`` if given.
    """
    if size is None and longest is not None:
        size = fit_size(*img.size, longest)
    if size is not None and size != img.size:
        img = img.resize(size, resample)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` tensor in ``[0, 1]`` -> 8-bit RGB PIL image (clamped, rounded)."""
    t = tensor.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    arr = (t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(arr, "RGB")


def resize(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(B, C, H, W)`` to ``size=(w, h)`` with antialiased bicubic interpolation."""
    w, h = size
    if tensor.shape[-2:] == (h, w):
        return tensor
    return F.interpolate(tensor, size=(h, w), mode="bicubic", align_corners=False, antialias=True)


def check_writable(path: str | os.PathLike, *, what: str = "output", image: bool = True) -> Path:
    """Fail early (before long work) if ``path`` cannot be written; return it as a Path.

    ``image=True`` also requires an image file extension."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise PerceptError(f"{what} {str(path)!r} is a directory; give a file name such as "
                           f"{'out.png' if image else 'model.onnx'}")
    if not parent.is_dir():
        raise PerceptError(f"{what} folder {str(parent)!r} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise PerceptError(f"{what} folder {str(parent)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise PerceptError(f"{what} {str(path)!r} exists and is not writable")
    if image and path.suffix.lower() not in Image.registered_extensions():
        raise PerceptError(f"{what} {str(path)!r} has no known image extension; use .png (recommended) or .jpg")
    return path


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``; nothing partial is left behind on failure."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0o022)  # read it (only os.umask tells), then put it back
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private (0600); outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def png_info(metadata: dict[str, Any] | None) -> PngImagePlugin.PngInfo:
    """A PNG text chunk holding ``metadata`` as JSON (what :func:`read_metadata` reads back); empty for None."""
    info = PngImagePlugin.PngInfo()
    if metadata is not None:
        info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    return info


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write an image atomically; ``metadata`` goes in a PNG text chunk, else a ``.json`` sidecar."""
    path = Path(path)
    pil = to_pil(image) if isinstance(image, torch.Tensor) else image
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    if fmt == "PNG":
        atomic_write(path, lambda tmp: pil.save(tmp, format="PNG", pnginfo=png_info(metadata)))
    else:
        atomic_write(path, lambda tmp: pil.save(tmp, format=fmt, quality=95) if fmt == "JPEG" else pil.save(tmp, format=fmt))
        if metadata is not None:
            sidecar = path.with_name(path.name + ".json")
            atomic_write(sidecar, lambda tmp: Path(tmp).write_text(json.dumps(metadata, indent=2, sort_keys=True)))
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any] | None:
    """The parameters recorded by :func:`save_image`, or ``None`` if there are none."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        return json.loads(sidecar.read_text())
    with Image.open(path) as img:
        text = getattr(img, "text", {}) or {}
        return json.loads(text[METADATA_KEY]) if METADATA_KEY in text else None


def save_gif(frames: Sequence[torch.Tensor | Image.Image], path: str | os.PathLike, duration_ms: int = 80) -> Path:
    """Assemble frames into a looping animated GIF (atomic write); the last frame is held longer."""
    path = Path(path)
    pils = [to_pil(f) if isinstance(f, torch.Tensor) else f for f in frames]
    if not pils:
        raise PerceptError("no frames to assemble into a GIF")
    durations = [duration_ms] * (len(pils) - 1) + [1500]
    atomic_write(
        path,
        lambda tmp: pils[0].save(tmp, format="GIF", save_all=True, append_images=pils[1:], duration=durations, loop=0),
    )
    return path


# ------------------------------------------------------------------------------------------------ colour

# YIQ as in Gatys et al. 2016, "Preserving colour in neural artistic style transfer".
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)


_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)  # computed once on the CPU (not every backend has linalg.inv)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> YIQ (Y luminance in [0, 1]; I, Q chroma)."""
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq`."""
    return torch.einsum("ij,bjhw->bihw", _YIQ_TO_RGB.to(image), image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 3, H, W)`` grey image holding the Y channel in all three channels."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Shift and scale the luminance of grey ``source`` to the mean and std of grey ``reference``."""
    s, r = source[:, :1], reference[:, :1]
    out = (s - s.mean()) / (s.std() + 1e-8) * r.std() + r.mean()
    return out.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def combine_luminance_chroma(luma_from: torch.Tensor, chroma_from: torch.Tensor) -> torch.Tensor:
    """RGB image with the Y of ``luma_from`` and the I, Q of ``chroma_from`` (same ``(B, 3, H, W)``)."""
    y = rgb_to_yiq(luma_from)[:, :1]
    iq = rgb_to_yiq(chroma_from)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-6)
    vals = vals.rsqrt() if inverse else vals.sqrt()
    return vecs @ torch.diag(vals) @ vecs.T


def match_color(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Linear colour transfer: give ``source`` the RGB mean and covariance of ``reference``.

    ``x' = C_r^(1/2) C_s^(-1/2) (x - mu_s) + mu_r`` (Gatys et al. 2016, colour histogram matching).
    Shapes ``(1, 3, H, W)`` and ``(1, 3, H', W')``; output like ``source``, clamped to ``[0, 1]``.
    """
    s = source[0].reshape(3, -1).double()
    r = reference[0].reshape(3, -1).double()
    mu_s, mu_r = s.mean(1, keepdim=True), r.mean(1, keepdim=True)
    cov_s = torch.cov(s) + 1e-5 * torch.eye(3, dtype=s.dtype)
    cov_r = torch.cov(r) + 1e-5 * torch.eye(3, dtype=s.dtype)
    transform = _sqrtm(cov_r) @ _sqrtm(cov_s, inverse=True)
    out = transform @ (s - mu_s) + mu_r
    return out.reshape_as(source[0]).unsqueeze(0).to(source.dtype).clamp(0, 1)
