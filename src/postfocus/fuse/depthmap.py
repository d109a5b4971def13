"""Depth-map fusion: each pixel takes the frame(s) focused at its depth.

Frames are blended by their distance to the focus-index map (the DMap family
of focus stacking, e.g. Pertuz et al. [1]_): a narrow Gaussian of the distance
between a frame's position and the pixel's focus index
(:func:`~postfocus.fuse.base.depth_weights`). Tiles where a frame has no
weight are never warped or added (:meth:`DepthmapFusion.footprint`).

At occlusion edges a second, occlusion-safe index may be given
(``safe_index``, :mod:`postfocus.fuse.occlusion`): frames where a near
object's blur covers the pixel are not taken there. Both blends are made, and
a consistency check between them decides (:func:`consistent_blend`): where
they agree at a coarse scale (no glow of a near object in the frame focused at
the pixel's depth), the sharp blend by depth is kept; where they disagree, the
glow is the difference and the safe blend is taken.

The sums are kept interleaved, as the image they become: :meth:`DepthmapFusion.result`
normalises them in place, a band of rows at a time on ``threads`` threads (each
pixel from its own sums: the same bits however the rows are shared), and makes
no second image.

References
----------
.. [1] S. Pertuz, D. Puig, M. A. Garcia and A. Fusiello, "Generation of
   all-in-focus images by noise-robust selective fusion of limited
   depth-of-field images", IEEE Trans. Image Processing 22(3), 2013.
.. [2] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for
   variable-aperture photography", ICCV 2007.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.fuse.bands import accumulate, in_bands, normalise, tile_reduce
from postfocus.fuse.base import Rect, neg_half_inv_sq
from postfocus.fuse.relight import FarBlend
from postfocus.fuse.restore import BandSolver
from postfocus.fuse.tileblend import TileBlend

__all__ = ["DepthmapFusion", "consistency_weight", "consistent_blend"]

_SCALE, _TOLERANCE = 3.0, 0.04  # the consistency check's Gaussian sigma (px) and coarse difference (0-1)
_REACH = int(np.ceil(4 * _SCALE)) + 4  # rows past which OpenCV's Gaussian of sigma _SCALE (float: 4 sigma) reaches no pixel


class DepthmapFusion:
    """Weighted blend of frames by a focus-index map (DMap family).

    ``threads`` (1 or 2): threads that make the per-tile index ranges and finish
    the blend in :meth:`result`, the lower half of the rows on a helper thread
    (the same result).
    ``near_to_far``: frame 0 is the nearest focus (False: the last frame is),
    for the background solver's occluders.
    ``overwrite_sharpness``: a float32 map ``sharpness`` is made the blend's ``-1 / (2 sigma^2)`` in place.
    ``detail``: output pixels per pixel of the maps the index was upscaled from; the background solver composites
    no finer than that (:class:`~postfocus.fuse.restore.BandSolver`).
    ``far_index`` (opt-in): the local far index (:func:`~postfocus.fuse.relight.local_far_index`); a third
    blend by it, where it lies beyond the index, relights the far surface beside darker near objects at the end
    (:class:`~postfocus.fuse.relight.FarBlend`).

    Examples
    --------
    >>> fusion = DepthmapFusion(index_full)  # doctest: +SKIP
    >>> for i, frame in aligned_frames: fusion.add(i, frame)  # doctest: +SKIP
    >>> image = fusion.result()  # doctest: +SKIP
    """

    #: Weights below this are left out: with every pixel's nearest frame weighing at least
    #: exp(-0.125 / 0.35**2) = 0.36, dropping them changes no pixel by more than 1e-4 per frame.
    CUTOFF = 1e-6
    #: The occlusion-safe blend's tiles are the blend's split this many times each way (where the indices differ).
    SAFE_SPLIT = 2
    #: The background solver (:mod:`postfocus.fuse.restore`): the band beside near depth steps, or the whole box.
    SOLVER = BandSolver
    #: The safe blend is kept over the whole box with the solver (as the box solver had it; False: in its tiles).
    WHOLE_BOX = False

    def __init__(self, index_map: np.ndarray, sharpness: float | np.ndarray = 0.35, tile: int = 64,
                 safe_index: np.ndarray | None = None, slope: float | None = None, threads: int = 1,
                 near_to_far: bool = True, far_index: np.ndarray | None = None, overwrite_sharpness: bool = False,
                 detail: float = 1.0):
        self.index_map = np.asarray(index_map, np.float32)
        h, w = self.index_map.shape
        self.tile, (ty, tx) = tile, (-(-h // tile), -(-w // tile))
        # Per tile: the widest reach of a frame's weight above CUTOFF (before the widths may become ``_k`` in place)
        sigma, reach = np.asarray(sharpness, np.float32), np.float32(np.sqrt(2.0 * np.log(1.0 / self.CUTOFF)))
        widest = reach * (tile_reduce(np.broadcast_to(sigma, (h, w)), tile, ty, tx, np.maximum, threads) if sigma.ndim else sigma)
        mine = overwrite_sharpness and sigma is sharpness and sigma.ndim == 2  # (the caller's widths: one array less)
        self._k = neg_half_inv_sq(sharpness, out=sigma if mine else None)
        # The three sums interleaved as the image they become: the frame is added in one product, and
        # result() normalises them in place (no second image beside them).
        self._sum = np.zeros((h, w, 3), np.float32)
        self._weight = np.empty((h, w), np.float32)  # (filled with 1e-12 below, on ``threads`` threads)
        self._image: np.ndarray | None = None
        self.threads = threads  # threads that finish the blend (result())
        # The occlusion-safe blend, kept only in the tiles where the safe index differs, inside their box.
        self._safe: TileBlend | None = None
        self._restore: BandSolver | None = None  # the background solved from the matting equation, same box
        safe = None if safe_index is None else np.asarray(safe_index, np.float32)
        differs = None if safe is None else np.empty((h, w), np.uint8)  # 2: by more than 0.05, 1: at all, 0: not

        def start(rows: slice) -> None:  # a band of the weights and of where the safe index differs (no full-size
            self._weight[rows] = 1e-12  # float temporary; on both cores: the serial stretch before pass 2's start)
            if differs is not None:
                gap = cv2.absdiff(safe[rows], self.index_map[rows])
                cv2.add(np.greater(gap, 0.05).view(np.uint8), np.greater(gap, 0).view(np.uint8), dst=differs[rows])
        in_bands(h, start, threads, band=max(64, -(-h // 8)))
        if safe is not None:
            rows, cols = np.flatnonzero(differs.max(axis=1) == 2), np.flatnonzero(differs.max(axis=0) == 2)
            if rows.size:
                box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
                # The tiles where the safe index differs by more than 0.05 (the only ones the safe blend is made in),
                # kept in finer tiles, those where it differs at all: where the two indices are the same, so are the
                # two blends' sums, and the safe blend is the main one's pixels (as where it is not kept). Not with
                # the background solver, which solves (and changes the main blend) in the tiles the safe blend gets.
                solver = slope is not None and slope > 0
                fine = tile // self.SAFE_SPLIT if tile % self.SAFE_SPLIT == 0 and not solver else tile
                fy, fx = -(-h // fine), -(-w // fine)
                coarse = tile_reduce(differs, tile, ty, tx, np.maximum, threads) == 2
                self._safe_tiles = tile_reduce(differs, fine, fy, fx, np.maximum, threads) > 0
                self._safe_tiles &= coarse[np.arange(fy) * fine // tile][:, np.arange(fx) * fine // tile]
                self._safe_tile = fine
                # (the background solver changes the main blend before the two are compared; the box solver's
                # safe blend is kept over the whole box, the band solver's only where the safe index differs:
                # elsewhere its solution is kept as it is, solver18)
                whole = solver and self.WHOLE_BOX
                self._safe = TileBlend(np.ones_like(self._safe_tiles) if whole else self._safe_tiles, fine, box, safe)
                if slope is not None and slope > 0:
                    self._restore = self.SOLVER(self.index_map, box, float(slope), near_to_far, detail=detail)
            else:
                safe = None
        # Per tile: the focus indices a frame must fall in to weigh above CUTOFF (lowest less widest reach, highest plus)
        self._high = tile_reduce(self.index_map, tile, ty, tx, np.maximum, threads) + widest
        low = tile_reduce(self.index_map, tile, ty, tx, np.minimum, threads)
        if safe is not None:  # the lower of the two indices (and the higher: a far-to-near sweep's is above)
            np.minimum(low, tile_reduce(safe, tile, ty, tx, np.minimum, threads), out=low)
            np.maximum(self._high, tile_reduce(safe, tile, ty, tx, np.maximum, threads) + widest, out=self._high)
        self._far = None if far_index is None else FarBlend(self.index_map, far_index, tile, near_to_far=near_to_far,
                                                            threads=threads)
        if self._far is not None:  # (the far index's frames are wanted in its tiles too)
            np.minimum(low, tile_reduce(far_index, tile, ty, tx, np.minimum, threads), out=low)
            np.maximum(self._high, tile_reduce(far_index, tile, ty, tx, np.maximum, threads) + widest, out=self._high)
        self._low = low - widest

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
        accumulate(self._sum[t:b, l:r], frame, wt)
        self._weight[t:b, l:r] += wt
        if self._safe is not None:
            self._add_safe(position, frame, (t, l, b, r))
        if self._far is not None:
            self._far.add(position, frame, (t, l, b, r), self._k)

    def _add_safe(self, position: float, frame: np.ndarray, region: Rect) -> None:
        """Fold the tiles of ``frame`` where the safe index differs into the occlusion-safe blend."""
        t, l, b, r = region
        tile = self._safe_tile
        h, w = self.index_map.shape
        for row in range(t // tile, -(-b // tile)):
            cols = np.flatnonzero(self._safe_tiles[row, l // tile:-(-r // tile)]) + l // tile
            if cols.size == 0:
                continue
            breaks = np.flatnonzero(np.diff(cols) > 1)
            for a, z in zip(np.r_[0, breaks + 1], np.r_[breaks, cols.size - 1]):
                rect = (max(t, row * tile), max(l, int(cols[a]) * tile),
                        min(b, (row + 1) * tile, h), min(r, (int(cols[z]) + 1) * tile, w))
                self._add_safe_rect(position, frame, region, rect)

    def _add_safe_rect(self, position: float, frame: np.ndarray, region: Rect, rect: Rect) -> None:
        """Fold ``rect`` of ``frame`` (which holds ``region``) into the occlusion-safe blend, inside its box."""
        st, sl, sb, sr = self._safe.box
        t, l = region[:2]
        it, il, ib, ir = max(rect[0], st), max(rect[1], sl), min(rect[2], sb), min(rect[3], sr)
        if it >= ib or il >= ir:
            return
        part = frame[it - t:ib - t, il - l:ir - l]
        self._safe.add(position, part, (it, il, ib, ir), self._k)
        if self._restore is not None:
            self._restore.add(position, part, (it, il, ib, ir), self._k)

    def result(self) -> np.ndarray:
        """The blend, float32 (H, W, 3); finished in place in its sums, so no frame can be added after it.

        Made a band of rows at a time (small temporaries), the bands shared by ``threads`` threads.
        """
        if self._image is None:
            total, weight = self._sum, self._weight
            in_bands(total.shape[0], lambda rows: normalise(total[rows], weight[rows]), self.threads)
            self._weight = None
            if self._restore is None:  # no frame is added now: the index and widths go before the box's work
                self.index_map = self._k = None
            if self._safe is not None:
                self._consistent()
            if self._far is not None:
                self._far.apply(self._sum)
                self._far = None
            self._image, self._sum = self._sum, None
        return self._image

    def _consistent(self) -> None:
        """The consistency check in the safe blend's box (:func:`consistency_weight`), into the sums, in place."""
        safe = self._safe
        t, l, b, r = safe.box
        sharp = self._sum[t:b, l:r]
        safe.finish(self._sum)  # (tiles where the safe index does not differ: the blend by depth, by dense())
        solved = None
        if self._restore is not None:  # the sharp blend with the near objects' spill taken out
            solved = self._restore.apply([self._sum[..., c] for c in range(3)], self._k)
            self._restore = None
        keep = np.empty((b - t, r - l), np.float32)

        def weigh(rows: slice) -> None:
            """``keep`` of these rows: the coarse difference blurred with the rows the Gaussian reaches
            (the same values as blurring the whole box: BORDER_CONSTANT only at the box's own edges)."""
            top, bottom = max(0, rows.start - _REACH), min(b - t, rows.stop + _REACH)
            inner = slice(rows.start - top, rows.stop - top)
            pieces = list(safe.pieces(slice(top, bottom)))
            if not pieces:  # no kept piece within the Gaussian's reach: exp(-0), without blurring three zero planes
                keep[rows] = 1.0
                return
            blurred = []
            planes = [np.zeros((bottom - top, r - l), np.float32) for _ in range(3)]  # (zero where nothing is kept)
            for ys, xs, values in pieces:
                for c, plane in enumerate(planes):
                    np.subtract(sharp[ys, xs, c], values[..., c], out=plane[ys.start - top:ys.stop - top, xs])
            for plane in planes:
                cv2.GaussianBlur(plane, (0, 0), _SCALE, dst=plane, borderType=cv2.BORDER_CONSTANT)
                blurred.append(np.abs(plane, out=plane)[inner])
            keep[rows] = _keep(blurred, _TOLERANCE)

        in_bands(b - t, weigh, self.threads, band=128)  # (16 rows of margin each side: 25 % more blurring)
        if solved is not None:  # the solved background needs no fallback: its glow is gone
            np.maximum(keep, solved, out=keep)

        def blend(rows: slice) -> None:  # (only where the safe blend is kept: elsewhere it is ``sharp``)
            for ys, xs, values in safe.pieces(rows):
                part = sharp[ys, xs] - values
                cv2.multiply(part, cv2.merge((keep[ys, xs],) * 3), dst=part)
                cv2.add(part, values, dst=sharp[ys, xs])

        in_bands(b - t, blend, self.threads)
        self._safe = None


