"""Checks of a tap's point and window before any work (:func:`~postfocus.products.refocus.tap`, ``pop``).

Moved out of :mod:`postfocus.products.refocus` (its 450-line limit) in the fifteenth session (grid10).
"""

from __future__ import annotations

from postfocus.errors import OptionError, PostfocusError
from postfocus.maps import MapsView
from postfocus.options import is_number, is_whole

__all__ = ["check_point"]


def _check_tap(stack: object, x: object, y: object, radius: object) -> None:
    """OptionError for what :func:`tap` cannot use (each was a TypeError or AttributeError from deep inside;
    ``radius=0`` a ValueError when the window was unsure, a negative one a tap on an empty window)."""
    if not isinstance(stack, MapsView):
        raise OptionError("stack", stack, "not a processed stack; open one with postfocus.process(...) first")
    for name, value in (("x", x), ("y", y)):
        if not is_number(value):
            raise OptionError(name, value, "must be a number of pixels")
    if not is_whole(radius) or radius < 1:
        raise OptionError("radius", radius, "must be a whole number of at least 1")


def check_point(stack: MapsView, x: float, y: float, radius: int = 6) -> None:
    """Refuse what :func:`tap` would refuse, before any work (``pop`` taps after making its image).

    Raises
    ------
    OptionError, PostfocusError
        As :func:`tap`.
    """
    _check_tap(stack, x, y, radius)
    h, w = stack.size
    x, y = float(x), float(y)  # (np.int8(20) < 196 was NumPy's OverflowError: review20)
    if not (0 <= x < w and 0 <= y < h):
        raise PostfocusError(f"point {float(x):g},{float(y):g} is outside the image ({w}x{h})")  # (not 1e308 in 309 digits)
