"""The nearer layers' blur over each pixel of a frame, and the light it spills: the matting equation's ``A`` and ``S``.

A frame focused at position ``f`` sees a pixel ``p`` behind nearer objects as
``F = S + (1 - A) B``: ``A`` the share of ``p``'s view the near objects' blur
discs cover, ``S`` their spilled light, ``B`` the pixel's own light (Hasinoff
and Kutulakos [1]_). :func:`occluder_cover` makes ``A`` and ``S`` from the focus
index by compositing the nearer layers, each blurred by its thin-lens disc,
near over far (split from :mod:`postfocus.fuse.occlusion`, seventeenth session).

References
----------
.. [1] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for
   variable-aperture photography", ICCV 2007.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["REDUCE", "composite_where", "occluder_cover"]


def _disc(radius: float) -> np.ndarray:
    """Anti-aliased pillbox kernel of ``radius`` px (each tap the share of its pixel inside the disc), sum 1."""
    r = int(np.ceil(radius - 0.5)) if radius > 0.5 else 0
    sub = (np.arange(4 * (2 * r + 1), dtype=np.float32) + 0.5) / 4.0 - (r + 0.5)
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2 <= radius * radius).astype(np.float32)
    kernel = inside.reshape(2 * r + 1, 4, 2 * r + 1, 4).mean(axis=(1, 3))
    return kernel / kernel.sum()


def _disc_blur(image: np.ndarray, radius: float, *, fine: float = 4.0) -> np.ndarray:
    """``image`` convolved with :func:`_disc` of ``radius`` px; a large disc at a reduced scale.

    A disc of radius ``r`` leaves nothing finer than about ``r`` px, so from
    ``2 fine`` px on the image is area-averaged by ``f = floor(r / fine)``,
    blurred with a disc of ``r / f`` (at least ``fine`` px) and interpolated
    back (bilinear): the cost falls as ``f^4`` and the result differs from the
    full-scale convolution by a fraction of the ramp's ``2 r`` px width.
    """
    factor = int(radius // fine) if radius >= 2 * fine else 1
    h, w = image.shape[:2]
    if factor <= 1 or min(h, w) < 4 * factor:
        return cv2.filter2D(image, -1, _disc(radius), borderType=cv2.BORDER_REPLICATE)
    ph, pw = -(-h // factor) * factor, -(-w // factor) * factor  # padded to whole blocks: exact scale f
    padded = cv2.copyMakeBorder(image, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE) if (ph, pw) != (h, w) else image
    small = cv2.resize(padded, (pw // factor, ph // factor), interpolation=cv2.INTER_AREA)
    small = cv2.filter2D(small, -1, _disc(radius / factor), borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (pw, ph), interpolation=cv2.INTER_LINEAR)[:h, :w]


def occluder_cover(rank: np.ndarray, position: float, slope: float, *, colour: np.ndarray | None = None,
                   margin: float = 1.0, reduce: bool = True, near_to_far: bool = True
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """How much nearer objects' blur covers each pixel in the frame at ``position``, and the light they spill.

    The pixels whose focus index lies more than ``margin`` frames before
    ``position`` are the occluders of that frame; grouped by whole frames
    ``j``, each group is a layer blurred by a disc of radius
    ``slope * (position - j)`` and composited near over far (Porter-Duff
    "over", as in a layered depth-of-field render):

    .. math::  A \\leftarrow 1 - (1 - A)(1 - D_j * a_j), \\qquad
               S \\leftarrow S\\,(1 - D_j * a_j) + D_j * (c\\, a_j)

    for ``j`` from far to near, with ``a_j`` the group's mask, ``c`` its
    sharp colour in linear light and ``D_j *`` the disc blur. A pixel ``p``
    behind them is seen in that frame as ``S(p) + (1 - A(p)) B(p)``, with
    ``B`` its own (little blurred) light: the matting equation that
    :class:`~postfocus.fuse.depthmap.DepthmapFusion` solves for ``B``
    (Hasinoff and Kutulakos [2]_, Bando et al. [3]_).

    Parameters
    ----------
    rank : numpy.ndarray
        float32 (h, w) focus index, in positions of the fused frames.
    position : float
        The frame's position.
    slope : float
        Blur growth, pixels of disc radius per frame (:func:`defocus_slope`, at this resolution).
    colour : numpy.ndarray, optional
        float32 (h, w, c) the occluders' sharp light (linear; any planes); without it only the cover is made.
    margin : float
        Frames by which an occluder is nearer than ``position``.
    near_to_far : bool
        Frame 0 is the nearest focus (lower ranks nearer); False: the last frame is, and the occluders are the
        pixels more than ``margin`` frames *above* ``position``.
    reduce : bool
        Make them at a scale reduced by ``floor(r / REDUCE)``, ``r`` the smallest disc (no detail is lost:
        every layer is blurred by at least ``r``), and interpolate back.

    Returns
    -------
    cover, spill : numpy.ndarray
        float32 (h, w) ``A`` in [0, 1], and float32 (h, w, c) ``S`` (None without ``colour``).

    References
    ----------
    .. [2] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for
       variable-aperture photography", ICCV 2007.
    .. [3] Y. Bando, B.-Y. Chen and T. Nishita, "Extracting depth and matte using a color-filtered
       aperture", ACM TOG 27(5), 2008 (partial occlusion at depth edges).

    Examples
    --------
    >>> rank = np.full((1, 9), 6.0, np.float32); rank[0, :3] = 0.0  # a near object at frame 0, px 0-2
    >>> a, s = occluder_cover(rank, 6.0, 0.5, colour=np.full((1, 9, 3), 0.5, np.float32))  # 3 px of blur
    >>> np.round(a.astype(float), 2).tolist(), np.round(s[..., 0].astype(float), 2).tolist()
    ([[0.96, 0.81, 0.61, 0.39, 0.19, 0.04, 0.0, 0.0, 0.0]], [[0.48, 0.4, 0.3, 0.2, 0.1, 0.02, 0.0, 0.0, 0.0]])
    """
    rank = np.asarray(rank, np.float32)
    if not near_to_far:  # mirrored: the nearest focus at the lowest rank again
        rank, position = -rank, -float(position)
    h, w = rank.shape
    near = rank < np.float32(position - margin)
    if not near.any():
        return np.zeros((h, w), np.float32), None if colour is None else np.zeros((h, w, colour.shape[2]), np.float32)
    rounded = np.rint(rank)
    rounded[~near] = np.nan  # (equal to no layer)
    seen = rounded[near]
    lowest = float(seen.min())
    counts = np.bincount((seen - np.float32(lowest)).astype(np.int64))
    layers = (lowest + np.flatnonzero(counts)[::-1]).astype(np.float32)  # far to near
    # Every layer's disc is at least ``smallest`` px: the cover and spill hold nothing finer, so they are made on
    # the picture area-averaged by ``factor`` (the masks become coverage fractions) and interpolated back.
    smallest = slope * max(float(position) - float(layers[0]), 0.0)
    factor = min(int(smallest // REDUCE), 4) if reduce else 1
    if factor < 2 or min(h, w) < 4 * factor:
        return _composite(rounded, layers, position, slope, colour, 1)
    ph, pw = -(-h // factor) * factor, -(-w // factor) * factor  # padded to whole blocks: exact scale
    if (ph, pw) != (h, w):
        rounded = cv2.copyMakeBorder(rounded, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
        if colour is not None:
            colour = cv2.copyMakeBorder(colour, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE).reshape(ph, pw, -1)
    cover, spill = _composite(rounded, layers, position, slope, colour, factor)
    cover = np.clip(cv2.resize(cover, (pw, ph), interpolation=cv2.INTER_CUBIC)[:h, :w], 0.0, 1.0)
    if spill is not None:  # (bicubic: no negative overshoot kept)
        spill = np.maximum(cv2.resize(spill, (pw, ph), interpolation=cv2.INTER_CUBIC).reshape(ph, pw, -1)[:h, :w], 0.0)
    return cover, spill


#: :func:`occluder_cover` works at a scale reduced by ``floor(r / REDUCE)`` (at most 4), ``r`` its smallest disc (px): within
#: 7 % of the full-scale compositing at the discs' edges (0.3 % on average), bicubic back.
REDUCE = 2.0


def _composite(rounded: np.ndarray, layers: np.ndarray, position: float, slope: float, colour: np.ndarray | None,
               factor: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The "over" compositing of :func:`occluder_cover` on the picture area-averaged by ``factor``."""
    h, w = rounded.shape[0] // factor, rounded.shape[1] // factor
    cover = np.zeros((h, w), np.float32)
    spill = None if colour is None else np.zeros((h, w, colour.shape[2]), np.float32)
    for j in layers:  # far to near
        mask = (rounded == j).astype(np.float32)
        if colour is not None:
            light = colour * mask[..., None]
        if factor > 1:
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
            if colour is not None:
                light = cv2.resize(light, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
        radius = slope * max(float(position) - float(j), 0.0) / factor
        blurred = _disc_blur(mask, radius)
        if spill is not None:
            spill *= (1.0 - blurred)[..., None]
            spill += _disc_blur(light, radius).reshape(h, w, -1)
        cover *= -1.0
        cover += 1.0
        cover *= 1.0 - blurred
        np.subtract(1.0, cover, out=cover)
    return np.clip(cover, 0.0, 1.0), spill



def _reach(radius: float) -> float:
    """Pixels past which a mask blurred by :func:`_disc_blur` of ``radius`` (and read bilinearly) is zero."""
    factor = int(radius // 4.0) if radius >= 8.0 else 1
    return radius + 2.0 + 2.0 * factor


def composite_where(index: np.ndarray, position: float, slope: float, wanted: np.ndarray, *,
                    colour: np.ndarray | None = None, margin: float = 1.0, labels: np.ndarray | None = None,
                    layers: np.ndarray | None = None, tile: int = 16) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`occluder_cover`'s compositing (scale 1) made only in the tiles that hold ``wanted`` pixels.

    The tiles of ``tile`` px holding a wanted pixel are grouped in connected
    runs (or in one, when the runs' grown boxes would read more); each run is composited over its bounding box, every nearer layer
    read from that box grown by the layer's own disc (a layer with no pixel
    there is skipped), and kept in the run's own tiles. The compositing is
    pixelwise, so in those tiles the cover and spill are those of the whole
    picture's, up to the grid of the reduced-scale blur (:func:`_disc_blur`).
    The cost is that of the nearer layers around the wanted pixels: in a long
    stack the frames focused far weigh on few pixels, and composite their many
    nearer layers over few tiles.

    Parameters
    ----------
    index : numpy.ndarray
        float32 (h, w) focus index (lower nearer).
    position, slope, margin : float
        As :func:`occluder_cover` (near to far).
    wanted : numpy.ndarray
        bool (h, w), the pixels whose cover is read.
    colour : numpy.ndarray, optional
        float32 (h, w, c) the occluders' sharp light.
    labels, layers : numpy.ndarray, optional
        ``numpy.rint(index)`` and its distinct values (made when not given).
    tile : int
        Tile side, px.

    Returns
    -------
    cover, spill : numpy.ndarray
        float32 (h, w) ``A``, float32 (h, w, c) ``S`` (None without ``colour``); zero outside the wanted tiles.
    """
    index = np.asarray(index, np.float32)
    labels = np.rint(index) if labels is None else labels
    h, w = index.shape
    cover = np.zeros((h, w), np.float32)
    spill = None if colour is None else np.zeros((h, w, colour.shape[2]), np.float32)
    last = np.float32(float(position) - margin)
    ty, tx = -(-h // tile), -(-w // tile)
    grid = np.zeros((ty * tile, tx * tile), np.uint8)
    grid[:h, :w] = wanted
    grid = grid.reshape(ty, tile, tx, tile).max(axis=(1, 3))
    layers = np.unique(labels) if layers is None else np.asarray(layers, np.float32)
    layers = layers[layers < last + np.float32(0.5)][::-1]  # far to near (the farthest may hold pixels past ``last``)
    if layers.size == 0:
        return cover, spill
    count, runs, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    boxes = [tuple(int(v) for v in stats[run, :4]) for run in range(1, count)]  # (x, y, width, height) in tiles
    grows = [2 * int(np.ceil(_reach(slope * max(float(position) - float(j), 0.0)))) + 2 for j in layers]

    def cost(box: tuple[int, int, int, int]) -> int:  # pixels the layers read for a box
        return sum(min(h, box[3] * tile + g) * min(w, box[2] * tile + g) for g in grows)

    ys, xs = np.nonzero(grid)
    whole = (int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)
    if cost(whole) <= sum(cost(box) for box in boxes):  # one box round them all is cheaper (overlapping reaches)
        runs, boxes = grid.astype(np.int32), [whole]
    for run, (x, y, cw, ch) in enumerate(boxes, 1):
        ot, ol, ob, orr = y * tile, x * tile, min(h, (y + ch) * tile), min(w, (x + cw) * tile)
        area = np.zeros((ob - ot, orr - ol), np.float32)  # the run's 1 - A
        area += 1.0
        light = None if spill is None else np.zeros((ob - ot, orr - ol, spill.shape[2]), np.float32)
        for j in layers:
            radius = slope * max(float(position) - float(j), 0.0)
            g = int(np.ceil(_reach(radius))) + 1
            jt, jl, jb, jr = max(0, ot - g), max(0, ol - g), min(h, ob + g), min(w, orr + g)
            mask = (labels[jt:jb, jl:jr] == j) & (index[jt:jb, jl:jr] < last)
            if not mask.any():
                continue
            inner = (slice(ot - jt, ob - jt), slice(ol - jl, orr - jl))
            mask = mask.astype(np.float32)
            blurred = _disc_blur(mask, radius)[inner]
            if light is not None:
                light *= (1.0 - blurred)[..., None]
                light += _disc_blur(colour[jt:jb, jl:jr] * mask[..., None], radius).reshape(
                    jb - jt, jr - jl, -1)[inner]
            area *= 1.0 - blurred
        mine = np.repeat(np.repeat(runs[y:y + ch, x:x + cw] == run, tile, axis=0), tile, axis=1)[:ob - ot, :orr - ol]
        cover[ot:ob, ol:orr][mine] = 1.0 - area[mine]
        if light is not None:
            spill[ot:ob, ol:orr][mine] = light[mine]
    return np.clip(cover, 0.0, 1.0), spill
