"""The noise floor of a focus volume as a tap's window sees it, and how far a window stands above it.

A window on a plain area (a dark background, the sky) has a focus curve made of
noise: it wanders between frames with no shape, and how far its peak stands
above its median says nothing. What tells such a window from a textured one is
how far its peak stands above the measure a window has in its most blurred
frame, typically. That floor is the median over all windows of their lowest
mean over the frames, as pass 1's confidence takes it for each pixel
(:func:`postfocus.focus.map.focus_index_map`, ``level``): it needs the whole
volume, so a stack folder keeps it (``tap_floor`` in its manifest) and a tap
reads it. The rule (peak over floor, in units of log 8) follows pass 1's; the
measure itself is the energy of the Laplacian (Nayar & Nakagawa 1994).

References
----------
S. K. Nayar, Y. Nakagawa, "Shape from focus", IEEE PAMI 16(8), 1994.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

__all__ = ["WINDOW", "above_floor", "window_floor"]

WINDOW = 6
"""Half-size (volume pixels) of a tap's window, the one the kept floor is measured with."""


def window_floor(slices: Iterable[np.ndarray], *, radius: int = WINDOW) -> float:
    """Noise floor of a focus volume for windows of half-size ``radius``.

    The median over pixels of the lowest window mean over the slices (each
    slice box-filtered with a ``2 radius + 1`` window, reflected at the
    border). Slices are taken one at a time, so a volume being written can be
    measured as it goes.

    Parameters
    ----------
    slices : iterable of (h, w) arrays
        The focus volume's slices, in the units the floor is wanted in.
    radius : int
        Window half-size in volume pixels.

    Returns
    -------
    float
        The floor (0.0 for no slices).

    Examples
    --------
    >>> v = np.full((3, 20, 20), 0.1, np.float32); v[1, :, :10] = 1.0
    >>> round(window_floor(v), 3)
    0.1
    """
    low = None
    size = (2 * radius + 1, 2 * radius + 1)
    for s in slices:
        mean = cv2.blur(np.asarray(s, np.float32), size, borderType=cv2.BORDER_REFLECT)
        low = mean if low is None else np.minimum(low, mean, out=low)
    return 0.0 if low is None else float(np.median(low))


def above_floor(peak: float | np.ndarray, floor: float) -> float | np.ndarray:
    """How far a window's peak stands above the floor: 0 at it, 1 at eight times it (clipped).

    ``log(peak / floor) / log 8``, as pass 1's ``level``; 1 everywhere when
    ``floor`` is 0 (no floor known).

    Examples
    --------
    >>> float(above_floor(0.8, 0.1)), float(above_floor(0.1, 0.1)), float(above_floor(0.3, 0.0))
    (1.0, 0.0, 1.0)
    """
    if floor <= 0:
        return np.ones_like(np.asarray(peak, np.float64)) if np.ndim(peak) else 1.0
    ratio = np.maximum(np.asarray(peak, np.float64) / floor, 1.0)
    level = np.clip(np.log(ratio) / np.log(8.0), 0.0, 1.0)
    return float(level) if np.ndim(level) == 0 else level
