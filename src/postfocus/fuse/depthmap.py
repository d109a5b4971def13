"""Fold aligned frames, one at a time, into an all-in-focus image.

Two fusions, both streaming (a frame is added, then dropped):

* :class:`DepthmapFusion` blends frames by their distance to the focus-index
  map: each pixel takes the frame(s) focused at its depth.
* :class:`PyramidFusion` selects, per Laplacian-pyramid coefficient, the frame
  with the most local contrast at that scale (max-contrast family). Given the
  focus-index map, its coarse bands and low-pass residual are blended by depth
  like the depth-map fusion: a defocused frame's glow (a near object's blurred
  spill over the background) carries most energy at coarse scales, where
  max-contrast selection would pick it, and averaging the residual over all
  frames would mix it in.
"""

from __future__ import annotations

import cv2
import numpy as np


def depth_weights(index_map: np.ndarray, frame: float, sharpness: float | np.ndarray = 0.35) -> np.ndarray:
    """Weight of frame ``frame`` at each pixel, given the focus-index map.

    A narrow Gaussian of the distance between the frame and the pixel's focus
    index: the frames focused at a pixel dominate, neighbours blend in smoothly
    where the index falls between frames. ``sharpness`` (the Gaussian's sigma
    in frames) may be a per-pixel map.

    Examples
    --------
    >>> float(depth_weights(np.array([[2.0]]), 2.0)[0, 0])
    1.0
    """
    d = index_map - np.float32(frame)
    return np.exp(d * d * _neg_half_inv_sq(sharpness)).astype(np.float32)


def _neg_half_inv_sq(sharpness: float | np.ndarray) -> np.float32 | np.ndarray:
    if np.ndim(sharpness) == 0:
        return np.float32(-0.5 / (float(sharpness) ** 2))
    s = np.asarray(sharpness, np.float32)
    return (np.float32(-0.5) / (s * s)).astype(np.float32)


def blend_width(confidence: np.ndarray, sharp: float = 0.35, wide: float = 2.0, unsure: float = 0.5) -> np.ndarray:
    """Per-pixel sigma (frames) of the depth blend: ``sharp`` where the focus map is sure, up to ``wide`` where not.

    Where the focus curve is flat or has no detail above the noise
    (confidence below ``unsure``), the frames differ by little but their
    noise: blending more of them averages it out. Confident pixels keep the
    narrow blend.

    Examples
    --------
    >>> [round(float(v), 3) for v in blend_width(np.array([1.0, 0.5, 0.25, 0.0], np.float32))]
    [0.35, 0.35, 1.175, 2.0]
    """
    c = np.clip(np.asarray(confidence, np.float32), 0.0, 1.0)
    return (np.float32(sharp) + np.float32(wide - sharp) * np.clip(1.0 - c / np.float32(unsure), 0.0, 1.0)).astype(
        np.float32
    )


