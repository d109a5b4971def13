"""Occlusion edges in the focus-index map: the background beside a near object's sharp outline given back.

A sharp outline raises the focus measure of everything within the measure's
window and the aggregation's footprint (:func:`edge_spill`), so a near
object's focus index bleeds that far into the background behind it.
:func:`occlusion_sides` returns each such pixel to the surface it looks like;
:func:`spilled` finds those whose focus energy is all the outline's;
:func:`seen_through` tells a faint surface seen through a gap in a near
object from a false island.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.focus.measure import laplacian_energy
from postfocus.focus.turns import in_turns
from postfocus.numeric import group_medians

__all__ = ["MEASURE_REACH", "edge_spill", "occlusion_sides", "seen_through", "spilled"]

MEASURE_REACH = 4
"""Pixels beyond its own a sharp step still raises the focus measure (the 5 px box of
:func:`~postfocus.focus.measure.laplacian_energy`, the Laplacian and its pre-smoothing)."""


def edge_spill(radius: int = 4) -> int:
    """How far (px) a sharp edge's focus energy reaches into its surroundings after aggregation.

    The measure's own reach (:data:`MEASURE_REACH`) plus the guided
    aggregation's footprint: its two box passes of ``radius`` each.

    Examples
    --------
    >>> edge_spill(4)
    12
    """
    return MEASURE_REACH + 2 * radius


def occlusion_sides(index: np.ndarray, confidence: np.ndarray, guide: np.ndarray, *, spill: int = 12,
                    step: float = 1.5, sure: float = 0.3, volume: np.ndarray | None = None,
                    floor: float = 0.0, threads: int = 1) -> np.ndarray:
    """The focus index next to occlusion edges given back to the side each pixel belongs to.

    At an occlusion the near object's outline is sharp only in the frames
    focused on it, and there its step raises the focus measure of the
    background beside it too, as far as the measure's window and the
    aggregation reach (``spill`` px): the near object's index bleeds into the
    background (the "foreground fattening" of window-based stereo matching).
    The far side has no such edge in its own frames (the near outline is
    blurred there), so the bleeding goes one way: only a pixel with a farther
    surface within ``spill`` px is a suspect. Each suspect is given, of its
    own index and the farthest one within ``spill`` px, the one whose pixels
    around it look like it in ``guide`` (the sharpest-frame composite, where
    the near outline is sharp and in place): adaptive support by colour
    similarity (Yoon and Kweon [1]_). The near class is described by every
    confident pixel of that index within ``2 spill`` px (its own fattened
    band included: it is a minority there), the far class only by confident
    pixels that are not suspects themselves. A suspect that looks like the far
    surface takes the far pixels' mean index.

    With the focus ``volume`` the test weighs the pixel's own focus evidence
    instead of the far class's spread. The far class next to a thin near
    object also holds the near object's rim, which the frames focused far see
    through (translucent with blur) and so call far: its spread is then as
    large as the outline's contrast and the spread test refuses the whole
    band. Instead a suspect goes to the far side when it lies within half the
    two classes' separation of the far class's mean (and that separation is
    more than the far class's spread), and, if its own index is confident,
    when its focus curve has a local maximum within a frame of the far index:
    the far surface is sharp in its own frames, and seen there, beside the
    near object's blurred outline. A pixel whose index was filled from its
    neighbours (below ``sure``) carries no evidence of its own and needs only
    the colour.

    Parameters
    ----------
    index : float32 (H, W) focus index (frames).
    confidence : float32 (H, W) its confidence; pixels from ``sure`` on describe the classes.
    guide : float32 (H, W) grey sharpest-frame composite.
    spill : how far (px) an edge's focus energy reaches (:func:`edge_spill`).
    step : an index difference (frames) that is a depth edge, not a slope.
    sure : confidence from which a pixel describes its surface.
    volume : float32 (N, H, W) aggregated focus volume (:func:`~postfocus.focus.map.aggregate`); optional, see above.
    floor : the volume's noise floor (a local maximum must stand four times above it).
    threads : 1, or 2: a helper describes every other index's two classes (their box sums,
        :func:`~postfocus.focus.turns.in_turns`; the same bits).

    Returns
    -------
    float32 (H, W): ``index`` with the suspects that belong to the far side changed.

    References
    ----------
    .. [1] K.-J. Yoon and I. S. Kweon, "Adaptive support-weight approach for correspondence search",
       IEEE TPAMI 28(4), 2006.

    Examples
    --------
    >>> g = np.full((20, 40), 0.8, np.float32); g[:, :10] = 0.1  # a dark near object on a light wall
    >>> d = np.full((20, 40), 9.0, np.float32); d[:, :16] = 0.0  # its index bled 6 px into the wall
    >>> occlusion_sides(d, np.ones_like(d), g, spill=8)[10, 8:18].tolist()
    [0.0, 0.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]
    """
    index = np.asarray(index, np.float32)
    k = 2 * spill + 1
    farthest = cv2.dilate(index, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    suspect = farthest - index > step
    if not suspect.any():
        return index
    g = np.asarray(guide, np.float32)
    confident = (np.asarray(confidence) >= sure).astype(np.float32)
    clean = confident * ~suspect
    ys, xs = np.nonzero(suspect)
    gp = g[ys, xs]
    own, far = np.rint(index[ys, xs]).astype(np.int32), np.rint(farthest[ys, xs]).astype(np.int32)
    near_gap = np.full(ys.size, np.inf, np.float32)
    far_gap = np.full(ys.size, np.inf, np.float32)
    far_value = index[ys, xs].copy()
    size = (2 * k + 1, 2 * k + 1)  # the classes are described within 2 spill px

    half = k  # the box's half width

    def described(weight: np.ndarray, label: float, sel: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For the suspects in ``sel``: the class's (pixels of ``weight`` within ``step`` of ``label``) mean and
        spread of ``guide`` and its mean index around them, and whether enough pixels describe it. Summed only
        over the box the selected suspects' windows cover (the same sums as over the whole picture)."""
        sy, sx = ys[sel], xs[sel]
        y0, y1 = max(int(sy.min()) - half, 0), min(int(sy.max()) + half + 1, g.shape[0])
        x0, x1 = max(int(sx.min()) - half, 0), min(int(sx.max()) + half + 1, g.shape[1])
        gc, ic = g[y0:y1, x0:x1], index[y0:y1, x0:x1]
        mask = weight[y0:y1, x0:x1] * (np.abs(ic - label) < step)
        py, px = sy - y0, sx - x0
        sums = [cv2.boxFilter(mask * v, -1, size, normalize=False, borderType=cv2.BORDER_REFLECT)[py, px]
                for v in (np.ones_like(gc), gc, gc * gc, ic)]
        count = np.maximum(sums[0], 1e-6)
        mean = sums[1] / count
        spread = np.sqrt(np.maximum(sums[2] / count - mean * mean, 0.0))
        return mean, spread, sums[3] / count, sums[0] > 3

    near_mean = np.zeros(ys.size, np.float32)
    near_spread = np.zeros(ys.size, np.float32)
    far_mean = np.zeros(ys.size, np.float32)
    far_spread = np.zeros(ys.size, np.float32)

    def both(label: float) -> tuple:
        """The label's near class around the suspects that read it and its far class around those beside it."""
        mine, theirs = own == label, far == label
        return (mine, described(confident, label, mine) if mine.any() else None,
                theirs, described(clean, label, theirs) if theirs.any() else None)

    labels = np.unique(np.concatenate([own, far]))  # (each label's classes on the two threads in turn, used in order)
    for sel, near_class, far_class_sel, far_class in in_turns(both, labels, threads=threads):
        if near_class is not None:
            mean, spread, _, enough = near_class
            idx = np.flatnonzero(sel)[enough]
            near_gap[idx] = np.abs(gp[idx] - mean[enough])
            near_mean[idx], near_spread[idx] = mean[enough], spread[enough]
        if far_class is not None:
            mean, spread, value, enough = far_class
            idx = np.flatnonzero(far_class_sel)
            gap = np.where(enough, np.abs(gp[idx] - mean), np.inf)
            better = gap < far_gap[idx]
            b = idx[better]
            far_gap[b], far_value[b] = gap[better], value[better]
            far_mean[b], far_spread[b] = mean[better], spread[better]
    out = index.copy()
    # Only across an outline that the guide shows (the near class differs from the far surface by more than
    # twice the far surface's own spread: its mean is pulled towards the far one by its bled band), to the side the pixel looks like.
    separation = np.abs(near_mean - far_mean)
    if volume is None:
        distinct = separation > 2.0 * far_spread
    else:  # nearer the far class than half the separation, and the pixel's own focus curve agrees
        distinct = (far_gap < 0.5 * separation) & (separation > far_spread)
    flip = (far_gap < near_gap) & distinct & np.isfinite(near_gap)
    if volume is not None and flip.any():
        from postfocus.focus.map import peak_near  # (map imports this module)

        at = np.zeros(index.shape, np.float32)
        at[ys, xs] = far_value
        asked = np.zeros(index.shape, bool)
        asked[ys[flip], xs[flip]] = True
        seen_far = peak_near(volume, at, asked, 1, floor)[ys, xs]
        flip &= seen_far | (np.asarray(confidence)[ys, xs] < sure)
    out[ys[flip], xs[flip]] = far_value[flip]
    return out


