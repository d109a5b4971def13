"""Pass 2's frames in the reference geometry: the region warped for a part, whole-frame warps, exposure gain.

:func:`aligned_region` grows a part of the picture by the reach of the occlusion consistency check
(:data:`MARGIN`), so a band or region is fused with the pixels around it and gives the same values as
the whole; :func:`warp_whole` warps a stored frame over it (bicubic, in its stored type); :func:`apply_gain`
corrects stored pixels for exposure in their own type (for the kept frames of a stack folder); :class:`WarpTurns`
lets a frame's whole warp wait until the frame before it is folded (one whole warp in memory, not two).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from postfocus.align.flow import refined_warp
from postfocus.align.warp import warp_to_reference
from postfocus.options import DEFAULT_METHOD

__all__ = ["MARGIN", "WarpTurns", "aligned_region", "apply_gain", "warp_whole"]

Region = tuple[int, int, int, int]

MARGIN = 16  # px: the reach of DepthmapFusion's consistency check (4 sigma of its Gaussian, and more)


def aligned_region(region: Region, size: tuple[int, int], method: str = DEFAULT_METHOD,
                   occlusion: bool = True) -> Region:
    """The part of the reference geometry ``size`` over which frames are warped to fuse ``region``.

    The occlusion consistency check looks :data:`MARGIN` px around a pixel: every part is fused
    with that margin of the picture around it (where the picture has it), so a region or a band
    gives the same pixels as the whole.

    Examples
    --------
    >>> aligned_region((100, 0, 200, 50), (300, 400))
    (84, 0, 216, 66)
    """
    top, left, bottom, right = region
    H, W = size
    m = MARGIN if method == "depthmap" and occlusion else 0
    return max(0, top - m), max(0, left - m), min(H, bottom + m), min(W, right + m)


def warp_whole(stored: np.ndarray, matrix: np.ndarray, size: tuple[int, int], region: Region,
               flow: np.ndarray | None = None) -> np.ndarray:
    """A frame warped (bicubic, in its stored type; with its dense ``flow`` if given) over ``region``
    of the reference geometry ``size``."""
    if flow is not None:
        t, l, b, r = region
        return refined_warp(stored, matrix, flow, size)[t:b, l:r]
    return warp_to_reference(stored, matrix, size, interpolation=cv2.INTER_CUBIC, region=region)


def apply_gain(pixels: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Per-channel exposure ``gain`` applied to stored pixels, keeping their type (integers round and saturate).

    Parameters
    ----------
    pixels : numpy.ndarray
        uint8, uint16 or float32 (h, w[, c]).
    gain : numpy.ndarray
        One factor per channel.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype (``pixels`` itself when every gain is 1).

    Examples
    --------
    >>> apply_gain(np.array([[[100, 200, 250]]], np.uint8), np.array([1.1, 1.0, 1.1])).tolist()
    [[[110, 200, 255]]]
    """
    if np.allclose(gain, 1.0):
        return pixels
    if pixels.dtype.kind == "f":
        return pixels * np.asarray(gain, np.float32)
    if pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == len(gain) == 3:  # a table per channel
        table = np.clip(np.round(np.arange(256, dtype=np.float64)[:, None] * np.asarray(gain, np.float64)), 0, 255)
        return cv2.LUT(pixels, table.astype(np.uint8).reshape(1, 256, 3))
    return cv2.multiply(pixels, tuple(float(g) for g in gain) + (0.0,) * (4 - len(gain)), dtype=-1)


class WarpTurns:
    """The k-th frame of a pass is warped whole only once ``k`` frames are folded (and dropped).

    Pass 2 decodes the next frame while one is folded; warping it then as well held two whole warps
    beside the decoded frame (three frames: 178 MB at algae's 20 MP). With these turns the decoding
    thread still decodes ahead, then waits (:meth:`wait`) until the fold before is done
    (:meth:`folded`): two frames at most. The warp's CPU is the same, on OpenCV's threads while the
    fold waits. :meth:`stop` lets every waiting warp go without warping (a failed pass).

    Examples
    --------
    >>> turns = WarpTurns()
    >>> turns.wait(0), turns.folded(), turns.wait(1)
    (True, None, True)
    >>> turns.stop(), turns.wait(5)
    (None, False)
    """

    def __init__(self) -> None:
        self._done, self._stopped = 0, False
        self._change = threading.Condition()

    def wait(self, k: int) -> bool:
        """Until ``k`` frames are folded: True, or False if the pass stopped first."""
        with self._change:
            self._change.wait_for(lambda: self._stopped or self._done >= k)
            return self._done >= k

    def folded(self) -> None:
        """One more frame folded and dropped."""
        with self._change:
            self._done += 1
            self._change.notify_all()

    def stop(self) -> None:
        """The pass is over (or failed): no warp waits any longer."""
        with self._change:
            self._stopped = True
            self._change.notify_all()
