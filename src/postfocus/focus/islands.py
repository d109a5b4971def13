"""Depth outliers that are islands: flagged patches that no trusted pixel around them continues.

:func:`postfocus.focus.clean.outliers` flags the pixels far from their neighbourhood's median depth: a false patch
(the rim of a bokeh disc, a glint: a value nothing around it has) and a thin true structure that is a minority in its
neighbourhood alike (a pin, a blade of grass, whose tip is surrounded by the board behind it). :func:`islands` tells
them apart by contact, patch by patch, and forms the patches by evidence: a patch is seeded by its confident flagged
pixels, and a weak flagged pixel joins the patch it continues (beside it, at its depth). A confident patch is then
never judged by the median of weak noise that one flagged pixel happens to join to it (docs/depth-and-aperture.md,
fifteenth and sixteenth sessions: a ring of right far readings beside a near disc was rejected with the noise of the
plain patch it touched, and the plain patch's fill flipped by two frames).
"""

from __future__ import annotations

import numpy as np

from postfocus.numeric import group_medians

__all__ = ["islands", "patches"]


def patches(values: np.ndarray, weight: np.ndarray, flagged: np.ndarray, *, tolerance: float, sure: float,
            reach: int = 1) -> tuple[np.ndarray, int]:
    """The flagged pixels in patches of one surface's evidence: int32 (H, W) labels (0: not flagged) and their count.

    The confident flagged pixels (``weight >= sure``) form patches by 8-connectivity; each grows into the weak
    flagged pixels beside it whose value lies within ``tolerance`` of the patch's median (a geodesic growth through
    the flagged pixels, a step at a time); grown patches within ``reach`` pixels of each other whose medians agree
    within ``tolerance`` are one (a surface's confident pieces, parted by a pixel or two of other evidence); the weak
    flagged pixels left form patches of their own by 8-connectivity.

    Parameters
    ----------
    values, weight : float32 (H, W) values and their confidence.
    flagged : bool (H, W) candidate outliers.
    tolerance : largest difference of values on one surface.
    sure : least weight of a pixel that seeds a patch.
    reach : largest gap (pixels, in either axis) between two pieces of one patch.

    Returns
    -------
    (labels, count): labels 1 .. count - 1 for the patches, 0 elsewhere.

    Examples
    --------
    >>> v = np.zeros((1, 7), np.float32); v[0, :3] = 9.0; v[0, 3] = 9.2; v[0, 4:] = 4.0
    >>> w = np.array([[1, 1, 1, 0, 0, 0, 0]], np.float32)
    >>> patches(v, w, np.ones((1, 7), bool), tolerance=0.5, sure=0.75)[0].tolist()
    [[1, 1, 1, 1, 2, 2, 2]]
    """
    import cv2

    v = np.asarray(values, np.float32)
    strong = flagged & (np.asarray(weight, np.float32) >= sure)
    count, lab = cv2.connectedComponents(strong.astype(np.uint8), connectivity=8)
    medians = group_medians(v[strong], lab[strong], count).astype(np.float32)
    medians[0] = np.nan
    grown, open_ = _grown(v, lab, flagged & ~strong, medians, tolerance)
    seeded = _joined(grown, medians, tolerance, reach)
    count = int(seeded.max()) + 1
    rest, weak = cv2.connectedComponents(open_.astype(np.uint8), connectivity=8)
    labels = np.where(open_, weak + (count - 1), seeded) * flagged
    return labels.astype(np.int32), count + rest - 1


