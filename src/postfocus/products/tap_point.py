"""Checks of a tap's point and window before any work (:func:`~postfocus.products.refocus.tap`, ``pop``).

Moved out of :mod:`postfocus.products.refocus` (its 450-line limit) in the fifteenth session (grid10).
"""

from __future__ import annotations

import numpy as np

from postfocus.errors import OptionError, PostfocusError
from postfocus.maps import MapsView
from postfocus.options import is_number, is_whole

__all__ = ["check_point", "fill_at"]


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


def fill_at(fill: np.ndarray, cx: int, cy: int, map_scale: tuple[float, float]) -> float:
    """A plain window's answer: the median of the fill (focus positions on the focus map's grid) in the window
    :func:`~postfocus.products.aperture.focus_at` reads at the output size (0.6 % of the long edge each side),
    brought to the map's grid, so that the tap names the depth ``aperture`` focuses at there (tapgrid18).

    One pixel of the fill (before tapgrid18) differed from that median by up to 4.8 frames near a near object's
    outline, where the fill is not flat; in a plain area ``focus_at`` weighs no pixel (none is trusted), so the
    two are one number when the map is at the output size.

    Examples
    --------
    >>> fill_at(np.arange(25, dtype=np.float32).reshape(5, 5), 2, 2, (1.0, 1.0))
    12.0
    """
    from postfocus.products.aperture import focus_at

    h, w = fill.shape
    out = max(h / map_scale[1], w / map_scale[0])  # (the output's long edge)
    r = max(1, int(round(0.006 * out)))  # (focus_at's window at the output size)
    return focus_at(fill, cx, cy, radius=int(round(r * max(map_scale))))
