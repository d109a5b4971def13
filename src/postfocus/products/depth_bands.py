"""The depth map's occlusion band: the pixels beside a farther surface whose focus reading a near outline raised.

A near object's sharp outline lends its focus energy to the far surface beside it (the measure's window reads
``MEASURE_REACH`` px beyond a pixel), and in the frames focused far its blur veils that surface's own detail:
depth-from-focus paints the near object a few pixels too wide. :func:`fixed_band` marks the pixels with a trusted
pixel clearly farther within a band's width; :func:`postfocus.products.depth.refine_depth` distrusts them. Its width
is 3 % of the long edge. Widths read from the stack were measured (docs/depth-and-aperture.md, band23): the measure's
reach plus the near blur at a depth edge's smallest gap gains on the dense sweep and at large grids but loses pins and
occluders; plus the near blur at each pixel's own gap keeps those but loses the dense sweep's steps.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["fixed_band"]


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
