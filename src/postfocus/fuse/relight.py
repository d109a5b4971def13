"""The far surface beside a darker near object, from the frame focused on it, relit.

In a frame focused on the background, a near object darker than it covers part of the lens's aperture
for background points within its blur reach: such a point is seen as ``(1 - A) B + S`` (Hasinoff and
Kutulakos 2007), ``A`` the share of the aperture the near object's disc covers and ``S`` its own light,
small when it is dark. The frame keeps the background's detail there, only darker; the blend by depth
(or the occlusion-safe one) takes a nearer frame instead, in which the background is blurred but not
darkened. So the far frame multiplied by the ratio ``g`` of the two at a coarse scale (``≈ 1 / (1 - A)``)
gives the background back sharp, at its own brightness (a ratio image, as in shading correction).

Where the near object is brighter, its spill adds light and detail of its own (a highlight's bloom), and
the far frame is *brighter* than the glow-free blend: ``g`` is then below 1 and nothing is changed. Only
pixels whose far index (the local far surface within the blur reach) is more than ``step`` frames beyond
their own index are touched; the ratio is taken from ``floor`` (a darkening of more than noise) and capped
at ``cap`` (a near object covering most of the aperture leaves too little light to scale up).

The values are relit as encoded (the ratio of encoded values follows the darkening closely enough at
these scales; relighting in linear light measured no better, docs/quality.md).

References
----------
.. [1] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for variable-aperture
   photography", ICCV 2007 (the occluded background's image ``(1 - A) B + S``).
.. [2] A. Shashua and T. Riklin-Raviv, "The quotient image: class-based re-rendering and recognition with
   varying illuminations", IEEE Trans. PAMI 23(2), 2001 (a ratio of images as a relighting factor).
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.fuse.bands import tile_reduce
from postfocus.fuse.tileblend import Rect, TileBlend

__all__ = ["RELIGHT_SPREAD", "FarBlend", "local_far_index", "relight"]

#: Largest relative difference between the channels' coarse ratios that is taken as a darkening (:func:`relight`).
RELIGHT_SPREAD = 0.1


def local_far_index(index: np.ndarray, reach: int, *, near_to_far: bool = True) -> np.ndarray:
    """The farthest index within ``reach`` px of each pixel (the blur reach: blur growth × the index's span).

    Parameters
    ----------
    index : numpy.ndarray
        float32 (h, w) focus index in frames.
    reach : int
        Radius (px) of the disc the far index is looked for in.
    near_to_far : bool
        Frame 0 is the nearest focus (the far index is the local maximum); False: the local minimum.

    Returns
    -------
    numpy.ndarray
        float32 (h, w).

    Examples
    --------
    >>> d = np.zeros((1, 9), np.float32); d[0, 4] = 3.0
    >>> local_far_index(d, 2).tolist()
    [[0.0, 0.0, 3.0, 3.0, 3.0, 3.0, 3.0, 0.0, 0.0]]
    """
    index = np.asarray(index, np.float32)
    if reach < 1:
        return index.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    grow = cv2.dilate if near_to_far else cv2.erode
    return grow(index, disc, borderType=cv2.BORDER_REPLICATE)


def relight(image: np.ndarray, far: np.ndarray, allowed: np.ndarray, *, scale: float = 1.0, floor: float = 1.1,
            cap: float = 3.0, spread: float = RELIGHT_SPREAD) -> np.ndarray:
    """``image`` with ``far`` relit where ``far`` is darker at a coarse scale (the module's note), in place.

    Parameters
    ----------
    image : numpy.ndarray
        float32 (h, w, 3), the glow-free blend; changed in place and returned.
    far : numpy.ndarray
        float32 (h, w, 3), the blend by the far index (the frame focused on the local far surface).
    allowed : numpy.ndarray
        bool (h, w): pixels whose far index is beyond their own.
    scale : float
        Gaussian sigma (px) of the coarse ratio.
    floor : float
        Ratio (every channel) from which ``far`` is taken, wholly 0.05 above it.
    cap : float
        Largest ratio applied.
    spread : float
        Largest relative difference between the channels' ratios: a dark occluder takes light away from
        every channel alike, while a mix of two colours (a bright near object's own blurred edge over a dark
        background) changes them unevenly, and is left alone.

    Returns
    -------
    numpy.ndarray
        ``image``.

    Examples
    --------
    >>> img = np.full((9, 9, 3), 0.6, np.float32); far = img * 0.5; far[4, 4] += 0.1
    >>> out = relight(img.copy(), far, np.ones((9, 9), bool), scale=2.0)
    >>> round(float(out[4, 4, 0] - out[0, 0, 0]), 2) > 0.1  # the far frame's detail, at the image's level
    True
    """
    g = cv2.GaussianBlur(image, (0, 0), scale)
    g /= np.maximum(cv2.GaussianBlur(far, (0, 0), scale), np.float32(1e-3))
    planes = cv2.split(g)
    low, high = cv2.min(cv2.min(planes[0], planes[1]), planes[2]), cv2.max(cv2.max(planes[0], planes[1]), planes[2])
    w = np.clip((low - np.float32(floor)) * np.float32(20.0), 0.0, 1.0)  # (taken wholly 0.05 above ``floor``)
    high /= np.maximum(low, np.float32(1e-3))
    w *= np.clip((np.float32(1.0 + spread) - high) * np.float32(20.0), 0.0, 1.0)
    w *= allowed
    np.clip(g, 1.0, cap, out=g)
    g *= far
    g -= image
    g *= cv2.merge((w, w, w))
    image += g
    return image


class FarBlend:
    """The blend by the far index, kept in the tiles where it lies beyond the focus index, and its relighting.

    Parameters
    ----------
    index_map, far_index : numpy.ndarray
        float32 (h, w) focus index of the main blend and the local far index (:func:`local_far_index`).
    tile : int
        Tile size (px) of the kept sums.
    near_to_far : bool
        Frame 0 is the nearest focus (far = higher index); False: far = lower.
    step : float
        Frames beyond its own index from which a pixel's far index is taken (:func:`relight`'s ``allowed``).
    threads : int
        Threads for the per-tile reductions.
    """

    def __init__(self, index_map: np.ndarray, far_index: np.ndarray, tile: int, *, near_to_far: bool = True,
                 step: float = 1.5, threads: int = 1):
        beyond = far_index - index_map if near_to_far else index_map - far_index
        self.allowed = beyond > np.float32(step)
        rows, cols = np.flatnonzero(self.allowed.any(axis=1)), np.flatnonzero(self.allowed.any(axis=0))
        self.blend: TileBlend | None = None
        if rows.size:
            h, w = index_map.shape
            chosen = tile_reduce(self.allowed, tile, -(-h // tile), -(-w // tile), np.logical_or, threads)
            self.box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
            self.blend = TileBlend(chosen, tile, self.box, np.asarray(far_index, np.float32))
        self.tile = tile

    def add(self, position: float, frame: np.ndarray, region: Rect, k: float | np.ndarray) -> None:
        """Fold the kept tiles of ``frame`` (which holds ``region`` of the picture) in."""
        if self.blend is None:
            return
        t, l, b, r = region
        bt, bl, bb, br = self.box
        tile = self.tile
        for row in range(max(t, bt) // tile, -(-min(b, bb) // tile)):
            entry = self.blend.rows[row] if row < len(self.blend.rows) else None
            for a, z in entry[1] if entry is not None else ():
                y0, y1 = max(t, entry[0]), min(b, entry[0] + entry[3].shape[0])
                x0, x1 = max(l, a), min(r, z)
                if y0 < y1 and x0 < x1:
                    self.blend.add(position, frame[y0 - t:y1 - t, x0 - l:x1 - l], (y0, x0, y1, x1), k)

    def apply(self, image: np.ndarray, *, scale: float = 1.0, floor: float = 1.1) -> None:
        """Relight ``image`` (the finished blend, picture geometry) in the box, in place (:func:`relight`)."""
        if self.blend is None:
            return
        t, l, b, r = self.box
        pad = int(np.ceil(4 * scale)) + 1  # (the coarse ratio sees the box's neighbours)
        t0, l0, b0, r0 = max(0, t - pad), max(0, l - pad), min(image.shape[0], b + pad), min(image.shape[1], r + pad)
        self.blend.finish(image)
        far = image[t0:b0, l0:r0].copy()
        for ys, xs, values in self.blend.pieces(slice(0, b - t)):
            far[ys.start + t - t0:ys.stop + t - t0, xs.start + l - l0:xs.stop + l - l0] = values
        part = np.ascontiguousarray(image[t0:b0, l0:r0])
        relight(part, far, self.allowed[t0:b0, l0:r0], scale=scale, floor=floor)
        image[t0:b0, l0:r0] = part
        self.blend = None
