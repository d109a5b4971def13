"""A focus curve's peak fitted over its core: the frames a Gaussian describes, not its heavy tails.

:func:`core_peak` is the first sub-frame reading of :func:`postfocus.products.depth.refine_depth`: the Gaussian fit
of :func:`postfocus.focus.map.gaussian_peak` over 1.5 of the curve's widths on each side of its best frame instead of
three, where those frames lie inside the sweep and the curve stands above the noise.
"""

from __future__ import annotations

import numpy as np

from postfocus.focus.map import gaussian_peak
from postfocus.numeric import pick0

CORE_WIDTHS = 1.5  # focus-curve widths (sigma) on each side of the best frame that a Gaussian describes
WIDE_WIDTHS = 3.0  # and the frames that carry the whole curve, tails included

__all__ = ["CORE_WIDTHS", "WIDE_WIDTHS", "core_peak"]


def core_peak(volume: np.ndarray, k: np.ndarray, width: float, floor: float = 0.0, *, least: float = 0.0,
              threads: int = 1) -> tuple[np.ndarray, int]:
    """Sub-frame peak: the Gaussian fit (:func:`gaussian_peak`) over the focus curve's core, ``CORE_WIDTHS`` of its
    widths on each side of frame ``k``, where that core lies inside the sweep; over ``WIDE_WIDTHS`` elsewhere.

    The aggregated focus curve follows a Gaussian of its width (:func:`curve_width`) to about 1.5 widths from its
    peak and has heavy tails beyond (a defocused texture's energy falls as a power of the blur radius, not as a
    Gaussian: at 2 and 3 widths the bench's dense ramp measures 0.26 and 0.09 of its peak against the Gaussian's
    0.14 and 0.01), and beside a depth step the tails hold the other surface's peak too: frames there pull a
    Gaussian's vertex off the core. Where the core window is cut by the sweep's first or last frame (the fit would
    see one flank) or the peak stands less than ``least`` times above the noise ``floor`` (a noise curve has no core
    to fit: more frames average more of its noise), the wider fit is kept.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures (aggregated).
    k : int (H, W) each pixel's best frame.
    width : the curves' width (sigma, frames), e.g. :func:`curve_width`.
    floor : noise floor subtracted from the measures.
    least : peaks under ``least * floor`` keep the wide fit.
    threads : as :func:`gaussian_peak` (the same bits).

    Returns
    -------
    (index, reach): float32 (H, W) fractional frame, and the core's reach in frames.

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
    >>> index, reach = core_peak(v, k, 2.0)
    >>> reach, round(float(index[0, 0]), 1), round(float(gaussian_peak(v, k, 6)[0, 0]), 1)
    (3, 12.3, 12.4)
    """
    n = volume.shape[0]
    wide, core = (int(np.clip(round(f * width), 1, max(1, (n - 1) // 2))) for f in (WIDE_WIDTHS, CORE_WIDTHS))
    index = gaussian_peak(volume, k, wide, floor, threads=threads)
    inside = (k >= core) & (k <= n - 1 - core) & (pick0(volume, k) > least * floor)
    if core < wide and inside.any():
        index = np.where(inside, gaussian_peak(volume, k, core, floor, threads=threads), index).astype(np.float32)
    return index, core
