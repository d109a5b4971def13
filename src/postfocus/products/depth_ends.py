"""A focus curve cut by the sweep's first or last frame: its peak placed from its one visible flank.

Near focus the blur circle is smaller than a pixel, so a pixel's focus measure
is flat over a few frames (its depth of field) and falls off beyond. Inside
the sweep both flanks are seen and a symmetric fit (:func:`postfocus.focus.map.gaussian_peak`)
finds the middle of that plateau. A surface at (or near) the sweep's first
frame shows only the falling flank: the fit then lands in the middle of the
visible half of the plateau, too far inwards (+0.78 frames on a 30-frame
sweep). The flank's shape is known: the measure of the all-in-focus image blurred by a
disc of growing radius (the thin-lens blur) falls to half at a radius that
depends on the pixel's texture (fine texture sooner), and the blur grows by a
fixed number of pixels per frame, which the stack's own uncut curves give
(their half widths against their textures' half radii). The peak of a cut
curve is its visible half-maximum crossing less its own half width, and
also the visible edge of its flat top (where it falls below ``PLATEAU`` of
its peak) less the flat top's half width (the radius where the texture's
response falls that far, over the growth); the two are weighted by the
inverse square of their widths, as the predicted response is off by a share
of a width (±20-30 % pixel to pixel). The flat top is the narrower, so it
weighs the more, and its level moves less with the noise floor's own error.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.focus.map import aggregate
from postfocus.focus.measure import laplacian_energy
from postfocus.focus.turns import in_turns
from postfocus.numeric import pick0
from postfocus.products.layers import disc_kernel

__all__ = ["RADII", "blur_per_frame", "crossing", "end_peaks", "half_radius"]

DONE = 0.99  # share of the pixels asked about whose texture's response must have fallen before larger discs stop
PLATEAU = 0.75  # an end frame whose measure is within this share of the peak lies on the curve's flat top
_MEASURE_REACH = 8  # px of the measure's own footprint: presmoothing (3), Laplacian (1), energy window (2), spare
RADII = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)  # disc radii (px) of the texture's response


def half_radius(guide: np.ndarray, radius: int, eps: float, radii: tuple[float, ...] = RADII,
                levels: tuple[float, ...] = (0.5,), where: np.ndarray | None = None, *,
                threads: int = 1) -> np.ndarray:
    """Per pixel, the disc blur radius (px) at which its aggregated focus measure falls to half (or ``levels``).

    The measure is the one of the stack (:func:`postfocus.focus.measure.laplacian_energy`) of the grey
    all-in-focus ``guide`` blurred by pillbox discs of the given ``radii``, each aggregated as the focus
    volume is (:func:`postfocus.focus.map.aggregate` with ``radius``, ``eps``); NaN where it does not fall
    that far, and outside ``where`` (default: every pixel): only those pixels are followed, in the box of the
    picture that reaches them (the same numbers as the whole picture's). Larger discs are tried only until
    ``DONE`` of them have fallen below every level. With ``threads`` 2 a helper makes every other disc's response
    (:func:`~postfocus.focus.turns.in_turns`; the same bits).

    Returns
    -------
    float32 (len(levels), h, w).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fine = cv2.GaussianBlur(rng.random((40, 40)).astype(np.float32), (0, 0), 0.7)
    >>> coarse = cv2.GaussianBlur(rng.random((40, 40)).astype(np.float32), (0, 0), 3.0)
    >>> bool(np.nanmedian(half_radius(fine, 2, 1e-3)) < np.nanmedian(half_radius(coarse * 10, 2, 1e-3)))
    True
    """
    g = np.asarray(guide, np.float32)
    need = np.ones(g.shape, bool) if where is None else np.asarray(where, bool)
    out = np.full((len(levels),) + g.shape, np.nan, np.float32)
    at = np.flatnonzero(need)  # only the pixels asked about are followed, in the rows and columns that reach them
    if at.size == 0:
        return out
    rows, cols = np.divmod(at, g.shape[1])
    reach = int(np.ceil(max(radii))) + 2 * int(radius) + _MEASURE_REACH  # px that reach an asked pixel's value
    y0, y1 = max(0, int(rows.min()) - reach), min(g.shape[0], int(rows.max()) + 1 + reach)
    x0, x1 = max(0, int(cols.min()) - reach), min(g.shape[1], int(cols.max()) + 1 + reach)
    crop = np.ascontiguousarray(g[y0:y1, x0:x1])
    # Inside the crop the values equal the whole picture's: at the picture's own edges the crop's edges are its
    # edges (reflected alike), elsewhere every pixel asked about lies ``reach`` px from the crop's edge.
    local = (rows - y0) * (x1 - x0) + (cols - x0)
    value = np.full((len(levels), at.size), np.nan, np.float32)
    kernels = [disc_kernel(r) if r >= 0.5 else None for r in radii]
    # (after the first, a disc within one pixel is the image itself: nothing falls)
    todo = [i for i, k in enumerate(kernels) if i == 0 or k is None or k.shape != (1, 1)]

    def response(i: int) -> np.ndarray:
        """The aggregated measure of the crop blurred by disc ``i``, at the pixels asked about."""
        blurred = crop if kernels[i] is None else cv2.filter2D(crop, -1, kernels[i], borderType=cv2.BORDER_REFLECT)
        return aggregate(laplacian_energy(blurred)[None], crop, radius, eps)[0].ravel()[local]

    first = prev = None
    responses = in_turns(response, todo, threads=threads)
    for i, cur in zip(todo, responses):
        r = radii[i]
        if first is None:
            first = prev = cur
            continue
        frac_base = np.maximum(prev - cur, 1e-20)
        for k, share in enumerate(levels):
            level = share * first
            hit = np.isnan(value[k]) & (cur < level)
            frac = np.clip((prev[hit] - level[hit]) / frac_base[hit], 0.0, 1.0)
            value[k, hit] = radii[i - 1] + frac * (r - radii[i - 1])
        prev = cur
        if (~np.isnan(value)).mean(axis=1).min() >= DONE:  # larger discs would add next to nothing
            break
    responses.close()  # (a disc the helper made past the last one needed)
    out.reshape(len(levels), -1)[:, at] = value
    return out  # NaN: not fallen that far by the largest disc tried


def crossing(volume: np.ndarray, best: np.ndarray, level: np.ndarray, step: int,
             where: np.ndarray | None = None) -> np.ndarray:
    """Fractional frame where each pixel's curve first falls below ``level``, going from ``best`` by ``step``.

    NaN where it stays above ``level`` up to the sweep's end (the curve is cut there), and outside ``where``
    (only those pixels are followed, each until it crosses).

    Examples
    --------
    >>> v = np.array([4, 8, 10, 6, 2], np.float32)[:, None, None]
    >>> float(crossing(v, np.array([[2]]), np.array([[5.0]]), 1)[0, 0]), bool(np.isnan(crossing(v, np.array([[2]]), np.array([[3.0]]), -1)[0, 0]))
    (3.25, True)
    """
    n = volume.shape[0]
    flat = volume.reshape(n, -1)
    sel = np.flatnonzero(np.ones(best.shape, bool) if where is None else where)
    start = np.asarray(best).ravel()[sel]
    lv = np.broadcast_to(np.asarray(level, np.float32), best.shape).ravel()[sel]
    prev = flat[start, sel]
    found = np.full(sel.size, np.nan, np.float32)
    live = np.arange(sel.size)
    for j in range(1, n):
        at = start[live] + step * j
        inside = (at >= 0) & (at < n)
        live, at = live[inside], at[inside]
        if live.size == 0:
            break
        cur = flat[at, sel[live]]
        hit = cur < lv[live]
        frac = np.clip((prev[live] - lv[live]) / np.maximum(prev[live] - cur, 1e-20), 0.0, 1.0)
        found[live[hit]] = start[live[hit]] + step * (j - 1 + frac[hit])
        prev[live] = cur
        live = live[~hit]
    pos = np.full(best.size, np.nan, np.float32)
    pos[sel] = found
    return pos.reshape(best.shape)


def blur_per_frame(half_width: np.ndarray, radius_half: np.ndarray, where: np.ndarray) -> float | None:
    """Blur growth (px of radius per frame): the median of texture half radius over measured half width.

    ``half_width`` (frames) is half the distance between an uncut curve's two half-maximum crossings,
    ``radius_half`` (px) the pixel's texture's :func:`half_radius`; ``where`` the pixels to use. None if
    fewer than 50 qualify.

    Examples
    --------
    >>> blur_per_frame(np.full((10, 10), 2.0), np.full((10, 10), 1.0), np.ones((10, 10), bool))
    0.5
    """
    ok = where & np.isfinite(half_width) & (half_width > 0.25) & np.isfinite(radius_half)
    if int(ok.sum()) < 50:
        return None
    return float(np.median(radius_half[ok] / half_width[ok]))


def end_peaks(volume: np.ndarray, best: np.ndarray, index: np.ndarray, floor: float, guide: np.ndarray,
              radius: int, eps: float, *, sure: float = 10.0, least: float = 3.0, threads: int = 1) -> np.ndarray:
    """``index`` with the peaks of curves cut by the sweep's first or last frame placed from their visible flank.

    A curve is cut at the start when frame 0 is still on its flat top (its
    measure less the noise ``floor`` within ``PLATEAU`` of the peak's), it
    never falls to half of its peak from its best frame down to frame 0, and
    its half-maximum crossing on the far side lies within two of its half
    widths (:func:`half_radius` of its texture over :func:`blur_per_frame`) of
    frame 0; its peak is then that crossing less its half width, and the
    crossing of its flat top's edge (``PLATEAU`` of the peak) less the flat
    top's half width (the texture's ``PLATEAU`` radius over the growth), the
    two weighted by the inverse square of their widths. So at the end of
    the sweep. A cut curve's symmetric fit is pulled inwards, so the peak
    only moves outwards, never past the end frame. A curve peaking less than
    ``least`` times above the floor is left as fitted.

    Parameters
    ----------
    volume : float32 (N, h, w) aggregated focus measures.
    best : int (h, w) each pixel's best frame.
    index : float32 (h, w) fitted peak (e.g. :func:`postfocus.focus.map.gaussian_peak`).
    floor : noise floor of the measure.
    guide : float32 (h, w) grey all-in-focus image; ``radius``, ``eps`` the aggregation of ``volume``.
    sure : only curves peaking this many times above the floor calibrate the blur growth.
    least : only curves peaking this many times above the floor are placed (e.g. the level below which the
        depth's confidence gives a peak no trust).
    threads : 1, or 2: :func:`half_radius` on the calling thread and a helper (the same bits).

    Returns
    -------
    float32 (h, w).

    References
    ----------
    M. Subbarao, T. Choi, "Accurate recovery of three-dimensional shape from image focus", IEEE PAMI 17(3), 1995.
    A. P. Pentland, "A new sense for depth of field", IEEE PAMI 9(4), 1987 (blur radius linear in inverse depth).
    """
    n = volume.shape[0]
    if n < 4:
        return index
    peak = pick0(volume, best) - floor
    level = floor + 0.5 * np.maximum(peak, 0.0)
    # Cut: the end frame still on the curve's plateau (within PLATEAU of its peak), not on a visible flank.
    high = floor + PLATEAU * np.maximum(peak, 0.0)
    start, end = volume[0] >= high, volume[n - 1] >= high
    if not (start | end).any():
        return index
    # The blur growth is a median: every third pixel of every third row of the sure ones is plenty.
    sample = np.zeros(best.shape, bool)
    sample[::3, ::3] = True
    sample &= peak > sure * floor
    follow = start | end | sample
    lower = crossing(volume, best, level, -1, follow)
    upper = crossing(volume, best, level, 1, follow)
    # A peak within a few floors of the noise is not a curve to place: its levels stand on the floor's own error.
    clear = peak > least * floor
    cut_start = np.isnan(lower) & ~np.isnan(upper) & start & clear
    cut_end = np.isnan(upper) & ~np.isnan(lower) & end & clear
    if not (cut_start | cut_end).any():
        return index
    r_half, r_quarter, r_top = half_radius(guide, radius, eps, levels=(0.5, 0.25, PLATEAU),
                                           where=cut_start | cut_end | sample, threads=threads)
    growth = blur_per_frame(0.5 * (upper - lower), r_half, sample & ~np.isnan(lower + upper))
    if growth is None:  # every curve cut (surfaces at both ends): from the visible flanks' slopes instead
        quarter = floor + 0.25 * np.maximum(peak, 0.0)
        spans = [np.abs(crossing(volume, best, quarter, step, sample) - at) for step, at in ((-1, lower), (1, upper))]
        span = np.where(np.isnan(spans[1]), spans[0], spans[1])
        growth = blur_per_frame(span, r_quarter - r_half, sample)
    if growth is None or growth <= 0:
        return index
    width = r_half / growth  # NaN where the texture's response never halves: no width known, the fit is kept
    # A curve cut by the end has its other half-maximum crossing beyond the end frame: its peak lies within its
    # half width of it. A curve that stays high farther in is no cut curve (two surfaces, no texture): kept.
    cut_start &= upper - width < width
    cut_end &= lower + width > (n - 1) - width
    # The peak from the flat top's visible edge as well as from the half-maximum crossing: the half width predicted
    # from the texture is off by 20-30 % pixel to pixel (3 frames on a 10-frame sweep: +-1 frame), and the larger of
    # that guess and the fit pushed surfaces just inside the sweep (0.8 frames from its end) outwards; the flat top is
    # a third narrower, and its level moves half as much with the noise floor's own error as the half level does.
    w_top = r_top / growth
    edge = floor + PLATEAU * np.maximum(peak, 0.0)
    from_start = crossing(volume, best, edge, 1, cut_start) - w_top
    from_end = crossing(volume, best, edge, -1, cut_end) + w_top
    # Each guess is off by a share of its own width: weighted by the inverse square of it, they make one.
    half, top = 1.0 / width ** 2, 1.0 / w_top ** 2
    from_start = (half * (upper - width) + top * from_start) / (half + top)
    from_end = (half * (lower + width) + top * from_end) / (half + top)
    out = np.where(cut_start & np.isfinite(from_start), np.minimum(index, from_start), index)
    out = np.where(cut_end & np.isfinite(from_end), np.maximum(out, from_end), out)
    return np.clip(out, 0, n - 1).astype(np.float32)
