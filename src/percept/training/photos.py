"""An endless, resumable stream of samples drawn from a folder's photos: :class:`PhotoStream`.

Sample ``g`` belongs to epoch ``g // N``, which visits the ``N`` photos in an order shuffled by ``(seed, epoch)``;
a subclass draws its crop and flips from :meth:`PhotoStream.rng` (seeded by ``(seed, g)``). Every sample thus
depends only on its index: the stream is the same with any number of loader processes and after a resume.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from ..errors import PerceptError
from ..image import load_image


class PhotoStream(Dataset):
    """Base of the trainers' photo datasets; ``__getitem__`` is the subclass's."""

    def __init__(self, paths: Sequence[Path], seed: int) -> None:
        self.paths, self.seed = list(paths), seed
        self._order: tuple[int, list[int]] = (-1, [])

    def __len__(self) -> int:  # the stream is endless; a sampler picks the indices
        return 2**62

    def _photo(self, g: int) -> int:
        epoch, pos = divmod(g, len(self.paths))
        if self._order[0] != epoch:
            order = list(range(len(self.paths)))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._order = (epoch, order)
        return self._order[1][pos]

    def photo(self, g: int, what: str, usable: Callable[[Image.Image], bool] = lambda img: True) -> Image.Image:
        """The photo of sample ``g``; one that cannot be read (or is not ``usable``) is replaced by the next."""
        index = self._photo(g)
        for attempt in range(len(self.paths)):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                img = load_image(path, what=what)
                if usable(img):
                    return img
            except PerceptError as exc:
                warnings.warn(f"skipping {exc}", stacklevel=2)
        raise PerceptError(f"none of the {what}s can be read")

    def rng(self, g: int) -> random.Random:
        """The generator of sample ``g``'s crop and flips."""
        return random.Random(self.seed * 2_000_003 + g)