def upscale_region(small: np.ndarray, size: tuple[int, int], region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Bilinear upscale of a small map to full ``size`` (H, W), computed only inside ``region``.

    The same pixels as cropping ``cv2.resize(small, (W, H))``, without making the whole.

    Examples
    --------
    >>> upscale_region(np.array([[0.0, 1.0]], np.float32), (2, 4), (0, 1, 1, 3)).tolist()
    [[0.25, 0.75]]
    """
    H, W = size
    t, l, b, r = region or (0, 0, H, W)
    if (t, l, b, r) == (0, 0, H, W):
        return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    mh, mw = small.shape[:2]
    xs = (np.arange(l, r, dtype=np.float32) + 0.5) * np.float32(mw / W) - 0.5
    ys = (np.arange(t, b, dtype=np.float32) + 0.5) * np.float32(mh / H) - 0.5
    map_x = np.broadcast_to(xs[None, :], (b - t, r - l)).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (b - t, r - l)).astype(np.float32)
    return cv2.remap(small, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


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
        self._k = _neg_half_inv_sq(sharpness)
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

    def footprint(self, position: float) -> list[tuple[int, int, int, int]]:
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
        merged: list[tuple[int, int, int, int]] = []
        for r in rects:
            last = merged[-1] if merged else None
            if last and last[2] == r[0] and last[1] == r[1] and last[3] == r[3]:
                merged[-1] = (last[0], last[1], r[2], last[3])
            else:
                merged.append(r)
        return merged

    def add(self, position: float, frame: np.ndarray, region: tuple[int, int, int, int] | None = None) -> None:
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


def _levels_for(shape: tuple[int, int], smallest: int = 16) -> int:
    return max(1, int(np.log2(max(1, min(shape) / smallest))))


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Band-pass levels, finest first, then the low-pass residual."""
    gauss = [image]
    for _ in range(levels):
        gauss.append(cv2.pyrDown(gauss[-1]))
    pyr = []
    for fine, coarse in zip(gauss[:-1], gauss[1:]):
        up = cv2.pyrUp(coarse, dstsize=(fine.shape[1], fine.shape[0]))
        pyr.append(fine - up)
    pyr.append(gauss[-1])
    return pyr


def collapse(pyr: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`."""
    image = pyr[-1]
    for band in reversed(pyr[:-1]):
        image = cv2.pyrUp(image, dstsize=(band.shape[1], band.shape[0])) + band
    return image


class PyramidFusion:
    """Max-contrast selection in a Laplacian pyramid, with a consistency window.

    Each fine band keeps the coefficient of the frame with the largest local
    energy (averaged over a small window, so neighbouring coefficients tend to
    come from the same frame). Without a focus-index map the low-pass residual
    is averaged over the frames; with one, the bands from ``coarse_from`` down
    and the residual are blended by depth (as :class:`DepthmapFusion` does),
    which keeps defocused frames' glow out of the coarse scales.

    Examples
    --------
    >>> fusion = PyramidFusion((480, 640), index_map=index_full)  # doctest: +SKIP
    >>> for k, frame in enumerate(aligned_frames): fusion.add(k, frame)  # doctest: +SKIP
    """

    def __init__(
        self,
        shape: tuple[int, int],
        levels: int | None = None,
        window: int = 5,
        index_map: np.ndarray | None = None,
        coarse_from: int = 2,
        sharpness: float | np.ndarray = 0.35,
    ):
        self.shape = (int(shape[0]), int(shape[1]))
        self.levels = levels or _levels_for(shape)
        self.window = window
        self._bands: list[np.ndarray] | None = None
        self._energy: list[np.ndarray] = []
        self._base: np.ndarray | None = None
        self._count = 0
        self.coarse_from = coarse_from if index_map is not None else self.levels
        # Focus index and blend width at the size of every depth-blended level.
        self._index: dict[int, np.ndarray] = {}
        self._k: dict[int, np.float32 | np.ndarray] = {}
        self._weight: dict[int, np.ndarray] = {}
        if index_map is not None:
            idx = np.asarray(index_map, np.float32)
            sig = sharpness if np.ndim(sharpness) == 0 else np.asarray(sharpness, np.float32)
            for k in range(self.levels + 1):
                if k >= self.coarse_from:
                    self._index[k] = idx
                    self._k[k] = _neg_half_inv_sq(sig)
                if k < self.levels:
                    idx = cv2.pyrDown(idx)
                    sig = sig if np.ndim(sig) == 0 else cv2.pyrDown(sig)

    def footprint(self, position: float) -> list[tuple[int, int, int, int]]:  # noqa: ARG002 (the Fusion protocol)
        """Rectangles where a frame has weight: the whole picture (a pyramid mixes every pixel)."""
        return [(0, 0, *self.shape)]

    def add(self, position: float | None, frame: np.ndarray, region: tuple[int, int, int, int] | None = None) -> None:
        """Fold in an aligned frame; ``position`` is its focus index (needed with an index map).

        ``region`` must be None or the whole picture (see :meth:`footprint`).
        """
        if region is not None and tuple(region) != (0, 0, *self.shape):
            raise ValueError("PyramidFusion adds whole frames only")
        pyr = laplacian_pyramid(frame.astype(np.float32), self.levels)
        if self._index and position is None:
            raise ValueError("PyramidFusion with an index map needs each frame's position")
        weights = {}
        for k, idx in self._index.items():
            d = idx - np.float32(position)
            d *= d
            d *= self._k[k]
            w = np.exp(d, out=d)
            np.maximum(w, np.float32(1e-8), out=w)
            weights[k] = w
            pyr[k] *= w[..., None]
        bands, base = pyr[:-1], pyr[-1]
        energies = []
        for k, band in enumerate(bands):
            if k >= self.coarse_from:
                energies.append(None)
                continue
            e = (band * band).sum(axis=2)
            energies.append(cv2.boxFilter(e, -1, (self.window, self.window)))
        if self._bands is None:
            self._bands, self._energy, self._base = bands, energies, base.copy()
            self._weight = weights
        else:
            for k, (band, e) in enumerate(zip(bands, energies)):
                if e is None:  # depth-blended band
                    self._bands[k] += band
                    continue
                better = e > self._energy[k]
                self._bands[k][better] = band[better]
                self._energy[k] = np.maximum(self._energy[k], e)
            self._base += base
            for k, w in weights.items():
                self._weight[k] += w
        self._count += 1

    def result(self) -> np.ndarray:
        if self._bands is None:
            raise ValueError("no frame was added")
        bands = [b / self._weight[k][..., None] if k in self._weight else b for k, b in enumerate(self._bands)]
        base = self._base / self._weight[self.levels][..., None] if self.levels in self._weight else self._base / self._count
        return collapse(bands + [base])
