"""Lens blur by depth layers: disc kernels, the layer plan and far-to-near compositing.

:func:`postfocus.products.aperture.render_aperture` cuts a scene into depth layers
(:func:`plan_layers`), each pixel shared by its two nearest layers, and
:func:`composite_layers` blurs every layer with a disc of its own radius and
composites them far to near over premultiplied alpha (Porter & Duff's "over").

Work is kept to where a layer is: the frame is cut into :data:`TILE` x :data:`TILE`
tiles with the lowest and highest layer coordinate of each, and a layer is blurred
and composited only inside boxes around the tiles it touches, grown by the reach
of its blur. The layer is zero outside those boxes, so the result is the same as
blurring and compositing whole frames. Layers are blurred on two threads while the
calling thread composites them in order. Discs of radius 8 px and more are
blurred at reduced resolution (Kraus & Strengert 2007).

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

import cv2
import numpy as np

from postfocus.pipeline.analyse import Progress

__all__ = ["MAX_LAYERS", "TILE", "LayerPlan", "composite_layers", "disc_blur", "disc_kernel", "plan_layers"]

MAX_LAYERS = 64  # upper bound on depth layers of a render


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


def disc_blur(image: np.ndarray, radius: float, kernels: _KernelCache | None = None) -> np.ndarray:
    """Blur with a disc of ``radius`` px; large discs are applied at reduced resolution."""
    kernels = kernels or _KernelCache()
    if radius < 0.5:
        return image
    s = _blur_scale(radius)
    if s == 1:
        return cv2.filter2D(image, -1, kernels.get(radius), borderType=cv2.BORDER_REFLECT_101)
    h, w = image.shape[:2]
    sw, sh = max(1, round(w / s)), max(1, round(h / s))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    # Box down-sampling and bilinear up-sampling add blur; shrink the disc so the total stays right.
    r_small = math.sqrt(max(radius * radius - s * s * 0.5, 0.25)) / s
    small = cv2.filter2D(small, -1, kernels.get(r_small), borderType=cv2.BORDER_REFLECT_101)
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


def _occupied(u: np.ndarray, count: int) -> list[int]:
    """Layers holding some pixel: a pixel at coordinate u belongs to layers floor(u) and floor(u) + 1."""
    below = np.clip(np.floor(u), 0, count - 1).astype(np.int32)
    frac = u - below
    hits = np.bincount(below[frac < 1.0 - 1e-4], minlength=count)[:count]  # |u - k| < 1 for k = floor(u)
    above = below[frac > 1e-4] + 1  # |u - (k + 1)| < 1
    hits[: count] += np.bincount(np.minimum(above, count), minlength=count + 1)[:count]
    return [k for k in range(count) if hits[k]]


TILE = 16  # px; layers are cut to the tiles they touch


def _tile_ranges(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest layer coordinate in each TILE x TILE tile (edge tiles padded with their edge)."""
    h, w = u.shape
    th, tw = -(-h // TILE), -(-w // TILE)
    padded = np.pad(u, ((0, th * TILE - h), (0, tw * TILE - w)), mode="edge").reshape(th, TILE, tw, TILE)
    return padded.min(axis=(1, 3)), padded.max(axis=(1, 3))


def _disjoint_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (y0, y1, x0, x1) of the connected groups of ``mask``, merged until none overlap.

    Each group's box is filled in and the groups found again, until their number stops falling.
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    while True:
        filled = np.zeros_like(mask)
        for x, y, bw, bh, _ in stats[1:count]:
            filled[y:y + bh, x:x + bw] = 1
        merged, _, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8)
        if merged == count:
            return [(int(y), int(y + bh), int(x), int(x + bw)) for x, y, bw, bh, _ in stats[1:count]]
        count = merged


def _layer_boxes(lo: np.ndarray, hi: np.ndarray, k: int, pad: int, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Disjoint boxes (y0, y1, x0, x1) in pixels holding every pixel of layer k and the reach of its blur.

    The tiles the layer touches are grown by ``pad`` px (its blur's reach) and split into
    connected groups; groups whose bounding boxes overlap are merged, so each box holds all
    of the layer's content that can reach it and the boxes can be blurred and composited
    one by one.
    """
    touched = ((lo < k + 1) & (hi > k - 1)).astype(np.uint8)
    grow = -(-pad // TILE)
    touched = cv2.dilate(touched, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    h, w = shape
    return [(y0 * TILE, min(h, y1 * TILE), x0 * TILE, min(w, x1 * TILE)) for y0, y1, x0, x1 in _disjoint_boxes(touched)]


def _blurred_layer(linear: np.ndarray, u: np.ndarray, k: int, radius: float, box: tuple[int, int, int, int],
                   kernels: _KernelCache) -> np.ndarray:
    """Premultiplied RGBA of layer k inside ``box``, blurred with its disc."""
    y0, y1, x0, x1 = box
    own = np.subtract(u[y0:y1, x0:x1], np.float32(k))
    np.abs(own, out=own)
    np.subtract(np.float32(1.0), own, out=own)
    np.maximum(own, np.float32(0.0), out=own)
    layer = np.empty((y1 - y0, x1 - x0, 4), np.float32)
    np.multiply(linear[y0:y1, x0:x1], own[..., None], out=layer[..., :3])
    layer[..., 3] = own
    return disc_blur(layer, radius, kernels)


def composite_layers(linear: np.ndarray, u: np.ndarray, radii: list[float], *,
                     progress: Progress | None = None) -> np.ndarray:
    """Blur the occupied layers (two threads) and composite them far to near over premultiplied alpha.

    Each layer is cut to boxes around the tiles it touches, grown by its blur's reach: the
    layer is zero elsewhere, so the blur and the compositing there would change nothing.

    Parameters
    ----------
    linear : float32 (H, W, 3) image in linear light.
    u : float32 (H, W) layer coordinate of each pixel, from 0 (nearest layer) to
        ``len(radii) - 1``; a pixel belongs to layer k with weight ``max(0, 1 - |u - k|)``.
    radii : disc radius in px of each layer.
    progress : optional ``progress("aperture", done, total)``, once per occupied layer.

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
    occupied = sorted(_occupied(u, len(radii)), reverse=True)  # far to near
    lo, hi = _tile_ranges(u)
    kernels = _KernelCache()
    jobs = []
    for k in occupied:
        pad = int(math.ceil(radii[k])) + 2 * _blur_scale(radii[k]) + 2
        jobs += [(k, box) for box in _layer_boxes(lo, hi, k, pad, (h, w))]
    acc = np.zeros((h, w, 4), np.float32)
    ahead = 3
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [pool.submit(_blurred_layer, linear, u, k, radii[k], box, kernels) for k, box in jobs[:ahead]]
        for i, (k, (y0, y1, x0, x1)) in enumerate(jobs):
            blurred = pending.pop(0).result()
            if i + ahead < len(jobs):
                k2, box2 = jobs[i + ahead]
                pending.append(pool.submit(_blurred_layer, linear, u, k2, radii[k2], box2, kernels))
            window = acc[y0:y1, x0:x1]
            window *= 1.0 - blurred[..., 3:4]
            window += blurred
            if progress and (i + 1 == len(jobs) or jobs[i + 1][0] != k):
                progress("aperture", occupied.index(k) + 1, len(occupied))
    return acc
