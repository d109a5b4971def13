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


def pick_frames(used: Sequence[int], most: int) -> list[int]:
    """At most ``most`` of the ``used`` frames, evenly spread over the sweep (the ends kept).

    Examples
    --------
    >>> pick_frames(range(10), 4)
    [0, 3, 6, 9]
    """
    used = list(used)
    if len(used) <= most:
        return used
    return [used[int(k)] for k in np.unique(np.rint(np.linspace(0, len(used) - 1, most)).astype(int))]


def _strips(grey: np.ndarray, matrix: np.ndarray, centre: np.ndarray, normal: np.ndarray, reach: int) -> np.ndarray:
    """(M, 2 _ALONG + 1, 2 reach + 1) strips of a frame's ``grey`` across each edge, sampled at reference
    positions mapped into the frame by ``matrix``: rows along the edge, columns along the normal (from side B
    at column 0 to side A)."""
    t = np.arange(-reach, reach + 1, dtype=np.float64)[None, None, :]
    s = np.arange(-_ALONG, _ALONG + 1, dtype=np.float64)[None, :, None]
    cy, cx = centre[:, 0, None, None], centre[:, 1, None, None]
    ny, nx = normal[:, 0, None, None], normal[:, 1, None, None]
    y, x = cy + t * ny + s * nx, cx + t * nx - s * ny
    p = np.asarray(matrix, np.float64)
    wgt = p[2, 0] * x + p[2, 1] * y + p[2, 2]
    fx = ((p[0, 0] * x + p[0, 1] * y + p[0, 2]) / wgt).astype(np.float32)
    fy = ((p[1, 0] * x + p[1, 1] * y + p[1, 2]) / wgt).astype(np.float32)
    m, a, b = fx.shape
    out = cv2.remap(grey, fx.reshape(m * a, b), fy.reshape(m * a, b), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REFLECT)
    return out.reshape(m, a, b)


def _measures(strips: np.ndarray, reach: np.ndarray, extent: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Per strip: the mean profile's steepest step at the edge (within 3 px); the detail along the edge (mean
    squared second difference between neighbouring rows: a slightly slanted ramp has none, the normal is the
    analysis') of side B's band and of side A's band (from :data:`_INNER` to the strip's ``reach`` and the
    side's ``extent``); the median of that detail over the strip (the noise, where most of a strip is
    smooth). A band shorter than :data:`_INNER` + 2 px has no detail (NaN)."""
    r = strips.shape[2] // 2
    step = np.abs(np.diff(strips.mean(1), axis=1))[:, r - 3:r + 3].max(1)
    along = np.diff(strips, 2, axis=1) ** 2
    t = np.arange(-r, r + 1)[None, :]
    ends = np.stack([reach, reach], 1).astype(np.float64)
    if extent is not None:
        ends = np.minimum(ends, extent)
    side_b = (t <= -_INNER) & (-t <= ends[:, 1, None])
    side_a = (t >= _INNER) & (t <= ends[:, 0, None])
    per = along.mean(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(side_b.sum(1) >= 3, (per * side_b).sum(1) / side_b.sum(1), np.nan)
        a = np.where(side_a.sum(1) >= 3, (per * side_a).sum(1) / side_a.sum(1), np.nan)
    return step, b, a, np.median(along.reshape(len(strips), -1), axis=1)


def _smooth(curves: np.ndarray) -> np.ndarray:
    """Focus curves (M, F) smoothed along the sweep with a [1, 2, 1] / 4 kernel (ends repeated): a surface's
    detail changes gradually with focus, a frame's JPEG and noise do not."""
    if curves.shape[1] < 3:
        return curves
    padded = np.concatenate([curves[:, :1], curves, curves[:, -1:]], 1)
    return 0.25 * padded[:, :-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]


