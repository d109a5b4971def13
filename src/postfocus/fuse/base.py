"""What every fusion shares: the :class:`Fusion` interface and the depth blend.

A fusion folds aligned frames, one at a time, into an all-in-focus image and
keeps only its running state (a frame is added, then dropped). Pass 2
(:mod:`postfocus.pipeline.merge`) asks it where a frame weighs in
(:meth:`Fusion.footprint`), warps only that, adds it (:meth:`Fusion.add`) and
finally takes :meth:`Fusion.result`.

The depth blend weighs each frame by the distance between its position in the
sweep and the pixel's focus index (:func:`depth_weights`), with a blend width
that grows where the focus map is unsure (:func:`blend_width`).
"""

from __future__ import annotations

from typing import Callable, Protocol

import cv2
import numpy as np

__all__ = ["Fusion", "Rect", "blend_width", "depth_weights", "neg_half_inv_sq", "region_grid", "upscale_bands",
           "upscale_region"]

#: Rows of :func:`upscale_bands`' source coordinates made at a time (8 bytes a pixel: 3 MB at 1500 columns).
UPSCALE_ROWS = 256

Rect = tuple[int, int, int, int]
"""(top, left, bottom, right) of a rectangle of the picture."""


class Fusion(Protocol):
    """A streaming fusion: frames are added one at a time, then the result is taken once.

    Implemented by :class:`~postfocus.fuse.depthmap.DepthmapFusion` and
    :class:`~postfocus.fuse.pyramid.PyramidFusion`.
    """

    def footprint(self, position: float) -> list[Rect]:
        """Rectangles (top, left, bottom, right) where the frame at ``position`` has any weight.

        Parameters
        ----------
        position : float
            The frame's position among the merged frames (its focus index).

        Returns
        -------
        list of tuple of int
            Only these pixels of the frame need warping and adding.
        """
        ...

    def add(self, position: float, frame: np.ndarray, region: Rect | None = None) -> None:
        """Fold in the aligned frame focused at ``position``.

        Parameters
        ----------
        position : float
            The frame's position among the merged frames.
        frame : numpy.ndarray
            float32 (h, w, 3) pixels of ``region``.
        region : tuple of int, optional
            (top, left, bottom, right) that ``frame`` holds (default: the whole picture).
        """
        ...

    def result(self) -> np.ndarray:
        """The fused image, float32 (H, W, 3); no frame can be added after it."""
        ...


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
    return np.exp(d * d * neg_half_inv_sq(sharpness)).astype(np.float32)


def neg_half_inv_sq(sharpness: float | np.ndarray, *, out: np.ndarray | None = None) -> np.float32 | np.ndarray:
    """``-1 / (2 sigma^2)`` of the depth blend's Gaussian, per pixel if ``sharpness`` is a map (into ``out``, a
    float32 array of its shape, if given: it may be ``sharpness`` itself)."""
    if np.ndim(sharpness) == 0:
        return np.float32(-0.5 / (float(sharpness) ** 2))
    s = np.asarray(sharpness, np.float32)
    k = np.multiply(s, s, out=out)  # (in place from here: one full-size array)
    return np.divide(np.float32(-0.5), k, out=k)


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
    c = np.clip(np.asarray(confidence, np.float32), 0.0, 1.0)  # (in place from here: one full-size array)
    c /= np.float32(unsure)
    np.subtract(np.float32(1.0), c, out=c)
    np.clip(c, 0.0, 1.0, out=c)
    c *= np.float32(wide - sharp)
    c += np.float32(sharp)
    return c