def spilled(index: np.ndarray, guide: np.ndarray, *, spill: int = 12, step: float = 1.5,
            window: int = 5, least: float = 0.0) -> np.ndarray:
    """Pixels whose focus peak is a near outline's spilled energy, none of their own.

    A pixel with a farther index within ``spill`` px (a suspect, as in
    :func:`occlusion_sides`) reads the near index because the outline's sharp
    step lies inside its measure window. Where the pixel has detail of its own
    (its pointwise Laplacian energy in the sharpest-frame composite ``guide``,
    over 3x3), its own frames count too; where that energy is less than one
    window pixel's share of the outline's (the largest within ``spill`` px over
    ``window ** 2``, the measure's box), what its window holds is the
    outline's, and its focus peak says nothing about the pixel: a textureless
    wall or a black background beside a near card. Such a pixel's depth is its
    surface's, to be filled from its region, not its own reading.

    Parameters
    ----------
    index : float32 (H, W) focus index (frames), nearest first.
    guide : float32 (H, W) grey sharpest-frame composite.
    spill : how far (px) an edge's focus energy reaches (:func:`edge_spill`).
    step : an index difference (frames) that is a depth edge, not a slope.
    window : side of the focus measure's box (:func:`~postfocus.focus.measure.laplacian_energy`).
    least : and below this energy (the level at which a focus peak counts at all, in the measure's units).

    Returns
    -------
    bool (H, W).

    References
    ----------
    S. B. Kang, R. Szeliski, J. Chai, "Handling occlusions in dense multi-view stereo", CVPR 2001 (foreground
    fattening of window-based matching).

    Examples
    --------
    >>> g = np.full((20, 40), 0.8, np.float32); g[:, :10] = np.tile([0.1, 0.3], 5)  # a striped near card, a flat wall
    >>> d = np.full((20, 40), 9.0, np.float32); d[:, :16] = 0.0  # its index bled 6 px into the wall
    >>> spilled(d, g, spill=8, least=1.0)[10, 8:18].astype(int).tolist()
    [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    """
    index = np.asarray(index, np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * spill + 1, 2 * spill + 1))
    level = cv2.medianBlur(index, 5)
    suspect = cv2.dilate(level, k) - level > step
    own = cv2.dilate(laplacian_energy(np.asarray(guide, np.float32), 1), np.ones((3, 3), np.uint8))
    return suspect & (own * (window * window) < cv2.dilate(own, k)) & (own < least)


def seen_through(index: np.ndarray, volume: np.ndarray, weak: np.ndarray, islands: np.ndarray,
                 trusted: np.ndarray, *, width: float, tolerance: float, ring: int = 2) -> np.ndarray:
    """Island patches that are a faint surface seen through a gap in a near object, not false readings.

    An island (a patch no trusted neighbour shares the depth of,
    :func:`~postfocus.focus.clean.islands`) is false where its reading is one
    nothing around it could have: a bokeh rim or a glint (bright, so not
    ``weak``), noise in a textureless area (readings scattered over the
    sweep, curves with no common peak), or a near outline's spilled band (it
    reads the outline's nearer depth). A patch of weakly textured surface
    enclosed by a near object (floor between a wheel and an engine) is an
    island too, but physics constrains it four ways, and a patch is kept only
    where all four hold:

    - behind: what is seen through a gap lies farther than the gap's edges
      (its median reading more than ``tolerance`` beyond the median of the
      trusted pixels within ``ring`` px; a patch with none has no edges);
    - wide enough: in the frames focused on it the frame's blur of the near
      edges must leave it visible, so its inscribed radius (px) is at least
      the blur of that many frames, one pixel per focus-curve ``width`` (on a
      sweep whose curves are ``width`` frames wide, a pixel of blur radius
      costs about ``width`` frames of focus);
    - one peak: its curves, each scaled to its own maximum, peak together: the
      median curve has its maximum within ``width`` of the reading and falls
      under half of it on both sides inside the sweep;
    - one surface: its readings lie on a plane within ``width`` (robust
      scatter, 1.4826 MAD, of an iteratively reweighted plane fit).

    Parameters
    ----------
    index : float32 (H, W) focus index (frames), nearest first.
    volume : float (N, H, W) aggregated focus volume (:func:`~postfocus.focus.map.aggregate`).
    weak : bool (H, W) pixels whose focus peak is under the level of a clear one; most of a kept patch is.
    islands : bool (H, W) the island pixels (:func:`~postfocus.focus.clean.islands`).
    trusted : bool (H, W) confident pixels that are no outliers (the islands' judges).
    width : the focus curves' width (sigma, frames).
    tolerance : index difference (frames) that is a different surface.
    ring : width (px) of the surroundings looked at.

    Returns
    -------
    bool (H, W): the island pixels to keep at their own reading (a subset of ``islands``).

    References
    ----------
    P. J. Huber, "Robust Statistics", Wiley 1981 (iteratively reweighted fit, the MAD's 1.4826).
    S. W. Hasinoff, K. N. Kutulakos, "Confocal stereo", IJCV 81(1), 2009 (a pixel's focus curve, partial
    occlusion by a defocused near edge).

    Examples
    --------
    >>> d = np.full((40, 40), 1.0, np.float32); d[12:28, 12:28] = 5.0  # a far floor seen through a near frame
    >>> f = np.arange(8.0)[:, None, None]
    >>> vol = np.exp(-0.5 * (f - d) ** 2).astype(np.float32)
    >>> isl = np.zeros(d.shape, bool); isl[12:28, 12:28] = True
    >>> bool((seen_through(d, vol, isl, isl, ~isl, width=1.0, tolerance=1.5) == isl).all())
    True
    >>> d[12:28, 12:28] = np.tile([2.0, 7.0], 128).reshape(16, 16)  # scattered readings are no surface
    >>> bool(seen_through(d, vol, isl, isl, ~isl, width=1.0, tolerance=1.5).any())
    False
    """
    islands = np.asarray(islands, bool)
    keep = np.zeros_like(islands)
    if not islands.any():
        return keep
    index = np.asarray(index, np.float32)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(islands.astype(np.uint8), connectivity=8)
    # Each patch's share of weak pixels, its median reading and the median of the trusted pixels around it, for all
    # patches at once (the same values as each patch's own np.median); only those behind their gap's edges go on.
    sizes = np.bincount(labels.ravel(), minlength=count)
    weak_sizes = np.bincount(labels[np.asarray(weak, bool) & islands], minlength=count)
    reading = group_medians(index[islands], labels[islands], count).astype(np.float64)
    edge, ring_count = _ring_medians(index, labels, count, np.asarray(trusted, bool), ring)
    behind_edges = (2 * weak_sizes >= sizes) & (ring_count > 0) & ~(reading <= edge.astype(np.float64) + tolerance)
    for k in np.flatnonzero(behind_edges[1:]) + 1:  # (not bright, a gap's edges around it, behind them)
        x, y, w, h, _ = stats[k]
        y0, x0, y1, x1 = max(0, y - ring), max(0, x - ring), y + h + ring, x + w + ring
        patch = labels[y0:y1, x0:x1] == k
        values = index[y0:y1, x0:x1]
        behind = (reading[k] - float(edge[k])) / width
        if cv2.distanceTransform(np.pad(patch, 1).astype(np.uint8), cv2.DIST_L2, 5).max() < behind:
            continue  # narrower than the frame's blur of what frames it: the far surface cannot be seen there
        if not _one_peak(np.asarray(volume)[:, y0:y1, x0:x1][:, patch], float(reading[k]), width):
            continue  # its weak curves do not peak together where it reads
        if _plane_scatter(values, patch) <= width:
            keep[y0:y1, x0:x1] |= patch
    return keep


def _ring_medians(values: np.ndarray, labels: np.ndarray, count: int, trusted: np.ndarray,
                  ring: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch of ``labels`` (0: none), the median of ``values`` over the ``trusted`` pixels within ``ring`` px
    (the square's reach) of it and not in it, and how many there are: float32 (count,) (NaN: none), int (count,)."""
    h, w = labels.shape
    box = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    near = trusted & (cv2.dilate((labels > 0).astype(np.uint8), box) > 0)  # (a ring pixel of some patch)
    ys, xs = np.nonzero(near)
    padded = np.pad(labels, ring)  # (a shift off the picture reads no patch)
    stride = w + 2 * ring
    at = (ys + ring) * stride + (xs + ring)
    own = labels[ys, xs]
    pairs = []
    for dy in range(-ring, ring + 1):
        for dx in range(-ring, ring + 1):
            k = padded.ravel()[at + dy * stride + dx]
            hit = (k > 0) & (k != own)
            pairs.append(k[hit].astype(np.int64) * (h * w) + (ys[hit] * w + xs[hit]))
    pairs = np.unique(np.concatenate(pairs))  # (a pixel counted once per patch it is beside)
    patch, pixel = pairs // (h * w), pairs % (h * w)
    return group_medians(values.ravel()[pixel], patch, count), np.bincount(patch, minlength=count)


def _one_peak(curves: np.ndarray, reading: float, width: float) -> bool:
    """Whether a patch's focus curves (N, P), each scaled to its own maximum, peak together: their median curve
    has its maximum within ``width`` of ``reading`` and falls under half of it on both sides inside the sweep."""
    shared = np.median(curves / np.maximum(curves.max(axis=0), 1e-30), axis=1)
    top = int(np.argmax(shared))
    half = 0.5 * shared[top]
    return bool(abs(top - reading) <= width and (shared[:top] < half).any() and (shared[top + 1:] < half).any())


def _plane_scatter(values: np.ndarray, patch: np.ndarray, rounds: int = 3) -> float:
    """Robust scatter (1.4826 MAD) of a patch's values about their iteratively reweighted plane fit."""
    ys, xs = np.nonzero(patch)
    a = np.column_stack([xs, ys, np.ones_like(xs)]).astype(np.float64)
    v = values[patch].astype(np.float64)
    use = np.ones(v.size, bool)
    for _ in range(rounds):
        coef = np.linalg.lstsq(a[use], v[use], rcond=None)[0]
        residual = np.abs(a @ coef - v)
        use = residual <= max(2.5 * 1.4826 * float(np.median(residual)), 1e-3)
    return 1.4826 * float(np.median(residual))
