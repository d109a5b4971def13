"""The depth map's occlusion band: the pixels beside a farther surface whose focus reading a near outline raised.

A pixel's focus measure reads its window's energy ``MEASURE_REACH`` px beyond itself, so in the frames where a near
object is sharp its outline's energy reaches that far onto the far surface beside it; in the frames where the far
surface is sharp the near object is blurred over a disc of radius ``c |d_q - d_p|`` (thin lens; ``c`` the stack's
blur growth per frame, Pentland 1987), which veils the far surface's own detail (beside the outline at most half of
the disc covers it). The band where the far side's reading can be carried to the near depth is therefore the
measure's reach plus the near blur at the smallest gap that is a depth edge (``jump``): a width read from the stack,
not a share of the picture's size (:func:`band_width`). A width growing with each pixel's own gap (the whole near
blur) was measured and lost on the dense sweep's steps (docs/depth-and-aperture.md, band23).
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.focus.sides import MEASURE_REACH

__all__ = ["band_width", "fixed_band"]


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def fixed_band(smooth: np.ndarray, trusted: np.ndarray, *, band: int, jump: float) -> np.ndarray:
    """Pixels with a trusted pixel more than ``jump`` slices farther within ``band`` px (one width for every gap).

    Parameters
    ----------
    smooth : numpy.ndarray
        float32 (h, w) depth (slices, near = small), median filtered.
    trusted : numpy.ndarray
        float32 (h, w) the same depth where it is trusted, -1 elsewhere.
    band : int
        Width of the band in pixels.
    jump : float
        Depth step (slices) that makes a depth edge.

    Returns
    -------
    numpy.ndarray
        bool (h, w).

    Examples
    --------
    >>> d = np.zeros((1, 12), np.float32); d[0, 8:] = 5.0
    >>> fixed_band(d, d, band=3, jump=1.0).nonzero()[1].tolist()
    [5, 6, 7]
    """
    return (cv2.dilate(trusted, _disc(int(band))) - smooth) > jump


def band_width(*, jump: float, growth: float, reach: int = MEASURE_REACH) -> int:
    """Width (px) of the occlusion band: the measure's reach plus the near blur at a depth edge's smallest gap.

    Parameters
    ----------
    jump : float
        Depth step (slices) that makes a depth edge.
    growth : float
        The stack's blur growth, pixels of disc radius per slice
        (:func:`postfocus.fuse.occlusion.solver_growth`).
    reach : int
        Pixels beyond itself a pixel's focus measure reads (its window).

    Returns
    -------
    int
        ``round(reach + growth * jump)``, at least ``reach``.

    References
    ----------
    A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987.

    Examples
    --------
    >>> band_width(jump=2.9, growth=0.3), band_width(jump=1.0, growth=0.9), band_width(jump=2.9, growth=2.0)
    (5, 5, 10)
    """
    return max(int(reach), int(round(reach + max(float(growth), 0.0) * float(jump))))
