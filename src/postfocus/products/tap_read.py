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

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from postfocus.store import ProcessedStack

__all__ = ["SHARE", "depth_radius", "depth_reading", "depth_readings", "tap_focus"]

#: Half-size of the window a tap reads the depth in, as a share of the output's long edge (0.6 %, the window
#: ``focus_at`` has read the depth map in since lens10), brought to the focus map's grid.
SHARE = 0.006
#: Window values sorted at a time by :func:`depth_readings` (rows are taken so that a batch holds about this many).
_BATCH = 1 << 22


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


def depth_reading(depth: np.ndarray, cx: int, cy: int, radius: int) -> float:
    """The median of ``depth`` over the window of ``radius`` around pixel (cx, cy), clipped at the borders.

    Examples
    --------
    >>> d = np.zeros((6, 6), np.float32); d[:, 3:] = 4.0
    >>> depth_reading(d, 2, 2, 1), depth_reading(d, 3, 2, 1), depth_reading(d, 0, 0, 1)
    (0.0, 4.0, 0.0)
    """
    h, w = depth.shape
    window = np.asarray(depth[max(0, cy - radius):min(h, cy + radius + 1),
                              max(0, cx - radius):min(w, cx + radius + 1)], np.float32).ravel()
    k = (window.size + 1) // 2 - 1
    return float(np.partition(window, k)[k])


def depth_readings(depth: np.ndarray, radius: int) -> np.ndarray:
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
    out = np.empty((h, w), np.float32)
    step = max(1, _BATCH // (w * side * side))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        batch = np.sort(windows[y0:y1].reshape(y1 - y0, w, side * side), axis=2)
        out[y0:y1] = np.take_along_axis(batch, middle[y0:y1, :, None], axis=2)[:, :, 0]
    return out


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
