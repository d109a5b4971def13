"""Depth outliers: a robust, edge-aware neighbourhood estimate and the pixels that contradict it.

Depth from focus fails in small, confident-looking patches: beside a bright
object, the rim of its bokeh disc in the far frames is a sharp edge and lends a
false far peak to the dark texture next to it; at the image border a frame edge
that breathing moved into view does the same; a specular glint focuses where its
virtual image lies, not where the surface is. Such a patch reads many frames
away from the surface around it although its own focus curve has a clear peak.

The surface around it says what the depth should be. :func:`weighted_median`
is a confidence-weighted median over a neighbourhood whose weights follow the
image's edges (the guided-filter kernel), computed for every pixel at once by
filtering the cumulative depth histogram (Ma et al. 2013). A median ignores a
minority, however far off; the guided weights keep a neighbourhood on its own
side of an image edge, so a small object that differs in colour from its
surroundings keeps its own depth. :func:`outliers` marks the pixels that are
more than a tolerance away from that estimate. :func:`domain_transform` is the
edge-aware filter that fills them from trusted neighbours (a normalised
convolution, :func:`postfocus.products.depth.refine_depth`).
"""

from __future__ import annotations

import numpy as np

from postfocus.focus.guided import box
from postfocus.focus.islands import islands  # (judged here before the sixteenth session; kept importable)
from postfocus.focus.turns import in_turns

DT_ITERATIONS = 3  # horizontal + vertical passes of :func:`domain_transform` (3 is plenty)
TRANSPOSED_CHANNELS = 7  # at most this many channels, :func:`domain_transform` steps over channel-major columns
GATHER = 1 << 14  # pixels whose levels :func:`geodesic_median` scales and searches at once
BAND = 16  # rows of a chunk whose level indicators :func:`geodesic_median` writes at once (in cache)
CHUNK_BUDGET = 1 << 23  # float32 values filtered in one pass of :func:`geodesic_median` (32 MB)

__all__ = ["domain_transform", "domain_weights", "geodesic_median", "islands", "outliers", "weighted_median"]


def weighted_median(
    values: np.ndarray,
    weight: np.ndarray,
    guide: np.ndarray,
    *,
    radius: int,
    eps: float = 1e-2,
    step: float = 0.5,
    min_weight: float = 1e-6,
    threads: int = 1,
) -> np.ndarray:
    """Edge-aware weighted median of ``values`` around every pixel.

    For every level ``t`` on a grid of spacing ``step`` the share of weight at
    or below ``t``, ``F(w [v <= t]) / F(w)``, is filtered with the guided
    filter ``F`` steered by ``guide`` (the same linear kernel for every level);
    the median is where that share crosses 1/2, interpolated between levels.

    Parameters
    ----------
    values : float32 (H, W), e.g. depth in frames.
    weight : float32 (H, W) >= 0, e.g. the confidence of each depth.
    guide : float32 (H, W) grey image whose edges bound the neighbourhoods.
    radius : neighbourhood radius in pixels (the box of the guided filter).
    eps : guided-filter regularisation: the guide variance (in squared [0, 1]
        grey levels) below which a window is treated as one region.
    step : spacing of the levels (the median's resolution before interpolation).
    min_weight : mean weight a neighbourhood needs; below it the result is NaN.
    threads : 1, or 2: a helper filters every other level (:func:`~postfocus.focus.turns.in_turns`; the same bits).

    Returns
    -------
    float32 (H, W) median; NaN where the neighbourhood has too little weight.

    References
    ----------
    Z. Ma, K. He, Y. Wei, J. Sun, E. Wu, "Constant time weighted median
    filtering for stereo matching and beyond", ICCV 2013.
    K. He, J. Sun, X. Tang, "Guided image filtering", ECCV 2010.

    Examples
    --------
    >>> v = np.full((40, 40), 3.0, np.float32); v[18:22, 18:22] = 15.0
    >>> g = np.zeros((40, 40), np.float32)
    >>> m = weighted_median(v, np.ones_like(v), g, radius=8)
    >>> bool(abs(float(m[20, 20]) - 3.0) < 0.5)
    True
    """
    v = np.asarray(values, np.float32)
    w = np.asarray(weight, np.float32)
    g = np.asarray(guide, np.float32)
    mean_i = box(g, radius)
    var_i = box(g * g, radius) - mean_i * mean_i + np.float32(eps)

    def smooth(src: np.ndarray) -> np.ndarray:  # He's guided filter with the guide's statistics made once
        mean_p = box(src, radius)
        a = (box(src * g, radius) - mean_i * mean_p) / var_i
        return box(a, radius) * g + box(mean_p - a * mean_i, radius)

    total = smooth(w)
    valid = total > min_weight
    inv = np.where(valid, 1.0 / np.maximum(total, 1e-6), 0.0).astype(np.float32)
    lo, hi = float(v.min()), float(v.max())
    levels = np.arange(lo, hi + step, step, dtype=np.float32)
    out = np.full(v.shape, hi, np.float32)
    done = np.zeros(v.shape, bool)
    prev_share = np.zeros(v.shape, np.float32)
    prev_level = np.float32(lo - step)
    shares = in_turns(lambda t: np.clip(smooth(w * (v <= t)) * inv, 0.0, 1.0), levels, threads=threads)
    for t, share in zip(levels, shares):
        cross = (share >= 0.5) & ~done
        if cross.any():
            frac = (0.5 - prev_share[cross]) / np.maximum(share[cross] - prev_share[cross], 1e-6)
            out[cross] = prev_level + np.clip(frac, 0.0, 1.0) * (t - prev_level)
            done |= cross
        if done.all():
            break
        np.maximum(prev_share, share, out=prev_share)  # the share only grows with the level
        prev_level = t
    shares.close()  # (a level the helper made past the last one needed is not waited for twice)
    return np.where(valid, np.clip(out, lo, hi), np.nan).astype(np.float32)