def edge_votes(read: Callable[[int], np.ndarray], matrices: Sequence[np.ndarray], centre: np.ndarray,
               normal: np.ndarray, reach: np.ndarray, frames: Sequence[int], sides: np.ndarray,
               extent: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whether each candidate edge says near to far, from a focus sweep of the edge and its two sides.

    In each of ``frames`` (in sweep order) the strip across the edge gives the edge's steepness and each
    side's detail. The edge belongs to the frame where it is steepest (its owner's, the near side's); a side
    whose detail is sharpest in another frame (by :data:`AHEAD`, above :data:`NOISE`) is the far side, there.

    Parameters
    ----------
    read : callable
        ``read(i)``: frame ``i``'s stored pixels (its own geometry, grey or colour).
    matrices : sequence of numpy.ndarray
        3x3 per frame, reference pixel coordinates -> the frame's (:class:`~postfocus.align.FrameAlignment`).
    centre, normal : numpy.ndarray
        (M, 2) edge positions (y, x) in the reference geometry and unit normals (y, x).
    reach : numpy.ndarray
        (M,) int half-length of the profile, px: beyond the wider blur of the edge.
    frames : sequence of int
        The frames read (:func:`pick_frames`), in sweep order.
    sides : numpy.ndarray
        (M, 2) float: the frame (sub-frame number) of side A and of side B in the analysis' focus map; a side
        is the far side only where its own detail peaks within a frame of it, the edge's frame is farther than
        that from it, and within a frame of the other side's (the edge's owner, in the map too).
    extent : numpy.ndarray, optional
        (M, 2) px: how far side A (along the normal) and side B are still themselves (a side's band stops
        there, before another outline).

    Returns
    -------
    vote, ok : numpy.ndarray
        (M,) float in [-1, 1]: +1 when the edge's frame (the near side's) comes before the far side's (near
        to far), graded by the log ratio of the edge's steepness in the two frames (full at 2x), 0 where not
        ``ok``; and bool: a far side was found (and the two sides, if both qualify, agree).

    References
    ----------
    Asada, Fujiwara and Matsuyama (1998); Bhasin and Chaudhuri (2001): see the module.
    """
    m, f = len(centre), len(frames)
    r = int(reach.max()) if m else 0
    step, detail_b, detail_a, noise = (np.zeros((m, f)) for _ in range(4))
    for j, i in enumerate(frames):
        pixels = read(i)
        grey = pixels.astype(np.float32).mean(2) if pixels.ndim == 3 else pixels.astype(np.float32)
        strips = _strips(grey, matrices[i], centre, normal, r)
        step[:, j], detail_b[:, j], detail_a[:, j], noise[:, j] = _measures(strips, reach, extent)
    floor = NOISE * np.median(noise, axis=0) / _CHI2_MEDIAN  # each frame's noise energy
    rows = np.arange(m)
    edge = step.argmax(1)  # the edge's frame: its owner's, the near side's
    position = np.asarray(frames, np.float64)
    near = 1.0  # frames: a side's depth agrees with a peak within this
    votes = []
    for detail, side, owner in ((detail_a, sides[:, 0], sides[:, 1]), (detail_b, sides[:, 1], sides[:, 0])):
        detail = _smooth(np.nan_to_num(detail))  # (a side too short to read has none)
        own = detail.argmax(1)
        apart = (detail[rows, own] > np.maximum(AHEAD * detail[rows, edge], floor[own])) & (own != edge)
        apart &= (np.abs(position[own] - side) <= near) & (np.abs(side - position[edge]) > near)  # as the map says
        apart &= np.abs(owner - position[edge]) <= near  # and the edge is the other side's, in the map too
        with np.errstate(invalid="ignore", divide="ignore"):
            clear = np.clip(np.log2(step[rows, edge] / np.maximum(step[rows, own], 1e-9)), 0.0, 1.0)
        votes.append(np.where(apart, np.sign(position[own] - position[edge]) * clear, np.nan))
    va, vb = votes
    both = np.isfinite(va) & np.isfinite(vb)
    vote = np.where(np.isfinite(va), va, vb)
    ok = (np.isfinite(va) | np.isfinite(vb)) & ~(both & (np.sign(va) != np.sign(vb))) & (vote != 0)
    return np.where(ok, np.nan_to_num(vote), 0.0), ok