def _keep(differences: list[np.ndarray], tolerance: float) -> np.ndarray:
    """``exp(-(g / tolerance)^2)``, ``g`` the largest of the absolute coarse ``differences``."""
    g = differences[0].copy()
    for d in differences[1:]:
        np.maximum(g, d, out=g)
    g *= np.float32(-1.0 / tolerance)
    g *= g
    return np.exp(-g, out=g)


def consistency_weight(sharp: list[np.ndarray], safe: list[np.ndarray], *, scale: float = _SCALE,
                       tolerance: float = _TOLERANCE) -> np.ndarray:
    """Weight of the blend by depth against the occlusion-safe one: 1 where they agree at a coarse scale.

    A near object's blur in the frame focused on the background is light
    spread over many pixels: it shows as a coarse-scale difference between the
    blend by depth (``sharp``) and the occlusion-safe blend (``safe``), which
    differ elsewhere only in fine detail. The weight is
    ``exp(-(g / tolerance)^2)`` with ``g`` the largest channel of the
    difference low-passed by a Gaussian of sigma ``scale`` px (zero outside
    the given pixels: the blends agree there).

    Parameters
    ----------
    sharp, safe : list of numpy.ndarray
        float32 (h, w) colour planes of the two blends of the same pixels.
    scale : float
        Gaussian sigma (px) of the comparison.
    tolerance : float
        Coarse difference (0-1 scale) at which ``sharp`` keeps a third of the weight.

    Returns
    -------
    numpy.ndarray
        float32 (h, w) in [0, 1].

    References
    ----------
    S. Li, X. Kang and J. Hu, "Image fusion with guided filtering", IEEE Trans.
    Image Processing 22(7), 2013 (base and detail layers judged at their own scales).
    """
    return _keep([np.abs(cv2.GaussianBlur(a - b, (0, 0), scale, borderType=cv2.BORDER_CONSTANT)) for a, b in zip(sharp, safe)],
                 tolerance)


def consistent_blend(sharp: np.ndarray, safe: np.ndarray, *, scale: float = 3.0, tolerance: float = 0.04) -> np.ndarray:
    """``sharp`` where it agrees with ``safe`` at a coarse scale, ``safe`` where it does not (:func:`consistency_weight`).

    Parameters
    ----------
    sharp, safe : numpy.ndarray
        float32 (h, w, 3) blends of the same pixels.
    scale, tolerance : float
        As :func:`consistency_weight`.

    Returns
    -------
    numpy.ndarray
        float32 (h, w, 3).

    Examples
    --------
    >>> a = np.zeros((8, 8, 3), np.float32)
    >>> round(float(consistent_blend(a, a + 0.5)[4, 4, 0]), 3), round(float(consistent_blend(a, a + 0.001)[4, 4, 0]), 3)
    (0.5, 0.0)
    """
    keep = consistency_weight(list(cv2.split(sharp)), list(cv2.split(safe)), scale=scale, tolerance=tolerance)
    return (safe + keep[..., None] * (sharp - safe)).astype(np.float32)
