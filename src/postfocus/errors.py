"""Errors and warnings that postfocus reports to people.

Every problem a user can cause (a missing file, a corrupt frame, a bad option)
is raised as :class:`PostfocusError` with a one-line message that names the file
and the problem. The command line prints that line and exits non-zero; it never
shows a traceback for these.
"""

from __future__ import annotations


class PostfocusError(Exception):
    """A problem with the user's input or options, explained in one line."""


class InputError(PostfocusError):
    """An input path, frame or video cannot be used."""


class OutputError(PostfocusError):
    """An output path cannot be written."""


class AlignmentError(PostfocusError):
    """Frames could not be aligned well enough to stack."""


class PostfocusWarning(UserWarning):
    """Something was adjusted or left out; the run goes on."""
