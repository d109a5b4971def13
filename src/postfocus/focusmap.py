"""From a focus volume to a regularised focus-index map.

``volume[i]`` is the focus measure of aligned frame ``i``. The focus index of a
pixel is the (fractional) frame where that measure peaks. Raw per-pixel peaks
are noisy and undefined where there is no texture, so the volume is first
aggregated with an edge-aware (guided) filter, the peak is refined to
sub-frame precision, and weak pixels are filled from confident neighbours
along image edges.
"""

from __future__ import annotations

import cv2
import numpy as np


def box(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box, edges reflected."""
    k = 2 * radius + 1
    return cv2.boxFilter(image, -1, (k, k), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by the edges of ``guide`` (He et al. 2010).

    Parameters
    ----------
    guide : float32 (H, W) grey guide image.
    src : float32 (H, W) or (H, W, C) image to filter.
    radius : box radius in pixels.
    eps : regularisation; larger smooths across weaker edges.

    Returns
    -------
    float32 array shaped like ``src``.

    Examples
    --------
    >>> g = np.random.rand(16, 16).astype(np.float32)
    >>> guided_filter(g, g, 2, 1e-3).shape
    (16, 16)
    """
    mean_i = box(guide, radius)
    var_i = box(guide * guide, radius) - mean_i * mean_i
    if src.ndim == 3:
        mean_i3, var_i3, guide3 = mean_i[..., None], var_i[..., None], guide[..., None]
    else:
        mean_i3, var_i3, guide3 = mean_i, var_i, guide
    mean_p = box(src, radius)
    cov_ip = box(src * guide3, radius) - mean_i3 * mean_p
    a = cov_ip / (var_i3 + eps)
    b = mean_p - a * mean_i3
    return box(a, radius) * guide3 + box(b, radius)


def peak_index(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-frame peak position of a volume along axis 0, and the peak value.

    A parabola through the log-measures at the best frame and its neighbours
    refines the integer argmax (a Gaussian focus curve is a parabola in log).

    Examples
    --------
    >>> v = np.exp(-0.5 * (np.arange(5)[:, None, None] - 2.3) ** 2) * np.ones((5, 2, 2))
    >>> round(float(peak_index(v.astype(np.float32))[0][0, 0]), 2)
    2.3
    """
    n = volume.shape[0]
    k = np.argmax(volume, axis=0)
    peak = np.take_along_axis(volume, k[None], axis=0)[0]
    if n < 3:
        return k.astype(np.float32), peak
    km = np.clip(k - 1, 0, n - 1)
    kp = np.clip(k + 1, 0, n - 1)
    log = np.log(np.maximum(volume, 1e-12))
    y0 = np.take_along_axis(log, k[None], axis=0)[0]
    ym = np.take_along_axis(log, km[None], axis=0)[0]
    yp = np.take_along_axis(log, kp[None], axis=0)[0]
    denom = ym - 2 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom < -1e-9, 0.5 * (ym - yp) / denom, 0.0)
    offset = np.where((k == 0) | (k == n - 1), 0.0, np.clip(offset, -0.5, 0.5))
    return (k + offset).astype(np.float32), peak


def focus_index_map(
    volume: np.ndarray,
    guide: np.ndarray,
    radius: int = 4,
    eps: float = 1e-4,
    fill_radius: int = 24,
) -> tuple[np.ndarray, np.ndarray]:
    """Regularised focus-index map and its confidence.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures of aligned frames.
    guide : float32 (H, W) grey image whose edges are object edges (e.g. a rough all-in-focus).
    radius, eps : guided aggregation of each slice of the volume.
    fill_radius : how far confident values spread into textureless areas.

    Returns
    -------
    (index, confidence): float32 (H, W) each; index in [0, N-1], confidence in [0, 1].

    Examples
    --------
    >>> idx, conf = focus_index_map(volume, guide)  # doctest: +SKIP
    """
    n = volume.shape[0]
    agg = np.empty_like(volume)
    for i in range(n):
        agg[i] = np.maximum(guided_filter(guide, volume[i], radius, eps), 0)
    index, peak = peak_index(agg)
    mean = agg.mean(axis=0)
    # Confidence: how far the peak stands above the average frame, and whether there is detail at all.
    contrast = 1.0 - mean / np.maximum(peak, 1e-12)
    # Detail above the noise floor: the typical energy of a pixel in its most blurred frame.
    floor = float(np.median(agg.min(axis=0))) + 1e-12
    level = np.log(np.maximum(peak / floor, 1.0)) / np.log(8.0)
    confidence = np.clip(contrast * 1.5, 0, 1) * np.clip(level, 0, 1)
    confidence = confidence.astype(np.float32)
    # Fill weak pixels from confident ones: along edges nearby, from anywhere far away.
    weight = confidence * confidence
    near = guided_filter(guide, index * weight, fill_radius, 1e-3)
    near_w = guided_filter(guide, weight, fill_radius, 1e-3)
    filled = push_pull_fill(index, weight)
    spread = np.where(near_w > 0.05, near / np.maximum(near_w, 1e-4), filled)
    spread = guided_filter(guide, spread.astype(np.float32), max(2, radius), 1e-3)
    blend = np.clip(confidence * 2, 0, 1)
    out = blend * index + (1 - blend) * spread
    return np.clip(out, 0, n - 1).astype(np.float32), confidence


def push_pull_fill(values: np.ndarray, weight: np.ndarray, min_size: int = 4) -> np.ndarray:
    """Fill where ``weight`` is low with weighted averages from ever larger neighbourhoods.

    A weight pyramid is built by area averaging (push); from the coarsest level
    down, each level keeps its own weighted mean where it has weight and takes
    the coarser estimate where it has not (pull).

    Examples
    --------
    >>> v = np.zeros((8, 8), np.float32); w = np.zeros((8, 8), np.float32)
    >>> v[0, 0], w[0, 0] = 5, 1
    >>> float(push_pull_fill(v, w)[7, 7])
    5.0
    """
    nums, dens = [values * weight], [weight.astype(np.float32)]
    while min(dens[-1].shape) // 2 >= min_size:
        h, w = dens[-1].shape
        size = (max(1, w // 2), max(1, h // 2))
        nums.append(cv2.resize(nums[-1], size, interpolation=cv2.INTER_AREA))
        dens.append(cv2.resize(dens[-1], size, interpolation=cv2.INTER_AREA))
    total = float(dens[-1].sum())
    estimate = np.full(dens[-1].shape, float(nums[-1].sum()) / total if total > 0 else 0.0, np.float32)
    for num, den in zip(reversed(nums), reversed(dens)):
        h, w = den.shape
        coarse = cv2.resize(estimate, (w, h), interpolation=cv2.INTER_LINEAR)
        # Normalise so that a fully confident pixel at this level has weight 1.
        scale = 1.0 / max(float(den.max()), 1e-12)
        d = np.minimum(den * scale, 1.0)
        estimate = (num * scale + (1.0 - d) * coarse) / np.maximum(den * scale + (1.0 - d), 1e-12)
    return estimate.astype(np.float32)
