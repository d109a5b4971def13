"""Errors and warnings that postfocus reports to people.

Every problem a user can cause (a missing file, a corrupt frame, a bad option)
is raised as :class:`PostfocusError` with a one-line message that names the file
and the problem. The command line prints that line and exits non-zero; it never
shows a traceback for these.
"""

from __future__ import annotations

__all__ = ["PostfocusError", "InputError", "OutputError", "AlignmentError", "OptionError", "PostfocusWarning", "frame_runs",
           "shown"]

SHOWN = 80  # characters of a value said back in a message, at most


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


class OptionError(PostfocusError):
    """An option given to the library has a value it cannot use.

    The message names the library parameter (``frame_range``, ``reference``, ...);
    each face of the library (command line, web app, batch manifest) maps
    ``param`` to its own spelling of the option.

    Attributes
    ----------
    param : str
        Name of the keyword argument / :class:`postfocus.options.StackOptions` field.
    value : object
        The value given.
    reason : str
        What is wrong with it, as a phrase ("choose one of a, b").
    """

    def __init__(self, param: str, value: object, reason: str):
        self.param, self.value, self.reason = param, value, reason
        super().__init__(f"{param}={shown(value)}: {reason}")


def shown(value: object) -> str:
    """``repr(value)`` for a message, cut short when it is long.

    A value given as ``10**5000`` has no repr at all (Python refuses to write an int of more than 4300 digits:
    a ValueError raised while the message was made), and ``10**400`` said back 401 digits.

    Examples
    --------
    >>> shown(2.5), shown("a")
    ('2.5', "'a'")
    >>> shown(10**400)
    '1000000000000000000000000000000000000000...0000000000000000000000000000 (401 characters)'
    >>> shown(10**5000)
    'an int too long to show'

    One line, as every message is (a NumPy array's repr runs over several):

    >>> import numpy as np
    >>> shown(np.eye(2, dtype=int))
    'array([[1, 0], [0, 1]])'
    """
    try:
        text = " ".join(line.strip() for line in repr(value).splitlines())  # (a 2-D array's repr spans lines)
    except ValueError:  # (an int past sys.get_int_max_str_digits(), or a repr that fails)
        name = type(value).__name__
        return f"{'an' if name[:1] in tuple('aeiou') else 'a'} {name} too long to show"
    if len(text) <= SHOWN:
        return text
    return f"{text[:40]}...{text[-28:]} ({len(text)} characters)"


def frame_runs(frames, *, first: int = 0) -> str:
    """Frame numbers for a message, runs of consecutive frames written as ranges.

    A 120-frame video's kept frames read "0-119", not a list of 120 numbers.

    Parameters
    ----------
    frames : iterable of int
        Frame numbers, counted from 0.
    first : int, optional
        Number of the first frame in the text (1 where the message counts from 1).

    Returns
    -------
    str
        The runs, separated by commas; "none" for no frame.

    Examples
    --------
    >>> frame_runs([0, 1, 2, 3, 5, 7, 8])
    '0-3, 5, 7-8'
    >>> frame_runs([0, 1, 2], first=1), frame_runs([])
    ('1-3', 'none')
    """
    ordered = sorted({int(f) for f in frames})
    runs: list[list[int]] = []
    for f in ordered:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    if not runs:
        return "none"
    return ", ".join(f"{a + first}" if a == b else f"{a + first}-{b + first}" for a, b in runs)
