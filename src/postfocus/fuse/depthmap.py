"""Depth-map fusion: each pixel takes the frame(s) focused at its depth.

Frames are blended by their distance to the focus-index map (the DMap family
of focus stacking, e.g. Pertuz et al. [1]_): a narrow Gaussian of the distance
between a frame's position and the pixel's focus index
(:func:`~postfocus.fuse.base.depth_weights`). Tiles where a frame has no
weight are never warped or added (:meth:`DepthmapFusion.footprint`).

References
----------
.. [1] S. Pertuz, D. Puig, M. A. Garcia and A. Fusiello, "Generation of
   all-in-focus images by noise-robust selective fusion of limited
   depth-of-field images", IEEE Trans. Image Processing 22(3), 2013.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.fuse.base import Rect, neg_half_inv_sq

__all__ = ["DepthmapFusion"]


def _tile_rows(rows: np.ndarray, tile: int, tiles: int) -> np.ndarray:
    """A band of rows as (rows, tiles, tile) blocks; the last block padded with its edge values."""
    pad = tiles * tile - rows.shape[1]
    if pad:
        rows = np.concatenate([rows, np.repeat(rows[:, -1:], pad, axis=1)], axis=1)
    return rows.reshape(rows.shape[0], tiles, tile)


class DepthmapFusion:
    """Weighted blend of frames by a focus-index map (DMap family).

    Examples
    --------
    >>> fusion = DepthmapFusion(index_full)  # doctest: +SKIP
    >>> for i, frame in aligned_frames: fusion.add(i, frame)  # doctest: +SKIP
    >>> image = fusion.result()  # doctest: +SKIP
    """

    #: Weights below this are left out: with every pixel's nearest frame weighing at least
    #: exp(-0.125 / 0.35**2) = 0.36, dropping them changes no pixel by more than 1e-4 per frame.
    CUTOFF = 1e-6

    def __init__(self, index_map: np.ndarray, sharpness: float | np.ndarray = 0.35, tile: int = 64):
        self.index_map = np.asarray(index_map, np.float32)
        self._k = neg_half_inv_sq(sharpness)
        h, w = self.index_map.shape
        self._sum = [np.zeros((h, w), np.float32) for _ in range(3)]
        self._weight = np.full((h, w), 1e-12, np.float32)
        self._image: np.ndarray | None = None
        # Per tile: the range of focus indices a frame must fall in to weigh more than CUTOFF there
        # (a tile's lowest index less its widest reach, its highest plus that reach).
        self.tile = tile
        ty, tx = -(-h // tile), -(-w // tile)
        self._low = np.empty((ty, tx), np.float32)
        self._high = np.empty((ty, tx), np.float32)
        sigma = np.asarray(sharpness, np.float32)
        reach = np.float32(np.sqrt(2.0 * np.log(1.0 / self.CUTOFF)))
        for row in range(ty):  # a row of tiles at a time: no full-size temporary
            rows = slice(row * tile, min(h, (row + 1) * tile))
            index = _tile_rows(self.index_map[rows], tile, tx)
            widest = reach * (_tile_rows(np.broadcast_to(sigma, (h, w))[rows], tile, tx).max(axis=(0, 2))
                              if sigma.ndim else sigma)
            self._low[row] = index.min(axis=(0, 2)) - widest
            self._high[row] = index.max(axis=(0, 2)) + widest

    def footprint(self, position: float) -> list[Rect]:
        """Rectangles (top, left, bottom, right) where the frame at ``position`` has any weight.

        One rectangle per run of tiles in a tile row; only these pixels of the
        frame need warping and adding.

        Examples
        --------
        >>> f = DepthmapFusion(np.array([[0.0] * 4 + [5.0] * 4] * 2, np.float32), tile=4)
        >>> f.footprint(0.0), f.footprint(2.5)
        ([(0, 0, 2, 4)], [])
        """
        h, w = self.index_map.shape
        active = (self._low <= position) & (self._high >= position)
        rects = []
        for row in np.flatnonzero(active.any(axis=1)):
            cols = np.flatnonzero(active[row])
            breaks = np.flatnonzero(np.diff(cols) > 1)
            for a, b in zip(np.r_[0, breaks + 1], np.r_[breaks, len(cols) - 1]):
                rects.append((int(row * self.tile), int(cols[a] * self.tile),
                              int(min(h, (row + 1) * self.tile)), int(min(w, (cols[b] + 1) * self.tile))))
        # Tile rows with the same run of columns become one rectangle (fewer, larger warps).
        merged: list[Rect] = []
        for r in rects:
            last = merged[-1] if merged else None
            if last and last[2] == r[0] and last[1] == r[1] and last[3] == r[3]:
                merged[-1] = (last[0], last[1], r[2], last[3])
            else:
                merged.append(r)
        return merged

    def add(self, position: float, frame: np.ndarray, region: Rect | None = None) -> None:
        """Fold in the aligned frame focused at index ``position``.

        ``region`` (top, left, bottom, right): ``frame`` holds only that part
        of the picture (e.g. one rectangle of :meth:`footprint`).
        """
        h, w = self.index_map.shape
        t, l, b, r = region or (0, 0, h, w)
        d = self.index_map[t:b, l:r] - np.float32(position)
        d *= d
        d *= self._k if np.ndim(self._k) == 0 else self._k[t:b, l:r]
        wt = np.exp(d, out=d)
        for c in range(3):  # channel by channel: no full-size temporary
            cv2.accumulateProduct(np.ascontiguousarray(frame[:, :, c]), wt, self._sum[c][t:b, l:r])
        self._weight[t:b, l:r] += wt

    def result(self) -> np.ndarray:
        """The blend, float32 (H, W, 3); finished in place, so no frame can be added after it."""
        if self._image is None:
            inv = np.reciprocal(self._weight, out=self._weight)
            for plane in self._sum:
                plane *= inv
            self._image = cv2.merge(self._sum)
            self._sum = self._weight = None
        return self._image
