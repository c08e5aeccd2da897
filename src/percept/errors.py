"""User-facing errors.

Every problem a user can cause or fix (a missing file, a bad layer name, weights that are not installed)
raises :class:`PerceptError` with a one-line message that says what is wrong and how to fix it. The CLI
prints that line and exits with a non-zero status; it never shows a traceback for these.
"""

from __future__ import annotations


class PerceptError(Exception):
    """An error caused by the user's input or environment, with a one-line, actionable message."""

    exit_code = 2


class WeightsUnavailableError(PerceptError):
    """The requested pretrained weights could not be found or downloaded from any known source."""


class InterruptedRun(PerceptError):
    """Training was interrupted (Ctrl-C); the message says how to resume it."""

    exit_code = 130
