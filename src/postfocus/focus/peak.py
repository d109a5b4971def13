"""Where each pixel's focus curve peaks, from the slices of a focus volume taken one at a time.

:func:`~postfocus.focus.map.focus_index_map` needs, per pixel, the frame where the
aggregated focus measure peaks, the measures of that frame and its two neighbours
(for the sub-frame parabola), and the smallest and mean measure. :func:`streamed_peak`
gathers them while the aggregated slices are made one after another, so the
aggregated volume (as large as the focus volume itself: 40 MB for 28 frames of
750x500) never exists whole. The results are those of ``argmax``, ``min``, ``mean``
and gathers over the whole volume, to the bit.

References
----------
.. [1] S. K. Nayar and Y. Nakagawa, "Shape from focus", IEEE Trans. PAMI 16(8), 1994
   (the focus index where the measure peaks; a Gaussian focus curve is a parabola in log).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np

__all__ = ["Peak", "parabola_peak", "streamed_peak"]


class Peak(NamedTuple):
    """Per-pixel summary of a focus volume (all (H, W))."""

    k: np.ndarray  # intp: the first slice holding the pixel's largest value (``np.argmax(volume, axis=0)``)
    top: np.ndarray  # its value
    before: np.ndarray  # the value of slice ``max(k - 1, 0)``
    after: np.ndarray  # the value of slice ``min(k + 1, n - 1)``
    low: np.ndarray  # the smallest value (``volume.min(axis=0)``)
    mean: np.ndarray  # ``volume.mean(axis=0)`` (float32 slices: summed in slice order, as NumPy does)


def streamed_peak(slices: Iterable[np.ndarray], n: int) -> Peak:
    """:class:`Peak` of the ``n`` float32 ``slices`` of a volume, given one at a time.

    Holds six maps and the slice before, not the volume.

    Parameters
    ----------
    slices : iterable of float32 (H, W) arrays
        The volume's slices in order (e.g. made one at a time by a generator).
    n : int
        How many there are (a shorter iterable is a ValueError).

    Returns
    -------
    Peak

    Examples
    --------
    >>> v = np.random.default_rng(0).random((5, 3, 4)).astype(np.float32)
    >>> p = streamed_peak(iter(v), 5)
    >>> bool((p.k == v.argmax(0)).all() and (p.mean == v.mean(0)).all() and (p.low == v.min(0)).all())
    True
    """
    prev = best = top = low = total = before = after = better = None
    for i, cur in enumerate(slices):
        if i == 0:
            best = np.zeros(cur.shape, np.intp)
            top, low, total, before, after = cur.copy(), cur.copy(), cur.copy(), cur.copy(), cur.copy()
            better = np.empty(cur.shape, bool)
        else:
            np.copyto(after, cur, where=best == i - 1)  # the slice after a peak still standing
            np.greater(cur, top, out=better)
            np.copyto(best, i, where=better)
            np.copyto(before, prev, where=better)
            np.copyto(after, cur, where=better)  # the last slice's own value when it peaks there
            np.maximum(top, cur, out=top)
            np.minimum(low, cur, out=low)
            total += cur
        prev = cur
    if best is None or i + 1 != n:
        raise ValueError(f"expected {n} slices")
    return Peak(best, top, before, after, low, np.true_divide(total, n, dtype=total.dtype))


def parabola_peak(k: np.ndarray, top: np.ndarray, before: np.ndarray, after: np.ndarray, n: int) -> np.ndarray:
    """Sub-frame position of a peak at integer slice ``k`` of ``n``: the vertex of the parabola through the
    logs of the values at ``k - 1``, ``k`` and ``k + 1`` (``before``, ``top``, ``after``), within half a slice.

    Parameters
    ----------
    k : integer (H, W) array
        The peak slice per pixel.
    top, before, after : float32 (H, W) arrays
        The values at ``k``, ``max(k - 1, 0)`` and ``min(k + 1, n - 1)`` (see :class:`Peak`).
    n : int
        Slices in the volume; at the first and last slice, and with fewer than three, ``k`` itself.

    Returns
    -------
    float32 (H, W): the fractional slice of the peak.

    Examples
    --------
    >>> y = np.exp(-0.5 * (np.arange(5) - 1.2) ** 2).astype(np.float32)
    >>> round(float(parabola_peak(np.array([1]), y[1:2], y[0:1], y[2:3], 5)[0]), 2)
    1.2
    """
    if n < 3:
        return k.astype(np.float32)
    y0 = np.log(np.maximum(top, 1e-12))
    ym = np.log(np.maximum(before, 1e-12))
    yp = np.log(np.maximum(after, 1e-12))
    denom = ym - 2 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom < -1e-9, 0.5 * (ym - yp) / denom, 0.0)
    offset = np.where((k == 0) | (k == n - 1), 0.0, np.clip(offset, -0.5, 0.5))
    return (k + offset).astype(np.float32)
