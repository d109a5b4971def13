"""Lens blur by depth layers: disc kernels, the layer plan and far-to-near compositing.

:func:`postfocus.products.aperture.render_aperture` cuts a scene into depth layers
(:func:`plan_layers`), each pixel shared by its two nearest layers, and
:func:`composite_layers` blurs every layer with a disc of its own radius and
composites them far to near over premultiplied alpha (Porter & Duff's "over").

Work is kept to where a layer is: the frame is cut into :data:`TILE` x :data:`TILE`
tiles with the lowest and highest layer coordinate of each, and into strips of
:data:`STRIP` tiles' rows. Two threads take the strips in turn (OpenCV and NumPy
release the GIL); in a strip, each layer, far to near, is blurred and composited
only in the runs of columns that its tiles, grown by the reach of its blur,
cover, over the strip's rows and that reach above and below. The layer is zero
outside, so the result is the same as blurring and compositing whole frames.
Discs of radius 8 px and more are blurred at reduced resolution (Kraus &
Strengert 2007) on the frame's own grid of ``s`` x ``s`` blocks, averaged only
where the layer is and brought back up only in the strip's rows: the tiles give
the whole frame's render to float rounding at any disc size.

References
----------
Porter, T. and Duff, T. (1984). Compositing digital images. SIGGRAPH.
Kraus, M. and Strengert, M. (2007). Depth-of-field rendering by pyramidal image
processing. Computer Graphics Forum 26(3).
Lee, S., Eisemann, E. and Seidel, H.-P. (2009). Depth-of-field rendering with
multiview synthesis. ACM TOG 28(5).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, TypeVar

import cv2
import numpy as np

from postfocus.pipeline.analyse import Progress

__all__ = ["DIRECT_TAPS", "MAX_LAYERS", "STRIP", "TILE", "WIDEST", "LayerPlan", "by_strips", "composite_layers",
           "disc_blur", "disc_kernel", "plan_layers", "with_ones"]

MAX_LAYERS = 64  # upper bound on depth layers of a render
WIDEST = 1e9
"""Widest disc radius (px) blurred as given: past every frame, as any wider disc; a wider one (``--blur 1e300``,
``--f-number 1e-300``) is blurred as this one (its square in integers was an OverflowError)."""
T = TypeVar("T")


def disc_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """Pillbox kernel of ``radius`` px: each tap is the share of its pixel inside the disc; sums to 1.

    Examples
    --------
    >>> k = disc_kernel(3.0)
    >>> k.shape, round(float(k.sum()), 6)
    ((7, 7), 1.0)
    """
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(radius - 0.5))
    n = 2 * half + 1
    t = (np.arange(n * supersample) + 0.5) / supersample - n / 2.0
    yy, xx = np.meshgrid(t, t, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float32)
    k = inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


class _KernelCache:
    def __init__(self) -> None:
        self.kernels: dict[int, np.ndarray] = {}

    def get(self, radius: float) -> np.ndarray:
        key = int(round(radius * 16))
        if key not in self.kernels:
            self.kernels[key] = disc_kernel(key / 16.0)
        return self.kernels[key]


def _blur_scale(radius: float) -> int:
    """Down-sampling factor of a disc blur of ``radius`` px (the disc keeps at least 4 px at that scale)."""
    return max(1, int(radius // 4))


DIRECT_TAPS = 130
"""OpenCV's ``filter2D`` convolves float32 with a kernel of fewer taps directly, else through the DFT
(about 4x slower for this module's kernels of 13 x 13 to 15 x 15)."""


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``filter2D`` with reflected borders; a kernel of :data:`DIRECT_TAPS` or more is cut into bands of
    rows under it, each applied directly to a copy with the border made once, and the bands summed
    (the same sum, in another order)."""
    n = kernel.shape[0]
    h, w = image.shape[:2]
    if n * n < DIRECT_TAPS or min(h, w) <= n:
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    half = n // 2
    padded = cv2.copyMakeBorder(image, half, half, half, half, cv2.BORDER_REFLECT_101)
    rows = (DIRECT_TAPS - 1) // n
    out = None
    for a in range(0, n, rows):
        b = min(n, a + rows)  # kernel rows a..b-1 read padded rows y + a .. y + b - 1 for output row y
        band = cv2.filter2D(padded[a:a + h + b - a - 1], -1, np.ascontiguousarray(kernel[a:b]), anchor=(0, 0),
                            borderType=cv2.BORDER_CONSTANT)[:h, :w]
        out = band.copy() if out is None else cv2.add(out, band, dst=out)
    return out.reshape(image.shape)


def disc_blur(image: np.ndarray, radius: float, kernels: _KernelCache | None = None) -> np.ndarray:
    """Blur with a disc of ``radius`` px; large discs are applied at reduced resolution."""
    kernels = kernels or _KernelCache()
    if radius < 0.5:
        return image
    radius = min(radius, WIDEST)
    s = _blur_scale(radius)
    if s == 1:
        return _filter(image, kernels.get(radius))
    h, w = image.shape[:2]
    sw, sh = max(1, round(w / s)), max(1, round(h / s))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    # Box down-sampling and bilinear up-sampling add blur; shrink the disc so the total stays right.
    r_small = math.sqrt(max(radius * radius - s * s * 0.5, 0.25)) / s
    small = _filter(small, kernels.get(r_small))
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(image.shape)


# --------------------------------------------------------------------------
# Rendering


@dataclass
class LayerPlan:
    """Depth layers of a render: layer k sits at depth ``focus + (k + first) * step``."""

    step: float
    first: int
    count: int

    def depth_of(self, k: int, focus: float) -> float:
        return focus + (k + self.first) * self.step


def plan_layers(depth: np.ndarray, focus: float, blur_px: float, step_px: float = 0.5,
                max_layers: int = MAX_LAYERS) -> LayerPlan:
    """Layers spaced so the blur changes by about ``step_px`` between neighbours; one lies at ``focus``."""
    lo, hi = float(depth.min()), float(depth.max())
    extent = max(hi - lo, 1e-6)
    step = max(step_px / max(blur_px, 1e-9), extent / max(max_layers - 2, 1))
    first = int(math.floor((lo - focus) / step))
    last = int(math.ceil((hi - focus) / step))
    return LayerPlan(step=step, first=first, count=last - first + 1)


def _hits(u: np.ndarray, count: int) -> np.ndarray:
    """Pixels of each layer: a pixel at coordinate u belongs to layers floor(u) and floor(u) + 1."""
    below = np.clip(np.floor(u), 0, count - 1).astype(np.int32)
    frac = u - below
    hits = np.bincount(below[frac < 1.0 - 1e-4], minlength=count)[:count]  # |u - k| < 1 for k = floor(u)
    above = below[frac > 1e-4] + 1  # |u - (k + 1)| < 1
    hits[: count] += np.bincount(np.minimum(above, count), minlength=count + 1)[:count]
    return hits


TILE = 16  # px; layers are cut to the tiles they touch
STRIP = 4  # tiles: the rows of the frame one thread composites at once


def _tile_ranges(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest layer coordinate in each TILE x TILE tile (edge tiles padded with their edge)."""
    h, w = u.shape
    th, tw = -(-h // TILE), -(-w // TILE)
    padded = np.pad(u, ((0, th * TILE - h), (0, tw * TILE - w)), mode="edge").reshape(th, TILE, tw, TILE)
    return padded.min(axis=(1, 3)), padded.max(axis=(1, 3))


@dataclass
class _Layer:
    """One occupied layer of a render: its index, disc, reach and the tiles its blur reaches."""

    k: int
    radius: float
    pad: int
    reach: np.ndarray  # uint8 (tiles): the tiles the layer touches, grown by ``pad``
    touched: np.ndarray | None = None  # bool (tiles): the tiles it touches (None: every tile)


def _plan(u: np.ndarray, radii: list[float]) -> list[_Layer]:
    """The occupied layers, far to near, with the tiles each one's blur reaches."""
    parts = by_strips(lambda y0, y1: (*_tile_ranges(u[y0:y1]), _hits(u[y0:y1], len(radii))), u.shape[0])
    lo, hi = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    hits = np.sum([p[2] for p in parts], axis=0)
    layers = []
    for k in reversed(np.flatnonzero(hits).tolist()):
        radius = min(radii[k], WIDEST)
        scale = _blur_scale(radius)
        pad = int(math.ceil(radius)) + 2 * scale + 2
        touched = ((lo < k + 1) & (hi > k - 1)).astype(np.uint8)
        grow = min(-(-pad // TILE), max(touched.shape))  # (past the grid: every tile, as a disc of 1e9 px)
        layers.append(_Layer(k, radius, pad, cv2.dilate(touched, np.ones((2 * grow + 1,) * 2, np.uint8)),
                             touched.astype(bool)))
    return layers


def by_strips(work: Callable[[int, int], T], height: int, *,
              done: Callable[[int, int], None] | None = None) -> list[T]:
    """``work(y0, y1)`` for each strip of :data:`STRIP` tiles' rows of a frame ``height`` px high, on two
    threads (NumPy and OpenCV release the GIL); the results in order. ``done(strips done, strips)``
    is called on the calling thread as they finish.

    Examples
    --------
    >>> by_strips(lambda y0, y1: y1 - y0, 150)
    [64, 64, 22]
    """
    rows = STRIP * TILE
    starts = range(0, height, rows)
    results = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for result in pool.map(lambda y0: work(y0, min(height, y0 + rows)), starts):
            results.append(result)
            if done:
                done(len(results), len(starts))
    return results


def _runs(columns: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], columns.view(np.uint8), [0]))))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _blurred_layer(rgb1: np.ndarray, u: np.ndarray, layer: _Layer, box: tuple[int, int, int, int],
                   kernels: _KernelCache, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Premultiplied RGBA of a layer inside ``box`` (y0, y1, x0, x1), blurred with its disc; only the frame's
    ``rows`` (r0, r1) of it when given (within the box).

    ``rgb1`` is the linear image with a fourth channel of ones, so one product gives colour and alpha. A disc
    blurred at reduced resolution (:func:`_blur_scale` ``s`` > 1) is blurred on the frame's grid of ``s`` x ``s``
    blocks (:func:`_grid_blur`), so every box of the layer reads the same blocks as the whole frame would; a disc
    whose blocks would be wider than a quarter of the frame's short side (far past the picture) on the box's own.
    """
    y0, y1, x0, x1 = box
    r0, r1 = (y0, y1) if rows is None else rows
    scale = _blur_scale(min(layer.radius, WIDEST)) if layer.radius >= 0.5 else 1
    if 1 < scale <= min(u.shape) // 4:  # (blocks wider than a quarter of the frame: a disc past the picture)
        return _grid_blur(rgb1, u, layer, (y0, y1, x0, x1), (r0, r1), scale, kernels)
    rgba = _weighted(rgb1, u, layer.k, (y0, y1, x0, x1))
    return disc_blur(rgba, layer.radius, kernels)[r0 - y0:r1 - y0]


def _weighted(rgb1: np.ndarray, u: np.ndarray, k: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """The layer ``k``'s share of each pixel of ``box`` (y0, y1, x0, x1) times ``rgb1``: premultiplied RGBA."""
    y0, y1, x0, x1 = box
    own = np.subtract(u[y0:y1, x0:x1], np.float32(k))
    np.abs(own, out=own)
    np.subtract(np.float32(1.0), own, out=own)
    np.maximum(own, np.float32(0.0), out=own)
    return cv2.multiply(rgb1[y0:y1, x0:x1], cv2.merge([own, own, own, own]))


def _grid_blur(rgb1: np.ndarray, u: np.ndarray, layer: _Layer, box: tuple[int, int, int, int],
               rows: tuple[int, int], s: int, kernels: _KernelCache) -> np.ndarray:
    """A layer's disc blur at 1/``s`` resolution over ``box`` (y0, y1, x0, x1), the frame's ``rows`` (r0, r1) of it.

    The box is widened to the frame's grid of ``s`` x ``s`` blocks (the frame's bottom and right edges mirrored
    to a whole block, as the filter's border mirrors them), each block averaged (an exact ``s``-fold area
    reduction), the disc applied there, and only the rows asked for brought back up (bilinear, ``s``-fold, from
    the blocks around them): what a whole frame blurred the same way gives there, at a share of the work
    (a strip's rows are a third or less of its box for the widest discs). Kraus & Strengert 2007.
    """
    h, w = u.shape
    y0, y1, x0, x1 = box
    r0, r1 = rows
    g0, g1, gx0, gx1 = (y0 // s) * s, -(-y1 // s) * s, (x0 // s) * s, -(-x1 // s) * s
    sh, sw = (g1 - g0) // s, (gx1 - gx0) // s
    small = np.zeros((sh, sw, 4), np.float32)  # (a block the layer does not touch: its mean is 0)
    part = _content(layer.touched, (g0, g1, gx0, gx1), (h, w), s)
    if part is not None:  # the blocks of the tiles the layer touches, averaged: the same means, a share of the work
        c0, c1, d0, d1 = part
        rgba = _weighted(rgb1, u, layer.k, (c0, min(c1, h), d0, min(d1, w)))
        if c1 > h or d1 > w:  # (the frame's edge: mirrored to a whole block)
            rgba = _mirror(rgba, c1 - min(c1, h), d1 - min(d1, w))
        small[(c0 - g0) // s:(c1 - g0) // s, (d0 - gx0) // s:(d1 - gx0) // s] = cv2.resize(
            rgba, ((d1 - d0) // s, (c1 - c0) // s), interpolation=cv2.INTER_AREA).reshape((c1 - c0) // s, -1, 4)
    # Box down-sampling and bilinear up-sampling add blur; shrink the disc so the total stays right.
    radius = min(layer.radius, WIDEST)
    small = _filter(small, kernels.get(math.sqrt(max(radius * radius - s * s * 0.5, 0.25)) / s))
    a0 = max(0, (r0 - g0) // s - 1)  # (the blocks whose centres surround the rows asked for)
    a1 = min(sh, (r1 - 1 - g0) // s + 2)
    up = cv2.resize(small[a0:a1], (sw * s, (a1 - a0) * s), interpolation=cv2.INTER_LINEAR).reshape(-1, sw * s, 4)
    top = r0 - g0 - a0 * s
    return up[top:top + r1 - r0, x0 - gx0:x1 - gx0]


def _content(touched: np.ndarray | None, grid: tuple[int, int, int, int], size: tuple[int, int],
             s: int) -> tuple[int, int, int, int] | None:
    """The whole blocks of ``grid`` (g0, g1, gx0, gx1: the frame's ``s`` x ``s`` blocks, past its bottom and right
    edges where it reaches them) that hold the tiles a layer touches (``touched``; None: all of them), with
    the frame's last rows or columns that an edge block mirrors; None when it touches none."""
    g0, g1, gx0, gx1 = grid
    if touched is None:
        return grid
    spans = []
    for (a, b), end, axis in (((g0, g1), size[0], 1), ((gx0, gx1), size[1], 0)):
        sub = touched[g0 // TILE:-(-min(g1, size[0]) // TILE), gx0 // TILE:-(-min(gx1, size[1]) // TILE)]
        hit = np.flatnonzero(sub.any(axis=axis))
        if hit.size == 0:
            return None
        first = (a // TILE + int(hit[0])) * TILE
        last = min(end, b, (a // TILE + int(hit[-1]) + 1) * TILE)
        lo, hi = a + (max(first, a) - a) // s * s, a + -(-(last - a) // s) * s
        if b > end and hi > b - 2 * s:  # (rows the edge block mirrors: that block, and what it mirrors)
            hi, lo = b, min(lo, max(a, b - 2 * s))
        spans.append((lo, hi))
    return spans[0][0], spans[0][1], spans[1][0], spans[1][1]


def _mirror(image: np.ndarray, bottom: int, right: int) -> np.ndarray:
    """``image`` grown by ``bottom`` rows and ``right`` columns mirrored about its last (as BORDER_REFLECT_101;
    an image of one row or column repeats it)."""
    mode = cv2.BORDER_REFLECT_101 if min(image.shape[:2]) > max(bottom, right) else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, mode).reshape(image.shape[0] + bottom,
                                                                          image.shape[1] + right, 4)


def _composite_strip(rgb1: np.ndarray, u: np.ndarray, layers: list[_Layer], rows: tuple[int, int],
                     acc: np.ndarray, kernels: _KernelCache) -> None:
    """Composite every layer far to near into ``acc`` (the strip's rows y0, y1: a whole number of tiles
    but at the bottom), where its blur reaches.

    Each layer is blurred over the strip's rows and ``pad`` rows above and below it (all the content
    that can reach the strip), between the columns where its grown tiles are: the layer is zero
    within ``pad`` of those edges, so the blur there equals the whole frame's.
    """
    y0, y1 = rows
    t0, t1 = y0 // TILE, -(-y1 // TILE)
    h, w = u.shape
    for layer in layers:
        columns = layer.reach[t0:t1].any(axis=0)
        for c0, c1 in _runs(columns):
            x0, x1 = c0 * TILE, min(w, c1 * TILE)
            b0, b1 = max(0, y0 - layer.pad), min(h, y1 + layer.pad)
            blurred = _blurred_layer(rgb1, u, layer, (b0, b1, x0, x1), kernels, (y0, y1))
            window = acc[:, x0:x1]  # "over": window * (1 - alpha) + blurred, in place
            clear = np.subtract(np.float32(1.0), blurred[..., 3])
            cv2.multiply(window, cv2.merge([clear, clear, clear, clear]), dst=window)
            cv2.add(window, blurred, dst=window)


def composite_layers(linear: np.ndarray, u: np.ndarray, radii: list[float], *,
                     progress: Progress | None = None) -> np.ndarray:
    """Blur the occupied layers and composite them far to near over premultiplied alpha, by strips of rows.

    The frame is cut into strips of :data:`STRIP` tiles' rows, composited on two threads (OpenCV and
    NumPy release the GIL); in each strip a layer is blurred and composited only in the runs of
    columns its tiles reach, grown by its blur's reach: the layer is zero elsewhere, so the blur
    and the compositing there would change nothing.

    Parameters
    ----------
    linear : float32 (H, W, 3) image in linear light, or (H, W, 4) with a fourth channel of ones.
    u : float32 (H, W) layer coordinate of each pixel, from 0 (nearest layer) to
        ``len(radii) - 1``; a pixel belongs to layer k with weight ``max(0, 1 - |u - k|)``.
    radii : disc radius in px of each layer.
    progress : optional ``progress("aperture", done, total)``, once per strip of rows.

    Returns
    -------
    float32 (H, W, 4) premultiplied RGBA: colour in linear light and the accumulated alpha.

    References
    ----------
    Porter, T. and Duff, T. (1984). Compositing digital images. SIGGRAPH.

    Examples
    --------
    >>> lin = np.full((8, 8, 3), 0.5, np.float32)
    >>> acc = composite_layers(lin, np.zeros((8, 8), np.float32), [0.0])
    >>> float(acc[4, 4, 0]), float(acc[4, 4, 3])
    (0.5, 1.0)
    """
    h, w = u.shape
    layers = _plan(u, radii)
    kernels = _KernelCache()
    acc = np.zeros((h, w, 4), np.float32)
    if linear.shape[2] == 4:
        rgb1 = linear
    else:
        rgb1 = np.empty((h, w, 4), np.float32)
        by_strips(lambda y0, y1: with_ones(linear[y0:y1], rgb1[y0:y1]), h)
    by_strips(lambda y0, y1: _composite_strip(rgb1, u, layers, (y0, y1), acc[y0:y1], kernels), h,
              done=(lambda done, strips: progress("aperture", done, strips)) if progress else None)
    return acc


def with_ones(rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``rgb`` (h, w, 3) with a fourth channel of ones, written into ``out`` (h, w, 4)."""
    return cv2.merge([*cv2.split(rgb), np.ones(rgb.shape[:2], np.float32)], dst=out)
