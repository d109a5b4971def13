"""A pixel's first depth reading: its focus curve's peak fitted over the core, where a Gaussian describes it.

:func:`first_fit` gives :func:`postfocus.products.depth.refine_depth` two things: the Gaussian fit over three of the
curve's widths on each side of its best frame (:func:`postfocus.focus.map.gaussian_peak`), which the cleaning decides
on, and the shift to add for the pixel's own reading: the Gaussian fit over the curve's core, ``CORE_WIDTHS`` widths,
and on a dense sweep the stack's own curve shape over the same frames (:func:`postfocus.focus.peak.shape_shift`).

The aggregated focus curve follows a Gaussian of its width (:func:`postfocus.focus.map.curve_width`) to about 1.5
widths from its peak and has heavy tails beyond: a defocused texture's energy falls as a power of the blur radius, not
as a Gaussian (the bench's dense ramp measures 0.36, 0.26 and 0.09 of its peak at 1.5, 2 and 3 widths, the Gaussian
0.33, 0.14 and 0.01), and beside a depth step the tails hold the other surface's curve as well. The frames there pull a
fit's vertex off the core; the core alone is nearer the truth beside depth steps (docs/depth-and-aperture.md,
fifteenth session).
"""

from __future__ import annotations

import numpy as np

from postfocus.focus.map import gaussian_peak
from postfocus.focus.peak import shape_shift

CORE_WIDTHS = 1.5  # focus-curve widths (sigma) on each side of the best frame that a Gaussian describes
WIDE_WIDTHS = 3.0  # and the frames that carry the whole curve, tails included

__all__ = ["CORE_WIDTHS", "WIDE_WIDTHS", "first_fit"]


def _frames(widths: float, width: float, n: int) -> int:
    return int(np.clip(round(widths * width), 1, max(1, (n - 1) // 2)))


def first_fit(volume: np.ndarray, k: np.ndarray, peak: np.ndarray, width: float, floor: float = 0.0, *,
              reach: int | None = None, least: float = 0.0, clear: np.ndarray | None = None, agree: float = 1.0,
              threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's peak for the cleaning to decide on, and the shift (frames) to add for its own reading.

    The peak is the Gaussian fit over ``reach`` frames on each side of ``k`` (default ``WIDE_WIDTHS`` curve widths).
    With ``clear`` the shift is the shape fit's move of it (:func:`~postfocus.focus.peak.shape_shift` over the same
    frames, learnt from the ``clear`` pixels), else 0. With the default ``reach``, where the core (``CORE_WIDTHS``
    widths on each side of ``k``) lies inside the sweep and the peak stands more than ``least`` times above the noise
    ``floor``, the reading is instead the Gaussian fit over the core, moved by the shape fit over the core's frames
    where ``clear``: the shift is that reading less the peak. Where the core is cut by the sweep's first or last frame
    (the fit would see one flank) or the curve is noise (more frames average more of its noise), the wide fit stays;
    so it does on a sweep whose core spans less than two frames on each side (``width`` under 4/3 frames: the core is
    then the three frames of the parabola and the frames two away are in the tails).

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures (aggregated).
    k : int (H, W) each pixel's best frame; ``peak`` float (H, W) its measure there.
    width : the curves' width (sigma, frames), e.g. :func:`postfocus.focus.map.curve_width`.
    floor : noise floor subtracted from the measures.
    reach : frames of the fit on each side (default ``WIDE_WIDTHS`` widths, and the core's reading).
    least : peaks at or under ``least * floor`` keep the wide fit's reading.
    clear : bool (H, W) pixels whose curves teach and take the shape fit (a dense sweep's; None: no shape fit).
    agree : a shape fit moving a pixel this far (frames) or more is dropped (:func:`~postfocus.focus.peak.shape_shift`).
    threads : as :func:`~postfocus.focus.map.gaussian_peak` (the same bits).

    Returns
    -------
    (index, shift): float32 (H, W) each.

    References
    ----------
    M. Subbarao, T. Choi, "Accurate recovery of three-dimensional shape from image focus", IEEE PAMI 17(3), 1995.
    S. Pertuz, D. Puig, M. A. Garcia, "Analysis of focus measure operators for shape-from-focus", Pattern
    Recognition 46(5), 2013 (the focus curve's shape away from its peak).

    Examples
    --------
    >>> x = np.arange(30)[:, None, None]
    >>> curve = np.exp(-0.5 * ((x - 12.3) / 2.0) ** 2) + 0.2 / (1.0 + ((x - 21.0) / 2.0) ** 2)  # a second surface
    >>> v = (curve * np.ones((30, 1, 1))).astype(np.float32); k = np.array([[12]])
    >>> index, shift = first_fit(v, k, v[12], 2.0)
    >>> round(float(index[0, 0]), 1), round(float(index[0, 0] + shift[0, 0]), 1)
    (12.4, 12.3)
    """
    n = volume.shape[0]
    wide = _frames(WIDE_WIDTHS, width, n) if reach is None else int(reach)
    index = gaussian_peak(volume, k, wide, floor, threads=threads)
    shift = np.zeros_like(index)
    if clear is not None:
        shift = shape_shift(volume, index, clear, peak, wide, floor, agree=agree)
    core = _frames(CORE_WIDTHS, width, n)
    if CORE_WIDTHS * width < 2.0:  # a sparse sweep: its core is the three-frame parabola's frames, the next in the tails
        return index, shift
    # the core's frames around the best frame and around the wide fit inside the sweep: a curve cut by its end has its
    # best frame anywhere on its flat top, a few frames in
    inside = (np.minimum(k, index) >= core) & (np.maximum(k, index) <= n - 1 - core)
    inside &= peak > least * floor
    if reach is not None or core >= wide or not inside.any():
        return index, shift
    read = gaussian_peak(volume, k, core, floor, threads=threads)
    if clear is not None:
        read = read + shape_shift(volume, read, clear, peak, core, floor, agree=agree)
    return index, np.where(inside, read - index, shift).astype(np.float32)
