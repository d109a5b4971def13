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
more than a tolerance away from that estimate.
"""

from __future__ import annotations

import numpy as np

from postfocus.focus.map import box

__all__ = ["outliers", "weighted_median"]


def weighted_median(
    values: np.ndarray,
    weight: np.ndarray,
    guide: np.ndarray,
    *,
    radius: int,
    eps: float = 1e-2,
    step: float = 0.5,
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

    Returns
    -------
    float32 (H, W) median; ``values`` itself where the neighbourhood has no weight.

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
    valid = total > 1e-6
    inv = np.where(valid, 1.0 / np.maximum(total, 1e-6), 0.0).astype(np.float32)
    lo, hi = float(v.min()), float(v.max())
    levels = np.arange(lo, hi + step, step, dtype=np.float32)
    out = np.full(v.shape, hi, np.float32)
    done = np.zeros(v.shape, bool)
    prev_share = np.zeros(v.shape, np.float32)
    prev_level = np.float32(lo - step)
    for t in levels:
        share = np.clip(smooth(w * (v <= t)) * inv, 0.0, 1.0)
        cross = (share >= 0.5) & ~done
        if cross.any():
            frac = (0.5 - prev_share[cross]) / np.maximum(share[cross] - prev_share[cross], 1e-6)
            out[cross] = prev_level + np.clip(frac, 0.0, 1.0) * (t - prev_level)
            done |= cross
        if done.all():
            break
        np.maximum(prev_share, share, out=prev_share)  # the share only grows with the level
        prev_level = t
    return np.where(valid, np.clip(out, lo, hi), v).astype(np.float32)


def outliers(
    values: np.ndarray,
    weight: np.ndarray,
    guide: np.ndarray,
    *,
    radius: int,
    tolerance: float,
    eps: float = 1e-2,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose value is more than ``tolerance`` from their edge-aware weighted median.

    Parameters
    ----------
    values, weight, guide, radius, eps : as for :func:`weighted_median`.
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
    median = weighted_median(values, weight, guide, radius=radius, eps=eps, step=max(tolerance / 3.0, 1e-3))
    return np.abs(np.asarray(values, np.float32) - median) > tolerance, median