def geodesic_median(
    values: np.ndarray,
    weight: np.ndarray,
    guide: np.ndarray,
    *,
    sigma_s: float,
    sigma_r: float,
    step: float = 0.25,
    chunk: int | None = None,
    where: np.ndarray | None = None,
    weights: list[tuple[np.ndarray, ...]] | None = None,
) -> np.ndarray:
    """Weighted median of ``values`` over neighbourhoods that stop at the edges of ``guide``.

    As :func:`weighted_median`, with the domain-transform filter
    (:func:`domain_transform`) as the kernel: the weights fall with the
    colour change along the way, so a pixel's neighbourhood is the region it
    belongs to, and a median over it keeps a slope a slope (a weighted mean of
    an uneven ring of neighbours does not). Levels are filtered ``chunk`` at a
    time as channels (the filter's row and column recursions are Python loops, so
    the more channels per pass, the less of the time goes to the loop); they span
    the values that carry weight.

    Parameters
    ----------
    values, weight : float32 (H, W) values and their weights (>= 0).
    guide : float32 (H, W) or (H, W, C) image whose edges bound the neighbourhoods.
    sigma_s, sigma_r : spatial reach (px) and colour tolerance of :func:`domain_transform`.
    step : spacing of the levels.
    chunk : levels filtered at once (memory: ``chunk`` float32 images; default: the levels in as few chunks as fit
        ``CHUNK_BUDGET`` float32 values each, shared evenly between them; the result is the same for any chunk).
    where : bool (H, W), optional: the pixels whose median is wanted; the levels stop once they all crossed
        (elsewhere the result is then not the median).
    weights : the filter's weights, :func:`domain_weights` of ``guide``, ``sigma_s`` and ``sigma_r``, when made
        already (e.g. on another thread, or shared with another filter of the same guide); default: made here.

    Returns
    -------
    float32 (H, W); NaN where no weight is reached.

    References
    ----------
    Z. Ma et al., ICCV 2013 (see :func:`weighted_median`); E. S. L. Gastal, M. M. Oliveira, SIGGRAPH 2011.

    Examples
    --------
    >>> v = np.tile(np.linspace(0, 6, 40, dtype=np.float32), (20, 1)); w = np.ones_like(v); w[8:12, 18:22] = 0
    >>> m = geodesic_median(v, w, np.zeros((20, 40), np.float32), sigma_s=8.0, sigma_r=0.1)
    >>> bool(abs(float(m[10, 20]) - float(v[10, 20])) < 0.1)
    True
    """
    v = np.asarray(values, np.float32)
    w = np.asarray(weight, np.float32)
    carried = v[w > 0]
    if carried.size == 0:
        return np.full(v.shape, np.nan, np.float32)
    lo, hi = float(carried.min()), float(carried.max())
    levels = np.arange(lo, hi + step, step, dtype=np.float32)
    if chunk is None:  # (even chunks: 33 levels in 17 + 16, not 20 + 13; the largest chunk is the memory)
        most = max(8, CHUNK_BUDGET // max(v.size, 1))
        chunk = -(-len(levels) // -(-len(levels) // most))
    coefficients = domain_weights(guide, sigma_s, sigma_r) if weights is None else weights  # the same for every chunk
    out = np.full(v.shape, hi, np.float32)
    where = None if where is None else np.asarray(where, bool)
    valid = done = inv = None
    prev_share = np.zeros(v.size, np.float32)
    prev_level = np.float32(lo - step)
    for start in range(0, len(levels), chunk):
        part = levels[start:start + chunk]
        # (one chunk-sized array, filtered in place: no copies of it beside it; the first chunk carries the weight
        # itself as one more channel, the normalisation, instead of a pass of its own)
        shares = np.empty(v.shape + (len(part) + (valid is None),), np.float32)
        for r in range(0, v.shape[0], BAND):  # (a band of rows at a time: its levels written while it is in cache)
            for k, level in enumerate(part):
                np.multiply(w[r:r + BAND], v[r:r + BAND] <= level, out=shares[r:r + BAND, :, k])
        if valid is None:
            shares[..., -1] = w
        _recurse(shares, coefficients)
        if valid is None:
            total = shares[..., -1]
            valid = total > 1e-6
            inv = np.where(valid, 1.0 / np.maximum(total, 1e-6), 0.0).astype(np.float32).ravel()
            done = ~valid if where is None else ~valid | ~where
            total = None
        # Only the pixels still looking for their crossing are scaled and searched, GATHER at a time (their
        # levels gathered pixel-major: a block of them stays in cache).
        live = np.flatnonzero(~done)
        # (a pixel-major view of the levels: the chunk's rows are evenly spaced, also with the weight beside them)
        flat = np.lib.stride_tricks.as_strided(shares, (v.size, len(part)), shares.strides[1:])
        for i in range(0, live.size, GATHER):
            at = live[i:i + GATHER]
            rows = flat[at]  # (the block's one copy: scaled in place)
            np.clip(np.multiply(rows, inv[at, None], out=rows), 0.0, 1.0, out=rows)
            # The share grows with the level (a positive filter of a growing indicator): the first level at or
            # above one half is the crossing, interpolated from the level before it (the last chunk's for j = 0).
            crossing = np.flatnonzero(rows.max(axis=-1) >= 0.5)
            if crossing.size:
                j = np.argmax((rows >= 0.5)[crossing], axis=-1)
                s1 = rows[crossing, j]
                s0 = np.where(j > 0, rows[crossing, np.maximum(j - 1, 0)], prev_share[at[crossing]])
                t0 = np.concatenate([[prev_level], part])[j]
                frac = (0.5 - s0) / np.maximum(s1 - s0, 1e-6)
                out.ravel()[at[crossing]] = t0 + np.clip(frac, 0.0, 1.0) * (part[j] - t0)
                done.ravel()[at[crossing]] = True
            prev_share[at] = rows[:, -1]
        shares = flat = rows = None  # (let go before the next chunk is made: one chunk alive at a time)
        prev_level = part[-1]
        if done.all():
            break
    return np.where(valid, np.clip(out, lo, hi), np.nan).astype(np.float32)


def outliers(
    values: np.ndarray,
    weight: np.ndarray,
    guide: np.ndarray,
    *,
    radius: int,
    tolerance: float,
    eps: float = 1e-2,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose value is more than ``tolerance`` from their edge-aware weighted median.

    Parameters
    ----------
    values, weight, guide, radius, eps, threads : as for :func:`weighted_median`.
    tolerance : largest deviation (in the units of ``values``) that is not an outlier.

    Returns
    -------
    (mask, median): bool (H, W) outliers and the float32 (H, W) median they were judged by.

    References
    ----------
    Z. Ma et al., ICCV 2013 (see :func:`weighted_median`).

    Examples
    --------
    >>> v = np.full((40, 40), 3.0, np.float32); v[18:22, 18:22] = 15.0
    >>> mask, _ = outliers(v, np.ones_like(v), np.zeros_like(v), radius=8, tolerance=1.5)
    >>> int(mask.sum())
    16
    """
    median = weighted_median(values, weight, guide, radius=radius, eps=eps, step=max(tolerance / 3.0, 1e-3),
                             threads=threads)
    return np.abs(np.asarray(values, np.float32) - median) > tolerance, median


def domain_transform(
    src: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float, iterations: int = DT_ITERATIONS, *,
    overwrite: bool = False, weights: list[tuple[np.ndarray, ...]] | None = None
) -> np.ndarray:
    """Edge-aware smoothing with the recursive domain-transform filter (Gastal & Oliveira 2011).

    Pixels are averaged with an exponential kernel whose distance grows with
    the colour change of ``guide`` along the way, so averaging stops at edges:
    a joint-bilateral filter in linear time.

    Parameters
    ----------
    src : float32 (H, W) or (H, W, C) values to smooth.
    guide : float32 (H, W) or (H, W, C) image whose edges stop the smoothing.
    sigma_s : spatial extent in pixels.
    sigma_r : colour difference (sum over channels, [0, 1] scale) that counts
        as much as ``sigma_s`` pixels of distance.
    iterations : horizontal + vertical passes (3 is plenty).
    overwrite : filter ``src`` in place when it is a float32 array (it is then the result).
    weights : :func:`domain_weights` of ``guide``, ``sigma_s``, ``sigma_r`` and ``iterations``, when made already.

    Returns
    -------
    float32 array shaped like ``src``.

    References
    ----------
    E. S. L. Gastal, M. M. Oliveira, "Domain transform for edge-aware image and
    video processing", ACM Transactions on Graphics 30(4), 2011.

    Examples
    --------
    >>> g = np.zeros((4, 8), np.float32); g[:, 4:] = 1
    >>> out = domain_transform(g.copy(), g, 10.0, 0.05)
    >>> bool(out[:, :4].max() < 0.01 and out[:, 4:].min() > 0.99)
    True
    """
    in_place = overwrite and isinstance(src, np.ndarray) and src.dtype == np.float32 and src.flags.writeable
    out = src if in_place else np.array(src, np.float32, copy=True)
    squeeze = out.ndim == 2
    if weights is None:
        weights = domain_weights(guide, sigma_s, sigma_r, iterations)
    _recurse(out[..., None] if squeeze else out, weights)
    return out


def domain_weights(guide: np.ndarray, sigma_s: float, sigma_r: float,
                   iterations: int = DT_ITERATIONS) -> list[tuple[np.ndarray, ...]]:
    """The recursive filter's feedback weights of each iteration: ``(vx (W-1, H), vy (H-1, W))`` float32.

    They depend on the guide and the filter's reach only: filters of one guide share them
    (:func:`domain_transform`'s and :func:`geodesic_median`'s ``weights``).
    """
    g = np.asarray(guide, np.float32)
    if g.ndim == 2:
        g = g[..., None]
    ratio = float(sigma_s) / max(float(sigma_r), 1e-6)
    dist_x = 1.0 + ratio * np.abs(np.diff(g, axis=1)).sum(axis=2)  # (H, W-1)
    dist_y = 1.0 + ratio * np.abs(np.diff(g, axis=0)).sum(axis=2)  # (H-1, W)
    n = max(1, int(iterations))
    weights = []
    for i in range(n):
        sigma_i = sigma_s * np.sqrt(3.0) * 2.0 ** (n - i - 1) / np.sqrt(4.0**n - 1.0)
        a = np.exp(-np.sqrt(2.0) / max(sigma_i, 1e-6))
        # (vx stored column-major, (W-1, H): a horizontal step reads its column's weights as one contiguous run)
        weights.append((np.ascontiguousarray(np.power(a, dist_x).astype(np.float32).T),
                        np.power(a, dist_y).astype(np.float32)))
    return weights


def _recurse(out: np.ndarray, coefficients: list[tuple[np.ndarray, ...]]) -> None:
    """The recursive filter's passes over float32 (H, W, C) ``out``, in place, each iteration's horizontal then vertical.

    Every step is ``out[j] += v[j] * (out[j -/+ 1] - out[j])`` with the temporary made once. A column of an
    (H, W, C) array is H runs of C values: with few channels the steps run over the (C, H) transposed view in
    its own order, each channel's column one strided run, instead of H runs of C (same operations, same bits).
    """
    h, w, c = out.shape
    few = c <= TRANSPOSED_CHANNELS
    cols = out.transpose(2, 0, 1) if few else out  # column j: cols[:, :, j] (C, H) or cols[:, j] (H, C)
    col_tmp = np.empty((c, h) if few else (h, c), np.float32)
    row_tmp = np.empty((w, c), np.float32)

    columns = [cols[:, :, j] if few else cols[:, j] for j in range(w)]  # (the views made once, not per step)
    rows = list(out)
    for vx, vy in coefficients:
        # (W-1, H): a step's (H,) weights broadcast over the (C, H) column, or (H, 1) over (H, C); made once
        vxs = list(vx if few else vx[..., None])
        vys = list(vy[..., None])
        for j, k, f in [(j, j - 1, j - 1) for j in range(1, w)] + [(j, j + 1, j) for j in range(w - 2, -1, -1)]:
            cur = columns[j]
            np.subtract(columns[k], cur, out=col_tmp, order="C")
            np.multiply(vxs[f], col_tmp, out=col_tmp, order="C")
            np.add(cur, col_tmp, out=cur, order="C")
        for j, k, f in [(j, j - 1, j - 1) for j in range(1, h)] + [(j, j + 1, j) for j in range(h - 2, -1, -1)]:
            cur = rows[j]
            np.subtract(rows[k], cur, out=row_tmp)
            np.multiply(vys[f], row_tmp, out=row_tmp)
            np.add(cur, row_tmp, out=cur)
