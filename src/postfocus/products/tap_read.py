"""Where a tap reads its focus position: the stack's depth map, by the median of a small window.

A tap names a frame by the window's focus curve (:func:`postfocus.products.refocus.sharpest_frame`); beside a
near textured object that window holds the object's texture and names its frame for the plain background beside
it. The depth map (cleaned, guided by the all-in-focus image) says the background there: on generated stacks
the tap was off the truth by 3.1 frames on average within 12 px of a depth edge of the ``occluder`` scene and 4.4
on the plain patch beside a near disc, the depth map's window median by 0.04 and 0.40 (docs/depth-and-aperture.md,
"..., seventeenth session (fixes25)"). So where the stack has its depth on the focus map's grid
(:func:`~postfocus.products.refocus.plain_fill` named ``"depth map"``), a tap, the page's tap map and
``aperture --focus-at`` all read it here, one way: the median of the window of :func:`depth_radius` map pixels
around the tapped map pixel (the lower of the two middle values of an even count, as the weighted median of
:func:`~postfocus.products.aperture.focus_at` takes it). One reading, so the page and the aperture name the same
frame at every point, also on stacks whose maps are smaller than the output.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import cv2
import numpy as np

from postfocus.products.tap_select import exact_weights, window_medians

if TYPE_CHECKING:
    from postfocus.store import ProcessedStack

__all__ = ["SHARE", "TRUSTED", "depth_on_grid", "depth_radius", "depth_reading", "depth_readings", "depth_weights",
           "tap_focus"]

#: Half-size of the window a tap reads the depth in, as a share of the output's long edge (0.6 %, the window
#: ``focus_at`` has read the depth map in since lens10), brought to the focus map's grid.
SHARE = 0.006
#: Confidence from which a window is weighted by it (tapgrid18); below it in every pixel, a filled plain area
#: whose depth the plain median reads.
TRUSTED = 0.1
#: Window values sorted at a time by :func:`depth_readings` (rows are taken so that a batch holds about this many).
_BATCH = 1 << 22
#: The kept depth maps' confidences read last, by (depth file, its key), as ``refocus`` keeps their depths.
_WEIGHTS: OrderedDict[tuple[str, str], np.ndarray | None] = OrderedDict()
_WEIGHTS_LOCK = threading.Lock()


def depth_radius(size: tuple[int, int], map_scale: tuple[float, float]) -> int:
    """Half-size (map pixels, at least 1) of the window for an output of ``size`` (H, W) whose maps are
    ``map_scale`` (sx, sy) of it.

    Examples
    --------
    >>> depth_radius((2160, 3840), (0.208, 0.208)), depth_radius((240, 320), (1.0, 1.0))
    (5, 2)
    """
    radius = max(1, round(SHARE * max(size)))
    return max(1, int(round(radius * max(map_scale))))


def _members(size: int, count: int, scale: float, origin: int, map_origin: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last + 1 output pixel of each of ``count`` map pixels along one axis: the pixels a tap rounds to
    it (``round((x + origin) * scale) - map_origin``, :func:`~postfocus.products.refocus._map_point`'s rule); a map
    pixel no output pixel rounds to takes the one nearest its centre."""
    assigned = np.round((np.arange(size) + origin) * scale).astype(np.int64) - map_origin  # (half to even, as round)
    cells = np.arange(count)
    lo, hi = np.searchsorted(assigned, cells, "left"), np.searchsorted(assigned, cells, "right")
    empty = hi <= lo
    near = np.clip(np.round((cells + map_origin) / scale - origin).astype(np.int64), 0, size - 1)
    return np.where(empty, near, lo), np.where(empty, near + 1, hi)