def upscale_region(small: np.ndarray, size: tuple[int, int], region: tuple[int, int, int, int] | None = None, *,
                   grid: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Bilinear upscale of a small map to full ``size`` (H, W), computed only inside ``region``.

    The same pixels as cropping ``cv2.resize(small, (W, H))``, without making the whole. ``grid``:
    :func:`region_grid` of the same shapes and region, shared by several maps (built once).

    Examples
    --------
    >>> upscale_region(np.array([[0.0, 1.0]], np.float32), (2, 4), (0, 1, 1, 3)).tolist()
    [[0.25, 0.75]]
    """
    H, W = size
    t, l, b, r = region or (0, 0, H, W)
    if grid is None and (t, l, b, r) == (0, 0, H, W):
        return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    map_x, map_y = grid if grid is not None else region_grid(small.shape[:2], size, (t, l, b, r))
    return cv2.remap(small, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def upscale_bands(small: np.ndarray, size: tuple[int, int], region: tuple[int, int, int, int], *,
                  place: tuple | None = None, then: Callable[[np.ndarray], np.ndarray] | None = None,
                  rows: int | None = None) -> np.ndarray:
    """:func:`upscale_region` of ``region`` (with :func:`region_grid`'s ``place``) made ``rows`` rows at a time, and
    ``then`` (an elementwise function, e.g. :func:`blend_width`) applied to each band (``rows``: default
    :data:`UPSCALE_ROWS`): the same pixels as
    ``then(upscale_region(small, size, region, grid=region_grid(small.shape[:2], size, region, place)))``.

    Only one band's source coordinates and ``then``'s temporaries are alive beside the result, not the whole
    region's (8 bytes a pixel for the coordinates; pass 2's blend state at pcb's 3 MP: 25 MB). The bilinear remap
    finds each pixel from its own coordinates, so a band's are the same numbers as the whole's rows.

    Examples
    --------
    >>> small = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    >>> bool(np.array_equal(upscale_bands(small, (7, 5), (1, 1, 6, 4), rows=2),
    ...                     upscale_region(small, (7, 5), (1, 1, 6, 4))))
    True
    """
    (H, W), (t, l, b, r), rows = size, region, rows or UPSCALE_ROWS
    if place is None and (t, l, b, r) == (0, 0, H, W):  # (a plain resize, as upscale_region makes it)
        out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        for a in range(0, H, rows) if then is not None else ():
            out[a:a + rows] = then(out[a:a + rows])
        return out
    out = np.empty((b - t, r - l) + small.shape[2:], small.dtype)
    for a in range(t, b, rows):
        z = min(b, a + rows)
        part = upscale_region(small, size, (a, l, z, r), grid=region_grid(small.shape[:2], size, (a, l, z, r), place))
        out[a - t:z - t] = part if then is None else then(part)
    return out


def region_grid(shape: tuple[int, int], size: tuple[int, int], region: tuple[int, int, int, int],
                place: tuple | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Source coordinates (map_x, map_y), float32 (b - t, r - l), of :func:`upscale_region` for maps of ``shape``;
    None when ``region`` is the whole ``size`` (a plain resize needs none).

    ``place``: the maps were cut from larger ones (:class:`~postfocus.maps.MapPlace`, ``size`` the cut's): the
    coordinates are those of the uncut maps' grid, less the cut's map origin, so the cut maps upscale onto the
    same pixels as the uncut ones did (a grid also for the whole ``size``; ``BORDER_REPLICATE`` beyond the cut).

    Examples
    --------
    >>> [m.tolist() for m in region_grid((1, 2), (2, 4), (0, 1, 1, 3))]
    [[[0.25, 0.75]], [[-0.25, -0.25]]]
    """
    (mh, mw), (H, W) = shape, size
    t, l, b, r = region
    if place is None and (t, l, b, r) == (0, 0, H, W):
        return None
    (oy, ox), (my, mx) = (0, 0), (0, 0)
    if place is not None:  # (the uncut grid's arithmetic, to the bit; the map origin's subtraction is exact)
        (mh, mw), (H, W), (oy, ox), (my, mx) = place.shape, place.size, place.origin, place.map_origin
    xs = (np.arange(l + ox, r + ox, dtype=np.float32) + 0.5) * np.float32(mw / W) - 0.5 - np.float32(mx)
    ys = (np.arange(t + oy, b + oy, dtype=np.float32) + 0.5) * np.float32(mh / H) - 0.5 - np.float32(my)
    map_x = np.broadcast_to(xs[None, :], (b - t, r - l)).astype(np.float32)
    map_y = np.broadcast_to(ys[:, None], (b - t, r - l)).astype(np.float32)
    return map_x, map_y
