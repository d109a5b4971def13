"""The background behind near objects solved from the matting equation ``F = S + (1 - A) B``.

In a frame focused at ``f`` a pixel ``p`` behind nearer objects is seen as
``S + (1 - A) B``: ``A`` the share of its view the near objects' blur discs
cover, ``S`` the light they spill (:func:`~postfocus.fuse.cover.occluder_cover`)
and ``B`` its own light (Hasinoff and Kutulakos [1]_). Every frame focused near
the pixel's depth gives one equation; their blend weighted by ``g (1 - A)^2``
(``g`` the frame's weight by depth) is the least-squares ``B``.

:class:`BoxSolver` solves every pixel of the box where the occlusion-safe index
differs (each frame's cover and spill composited over the whole box at full
size, twice). :class:`BandSolver` (the default since the seventeenth session,
solver18) solves only the pixels some nearer layer's blur can reach in a frame
that weighs there: the band beside near depth steps, a few blur radii wide.
Its cover and spill are composited at a reduced scale from the reduced focus
index (each reduced pixel in one layer, as the analysis-size map has it) and
read at the band's pixels by bilinear interpolation.

References
----------
.. [1] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for
   variable-aperture photography", ICCV 2007.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.colour import srgb_decode, srgb_encode
from postfocus.fuse.base import Rect
from postfocus.fuse.clipped import ClippedLight
from postfocus.fuse.cover import REDUCE, composite_where, occluder_cover
from postfocus.fuse.occlusion import visible_index

__all__ = ["BandSolver", "BoxSolver"]


class BoxSolver:
    """The matting-equation blend of a box: per frame ``(F - S) / (1 - A)`` weighted by ``g (1 - A)^2``.

    ``A`` and ``S`` are the cover and spill of the nearer objects' blur in the
    frame (:func:`~postfocus.fuse.occlusion.occluder_cover`), ``g`` the frame's
    weight by depth; ``(1 - A)^2`` weighs each solution by its precision (the
    noise of ``F`` is divided by ``1 - A``). The blend is linear in the frames
    and in the spill, so the frames are summed as they come
    (``sum g (1 - A) F``) and the spill, which needs the near objects' sharp
    light (known only when every frame is in), is taken off at the end.
    Where ``sum g (1 - A)^2`` is small against ``sum g`` (a pixel that the
    near blur covers in every frame focused near its depth) the blend by
    depth is kept.
    """

    #: Reliability (``sum g (1 - A)^2 / sum g``) from which the solution is taken wholly, and below which not at all.
    SURE, UNSURE = 0.3, 0.08
    #: Linear light from which a pixel is taken as clipped.
    CLIPPED = 0.97
    #: Share of a pixel's light that may come from clipped occluders before the solution is given up there
    #: (a highlight 10x white spilling 0.5 % of its light adds 5 % of white).
    UNKNOWN = 0.005
    #: Relative error of a modelled spill, and the error of the solution (encoded, 0-1) from which it is
    #: given up (wholly at twice that).
    MODEL_ERROR, TOLERANCE = 0.15, 0.02
    #: Clipped highlights' light is read from the frames where they are defocused (:mod:`~postfocus.fuse.clipped`).
    RECOVER = False
    #: Linear light from which a frame's pixel (its exposure gain applied to the saturating stored value,
    #: so a clipped pixel may read ``gain ** 2.2`` of white) is left out of the solution, when SEEN_CLIPPED.
    FRAME_CLIPPED, SEEN_CLIPPED = 0.85, True

    def __init__(self, index_map: np.ndarray, box: Rect, slope: float, near_to_far: bool = True, *,
                 detail: float = 1.0):
        h, w = index_map.shape
        t, l, b, r = box
        pad = int(np.ceil(slope * (float(index_map.max()) - float(index_map.min()) + 1.0))) + 2
        self.outer = (max(0, t - pad), max(0, l - pad), min(h, b + pad), min(w, r + pad))
        self.box, self.slope, self.near_to_far = box, slope, near_to_far  # (frame 0 the nearest focus)
        ot, ol, ob, orr = self.outer
        self.rank = index_map[ot:ob, ol:orr]
        self.inner = (slice(t - ot, b - ot), slice(l - ol, r - ol))
        self.sums = np.zeros((b - t, r - l, 3), np.float32)
        self.den = np.zeros((b - t, r - l), np.float32)
        self.positions: list[float] = []
        self._clear: tuple[float, np.ndarray] | None = None  # the last frame's 1 - A over the box
        # (the ring a highlight's bloom shows below white is resolved at about half a frame's blur growth)
        self.light = ClippedLight(box, block=int(np.clip(slope // 2, 1, 4))) if self.RECOVER else None

    def _visible(self, position: float) -> np.ndarray:
        """``1 - A`` over the box for the frame at ``position`` (kept for the frame's next rectangle)."""
        if self._clear is None or self._clear[0] != position:
            cover, _ = occluder_cover(self.rank, position, self.slope, near_to_far=self.near_to_far)
            self._clear = (position, 1.0 - cover[self.inner])
            self.positions.append(position)
        return self._clear[1]

    def add(self, position: float, pixels: np.ndarray, rect: Rect, k: float | np.ndarray) -> None:
        """Fold ``pixels`` (the frame's part ``rect``, inside the box) in."""
        t, l = self.box[:2]
        it, il, ib, ir = rect
        cut = (slice(it - t, ib - t), slice(il - l, ir - l))
        clear = self._visible(position)[cut]
        d = self.rank[self.inner][cut] - np.float32(position)
        d = d * d * (k if np.ndim(k) == 0 else k[it:ib, il:ir])
        g = np.exp(d) * clear
        linear = srgb_decode(pixels)
        if self.SEEN_CLIPPED:  # a clipped pixel is no equation: it holds less than S + (1 - A) B
            g *= linear.max(axis=2) < self.FRAME_CLIPPED
        self.sums[cut] += linear * g[..., None]
        if self.light is not None:
            self.light.add(position, linear, rect)
        self.den[cut] += g * clear

    def apply(self, planes: list[np.ndarray], k: float | np.ndarray) -> None:
        """Take the spill off and blend the solution into ``planes`` (the normalised blend by depth), in place."""
        ot, ol, ob, orr = self.outer
        t, l, b, r = self.box
        # The near objects' light, and a fourth plane: clipped (a highlight may be many times white, its light
        # is unknown and its spill cannot be taken off).
        colour = np.empty((ob - ot, orr - ol, 4), np.float32)
        for c in range(3):
            colour[..., c] = srgb_decode(planes[c][ot:ob, ol:orr])
        colour[..., 3] = colour[..., :3].max(axis=2) >= self.CLIPPED
        if self.light is not None:  # the highlights whose light the defocused frames give are no longer unknown
            colour[..., 3][self.light.recover(colour, self.rank, (ot, ol), self.slope, near_to_far=self.near_to_far)] = 0.0
        total = np.zeros_like(self.den)
        unknown = np.zeros_like(self.den)
        taken = np.zeros_like(self.sums)
        for position in self.positions:
            cover, spill = occluder_cover(self.rank, position, self.slope, colour=colour, near_to_far=self.near_to_far)
            clear = 1.0 - cover[self.inner]
            d = self.rank[self.inner] - np.float32(position)
            g = np.exp(d * d * (k if np.ndim(k) == 0 else k[t:b, l:r]))
            total += g
            part = spill[self.inner][..., :3] * (g * clear)[..., None]
            self.sums -= part
            taken += part
            unknown += g * spill[self.inner][..., 3]
        reliable = self.den / np.maximum(total, 1e-12)
        take = np.clip((reliable - self.UNSURE) / (self.SURE - self.UNSURE), 0.0, 1.0)
        take *= np.clip(1.0 - unknown / np.maximum(total, 1e-12) / self.UNKNOWN, 0.0, 1.0)
        den = np.maximum(self.den, 1e-12)[..., None]
        linear = np.clip(self.sums / den, 0.0, 1.0)
        solved = srgb_encode(linear)
        # The spill is known only as well as the blur model (slope, edge, colour): a solution that takes off
        # much light against what is left is not to be trusted.
        doubt = srgb_encode(np.clip(linear + self.MODEL_ERROR * taken / den, 0.0, 1.0)) - solved
        take *= np.clip(2.0 - doubt.max(axis=2) / self.TOLERANCE, 0.0, 1.0)
        for c, plane in enumerate(planes):
            part = plane[t:b, l:r]
            part += take * (solved[..., c] - part)
        return take


class BandSolver(BoxSolver):
    """:class:`BoxSolver`'s solution on the band beside near depth steps, composited at a reduced scale.

    The band: the pixels within the blur reach of a nearer layer in the frames
    that weigh there, ``rank(q) + |p - q| / slope < rank(p)`` for some ``q``
    (:func:`~postfocus.fuse.occlusion.visible_index`, the cone of Pentland's
    thin-lens radius), grown by one frame's blur. Elsewhere no nearer blur
    covers the pixel (``A = 0``, ``S = 0``) and the blend by depth is kept.

    Cover and spill are composited on the focus index and the blend's linear
    light area-averaged by ``f = floor(slope / REDUCE)`` (1 to 4; each layer's
    disc is at least ``slope`` px, so at least ``2 f``), or by the maps' own
    scale ``floor(detail)`` where that is coarser (the index upscaled from
    them holds nothing finer), each reduced pixel in
    the layer of its own averaged index, and read at the band's pixels
    bilinearly. The sums are kept for the band's pixels only.
    """

    #: The reduced scale is ``floor(slope / REDUCE_BY)``, or the maps' own (``floor(detail)``) if coarser (1 to 4).
    REDUCE_BY = REDUCE
    #: A frame whose weight at a pixel is below this (the fusion's cutoff) gives it no cover to composite.
    CUTOFF = 1e-6

    def __init__(self, index_map: np.ndarray, box: Rect, slope: float, near_to_far: bool = True, *,
                 detail: float = 1.0):
        h, w = index_map.shape
        t, l, b, r = box
        pad = int(np.ceil(slope * (float(index_map.max()) - float(index_map.min()) + 1.0))) + 2
        ot, ol, ob, orr = self.outer = (max(0, t - pad), max(0, l - pad), min(h, b + pad), min(w, r + pad))
        self.box, self.slope, self.near_to_far = box, slope, near_to_far
        self.f = f = int(np.clip(max(slope // self.REDUCE_BY, np.floor(detail)), 1, 4))
        rank = index_map[ot:ob, ol:orr]
        rank = rank if near_to_far else -rank  # (mirrored: the nearest focus at the lowest rank again)
        self.small = _reduced(rank, f)
        self.labels = np.rint(self.small)
        self.layers = np.unique(self.labels)
        sh, sw = self.small.shape
        # The band at the reduced scale: reached by a nearer layer's cone, grown by a frame's blur (and a pixel).
        near = visible_index(self.small, slope / f) < self.small - np.float32(0.05)
        grow = int(np.ceil(slope / f)) + 1
        near = cv2.dilate(near.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2))
        full = np.repeat(np.repeat(near, f, axis=0), f, axis=1)[t - ot:b - ot, l - ol:r - ol]
        ys, xs = np.nonzero(full)
        self.ordinal = np.full((b - t, r - l), -1, np.int32)  # each box pixel's place in the band (-1: outside)
        self.ordinal[ys, xs] = np.arange(ys.size, dtype=np.int32)
        self.at = (ys, xs)
        self.rank_b = np.ascontiguousarray(index_map[ys + t, xs + l])  # (not mirrored: the frames' positions)
        # The band's pixels in the reduced grid (pixel centres: (y + 0.5) / f - 0.5), read by cv2.remap (bilinear).
        n, cols = ys.size, 1024
        rows = max(1, -(-n // cols))
        self.grid = [np.zeros((rows, cols), np.float32) for _ in range(2)]
        for grid, at, offset in ((self.grid[0], xs, l - ol), (self.grid[1], ys, t - ot)):
            grid.reshape(-1)[:n] = (at + offset + 0.5) / f - 0.5
        n = ys.size
        self.sums = np.zeros((n, 3), np.float32)
        self.den = np.zeros(n, np.float32)
        self.k_b: np.ndarray | None = None
        self.positions: list[float] = []
        self._clear: tuple[float, np.ndarray] | None = None

    def _frame(self, position: float, colour: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """``1 - A`` (n) and ``S`` (n, 4; None without ``colour``) at the band's pixels for the frame at ``position``.

        Composited (:func:`~postfocus.fuse.cover.composite_where`) on the reduced index only in the tiles round the
        band's pixels whose weight reaches ``position``, each nearer layer read within its own disc's reach of them;
        the others are given no cover (their weight is below the fusion's cutoff there).
        """
        n = self.rank_b.size
        clear, spill = np.ones(n, np.float32), None if colour is None else np.zeros((n, 4), np.float32)
        pos = float(position) if self.near_to_far else -float(position)
        weighs = np.abs(self.rank_b - np.float32(position)) <= self.reach_b
        if not weighs.any():
            return clear, spill
        sh, sw = self.small.shape
        gx, gy = (g.reshape(-1)[:n][weighs] for g in self.grid)
        wanted = np.zeros((sh, sw), bool)  # the reduced pixels the band's pixels are read from (bilinear)
        x0, y0 = np.clip(np.floor(gx).astype(np.int64), 0, sw - 1), np.clip(np.floor(gy).astype(np.int64), 0, sh - 1)
        for dy in (0, 1):
            for dx in (0, 1):
                wanted[np.minimum(y0 + dy, sh - 1), np.minimum(x0 + dx, sw - 1)] = True
        cover, light = composite_where(self.small, pos, self.slope / self.f, wanted, colour=colour, labels=self.labels,
                                       layers=self.layers)
        m, cols = gx.size, 1024  # (the points as rows of 1024 for cv2.remap)
        at_x, at_y = (np.zeros(-(-m // cols) * cols, np.float32) for _ in range(2))
        at_x[:m], at_y[:m] = gx, gy
        at_x, at_y = at_x.reshape(-1, cols), at_y.reshape(-1, cols)

        def read(a: np.ndarray) -> np.ndarray:
            out = cv2.remap(a, at_x, at_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            return out.reshape(-1, *a.shape[2:])[:m]

        clear[weighs] = 1.0 - read(cover)
        if spill is not None:
            spill[weighs] = read(light)
        return clear, spill

    def _visible(self, position: float) -> np.ndarray:
        """``1 - A`` at the band's pixels for the frame at ``position`` (kept for the frame's next rectangle)."""
        if self._clear is None or self._clear[0] != position:
            self._clear = (position, self._frame(position, None)[0])
            self.positions.append(position)
        return self._clear[1]

    def add(self, position: float, pixels: np.ndarray, rect: Rect, k: float | np.ndarray) -> None:
        """Fold the band's pixels of ``pixels`` (the frame's part ``rect``, inside the box) in."""
        t, l = self.box[:2]
        it, il, ib, ir = rect
        ordinal = self.ordinal[it - t:ib - t, il - l:ir - l]
        inside = ordinal >= 0
        if not inside.any():
            return
        at = ordinal[inside]
        if self.k_b is None:  # every band pixel's -1 / (2 sigma^2), and the frames its weight reaches
            ys, xs = self.at
            self.k_b = (np.asarray(k, np.float32)[t:self.box[2], l:self.box[3]][ys, xs] if np.ndim(k)
                        else np.full(self.rank_b.size, k, np.float32))
            self.reach_b = np.sqrt(np.float32(np.log(1.0 / self.CUTOFF)) / np.maximum(-self.k_b, 1e-12))
        clear = self._visible(position)[at]
        d = self.rank_b[at] - np.float32(position)
        g = np.exp(d * d * self.k_b[at]) * clear
        linear = _linear(pixels[inside])
        if self.SEEN_CLIPPED:  # a clipped pixel is no equation: it holds less than S + (1 - A) B
            g *= np.maximum(np.maximum(linear[:, 0], linear[:, 1]), linear[:, 2]) < self.FRAME_CLIPPED
        self.sums[at] += linear * g[:, None]
        self.den[at] += g * clear

    def apply(self, planes: list[np.ndarray], k: float | np.ndarray) -> np.ndarray:
        """Take the spill off and blend the solution into ``planes`` at the band, in place; the share taken
        (float32, the box's shape)."""
        ot, ol, ob, orr = self.outer
        t, l, b, r = self.box
        take_box = np.zeros((b - t, r - l), np.float32)
        if self.rank_b.size == 0:
            return take_box
        light = [_linear(plane[ot:ob, ol:orr]) for plane in planes]  # linear light and a fourth plane: clipped
        light.append((np.maximum(np.maximum(light[0], light[1]), light[2]) >= self.CLIPPED).astype(np.float32))
        colour = _reduced(cv2.merge(light), self.f)
        k_b = self.k_b
        n = self.rank_b.size
        total, unknown, taken = np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros((n, 3), np.float32)
        for position in self.positions:
            clear, spill = self._frame(position, colour)
            d = self.rank_b - np.float32(position)
            g = np.exp(d * d * k_b)
            total += g
            part = spill[:, :3] * (g * clear)[:, None]
            self.sums -= part
            taken += part
            unknown += g * spill[:, 3]
        reliable = self.den / np.maximum(total, 1e-12)
        take = np.clip((reliable - self.UNSURE) / (self.SURE - self.UNSURE), 0.0, 1.0)
        take *= np.clip(1.0 - unknown / np.maximum(total, 1e-12) / self.UNKNOWN, 0.0, 1.0)
        den = np.maximum(self.den, 1e-12)[:, None]
        linear = np.clip(self.sums / den, 0.0, 1.0)
        solved = srgb_encode(linear)
        doubt = srgb_encode(np.clip(linear + self.MODEL_ERROR * taken / den, 0.0, 1.0)) - solved
        take *= np.clip(2.0 - doubt.max(axis=1) / self.TOLERANCE, 0.0, 1.0)
        ys, xs = self.at
        for c, plane in enumerate(planes):
            part = plane[t:b, l:r]
            part[ys, xs] += take * (solved[:, c] - part[ys, xs])
        take_box[ys, xs] = take
        return take_box


def _linear(encoded: np.ndarray) -> np.ndarray:
    """:func:`~postfocus.colour.srgb_decode` with OpenCV's power (the same curve to float32 rounding)."""
    x = np.clip(np.asarray(encoded, np.float32), 0.0, 1.0)
    out = cv2.pow((x + np.float32(0.055)) * np.float32(1.0 / 1.055), 2.4)
    dark = x <= 0.04045
    out[dark] = x[dark] / np.float32(12.92)
    return out


def _reduced(image: np.ndarray, f: int) -> np.ndarray:
    """``image`` (h, w[, c]) area-averaged by ``f`` (padded to whole blocks by its edge values); float32."""
    image = np.asarray(image, np.float32)
    if f <= 1:
        return image.copy()
    h, w = image.shape[:2]
    ph, pw = -(-h // f) * f, -(-w // f) * f
    if (ph, pw) != (h, w):
        image = cv2.copyMakeBorder(image, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE).reshape(ph, pw, *image.shape[2:])
    return cv2.resize(image, (pw // f, ph // f), interpolation=cv2.INTER_AREA).reshape(ph // f, pw // f,
                                                                                      *image.shape[2:])