def depth_on_grid(depth: np.ndarray, shape: tuple[int, int], grid: tuple) -> np.ndarray:
    """An output-size depth brought to the focus map's grid (``shape``, ``grid``: the maps'
    :meth:`~postfocus.maps.StackMaps.map_grid`) for the one reading: each map pixel the median (the lower middle
    value) of the output pixels a tap rounds to it.

    An area mean (as ``cv2.INTER_AREA`` shrinks) gives a map pixel across a near object's outline a depth between
    the two surfaces, one neither side has; the window median then often took it: beside the near disc of
    ``bench/bench_tap_agreement.py`` with the maps at half the output the page tap and the aperture were 1.072
    frames off the truth, by the block median 0.934 (docs/depth-and-aperture.md, "..., eighteenth session
    (tapmap22)").

    Examples
    --------
    >>> d = np.zeros((4, 4), np.float32); d[:, 2:] = 8.0; d[0, 1] = 2.0
    >>> depth_on_grid(d, (2, 2), ((0.5, 0.5), (0, 0), (0, 0))).tolist()
    [[0.0, 8.0], [0.0, 8.0]]
    """
    depth = np.asarray(depth, np.float32)
    (sx, sy), (ox, oy), (mx, my) = grid
    y0, y1 = _members(depth.shape[0], shape[0], sy, oy, my)
    x0, x1 = _members(depth.shape[1], shape[1], sx, ox, mx)
    by, bx = int((y1 - y0).max()), int((x1 - x0).max())
    rows = np.minimum(y0[:, None] + np.arange(by), depth.shape[0] - 1)  # (a shorter block: its last pixel again,
    cols = np.minimum(x0[:, None] + np.arange(bx), depth.shape[1] - 1)  # masked below)
    out = np.empty(shape, np.float32)
    inside_x = np.arange(bx) < (x1 - x0)[:, None]
    step = max(1, _BATCH // (shape[1] * by * bx))
    for c0 in range(0, shape[0], step):
        c1 = min(shape[0], c0 + step)
        block = depth[rows[c0:c1, None, :, None], cols[None, :, None, :]]  # (rows, cols, by, bx)
        inside = (np.arange(by) < (y1 - y0)[c0:c1, None])[:, None, :, None] & inside_x[None, :, None, :]
        block = np.where(inside, block, np.inf).reshape(c1 - c0, shape[1], by * bx)
        count = (y1 - y0)[c0:c1, None] * (x1 - x0)[None, :]
        k = ((count + 1) // 2 - 1)[:, :, None]
        out[c0:c1] = np.take_along_axis(np.sort(block, axis=2), k, axis=2)[:, :, 0]
    return out


def depth_reading(depth: np.ndarray, cx: int, cy: int, radius: int, weights: np.ndarray | None = None) -> float:
    """The median of ``depth`` over the window of ``radius`` around pixel (cx, cy), clipped at the borders; weighted
    by ``weights`` (a confidence on the same grid) when one of the window's reaches :data:`TRUSTED`.

    The weighted median is the first sorted value at which the running weight reaches half the window's (the lower
    of the two middle values of an even count when unweighted), as :func:`~postfocus.products.aperture.focus_at`
    takes it (tapgrid18's rule: a window with no trusted pixel, a filled plain area, takes the plain median).

    Examples
    --------
    >>> d = np.zeros((6, 6), np.float32); d[:, 3:] = 4.0
    >>> depth_reading(d, 2, 2, 1), depth_reading(d, 3, 2, 1), depth_reading(d, 0, 0, 1)
    (0.0, 4.0, 0.0)
    >>> c = np.full((6, 6), 0.05, np.float32); c[:, 3:] = 0.9
    >>> depth_reading(d, 2, 2, 1, c), depth_reading(d, 2, 2, 1, c * 0.1)
    (4.0, 0.0)
    """
    h, w = depth.shape
    rows, cols = slice(max(0, cy - radius), min(h, cy + radius + 1)), slice(max(0, cx - radius), min(w, cx + radius + 1))
    window = np.asarray(depth[rows, cols], np.float32).ravel()
    if weights is not None:
        weight = np.asarray(weights[rows, cols], np.float32).ravel()
        if weight.max() >= TRUSTED:
            order = np.lexsort((weight, window))  # (by depth, then weight: as depth_readings sorts)
            cum = np.cumsum(weight[order], dtype=np.float64)
            return float(window[order][np.searchsorted(cum, 0.5 * cum[-1])])
    k = (window.size + 1) // 2 - 1
    return float(np.partition(window, k)[k])


def depth_readings(depth: np.ndarray, radius: int, weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`depth_reading` at every pixel: float32 (h, w), the same values (rows of windows sorted at once).

    Examples
    --------
    >>> d = np.arange(20, dtype=np.float32).reshape(4, 5)
    >>> bool((depth_readings(d, 1) == [[depth_reading(d, x, y, 1) for x in range(5)] for y in range(4)]).all())
    True
    """
    depth = np.asarray(depth, np.float32)
    h, w = depth.shape
    side = 2 * radius + 1
    padded = np.pad(depth, radius, constant_values=np.nan)  # (NaN sorts last: a clipped window's own values first)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (side, side))  # (h, w, side, side), a view
    ys, xs = np.arange(h), np.arange(w)
    rows_in = np.minimum(h, ys + radius + 1) - np.maximum(0, ys - radius)
    cols_in = np.minimum(w, xs + radius + 1) - np.maximum(0, xs - radius)
    middle = ((rows_in[:, None] * cols_in[None, :] + 1) // 2 - 1).astype(np.intp)
    if weights is not None:
        weights = np.asarray(weights, np.float32)
        weighed, exact = _trusted_windows(weights, radius), exact_weights(weights, radius)
        if exact and weighed.mean() > 0.5:  # (most windows weighed: no sort at all)
            return window_medians(depth, radius, weights, weighed)
    out = np.empty((h, w), np.float32)
    step = max(1, _BATCH // (w * side * side))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        batch = np.sort(windows[y0:y1].reshape(y1 - y0, w, side * side), axis=2)
        out[y0:y1] = np.take_along_axis(batch, middle[y0:y1, :, None], axis=2)[:, :, 0]
    if weights is not None and weighed.any():
        if exact:
            return window_medians(depth, radius, weights, weighed, plain=out)
        _weighted(out, padded, weights, radius, weighed)
    return out


def _trusted_windows(weights: np.ndarray, radius: int) -> np.ndarray:
    """bool (h, w): the windows holding a pixel of :data:`TRUSTED` weight or more (the weighed ones)."""
    h, w = weights.shape
    side = 2 * radius + 1
    trusted = np.pad(weights >= TRUSTED, radius).astype(np.uint8)
    return cv2.dilate(trusted, np.ones((side, side), np.uint8))[radius:radius + h, radius:radius + w] > 0


def _weighted(out: np.ndarray, padded: np.ndarray, weights: np.ndarray, radius: int, weighed: np.ndarray) -> None:
    """Overwrite ``out`` with the weighted median where ``weighed`` (:func:`depth_reading`'s rule; ``padded``: the
    depth padded by ``radius`` with NaN), each window sorted: weights whose sums :func:`window_medians` cannot
    make exact."""
    side = 2 * radius + 1
    ys, xs = np.nonzero(weighed)
    bits = padded.view(np.uint32)  # (a float's bits as a key that sorts as the float: NaN last; its weight below)
    keys = (np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31)).astype(np.uint64) << np.uint64(32)) \
        | np.pad(weights.astype(np.float32), radius).view(np.uint32).astype(np.uint64)  # (padding: weight 0)
    windows = np.lib.stride_tricks.sliding_window_view(keys, (side, side))
    step = max(1, _BATCH // (side * side * 2))
    for i in range(0, ys.size, step):
        y, x = ys[i:i + step], xs[i:i + step]
        ordered = np.sort(windows[y, x].reshape(y.size, side * side), axis=1)  # (by depth, then weight)
        cum = np.cumsum((ordered & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32), axis=1, dtype=np.float64)
        k = (cum < 0.5 * cum[:, -1:]).sum(axis=1)  # (the first place the running weight reaches half)
        high = (ordered[np.arange(y.size), k] >> np.uint64(32)).astype(np.uint32)
        out[y, x] = np.where(high >> 31, high & np.uint32(0x7FFFFFFF), ~high).view(np.float32)


def depth_weights(stack: ProcessedStack, shape: tuple[int, int]) -> np.ndarray | None:
    """The confidence of the depth map kept in the stack folder, the one :func:`~postfocus.products.refocus.plain_fill`
    reads, when the focus map's grid (``shape``) is the output's: the weights of the one reading. None otherwise.

    On a coarser grid a map pixel's depth is the mean of output pixels on both sides of an edge and its confidence
    their mean too: weighted by it, the reading beside the near disc of ``bench/bench_tap_agreement.py`` was 1.40
    frames off the truth on average with the maps at half the output, the plain median 1.07 (conf20).
    """
    from postfocus.products.depth_cache import depth_keys, depth_path, is_depth_map
    from postfocus.store.kept import load_kept

    if tuple(shape) != tuple(stack.size):
        return None
    for method, key in depth_keys(stack):  # (the file refocus's _kept_depth_fill reads its depth from)
        name = (str(depth_path(stack, method)), key)
        with _WEIGHTS_LOCK:
            if name in _WEIGHTS:
                _WEIGHTS.move_to_end(name)
                return _WEIGHTS[name]
        arrays = load_kept(depth_path(stack, method), key, ("depth", "frames", "confidence"))
        if arrays is None or not is_depth_map(arrays, tuple(stack.size), confidence=False):
            continue
        weights = np.asarray(arrays["confidence"], np.float32) if is_depth_map(arrays, tuple(stack.size)) else None
        if weights is not None:
            weights.flags.writeable = False
        with _WEIGHTS_LOCK:
            _WEIGHTS[name] = weights
            while len(_WEIGHTS) > 4:  # (the least recently used first)
                _WEIGHTS.popitem(last=False)
        return weights
    return None


def tap_focus(stack: ProcessedStack, x: float, y: float, frames: int, *, threads: int | None = None) -> float:
    """The depth (frames from the nearest, as a depth map counts) ``aperture --focus-at X,Y`` focuses at: what a
    tap at (x, y) reads (:func:`postfocus.products.refocus.tap`, a moving subject's instant included), so the page
    and the aperture name one frame; ``frames``: the depth map's frame count.

    Examples
    --------
    >>> tap_focus(process("sweep.mp4"), 640, 360, 30)  # doctest: +SKIP
    12.4
    """
    from postfocus.products.refocus import tap

    at = tap(stack, float(x), float(y), threads=threads).position  # (frame numbers)
    return at if stack.near_to_far else (frames - 1) - at
