"""The answer of :func:`postfocus.products.refocus.tap` for every focus-map pixel, at once.

A tap in the page (or the web app) must give the same frame as ``postfocus
refocus --at X,Y`` and must answer in a few milliseconds. Both are met by
working out the tap answer for every pixel of the focus volume ahead of time:
a tap in the browser is then a lookup.

:func:`tap_map` reproduces :func:`postfocus.products.refocus.sharpest_frame` exactly,
fallback search included, vectorised over all pixels: window means from
integral images, the confidence rule, then the ring search for the nearest
confident window. Where floating-point rounding could decide the answer (two
frames within a hair of each other, a confidence a hair from the threshold),
the pixel is recomputed with ``sharpest_frame`` itself, so the map agrees with
the Python tap at every pixel, not just nearly. Given the stack's noise floor and
fill (:func:`~postfocus.products.refocus.plain_fill`), as :func:`stack_tap_map`
gives them, a plain window answers with the fill at the point, as the tap does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postfocus.focus.floor import above_floor
from postfocus.products.refocus import MIN_CONFIDENCE, plain_fill, sharpest_frame, stack_floor
from postfocus.products.tap_read import depth_radius, depth_readings, depth_weights
from postfocus.store import ProcessedStack

__all__ = ["TapMap", "stack_tap_map", "tap_map"]

# Relative tolerance under which two window means, or a confidence and the
# threshold, count as "too close to call" in float64 vs numpy's float32 means.
_REL_EPS = 1e-4


@dataclass
class TapMap:
    """Per-pixel tap answers on the focus-volume grid (h, w).

    Attributes
    ----------
    slot : int32 (h, w) index into ``frames`` of the sharpest frame.
    position : float32 (h, w) sub-frame focus position (frame numbers).
    confidence : float32 (h, w) in [0, 1].
    fallback : bool (h, w) the answer came from the nearest confident area, or from the fill at the point.
    frames : frame numbers of the volume's slices.
    exact : number of pixels recomputed with ``sharpest_frame`` (rounding ties).
    filled_from : the map a plain window's answer was read from (``"depth map"``, ``"focus map"``; as
        :attr:`~postfocus.products.refocus.Tap.filled_from`), empty when it is the nearest confident area's.
    """

    slot: np.ndarray
    position: np.ndarray
    confidence: np.ndarray
    fallback: np.ndarray
    frames: list[int]
    exact: int = 0
    filled_from: str = ""

    @property
    def frame(self) -> np.ndarray:
        """int32 (h, w) frame number of the answer."""
        return np.asarray(self.frames, np.int32)[self.slot]


def _window_means(volume: np.ndarray, radius: int) -> np.ndarray:
    """float32 (N, h, w): mean of each slice over the clipped (2r+1)^2 window, like ``_window_scores``."""
    n, h, w = volume.shape
    ys, xs = np.arange(h), np.arange(w)
    y0, y1 = np.maximum(0, ys - radius), np.minimum(h, ys + radius + 1)
    x0, x1 = np.maximum(0, xs - radius), np.minimum(w, xs + radius + 1)
    count = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).astype(np.float64)
    out = np.empty((n, h, w), np.float32)  # sums in float64, kept in float32 (like numpy's mean in Python)
    for k in range(n):
        integral = cv2.integral(np.asarray(volume[k], np.float32), sdepth=cv2.CV_64F)
        s = (integral[y1][:, x1] - integral[y0][:, x1] - integral[y1][:, x0] + integral[y0][:, x0])
        out[k] = s / count
    return out


def _confidence(scores: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Confidence per pixel, like ``_score_confidence``."""
    peak = scores.max(axis=0)
    med = np.median(scores, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(peak > 0, 1.5 * (1.0 - med / np.where(peak > 0, peak, 1.0)), 0.0)
    return np.clip(raw, 0.0, 1.0) * above_floor(peak, floor)


def _ring_offsets(ring: int, radius: int) -> np.ndarray:
    """(k, 2) offsets (dx, dy) of one search ring in the order sharpest_frame takes them, nearest first."""
    offsets = []
    for dy in range(-ring, ring + 1, radius):
        for dx in (-ring, ring) if abs(dy) != ring else range(-ring, ring + 1, radius):
            offsets.append((dx, dy))
    arr = np.asarray(offsets, np.int64)
    d2 = (arr ** 2).sum(axis=1)
    return arr[np.argsort(d2, kind="stable")]  # ties keep the loop order: the first found wins


def _fallback_search(
    need: np.ndarray, eligible: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest eligible window for each pixel in ``need`` (flat indices), ring by ring.

    Returns (source_y, source_x, found) arrays aligned with ``need``.
    """
    h, w = eligible.shape
    sy = np.full(need.shape, -1, np.int64)
    sx = np.full(need.shape, -1, np.int64)
    found = np.zeros(need.shape, bool)
    if need.size == 0 or not eligible.any():
        return sy, sx, found
    cy, cx = np.divmod(need, w)
    # Chebyshev distance to the nearest eligible pixel: no ring closer than that can hit.
    dist = cv2.distanceTransform((~eligible).astype(np.uint8), cv2.DIST_C, 3)
    lower = dist[cy, cx]
    for ring in range(radius * 2, max(h, w), radius * 2):
        todo = np.flatnonzero(~found & (lower <= ring))
        if todo.size == 0:
            if found.all():
                break
            continue
        px0, py0 = cx[todo], cy[todo]
        hit = np.zeros(todo.shape, bool)
        for dx, dy in _ring_offsets(ring, radius):
            px, py = px0 + dx, py0 + dy
            ok = ~hit & (px >= 0) & (px < w) & (py >= 0) & (py < h)
            idx = np.flatnonzero(ok)
            ok_e = eligible[py[idx], px[idx]]
            idx = idx[ok_e]
            hit[idx] = True
            sx[todo[idx]] = px[idx]
            sy[todo[idx]] = py[idx]
        found[todo[hit]] = True
        if found.all():
            break
    return sy, sx, found


def tap_map(
    volume: np.ndarray,
    frames: list[int],
    confidence_map: np.ndarray | None = None,
    radius: int = 6,
    *,
    floor: float = 0.0,
    fill: np.ndarray | None = None,
    fill_radius: int | None = None,
    fill_weights: np.ndarray | None = None,
) -> TapMap:
    """Tap answers for every pixel of the volume grid.

    Parameters
    ----------
    volume : (N, h, w) focus measure (the processed stack's ``volume``).
    frames : frame numbers of its slices (``stack.used``).
    confidence_map : (h, w) confidence that guides the fallback (``stack.confidence``).
    radius : window half-size in volume pixels, as for :func:`~postfocus.products.refocus.tap`.
    floor, fill, fill_radius : the volume's noise floor, the fill plain windows answer from and (the fill being
        the stack's depth) the radius every window reads it in, as for
        :func:`~postfocus.products.refocus.sharpest_frame`.
    fill_weights : the depth's confidence on the same grid, weighing each window's reading
        (:func:`~postfocus.products.tap_read.depth_weights`, as a tap weighs it).

    Returns
    -------
    TapMap whose entry at volume pixel (cy, cx) equals
    ``sharpest_frame(volume, frames, cx, cy, confidence_map=..., floor=..., fill=..., fill_radius=...)`` there.

    Examples
    --------
    >>> vol = np.zeros((3, 8, 8), np.float32); vol[1] = 1
    >>> int(tap_map(vol, [0, 1, 2]).frame[4, 4])
    1
    """
    volume = np.asarray(volume)
    n, h, w = volume.shape
    frames = [int(f) for f in frames]
    scores = _window_means(volume, radius)
    conf = _confidence(scores, floor)
    top1 = np.full((h, w), -np.inf, np.float32)
    top2 = np.full((h, w), -np.inf, np.float32)
    for k in range(n):  # two largest per pixel, without sorting a copy of the volume
        s = scores[k]
        top2 = np.maximum(top2, np.minimum(top1, s))
        top1 = np.maximum(top1, s)
    tol = _REL_EPS * np.maximum(np.abs(top1), 1e-30)
    near_tie = (top1 - top2) <= tol
    near_threshold = np.abs(conf - MIN_CONFIDENCE) <= _REL_EPS
    if fill is not None and fill_radius is not None:
        return _depth_answers(volume, frames, conf, near_threshold, fill, (fill_radius, fill_weights), radius,
                              confidence_map, floor)

    # Sources: the point itself, or the nearest confident window.
    src_y = np.broadcast_to(np.arange(h)[:, None], (h, w)).copy()
    src_x = np.broadcast_to(np.arange(w)[None, :], (h, w)).copy()
    weak = conf < MIN_CONFIDENCE
    fallback = np.zeros((h, w), bool)
    unsure = near_threshold.copy()
    need = np.flatnonzero(weak & ~near_threshold)
    filled = np.zeros((h, w), bool)
    if fill is not None:  # a plain window answers with the fill at the point
        filled.flat[need] = True
        need = need[:0]
    if need.size:
        allowed = np.ones((h, w), bool)
        if confidence_map is not None:
            allowed = ~(np.asarray(confidence_map, np.float32) < np.float32(MIN_CONFIDENCE * 0.5))
        strict = allowed & (conf >= MIN_CONFIDENCE + _REL_EPS)
        loose = allowed & (conf >= MIN_CONFIDENCE - _REL_EPS)
        sy, sx, found = _fallback_search(need, strict, radius)
        if not np.array_equal(strict, loose):
            sy2, sx2, found2 = _fallback_search(need, loose, radius)
            differs = (found != found2) | (sy != sy2) | (sx != sx2)
            unsure.flat[need[differs]] = True
        ny, nx = np.divmod(need, w)
        src_y[ny[found], nx[found]] = sy[found]
        src_x[ny[found], nx[found]] = sx[found]
        fallback[ny[found], nx[found]] = True
    # Answer read at the source window.
    slot = np.argmax(scores, axis=0).astype(np.int32)[src_y, src_x]
    unsure |= near_tie[src_y, src_x]
    out_conf = conf[src_y, src_x].astype(np.float32)
    # Sub-frame position: parabola through the log scores around the peak.
    k = slot
    inner = (k > 0) & (k < n - 1)
    kk = np.clip(k, 1, max(n - 2, 1))
    ym, y0, yp = (
        np.log(np.maximum(scores[np.clip(kk + d, 0, n - 1), src_y, src_x].astype(np.float64), 1e-12)) for d in (-1, 0, 1)
    )
    denom = ym - 2 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.clip(0.5 * (ym - yp) / np.where(denom < -1e-9, denom, -1.0), -0.5, 0.5)
    pos = k.astype(np.float64) + np.where(inner & (denom < -1e-9), delta, 0.0)
    position = np.interp(pos, np.arange(n), frames).astype(np.float32)

    if filled.any():
        at = np.asarray(fill, np.float64)[filled]
        slot[filled] = np.argmin(np.abs(np.asarray(frames, np.float64)[:, None] - at[None, :]), axis=0)
        position[filled] = at
        fallback |= filled
        unsure &= ~filled  # (a window near the threshold was left out of ``filled``: asked below)
    result = TapMap(slot=slot, position=position, confidence=out_conf, fallback=fallback, frames=frames)
    # Pixels that rounding could decide: ask sharpest_frame itself.
    ys, xs = np.nonzero(unsure)
    for y, x in zip(ys.tolist(), xs.tolist()):
        t = sharpest_frame(volume, frames, x, y, radius=radius, confidence_map=confidence_map, floor=floor, fill=fill)
        result.slot[y, x] = frames.index(t.frame)
        result.position[y, x] = t.position
        result.confidence[y, x] = t.confidence
        result.fallback[y, x] = t.fallback
    result.exact = int(ys.size)
    return result


def _depth_answers(volume: np.ndarray, frames: list[int], conf: np.ndarray, near_threshold: np.ndarray,
                   fill: np.ndarray, reading: tuple, radius: int, confidence_map: np.ndarray | None,
                   floor: float) -> TapMap:
    """Every pixel's answer read from the stack's depth (:func:`~postfocus.products.tap_read.depth_readings`, the
    values ``depth_reading`` gives), the nearest frame to it (the lower on a tie, as ``np.argmin``); plain where the
    window's confidence is under the threshold (within rounding of it: asked of ``sharpest_frame``); ``reading``:
    (radius, weights) of the depth's reading."""
    fill_radius, weights = reading
    position = depth_readings(fill, fill_radius, weights)
    listed = np.asarray(frames, np.float64)
    at = position.astype(np.float64)
    upper = np.clip(np.searchsorted(listed, at), 0, len(frames) - 1)  # (frames ascend: the stack's used frames)
    lower = np.clip(upper - 1, 0, len(frames) - 1)
    slot = np.where(np.abs(at - listed[lower]) <= np.abs(listed[upper] - at), lower, upper).astype(np.int32)
    result = TapMap(slot=slot, position=position, confidence=conf.astype(np.float32),
                    fallback=conf < MIN_CONFIDENCE, frames=frames)
    ys, xs = np.nonzero(near_threshold)
    for y, x in zip(ys.tolist(), xs.tolist()):
        t = sharpest_frame(volume, frames, x, y, radius=radius, confidence_map=confidence_map,
                           floor=floor, fill=fill, fill_radius=fill_radius)
        result.confidence[y, x], result.fallback[y, x] = t.confidence, t.fallback
    result.exact = int(ys.size)
    return result


def stack_tap_map(stack: ProcessedStack, radius: int = 6, *, threads: int | None = None) -> TapMap:
    """:func:`tap_map` of a processed stack (what :func:`postfocus.products.refocus.tap` reads).

    A tap on a subject that moved during the sweep answers the one frame the
    stack shows it from, as :func:`postfocus.products.refocus.tap` does. ``threads``: the thread budget of a
    depth the plain windows' fill makes when none is kept (:func:`~postfocus.products.refocus.plain_fill`).
    """
    fill, name = plain_fill(stack, threads=threads)
    near = depth_radius(stack.size, stack.maps.map_grid()[0]) if name == "depth map" else None  # (as tap reads it)
    answers = tap_map(stack.volume, list(stack.used), stack.confidence, radius=radius, floor=stack_floor(stack),
                      fill=fill, fill_radius=near, fill_weights=depth_weights(stack, fill.shape) if near else None)
    answers.filled_from = name  # (the page says which map decided a plain tap, as the tap does: review14)
    motion = stack.motion
    if motion is None:
        return answers
    from postfocus.motion import instant_at, regions

    m = np.asarray(motion, np.float32)
    count, labels = regions(m)
    frames = list(stack.used)
    for label in range(1, count + 1):
        inside = (labels == label) & (m > 0.5)
        if not inside.any():
            continue
        y, x = np.argwhere(inside)[0]
        frame = instant_at(m, stack.volume, frames, int(x), int(y))
        if frame is None:
            continue
        answers.slot[inside] = frames.index(frame)
        answers.position[inside] = float(frame)
        answers.confidence[inside] = 1.0
        answers.fallback[inside] = False
    return answers