def _grown(values: np.ndarray, labels: np.ndarray, weak: np.ndarray, medians: np.ndarray,
           tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` grown a step at a time into the ``weak`` pixels beside them within ``tolerance`` of their patch's
    median (of two such patches beside a pixel, the higher label); the labels and the weak pixels left.

    Only the pixels labelled in the last step are looked around (a front), so the cost follows the pixels joined.
    """
    h, w = labels.shape
    lab = np.zeros((h + 2, w + 2), np.int32)  # (padded by a pixel: a front's neighbours are in the array)
    lab[1:-1, 1:-1] = labels
    left = np.zeros(lab.shape, bool)
    left[1:-1, 1:-1] = weak
    v = np.zeros(lab.shape, np.float32)
    v[1:-1, 1:-1] = values
    lab, left, v = lab.ravel(), left.ravel(), v.ravel()
    steps = np.array([dy * (w + 2) + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    front = np.flatnonzero(lab)
    while front.size:
        at = (front[:, None] + steps).ravel()
        by = np.repeat(lab[front], len(steps))
        keep = left[at]
        at, by = at[keep], by[keep]
        keep = np.abs(v[at] - medians[by]) <= tolerance
        at, by = at[keep], by[keep]
        order = np.lexsort((by, at))
        at, by = at[order], by[order]
        last = np.r_[at[1:] != at[:-1], True] if at.size else np.zeros(0, bool)
        front = at[last]
        lab[front] = by[last]
        left[front] = False
    return lab.reshape(h + 2, w + 2)[1:-1, 1:-1].copy(), left.reshape(h + 2, w + 2)[1:-1, 1:-1].copy()


def _joined(labels: np.ndarray, medians: np.ndarray, tolerance: float, reach: int) -> np.ndarray:
    """Seeded patches within ``reach`` pixels of each other (1: 8-neighbours) whose medians agree within
    ``tolerance``, made one (labels 1 .. k, in the order of each joined patch's lowest label)."""
    count = len(medians)
    pairs = [np.zeros((0, 2), np.int64)]
    h, w = labels.shape
    for dy, dx in [(dy, dx) for dy in range(reach + 1) for dx in range(-reach, reach + 1) if dy or dx > 0]:
        a = labels[:h - dy, max(0, -dx):w - max(0, dx)]
        b = labels[dy:, max(0, dx):w - max(0, -dx)]
        touch = (a > 0) & (b > 0) & (a != b)
        pairs.append(np.stack([a[touch], b[touch]], axis=1).astype(np.int64))
    pairs = np.concatenate(pairs)
    pairs = pairs[np.abs(medians[pairs[:, 0]] - medians[pairs[:, 1]]) <= tolerance]
    one = _lowest_joined(pairs, count)
    _, compact = np.unique(one[1:], return_inverse=True)  # (label 0, not flagged, stays 0)
    return np.r_[0, compact + 1].astype(np.int32)[labels]


def _lowest_joined(pairs: np.ndarray, count: int) -> np.ndarray:
    """For each of ``count`` labels, the lowest label joined to it through ``pairs`` (connected components by
    minimum-label propagation with pointer jumping; numpy only, no graph library at run time)."""
    lowest = np.arange(count)
    if not len(pairs):
        return lowest
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        step = lowest.copy()
        low = np.minimum(lowest[a], lowest[b])
        np.minimum.at(step, a, low)
        np.minimum.at(step, b, low)
        step = step[step]
        if np.array_equal(step, lowest):
            return lowest
        lowest = step


def islands(
    values: np.ndarray,
    weight: np.ndarray,
    flagged: np.ndarray,
    *,
    tolerance: float,
    sure: float = 0.5,
    share: float = 0.1,
    ring: int = 2,
) -> np.ndarray:
    """The flagged patches that are islands: no trusted pixel around them shares their value.

    The difference between a false patch and a thin true structure is contact: the structure's flagged part touches
    its own unflagged part, at its own depth. Each patch of ``flagged`` (:func:`patches`: seeded by its confident
    pixels, grown into the weak ones it continues, pieces within ``ring`` pixels joined) is judged whole, by the
    unflagged pixels within ``ring`` pixels of it: if at least ``share`` of them, or a contact two confident pixels
    wide through the ring (``2 ring^2`` pixels of weight ``>= sure``), lie within ``tolerance`` of the patch's median
    value, the patch continues a surface and is no outlier. Around a patch with confident pixels every pixel counts
    with its weight (at least ``sure`` in all: a weak surface vouches for a patch on it as much as it weighs); around
    a weak patch (noise, or a surface with no evidence of its own) only the confident pixels count, one each.

    Parameters
    ----------
    values, weight : float32 (H, W) values and their confidence.
    flagged : bool (H, W) candidate outliers (e.g. :func:`postfocus.focus.clean.outliers`).
    tolerance : largest difference of values on one surface.
    sure : least weight of a confident pixel (it seeds a patch, it makes contact).
    share : least share of the weight of the patch's surroundings that must agree with it.
    ring : width in pixels of the surroundings looked at.

    Returns
    -------
    bool (H, W): the flagged pixels that belong to islands (a subset of ``flagged``).

    Examples
    --------
    >>> v = np.full((30, 40), 2.0, np.float32); v[:, 30:] = 9.0; v[5:25, 30:33] = 9.0
    >>> v[12:16, 8:12] = 9.0  # an island
    >>> f = np.zeros(v.shape, bool); f[5:25, 30:33] = True; f[12:16, 8:12] = True
    >>> out = islands(v, np.ones_like(v), f, tolerance=1.5)
    >>> bool(out[12:16, 8:12].all()), bool(out[5:25, 30:33].any())
    (True, False)
    """
    flagged = np.asarray(flagged, bool)
    if not flagged.any():
        return flagged.copy()
    import cv2

    v = np.asarray(values, np.float32)
    w = np.asarray(weight, np.float32)
    lab, count = patches(v, w, flagged, tolerance=tolerance, sure=sure, reach=ring)
    medians = group_medians(v[flagged], lab[flagged], count).astype(np.float64)  # (each patch's np.median)
    medians[0] = 0.0
    kernel = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    near = cv2.dilate(lab.astype(np.float32), kernel).astype(np.int32)  # a patch's label around it
    around = ~flagged & (near > 0)
    agree = around & (np.abs(v - medians[near].astype(np.float32)) <= tolerance)
    confident = w >= sure
    total = np.bincount(near[around], w[around], minlength=count)  # (a confident patch's surroundings, weighted)
    agreeing = np.bincount(near[agree], w[agree], minlength=count)
    sure_total = np.bincount(near[around & confident], minlength=count)  # (a weak patch's: the sure pixels)
    contact = np.bincount(near[agree & confident], minlength=count)
    seeded = np.bincount(lab[flagged & confident], minlength=count) > 0
    total = np.where(seeded, total, sure_total)
    agreeing = np.where(seeded, agreeing, contact)
    island = np.ones(count, bool)
    # attached: a share of the surroundings agrees (a confident patch's surroundings each by its weight: a weak
    # surface vouches for a patch on it as much as it weighs; a weak patch, with no evidence of its own, only by its
    # sure surroundings), or a contact at least two sure pixels wide through the ring (a long thin structure's
    # flagged tip touches its body only at one end; weak pixels agreeing by chance make no contact)
    least = np.where(seeded, sure, 1e-6)
    island[1:] = ~((total[1:] >= least[1:]) & ((agreeing[1:] >= share * total[1:]) | (contact[1:] >= 2 * ring * ring)))
    island[0] = False
    return island[lab] & flagged
