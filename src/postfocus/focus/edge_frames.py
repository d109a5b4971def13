"""Which side of a candidate occlusion edge is near, read in the full-resolution aligned frames.

The analysis size finds the candidate edges and the focus index of either side
(:mod:`postfocus.focus.direction`), but it cannot separate a near silhouette
from a marking on the far surface a few full-resolution pixels beside it. Here
each candidate is looked at in the two frames focused on its two sides, ``a``
and ``b``, at the frames' own resolution, through a small strip across the
edge (a profile along the normal, a few pixels wide along the edge):

* **The edge belongs to the near side**: where the near object A hides the far
  surface B, A's outline is a sharp step in A's frame (the blurred B behind it
  is cut off there) and a ramp as wide as A's blur disc in B's frame (the
  reversed projection blurring model of Asada et al. [1]_; Bhasin and
  Chaudhuri [2]_). The steeper of the two frames' mean profiles at the edge
  names the side that owns the edge.
* **The other side must lie elsewhere**: the far side's own detail (its
  gradient energy *along* the edge, in a band beside it, where the edge's own
  ramp has none) is sharper in its own frame than in the edge's frame. A marking
  or a texture line on one surface fails this: its two sides are that surface,
  whose detail is sharpest in the same frame as the edge, and a textureless
  side says nothing. Only the far side's detail is asked for: a near object's
  face beside its outline is often plain (a black switch body).

References
----------
.. [1] N. Asada, H. Fujiwara and T. Matsuyama, "Seeing behind the scene: analysis of photometric properties
   of occluding edges by the reversed projection blurring model", IEEE TPAMI 20(2), 1998.
.. [2] S. S. Bhasin and S. Chaudhuri, "Depth from defocus in presence of partial self occlusion",
   ICCV 2001.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from postfocus.align.warp import warp_to_reference

__all__ = ["AHEAD", "NOISE", "edge_votes", "pick_frames"]

AHEAD = 2.0
"""The far side's detail (gradient energy along the edge) must be this much stronger in its own frame than in the
edge's frame (its amplitude 1.4 times: a frame or more of defocus, not noise or JPEG)."""
NOISE = 4.0
"""A side's detail counts above this many times its frame's noise (the lower quartile of all the bands' detail
in that frame: most bands beside an edge are smooth surface)."""
_CHI2_MEDIAN = 0.4549  # the median of a squared unit normal: a noise energy's median over its mean
_ALONG = 4  # px (frame resolution) either side of the edge pixel along the edge
_INNER = 2  # px: the side bands start this far from the edge (the edge's own gradient)


def pick_frames(pairs: np.ndarray, weight: np.ndarray, most: int) -> set[int]:
    """At most ``most`` frames covering the heaviest candidates: (a, b) frame pairs are taken by their total
    weight while both frames fit.

    Examples
    --------
    >>> sorted(pick_frames(np.array([[0, 3], [1, 3], [0, 3]]), np.array([1.0, 1.5, 1.0]), 2))
    [0, 3]
    """
    keys, inverse = np.unique(np.asarray(pairs, np.int64), axis=0, return_inverse=True)
    total = np.bincount(inverse.ravel(), np.asarray(weight, np.float64), len(keys))
    chosen: set[int] = set()
    for k in np.argsort(-total, kind="stable"):
        want = chosen | {int(keys[k, 0]), int(keys[k, 1])}
        if len(want) <= most:
            chosen = want
    return chosen


