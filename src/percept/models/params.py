"""The settings of :func:`percept.models.describe` (``percept models``); no torch import (the CLI reads it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..params import setting
from .names import KINDS


@dataclass
class DescribeParams:
    """What ``percept models`` lists."""

    kind: str | None = setting(None, "only the models of this kind", choices=tuple(KINDS), shown="every kind")
