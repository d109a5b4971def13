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
.. [2] M. Subbarao and T. Choi, "Accurate recovery of three-dimensional shape from image focus",
   IEEE Trans. PAMI 17(3), 1995 (the focus curve as a function of defocus; fitting its known shape).

:func:`curve_shape` and :func:`shape_peak` place a peak by the focus curve's own shape: on a dense sweep
the measure is flat over the frames whose blur circle is under a pixel and falls steeply beyond, so the
position is in the flanks, which a Gaussian weighted towards the top reads poorly; the shape, the same for
every pixel of a sweep whose blur grows by a fixed amount per frame, is the median of the stack's own
confident curves, and each pixel's peak is where that shape, shifted, matches its curve best (the matched
filter: the least-squares fit of a scaled, shifted template).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np

SHAPE_SAMPLES = 20000  # clear curves whose median makes the shape

__all__ = ["Peak", "curve_shape", "parabola_peak", "shape_peak", "shape_shift", "streamed_peak"]


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


def curve_shape(volume: np.ndarray, index: np.ndarray, peak: np.ndarray, sure: np.ndarray, reach: int,
                floor: float = 0.0, step: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """The stack's own focus curve against defocus: the median normalised curve of the ``sure`` pixels.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures (aggregated).
    index : float (H, W) each pixel's (fractional) peak, e.g. a Gaussian fit's.
    peak : float (H, W) each pixel's largest measure.
    sure : bool (H, W) pixels whose curve is clear and inside the sweep (``reach`` frames from both ends).
    reach : frames on each side of the peak described.
    floor : noise floor subtracted from the measures.
    step : spacing (frames) of the samples.

    Returns
    -------
    (offsets, values): float64 arrays, offsets from ``-reach - 2`` to ``reach + 2`` frames, values
    symmetric (defocus on either side of focus blurs alike), 1 at the top. ``values`` is None where fewer
    than 50 pixels are sure.

    Examples
    --------
    >>> x = np.arange(20)[:, None, None]
    >>> v = (np.exp(-0.5 * ((x - np.linspace(8, 11, 64).reshape(1, 8, 8)) / 2.0) ** 2)).astype(np.float32)
    >>> i = np.linspace(8, 11, 64).reshape(8, 8); xs, ts = curve_shape(v, i, v.max(0), np.ones((8, 8), bool), 4)
    >>> round(float(ts[np.argmin(np.abs(xs - 2.0))]), 2)
    0.61
    """
    n = volume.shape[0]
    offsets = np.arange(-reach - 2, reach + 2 + 1e-6, step)
    if int(np.count_nonzero(sure)) < 50:
        return offsets, None
    sure = np.flatnonzero(sure)[::max(1, int(sure.sum()) // SHAPE_SAMPLES)]  # a spread sample is enough for a median
    at = np.asarray(index, np.float64).ravel()[sure]
    scale = np.maximum(np.asarray(peak, np.float64).ravel()[sure] - floor, 1e-12)
    sums = np.zeros(offsets.size)
    values: list[list[np.ndarray]] = [[] for _ in offsets]
    for i in range(n):
        off = i - at
        bins = np.rint((off - offsets[0]) / step).astype(np.intp)
        ok = (bins >= 0) & (bins < offsets.size)
        y = (volume[i].ravel()[sure] - floor) / scale
        for b in np.unique(bins[ok]):
            values[b].append(y[ok & (bins == b)])
    for b, v in enumerate(values):
        sums[b] = np.median(np.concatenate(v)) if v else np.nan
    good = np.isfinite(sums)
    sums = np.interp(offsets, offsets[good], sums[good]) if good.any() else np.zeros_like(sums)
    sums = 0.5 * (sums + sums[::-1])
    return offsets, np.maximum(sums, 0.0) / max(float(sums.max()), 1e-12)


def shape_peak(volume: np.ndarray, centre: np.ndarray, reach: int, shape: tuple[np.ndarray, np.ndarray],
               floor: float = 0.0, span: float = 1.0, step: float = 0.1, where: np.ndarray | None = None) -> np.ndarray:
    """Sub-frame peak: the shift of the curve ``shape`` (:func:`curve_shape`) that best matches each pixel's curve.

    Each pixel's measures ``y_j`` at frames ``k + j`` (``k`` the frame nearest ``centre``, ``|j| <= reach``,
    inside the sweep), less ``floor``, are matched with the template ``t`` shifted to ``c`` (within ``span``
    frames of ``centre``, on a grid of ``step``): the least-squares fit ``y ~ a t(j - c)`` is best where
    ``(sum y t)^2 / sum t^2`` is largest; a parabola through that score at the best shift and its neighbours
    gives the position between grid steps.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures (aggregated).
    centre : float (H, W) a first estimate of each pixel's peak (e.g. :func:`postfocus.focus.map.gaussian_peak`).
    reach : frames on each side of ``k`` matched.
    shape : (offsets, values) of :func:`curve_shape`.
    floor : noise floor subtracted from the measures.
    span, step : how far from ``centre`` the peak may move, and the grid of shifts tried (frames).
    where : bool (H, W) the pixels fitted (default all); the others keep ``centre``.

    Returns
    -------
    float32 (H, W) fractional frame in ``[0, N - 1]``.

    Examples
    --------
    >>> x = np.arange(20)[:, None, None]
    >>> curve = lambda d: 1.0 / (1.0 + np.maximum(np.abs(d) - 1.0, 0.0) ** 2)
    >>> v = curve(x - 9.3).astype(np.float32) * np.ones((20, 1, 1), np.float32)
    >>> xs = np.arange(-6, 6.01, 0.25); shape = (xs, curve(xs))
    >>> round(float(shape_peak(v, np.array([[9.0]]), 4, shape)[0, 0]), 1)
    9.3
    """
    n = volume.shape[0]
    offsets, values = shape
    shifts = np.arange(-np.ceil((span + 0.5) / step), np.ceil((span + 0.5) / step) + 1) * step  # from k
    taps = np.arange(-reach, reach + 1)
    t = np.interp(taps[None, :] - shifts[:, None], offsets, values).astype(np.float32)  # (C, taps)
    out = np.asarray(centre, np.float32).ravel().copy()
    pixels = np.arange(out.size) if where is None else np.flatnonzero(where)
    plane = volume.reshape(n, -1)
    chunk = 1 << 15
    for s0 in range(0, pixels.size, chunk):
        cols = pixels[s0:s0 + chunk]
        c = out[cols]
        kk = np.clip(np.rint(c), 0, n - 1).astype(np.intp)
        at = kk[None, :] + taps[:, None]
        inside = ((at >= 0) & (at < n)).astype(np.float32)
        y = np.maximum(plane[np.clip(at, 0, n - 1), cols[None, :]] - floor, 0.0) * inside  # (taps, P)
        score = (t @ y) ** 2 / np.maximum((t * t) @ inside, 1e-12)  # (C, P)
        score[np.abs(kk[None, :] + shifts[:, None] - c[None, :]) > span + 1e-6] = -np.inf
        best = np.argmax(score, axis=0)
        lo, hi = np.clip(best - 1, 0, shifts.size - 1), np.clip(best + 1, 0, shifts.size - 1)
        p = np.arange(cols.size)
        s_m, s_0, s_p = score[lo, p], score[best, p], score[hi, p]
        denom = s_m - 2.0 * s_0 + s_p
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(np.isfinite(denom) & (denom < 0), 0.5 * (s_m - s_p) / denom, 0.0)
        out[cols] = kk + shifts[best] + step * np.clip(frac, -0.5, 0.5)
    return np.clip(out, 0, n - 1).reshape(np.shape(centre)).astype(np.float32)


def shape_shift(volume: np.ndarray, index: np.ndarray, clear: np.ndarray, peak: np.ndarray, reach: int,
                floor: float = 0.0, *, agree: float = 1.0) -> np.ndarray:
    """How far the shape fit (:func:`curve_shape`, :func:`shape_peak`) moves each ``clear`` pixel's ``index``.

    The shape is learnt from the ``clear`` pixels; a move of ``agree`` frames or more is a curve the shape does
    not describe (two surfaces in the window) and is dropped. Zero elsewhere, and everywhere when fewer than 50
    pixels are clear.

    Returns
    -------
    float32 (H, W) frames to add to ``index``.
    """
    shift = np.zeros(np.shape(index), np.float32)
    curve = curve_shape(volume, index, peak, clear, reach, floor)
    if curve[1] is None:
        return shift
    fitted = shape_peak(volume, index, reach, curve, floor, where=clear)
    return np.where(clear & (np.abs(fitted - index) < agree), fitted - index, 0.0).astype(np.float32)