def _strips(grey: np.ndarray, centre: np.ndarray, normal: np.ndarray, reach: np.ndarray) -> list[np.ndarray]:
    """(2 _ALONG + 1, 2 reach + 1) strips of ``grey`` across each edge: rows along the edge, columns along the
    normal (from side B at column 0 to side A)."""
    out = []
    for (cy, cx), (ny, nx), r in zip(centre, normal, reach):
        t = np.arange(-r, r + 1, dtype=np.float32)[None, :]
        s = np.arange(-_ALONG, _ALONG + 1, dtype=np.float32)[:, None]
        map_y = (cy + t * ny + s * nx).astype(np.float32)
        map_x = (cx + t * nx - s * ny).astype(np.float32)
        out.append(cv2.remap(grey, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out


def _measures(strip: np.ndarray) -> tuple[float, float, float, float]:
    """The mean profile's steepest step at the edge (within 3 px); the detail along the edge (mean squared
    second difference between neighbouring rows: a slightly slanted ramp has none, the normal is the analysis')
    of side B's band and of side A's band; the median of that detail over the strip's pixels (the noise,
    where most of a strip is smooth)."""
    r = strip.shape[1] // 2
    profile = strip.mean(0)
    step = np.abs(np.diff(profile))[r - 3:r + 3].max()
    along = np.diff(strip, 2, axis=0) ** 2
    return (float(step), float(along[:, :r - _INNER + 1].mean()), float(along[:, r + _INNER:].mean()),
            float(np.median(along)))


def edge_votes(read: Callable[[int], np.ndarray], matrices: Sequence[np.ndarray], size: tuple[int, int],
               centre: np.ndarray, normal: np.ndarray, frames: np.ndarray, reach: np.ndarray,
               usable: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """Which side of each candidate edge is near, from the frames focused on its two sides.

    Parameters
    ----------
    read : callable
        ``read(i)``: frame ``i``'s stored pixels (its own geometry, grey or colour).
    matrices : sequence of numpy.ndarray
        3x3 per frame, reference pixel coordinates -> the frame's (:class:`~postfocus.align.FrameAlignment`).
    size : tuple of int
        The reference geometry (height, width) that ``centre`` is in.
    centre, normal : numpy.ndarray
        (M, 2) edge positions (y, x) in the reference geometry and unit normals (y, x) pointing to side A.
    frames : numpy.ndarray
        (M, 2) int frame focused on side A and on side B.
    reach : numpy.ndarray
        (M,) int half-length of the profile, px: beyond the wider blur of the edge.
    usable : set of int
        The frames that are read (:func:`pick_frames`); a candidate with another frame gets no vote.

    Returns
    -------
    near_a, ok : numpy.ndarray
        (M,) float in [-1, 1]: +1 when side A is near (the edge is steeper in A's frame), graded by the log
        ratio of the two steps (full at 2x), 0 where not ``ok``; and bool: the other side's detail is
        sharper in its own frame (:data:`AHEAD`, above :data:`NOISE`).

    References
    ----------
    Asada, Fujiwara and Matsuyama (1998); Bhasin and Chaudhuri (2001): see the module.
    """
    m = len(centre)
    got = np.full((m, 2, 4), np.nan)  # per candidate, in side A's and side B's frame: _measures
    h, w = size
    for i in sorted(usable):
        which = np.nonzero((frames == i).any(1))[0]
        if which.size == 0:
            continue
        pixels = read(i)
        for k in which:
            r = int(reach[k]) + 2
            cy, cx = centre[k]
            box = (int(max(0, np.floor(cy - r))), int(max(0, np.floor(cx - r))),
                   int(min(h, np.ceil(cy + r) + 1)), int(min(w, np.ceil(cx + r) + 1)))
            patch = warp_to_reference(pixels, np.asarray(matrices[i], np.float64), size, region=box)
            grey = patch.astype(np.float32).mean(2) if patch.ndim == 3 else patch.astype(np.float32)
            local = np.array([[cy - box[0], cx - box[1]]], np.float32)
            strip = _strips(grey, local, normal[k:k + 1], reach[k:k + 1])[0]
            for side in (0, 1):
                if frames[k, side] == i:
                    got[k, side] = _measures(strip)
    floor = np.full((m, 2), np.nan)  # each side's frame's noise energy, from the median strip's median
    for i in usable:
        at = frames == i
        if at.any():
            floor[at] = NOISE * np.nanmedian(got[:, :, 3][at]) / _CHI2_MEDIAN
    step_a, step_b = got[:, 0, 0], got[:, 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        near_a = np.clip(np.log2(np.maximum(step_a, 1e-9) / np.maximum(step_b, 1e-9)), -1.0, 1.0)
        b_apart = got[:, 1, 1] > np.maximum(AHEAD * got[:, 0, 1], floor[:, 1])  # B's detail sharpest in B's frame
        a_apart = got[:, 0, 2] > np.maximum(AHEAD * got[:, 1, 2], floor[:, 0])
        ok = np.isfinite(got).all((1, 2)) & np.where(near_a > 0, b_apart, a_apart) & (near_a != 0)
    return np.where(ok, near_a, 0.0), ok
