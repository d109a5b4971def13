"""Plain regions beside a near outline: a region with no texture lies as far as its own outline reads.

A region of one colour carries no focus evidence of its own: its pixels read whatever edge lies within the
measure's window. Its outline does: a stretch of outline between two surfaces is sharp in the frames of the
nearer of the two, so it reads ``min(region, neighbour)``, never farther than the region itself nor than the
surface across it (the edge's owner is the occluding side). Where a plain region's own outline pixels read two
surfaces a step apart, the near stretch is another object's outline whose blur spills onto the region (the near
object occludes it, a T-junction of the outlines), and the far stretch says how far the region is: it belongs to
the far surface.
The two stretches must meet (a step where the near outline crosses the region's, not the two ends of a sloping
plain floor), and only the depths the fill took from the near stretch are given the far one (a floor the fill
placed between the two keeps its place: the far stretch bounds the region where it lies). A far stretch counts
only where the surface across it reads far too: a blob of misread pixels inside a plain wall, with nothing
confident across it or beside a near neighbour, is no outline and does not relabel the wall. A plain region whose
outline reads one surface (a plain key top ringed by its own edges) is left to the fill.

References
----------
S. B. Kang, R. Szeliski, J. Chai, "Handling occlusions in dense multi-view stereo", CVPR 2001 (foreground
fattening).
C. C. Fowlkes, D. R. Martin, J. Malik, "Local figure-ground cues are valid for natural images", Journal of Vision
7(8):2, 2007 (an outline belongs to one of the two regions it separates, the nearer).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["plain_regions", "plain_sides"]

FLAT = 0.03  # colour change (sum over channels, [0, 1] scale) between neighbours below which two pixels are one plain
ALIKE = 0.3  # colour distance (sum over channels) from a region's mean within which an outline pixel is its own
LEAST = 9  # pixels of outline reading the far surface that count (a 3x3 measure's worth: not a speck of noise)


def plain_regions(guide: np.ndarray, *, flat: float = FLAT) -> tuple[int, np.ndarray]:
    """Connected regions of pixels whose colour changes by less than ``flat`` from every 4-neighbour.

    Returns ``(count, labels)`` as :func:`cv2.connectedComponents` (4-connected; 0 = a pixel on a colour change).
    """
    g = np.asarray(guide, np.float32)
    g = g[..., None] if g.ndim == 2 else g
    change = np.zeros(g.shape[:2], np.float32)
    dx = np.abs(np.diff(g, axis=1)).sum(axis=2)
    dy = np.abs(np.diff(g, axis=0)).sum(axis=2)
    np.maximum(change[:, 1:], dx, out=change[:, 1:])
    np.maximum(change[:, :-1], dx, out=change[:, :-1])
    np.maximum(change[1:], dy, out=change[1:])
    np.maximum(change[:-1], dy, out=change[:-1])
    return cv2.connectedComponents((change < flat).astype(np.uint8), connectivity=4)


def plain_sides(depth: np.ndarray, index: np.ndarray, weight: np.ndarray, guide: np.ndarray, weak: np.ndarray, *,
                jump: float, reach: int, flat: float = FLAT, alike: float = ALIKE,
                least: int = LEAST) -> np.ndarray:
    """``depth`` with each plain region whose own outline reads two surfaces given the far one.

    Parameters
    ----------
    depth : float32 (H, W) the filled depth.
    index, weight : float32 (H, W) each pixel's own reading and how much it counts (0: none, e.g. an outlier).
    guide : float32 (H, W, 3) all-in-focus colours.
    weak : bool (H, W) pixels whose depth came from the fill (a region without one is left alone).
    jump : a depth step between two surfaces (frames).
    reach : px around a region where its outline's readings are taken (the measure's reach).
    flat, alike, least : see :data:`FLAT`, :data:`ALIKE`, :data:`LEAST`.

    Returns
    -------
    float32 (H, W): in a region whose own outline (its colour's confident pixels within ``reach`` px, on a plain 3x3
    of its colour) reads two surfaces ``jump`` or more apart, with at least ``least`` pixels on the far one, the
    two stretches within ``2 reach`` px of each other, and the confident pixels across the far stretch (within
    ``reach`` px, not the region's own) reading far (``least`` of them, most of them), the region's weak pixels
    and its outline's near-reading pixels whose depth is within ``jump`` of the near stretch take the far
    stretch's median reading.

    Examples
    --------
    A black wall beside a textured near card (near, 0) and under a far grey one (7): its outline by the card reads
    the card (the card's blur), its top reads 7.

    >>> g = np.zeros((30, 20, 3), np.float32); g[:8] = 0.5; g[8:, :10] = np.random.default_rng(0).random((22, 10, 1))
    >>> idx = np.zeros((30, 20), np.float32); idx[:8] = 7.0; idx[8:, 10:] = 3.0
    >>> w = np.ones((30, 20), np.float32); w[10:, 13:] = 0.0; w[8:10, 10:] = 0.0; w[6:8, 10:] = 1.0
    >>> g[8:10, 10:] = 0.0; idx[8:10, 10:] = 7.0; w[8:10, 10:] = 1.0  # the wall's own top rows read its outline: 7
    >>> out = plain_sides(np.where(w > 0, idx, 0.0), idx, w, g, w == 0, jump=1.0, reach=3)
    >>> float(out[25, 16]), float(out[25, 11]), float(out[25, 5])
    (7.0, 7.0, 0.0)
    """
    d = np.asarray(depth, np.float32)
    count, labels = plain_regions(guide, flat=flat)
    if count <= 1:
        return d.copy()
    g = np.asarray(guide, np.float32)
    g = g[..., None] if g.ndim == 2 else g
    lab = labels.ravel()
    has_weak = np.bincount(lab, weights=np.asarray(weak, np.float64).ravel(), minlength=count) > 0
    has_weak[0] = False
    labels = np.where(has_weak[labels], labels, 0)  # (a region without a filled pixel is left as it is)
    lab = labels.ravel()
    sizes = np.maximum(np.bincount(lab, minlength=count), 1).astype(np.float64)
    means = np.stack([np.bincount(lab, weights=g[..., c].ravel().astype(np.float64), minlength=count) / sizes
                      for c in range(g.shape[2])], axis=1)
    # each pixel's region: its own, or on a colour change the one within reach (the largest label, if two are)
    side = 2 * int(reach) + 1
    near = cv2.dilate(labels.astype(np.float64), np.ones((side, side), np.uint8)).astype(np.int64)
    near = np.where(labels > 0, labels, near)
    # its own pixels: of its colour, and on a plain 3x3 of its colour (not a dark speck of a textured neighbour)
    alike_px = ((near > 0) & (np.abs(g - means[near]).sum(axis=2) < alike)).astype(np.uint8)
    own = cv2.morphologyEx(alike_px, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    sure = own & (np.asarray(weight, np.float32) > 0.25)
    ys, xs = np.nonzero(sure)
    if ys.size == 0:
        return d.copy()
    region, reading = near[ys, xs], np.asarray(index, np.float32)[ys, xs]
    order = np.lexsort((reading, region))
    region, reading = region[order], reading[order]
    # the largest gap between a region's sorted readings splits its outline into a near and a far stretch
    same = region[1:] == region[:-1]
    gaps = np.where(same, np.diff(reading), -np.inf)
    best = np.full(count, -np.inf)
    np.maximum.at(best, region[1:], gaps)
    at = np.flatnonzero(same & (gaps == best[region[1:]]))
    cut = np.full(count, np.inf, np.float32)
    cut[region[at + 1]] = 0.5 * (reading[at] + reading[at + 1])
    near_top = np.full(count, -np.inf, np.float32)  # the near stretch's farthest reading
    near_top[region[at + 1]] = reading[at]
    far = reading > cut[region]
    # the two stretches meet (within twice the reach: the junction itself is blurred, unread): a step, not a slope's ends
    far_px = np.zeros(labels.shape, np.float64)  # (labels exact at any count)
    far_px[ys[order][far], xs[order][far]] = region[far]
    meets = cv2.dilate(far_px, np.ones((2 * side - 1, 2 * side - 1), np.uint8))[ys[order], xs[order]] == region
    met = np.bincount(region[~far & meets], minlength=count) > 0
    two = (best >= jump) & met & (np.bincount(region, weights=far, minlength=count) >= least)
    # the far stretch is an outline against a far surface: what lies across it reads far too (not a misread blob)
    two = _backed(two, ys[order][far], xs[order][far], region[far], cut, own, near, weight, index, reach=reach,
                  least=least)
    if not two.any():
        return d.copy()
    far_median = np.full(count, np.nan, np.float32)
    for r in np.flatnonzero(two):  # (few regions: those beside a near outline; a region's readings are one run)
        run = reading[np.searchsorted(region, r):np.searchsorted(region, r, side="right")]
        far_median[r] = np.median(run[run > cut[r]])
    # its weak pixels, and its own pixels that read the near stretch (the near outline's spilled focus)
    # only where the depth is the near stretch's (the fill took the near outline's; a sloping region the fill placed
    # between the two keeps its place: the far stretch bounds the region where it lies, not everywhere)
    change = two[near] & own & (np.asarray(weak, bool) | (np.asarray(index, np.float32) <= cut[near]))
    change &= d <= near_top[near] + jump
    out = d.copy()
    out[change] = far_median[near[change]]
    return out


def _backed(two: np.ndarray, fy: np.ndarray, fx: np.ndarray, fr: np.ndarray, cut: np.ndarray, own: np.ndarray,
            near: np.ndarray, weight: np.ndarray, index: np.ndarray, *, reach: int, least: int) -> np.ndarray:
    """``two`` kept only for regions whose far stretch (pixels ``fy, fx`` of region ``fr``) has a far neighbour.

    A stretch of outline reads ``min(region, neighbour)``: it reads far only where the surface across it is at
    least as far. So the confident pixels within ``reach`` px of the far stretch that are not the region's own (the
    neighbour across the outline) must read beyond the region's ``cut``: ``least`` of them, and most of them. A
    blob of misread pixels inside a plain region, with nothing confident across, or beside a near neighbour, fails.
    """
    out = two.copy()
    sure = np.asarray(weight, np.float32) > 0.25
    read = np.asarray(index, np.float32)
    h, w = near.shape
    side = 2 * int(reach) + 1
    for r in np.flatnonzero(two):  # (few regions; each looked at in its far stretch's box)
        y, x = fy[fr == r], fx[fr == r]
        y0, y1 = max(int(y.min()) - reach, 0), min(int(y.max()) + reach + 1, h)
        x0, x1 = max(int(x.min()) - reach, 0), min(int(x.max()) + reach + 1, w)
        box = np.zeros((y1 - y0, x1 - x0), np.uint8)
        box[y - y0, x - x0] = 1
        across = cv2.dilate(box, np.ones((side, side), np.uint8)) > 0
        across &= sure[y0:y1, x0:x1] & ~(own[y0:y1, x0:x1] & (near[y0:y1, x0:x1] == r))
        readings = read[y0:y1, x0:x1][across]
        farther = int(np.count_nonzero(readings > cut[r]))
        out[r] = farther >= least and 2 * farther > readings.size
    return out
