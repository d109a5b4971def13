"""Occlusion edges of the focus index moved onto the near object's outline.

Beside an occlusion edge the focus measure of the frame focused on the near
object is high on both sides of its outline: the outline is a sharp step
there, and the measure's window (and the aggregation after it) spreads that
step's energy onto the far surface next to it, whose own texture is blurred in
that frame and weak. The focus index therefore gives the near object's frame
to a rim of the far surface, up to :func:`~postfocus.focus.sides.edge_spill`
px wide. The spread is symmetric about the step: along a line across the edge
the near frame's measure rises from the blurred far surface to a peak *at* the
outline (the step of the reversed projection blurring model, Asada et al.
[1]_), so the outline lies where that profile first peaks, coming from the far
side.

:func:`near_outline` reads that profile in the stored, unaggregated focus
measure (the narrowest window the stack keeps) from each near-side pixel's
nearest farther pixel (a confident farther index by more than ``jump``,
within ``reach`` px) along the line through the pixel, up to ``reach`` px
from that farther pixel, in the slice of the pixel's own frame; the pixel goes to the far side (its nearest farther
pixel's index) where the profile's first peak lies beyond it. Pixels that the
profile reaches at the peak or after are the near object and keep their
index. The far side must be a surface (confident pixels, a region of some
size, not a speck inside the near object), the peak must stand out of the
far side's own measure (an outline, not texture), and past the peak the line
must lie on the near object; within reach of clipped light nothing moves
(its blur over the far surface is light no later step can take off).
Nothing is moved the other way (a far surface's texture has no sharp
outline in the frames focused near, so the far index does not bleed onto near
objects: docs/quality.md, "The near outline's bled index, given back").

References
----------
.. [1] N. Asada, H. Fujiwara and T. Matsuyama, "Seeing behind the scene: analysis of photometric properties
   of occluding edges by the reversed projection blurring model", IEEE TPAMI 20(2), 1998.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["near_outline"]

SURE = 0.5
"""The confidence a farther pixel needs to be a far side (filled, unsure pixels are not evidence)."""
CLIPPED = 0.97
"""A guide value (0-1) that may be clipped light (the background solver's level, ``fuse/depthmap.py``)."""
BODY = 2
"""Half the width (px) of the smallest far region taken as a surface, and how far past the peak the ray must
still be on the near object."""


def near_outline(index: np.ndarray, volume: np.ndarray, confidence: np.ndarray | None = None,
                 guide: np.ndarray | None = None, *, reach: int = 12,
                 jump: float = 1.5, rise: float = 0.5, contrast: float = 4.0, margin: float = 0.5,
                 area: float = 4.0) -> np.ndarray:
    """The focus index with its occlusion edges moved onto the near object's outline.

    Parameters
    ----------
    index : float32 (H, W) focus index in slices of ``volume`` (0 .. N-1).
    volume : (N, H, W) focus measure of each slice, as measured (not aggregated).
    confidence : float32 (H, W) confidence of ``index`` in [0, 1]; farther pixels below :data:`SURE` are not
        taken as the far side (None: all are).
    guide : float32 (H, W) grey image (0-1) the map was made with; no pixel within ``reach`` of a value of
        :data:`CLIPPED` or more is moved (None: no such test). A clipped near object's blur over the far
        surface holds light that no later step can know and take off (docs/quality.md, halo5-halo13); the
        bled index keeps the near object's frame, blurred but free of that light, there.
    reach : how far (px) from the far side's confident pixels a near pixel is looked at, and how far the profile
        is read: the rim a near frame's sharp outline carries its index over
        (:func:`~postfocus.focus.sides.edge_spill`) and the unsure, filled band between it and the far side's
        confident pixels (``focus_index_map`` passes twice the spill); also the radius of the clipped-light test.
    jump : an index step (slices) that is an occlusion edge, not a slope.
    rise : the outline is the peak of the profile's first run (read from the far side) at or above ``rise``
        times the profile's maximum.
    margin : how far (px) before the peak a pixel must lie to go to the far side.
    contrast : the profile's maximum must be this many times its value at the far side's pixel (an outline,
        not the far surface's own texture).
    area : a far side is a connected region of confident farther pixels of at least ``area * reach ** 2``
        pixels: a far patch inside a near object (a thin object's far texture seen through its blur) is not the
        surface behind the near object's outline, and would carry its index across it.

    Returns
    -------
    float32 (H, W): ``index`` where kept, the nearest farther pixel's index where given to the far side.

    Examples
    --------
    A near square (slice 0) whose index reaches 3 px past its outline onto a far surface (slice 3): the
    near slice's measure peaks at the outline (columns 7 and 8), so the 3 px rim goes back to the far index.

    >>> volume = np.zeros((4, 16, 24), np.float32); volume[0, :, 7:9] = 1.0; volume[0, :, 5:7] = 0.6
    >>> volume[0, :, 9:11] = 0.6; volume[3, :, 11:] = 0.2
    >>> index = np.full((16, 24), 3.0, np.float32); index[:, :11] = 0.0
    >>> out = near_outline(index, volume, reach=6)
    >>> out[8, 6:12].tolist()
    [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]
    """
    index = np.asarray(index, np.float32)
    n, h, w = volume.shape
    out = index.copy()
    level = np.clip(np.rint(index), 0, n - 1).astype(np.intp)
    sure = np.ones((h, w), bool) if confidence is None else np.asarray(confidence) >= SURE
    free = np.ones((h, w), bool)
    if guide is not None:  # clipped light within reach: its bloom is unknown, the bled index is kept there
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
        free = cv2.dilate((np.asarray(guide) >= CLIPPED).astype(np.uint8), disc) == 0
    solid = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BODY + 1,) * 2)
    for k in range(n - 1):
        here = (level == k) & free
        # the farther surface (by more than jump): its confident pixels, without specks narrower than 2 BODY + 1 px
        # or smaller than reach squared (a far speck inside a near object is not the surface behind it)
        farther = cv2.morphologyEx(((index > k + jump) & sure).astype(np.uint8), cv2.MORPH_OPEN, solid)
        if not here.any() or not farther.any():
            continue
        count, parts, stats, _ = cv2.connectedComponentsWithStats(farther, connectivity=8)
        farther = (stats[:, cv2.CC_STAT_AREA] >= area * reach * reach)[parts] & (parts > 0)
        farther = farther.astype(np.uint8)
        if not farther.any():
            continue
        dist, labels = cv2.distanceTransformWithLabels(1 - farther, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        sel = here & (dist > 0) & (dist <= reach)
        if not sel.any():
            continue
        ys, xs = np.nonzero(sel)
        qy, qx = _label_points(farther, labels, ys, xs)
        peak, d, (uy, ux) = _first_peak(np.asarray(volume[k], np.float32), ys, xs, qy, qx, reach=reach, rise=rise,
                                        contrast=contrast)
        # past the peak the ray must be on the near object (its index not farther): the peak is its outline
        by = np.clip(np.rint(qy + uy * (peak + BODY)), 0, h - 1).astype(np.intp)
        bx = np.clip(np.rint(qx + ux * (peak + BODY)), 0, w - 1).astype(np.intp)
        moved = (peak > d + margin) & (index[by, bx] <= k + jump)
        out[ys[moved], xs[moved]] = index[qy[moved], qx[moved]]
    # single pixels whose own line found no peak among moved neighbours: the 3x3 median, next to a move only
    nearby = cv2.dilate((out != index).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return np.where(nearby, cv2.medianBlur(out, 3), out)


def _label_points(mask: np.ndarray, labels: np.ndarray, ys: np.ndarray, xs: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates of the nearest ``mask`` pixel of each (ys, xs), from ``distanceTransformWithLabels``'s
    per-pixel labels (each ``mask`` pixel carries its own label, which the pixels nearest to it share)."""
    py, px = np.nonzero(mask)
    table_y = np.zeros(int(labels.max()) + 1, np.intp)
    table_x = np.zeros_like(table_y)
    table_y[labels[py, px]] = py
    table_x[labels[py, px]] = px
    lab = labels[ys, xs]
    return table_y[lab], table_x[lab]


def _first_peak(measure: np.ndarray, ys: np.ndarray, xs: np.ndarray, qy: np.ndarray, qx: np.ndarray, *,
                reach: int, rise: float, contrast: float
                ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Along the line from each pixel's nearest farther pixel (qy, qx) through it, read at 1 px steps up to
    ``reach``: the distance of ``measure``'s first peak (the peak of its first run at or above ``rise`` times its
    maximum; -1 where the maximum is not ``contrast`` times the measure at the start), the pixel's own distance,
    and the line's unit direction."""
    vy = (ys - qy).astype(np.float32)
    vx = (xs - qx).astype(np.float32)
    d = np.hypot(vy, vx)
    uy, ux = vy / d, vx / d
    steps = reach + 1
    t = np.arange(steps, dtype=np.float32)
    prof = _bilinear(measure, qy[:, None] + uy[:, None] * t[None, :], qx[:, None] + ux[:, None] * t[None, :])
    top = prof.max(axis=1, keepdims=True)
    strong = prof >= rise * top
    start = np.argmax(strong, axis=1)[:, None]  # the first strong sample, and the run of strong ones from it
    after = t[None, :] >= start
    end = np.where((after & ~strong).any(axis=1), np.argmax(after & ~strong, axis=1), steps)[:, None]
    run = after & (t[None, :] < end)
    peak = np.argmax(np.where(run, prof, -1.0), axis=1).astype(np.float32)  # the run's peak
    edge = top[:, 0] > contrast * np.maximum(prof[:, 0], 1e-12)
    return np.where(edge, peak, -1.0), d, (uy, ux)


def _bilinear(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``image`` sampled at (y, x) by bilinear interpolation, the coordinates clamped to the image."""
    h, w = image.shape
    y = np.clip(y, 0, h - 1)
    x = np.clip(x, 0, w - 1)
    y0 = np.minimum(y.astype(np.intp), h - 2) if h > 1 else np.zeros(y.shape, np.intp)
    x0 = np.minimum(x.astype(np.intp), w - 2) if w > 1 else np.zeros(x.shape, np.intp)
    fy, fx = y - y0, x - x0
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy
