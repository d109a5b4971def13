"""Occlusion-aware selection: which frame shows a pixel without a near object's blur over it.

At an occlusion edge the near object, defocused in the frames focused on the
background, spreads its light over the background: a frame focused at depth
``f`` smears a point at depth ``d_q`` over a disc of radius ``c |f - d_q|``
(thin lens; ``c`` is the stack's blur growth per frame, Pentland [1]_). A
background pixel ``p`` at distance ``|p - q|`` from a near pixel ``q`` is
therefore clean only in frames with ``c |f - d_q| < |p - q|``. Of those, the
one nearest the pixel's own depth is the sharpest clean view:

.. math::  e(p) = \\min\\Bigl(d(p),\\; \\min_q \\bigl(d(q) + |p - q| / c\\bigr)\\Bigr),

a grey-scale erosion of the focus-index map by a cone of slope ``1/c``
(:func:`visible_index`). On a surface whose depth changes slower than ``1/c``
frames a pixel the map is unchanged; at an occlusion edge the background
takes, within the near object's blur reach, frames focused nearer (its own
detail blurred, but its colour right) and, beyond it, its own frame, with the
switch graded as the blur disc grows, not a step.

``c`` is measured from the stack itself (:func:`defocus_slope`): how fast each
confident pixel's focus measure falls off with the frame distance from its
focus index. Frame 0 is the nearest focus unless the sweep ran far to near
(``near_to_far``, measured by :func:`postfocus.focus.direction.sweep_direction`).

The safe index gives up background detail where the glow would in fact be
faint (a dark object before a dark background); the depth-map fusion
therefore blends by it only where the two blends disagree at a coarse scale
(:func:`postfocus.fuse.depthmap.consistency_weight`).

Where the depth edges are right, the background behind a near object can be
solved for instead of given up: :func:`occluder_cover` (:mod:`postfocus.fuse.cover`) gives, per frame, how
much the nearer layers' blur covers each pixel and the light they spill, and
:class:`~postfocus.fuse.depthmap.DepthmapFusion` (with ``slope``) solves
``F = S + (1 - A) B`` for ``B`` (Hasinoff and Kutulakos [3]_).

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987
   (blur radius linear in the inverse-distance distance to the focal plane).
.. [2] P. Soille, "Morphological Image Analysis", Springer 2003, ch. 6
   (distance transforms by iterated erosion with a chamfer metric).
.. [3] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for
   variable-aperture photography", ICCV 2007.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.focus.measure import laplacian_energy, pool
from postfocus.fuse.cover import REDUCE, _disc, _disc_blur, occluder_cover  # noqa: F401 (their old home: clipped.py, tests)

__all__ = ["MEASURE_RADIUS", "REDUCE", "blur_growth", "defocus_slope", "occluder_cover", "occlusion_aware_index",
           "solver_growth", "visible_index"]

MEASURE_RADIUS = 1.2
"""Disc radius (analysis px) that brings the focus measure (:func:`~postfocus.focus.measure.laplacian_energy`)
of a textured patch to half: the measure's ratio to its sharp value is about ``1 / (1 + (r / 1.2)^2)`` for a
disc of radius ``r``, fitted on stacks rendered with known blur (four scenes, blur growth 0.4-1.8 px a frame)."""

_CROSS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.uint8)
_DIAGONAL = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], np.uint8)


def _falloff(volume: np.ndarray, index: np.ndarray, confidence: np.ndarray, sure: float, low: float
             ) -> tuple[np.ndarray, ...] | None:
    """The focus measure's fall-off at about 20k evenly picked pixels at least ``sure`` confident.

    Returns (rows, columns, pixel, distance, ratio): the picked pixels' rows and columns, and for each sample
    (a frame 1 to 4 frames from its pixel's focus index whose measure is between ``low`` and 0.97 of the
    peak's) the pixel's place in those, the frame distance and the ratio, by the frame's offset from the pixel's
    nearest frame (their users take medians); None with fewer than 20 pixels or samples.
    """
    n, sel = volume.shape[0], np.asarray(confidence) >= sure
    if n < 3 or sel.sum() < 20:
        return None
    step = max(1, int(np.sqrt(sel.sum() / 20000)))  # at most about 20k pixels
    ys, xs = (a[::step] for a in np.nonzero(sel))
    d = np.asarray(index, np.float32)[ys, xs]
    k = np.clip(np.rint(d).astype(np.int64), 0, n - 1)
    v = np.asarray(volume)
    if min(v.strides) <= 0 or any(stride % v.itemsize for stride in v.strides):
        v = np.ascontiguousarray(v)  # (the flat view below wants positive strides of whole items)
    # One flat view of the volume's memory (a crop's too: no copy), read with one index a sample.
    end = sum((size - 1) * stride for size, stride in zip(v.shape, v.strides)) // v.itemsize + 1
    flat = np.lib.stride_tricks.as_strided(v, (end,), (v.itemsize,), writeable=False)
    per, at = v.strides[0] // v.itemsize, (ys * v.strides[1] + xs * v.strides[2]) // v.itemsize
    peak = np.maximum(np.asarray(flat.take(k * per + at), np.float32), 1e-12)
    found = []  # frames 1 to 4 from the index are at most 4 from k (clipped only towards them): 9 read, not n
    for offset in range(-4, 5):
        frame = np.clip(k + offset, 0, n - 1)
        ratio = np.asarray(flat.take(frame * per + at), np.float32) / peak
        delta = np.abs(frame.astype(np.float32) - d)
        p = np.flatnonzero((frame == k + offset) & (delta >= 1.0) & (delta <= 4.0) & (ratio > low) & (ratio < 0.97))
        found.append((p, delta[p], ratio[p]))
    p = np.concatenate([c[0] for c in found])
    return None if p.size < 20 else (ys, xs, p, np.concatenate([c[1] for c in found]),
                                     np.concatenate([c[2] for c in found]))


def defocus_slope(volume: np.ndarray, index: np.ndarray, confidence: np.ndarray, *, sure: float = 0.6,
                  fallback: float = 1.0) -> float:
    """Blur growth of the stack, in analysis pixels of disc radius per frame of focus distance.

    For every confidently focused pixel and every frame 1 to 4 frames from its
    focus index, the focus measure's ratio to its peak gives the disc radius
    that would cause it (inverting ``1 / (1 + (r / MEASURE_RADIUS)^2)``);
    the slope is the median of radius over frame distance.

    Parameters
    ----------
    volume : numpy.ndarray
        (N, h, w) focus measure of each frame (:attr:`StackMaps.volume`).
    index : numpy.ndarray
        float32 (h, w) focus index in frames (0..N-1).
    confidence : numpy.ndarray
        float32 (h, w) confidence of ``index``.
    sure : float
        Only pixels at least this confident are read.
    fallback : float
        Returned when nothing can be measured (too few frames or confident pixels).

    Returns
    -------
    float
        Analysis pixels per frame.

    Examples
    --------
    >>> delta = np.arange(8, dtype=np.float32)[:, None, None] - 3.0
    >>> v = 1.0 / (1.0 + (0.6 * delta / MEASURE_RADIUS) ** 2) * np.ones((8, 6, 6), np.float32)
    >>> round(defocus_slope(v, np.full((6, 6), 3.0, np.float32), np.ones((6, 6), np.float32)), 2)
    0.6
    """
    samples = _falloff(volume, index, confidence, sure, 0.03)
    if samples is None:
        return float(fallback)
    delta, ratio = samples[3:]
    radius = MEASURE_RADIUS * np.sqrt(1.0 / ratio - 1.0)
    return float(np.median(radius / delta))


#: Disc radii (analysis px) at which :func:`blur_growth` measures the blurred guide.
GROWTH_RADII = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)


def blur_growth(volume: np.ndarray, guide: np.ndarray, index: np.ndarray, confidence: np.ndarray, *,
                scale: float = 1.0, sure: float = 0.6, fallback: float = 1.0) -> float:
    """Blur growth of the stack read against its own sharpest composite, for the texture each pixel has.

    :func:`defocus_slope` turns the focus measure's fall-off into a radius with
    one curve for every texture; but how fast the measure falls with blur
    depends on the texture's spectrum (broad faces with sharp joints fall
    slower than fine gravel), which the volume alone cannot tell from the blur.
    Here the guide (the sharpest-frame composite, each pixel's own texture in
    focus) is blurred with discs of :data:`GROWTH_RADII` and measured as the
    frames were (:func:`~postfocus.focus.measure.laplacian_energy`), which
    gives each pixel its own curve of measure against radius; each confident
    pixel's measured ratio 1 to 4 frames from its focus index is read off
    that curve (Pentland's thin-lens radius, linear in the frame distance),
    and the slope is the median of radius over frame distance.

    Parameters
    ----------
    volume : numpy.ndarray
        (N, h, w) focus measure of each frame.
    guide : numpy.ndarray
        float32 (h, w) grey sharpest-frame composite at the volume's size.
    index, confidence : numpy.ndarray
        float32 (h, w) focus index (0..N-1) and its confidence.
    scale : float
        Size at which the frames were measured over the volume's size (the
        measure is pooled down to it): the blurred guide is measured there.
    sure : float
        Only pixels at least this confident are read.
    fallback : float
        Returned when nothing can be measured.

    Returns
    -------
    float
        Pixels (of the volume's size) of disc radius per frame.

    References
    ----------
    A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987.

    Examples
    --------
    >>> g = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    >>> v = np.stack([laplacian_energy(_disc_blur(g, 0.7 * abs(k - 2)) if k != 2 else g) for k in range(6)])
    >>> round(blur_growth(v, g, np.full((64, 64), 2.0, np.float32), np.ones((64, 64), np.float32)), 1)
    0.7
    """
    samples = _falloff(volume, index, confidence, sure, 0.01)
    if samples is None:
        return float(fallback)
    ys, xs, pixel, delta, seen = samples
    g = np.asarray(guide, np.float32)
    h, w = g.shape
    if scale != 1.0:
        g = cv2.resize(g, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_CUBIC)
    radii = np.asarray(GROWTH_RADII, np.float32)
    curves = np.empty((radii.size, ys.size), np.float32)
    for i, r in enumerate(radii):
        measured = laplacian_energy(_disc_blur(g, float(r) * scale) if r > 0 else g)
        curves[i] = pool(measured, (h, w))[ys, xs]
    curves /= np.maximum(curves[:1], 1e-12)  # each pixel's ratio to its sharp measure, falling with the radius
    curve = curves[:, pixel]
    first = (curve <= seen[None]).argmax(axis=0)  # the first radius that blurs the guide below what the frame shows
    ok = (first > 0) & (curve[-1] <= seen)
    if ok.sum() < 20:
        return float(fallback)
    i, at = first[ok], np.flatnonzero(ok)
    above, below = curve[i - 1, at], curve[i, at]
    t = (above - seen[ok]) / np.maximum(above - below, 1e-12)
    radius = radii[i - 1] + t * (radii[i] - radii[i - 1])
    return float(np.median(radius / delta[ok]))


def solver_growth(volume: np.ndarray, index: np.ndarray, confidence: np.ndarray, *,
                  guide: np.ndarray | None = None) -> float:
    """The blur growth the background solver composites the near layers' discs with.

    The matting equation's spill is only as right as its discs: :func:`blur_growth` (each pixel's texture read
    against the guide) where the maps' guide is at hand, :func:`defocus_slope` (one fall-off curve for every
    texture) where it is not (a stack folder keeps no guide). On the rendered grass the guide's growth is
    1.33 px a frame where the truth is 1.33 and the fall-off reads 1.07 (halo5; docs/quality.md).

    Parameters
    ----------
    volume : numpy.ndarray
        (N, h, w) focus measure of the used frames.
    index : numpy.ndarray
        float32 (h, w) focus index as a position among the used frames (0..N-1).
    confidence : numpy.ndarray
        float32 (h, w) its confidence.
    guide : numpy.ndarray, optional
        float32 (h, w) grey sharpest-frame composite (:attr:`~postfocus.maps.StackMaps.guide`); ignored
        unless of the maps' shape.

    Returns
    -------
    float
        Map pixels of disc radius per used frame.

    References
    ----------
    A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987.
    """
    if guide is not None and np.shape(guide) == np.shape(index):
        return blur_growth(volume, guide, index, confidence)
    return defocus_slope(volume, index, confidence)


def visible_index(index: np.ndarray, slope: float, *, occluder: np.ndarray | None = None) -> np.ndarray:
    """The focus index each pixel can take without a nearer object's blur over it.

    ``min(d(p), min_q d(q) + |p - q| / slope)``: the map eroded by a cone
    (chamfer distance, 3x3 steps of 1 and sqrt(2) px), iterated until it no
    longer changes.

    Parameters
    ----------
    index : numpy.ndarray
        float32 (h, w) focus index in frames, near = small.
    slope : float
        Blur growth, pixels of radius per frame (:func:`defocus_slope`).
    occluder : numpy.ndarray, optional
        bool (h, w): only these pixels can cap others (e.g. the confidently
        focused ones; an unsure index is no evidence of a near object).

    Returns
    -------
    numpy.ndarray
        float32 (h, w), never above ``index``.

    Examples
    --------
    >>> d = np.full((1, 7), 6.0, np.float32); d[0, 0] = 0.0
    >>> visible_index(d, 1.0).round(1).tolist()
    [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]
    """
    index = np.asarray(index, np.float32)
    if slope <= 0 or index.size == 0:
        return index.copy()
    step, diagonal = np.float32(1.0 / slope), np.float32(np.sqrt(2.0) / slope)
    cap = index.copy() if occluder is None else np.where(occluder, index, np.float32(np.inf)).astype(np.float32)
    span = float(np.nanmax(index) - np.nanmin(index)) if index.size else 0.0
    nxt, other = np.empty_like(cap), np.empty_like(cap)  # (every step's arrays, reused)
    for _ in range(int(np.ceil(span / float(step))) + 2):
        np.add(cv2.erode(cap, _CROSS, dst=nxt, borderType=cv2.BORDER_REPLICATE), step, out=nxt)
        np.add(cv2.erode(cap, _DIAGONAL, dst=other, borderType=cv2.BORDER_REPLICATE), diagonal, out=other)
        np.minimum(np.minimum(nxt, other, out=nxt), cap, out=nxt)
        if np.array_equal(nxt, cap):
            break
        cap, nxt = nxt, cap
    return np.minimum(index, cap).astype(np.float32)


def occlusion_aware_index(index: np.ndarray, volume: np.ndarray, confidence: np.ndarray, used: list[int] | None = None,
                          *, sure: float = 0.3, near_to_far: bool = True, with_slope: bool = False,
                          slope: float | None = None):
    """The focus index to fuse by: :func:`visible_index` with the stack's own :func:`defocus_slope`.

    Parameters
    ----------
    index : numpy.ndarray
        float32 (h, w) focus index in frame numbers.
    volume : numpy.ndarray
        (len(used), h, w) focus measure of the used frames.
    confidence : numpy.ndarray
        float32 (h, w); pixels below ``sure`` cannot occlude others.
    used : list of int, optional
        Frame numbers of the volume's slices (default 0..N-1).
    near_to_far : bool
        Frame 0 is the nearest focus (:func:`~postfocus.focus.direction.sweep_direction`); False: the last
        is, and the index is capped from above instead (never below ``index``).
    slope, with_slope : float or None, bool
        The blur growth (px of the maps a used frame; None: measured, :func:`defocus_slope`); also return it.

    Returns
    -------
    numpy.ndarray or tuple
        float32 (h, w) in frame numbers, never above ``index`` (never below it for a far-to-near sweep);
        with ``with_slope``, (that, the blur growth).
    """
    index = np.asarray(index, np.float32)
    frames = np.arange(volume.shape[0], dtype=np.float32) if used is None else np.asarray(used, np.float32)
    rank = np.interp(index, frames, np.arange(frames.size, dtype=np.float32)).astype(np.float32)
    slope = defocus_slope(volume, rank, confidence) if slope is None else float(slope)
    last = np.float32(frames.size - 1)
    near = rank if near_to_far else last - rank  # 0 = nearest
    visible = visible_index(near, slope, occluder=np.asarray(confidence) >= sure)
    visible = visible if near_to_far else last - visible
    safe = np.interp(visible, np.arange(frames.size, dtype=np.float32), frames).astype(np.float32)
    return (safe, slope) if with_slope else safe
