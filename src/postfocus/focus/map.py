"""From a focus volume to a regularised focus-index map.

``volume[i]`` is the focus measure of aligned frame ``i``. The focus index of a
pixel is the (fractional) frame where that measure peaks. Raw per-pixel peaks
are noisy and undefined where there is no texture, so the volume is first
aggregated with an edge-aware (guided) filter, the peak is refined to
sub-frame precision, and weak pixels are filled from confident neighbours
along image edges.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import cv2
import numpy as np

from postfocus.errors import OptionError
from postfocus.focus.guided import box, guided_filter, guided_upsample
from postfocus.focus.near_outline import near_outline
from postfocus.focus.peak import parabola_peak, streamed_peak
from postfocus.focus.sides import edge_spill, occlusion_sides
from postfocus.focus.turns import in_turns
from postfocus.numeric import argmax0, pick0
from postfocus.options import PREFER

__all__ = ["aggregate", "box", "check_prefer", "curve_width", "focus_index_map", "gaussian_peak", "guided_filter",
           "guided_upsample", "peak_index", "peak_near", "preferred_peak", "push_pull_fill", "refine_at"]

def aggregate(volume: np.ndarray, guide: np.ndarray, radius: int = 4, eps: float = 1e-4, *,
              threads: int = 1) -> np.ndarray:
    """Every slice of a focus volume smoothed along the edges of ``guide``, negative values 0.

    ``max(guided_filter(guide, volume[i], radius, eps), 0)`` for each ``i``, to
    the bit; the guide's own local statistics, the same for every slice, are
    made once. ``threads`` 2: a helper smooths every other slice (:func:`~postfocus.focus.turns.in_turns`).

    Examples
    --------
    >>> g = np.random.rand(16, 16).astype(np.float32); v = np.random.rand(3, 16, 16).astype(np.float32)
    >>> bool((aggregate(v, g, 2, 1e-3)[1] == np.maximum(guided_filter(g, v[1], 2, 1e-3), 0)).all())
    True
    """
    out = np.empty_like(volume)
    for i, aggregated in enumerate(_aggregated(volume, guide, radius, eps, threads=threads)):
        out[i] = aggregated
    return out


def _aggregated(volume: np.ndarray, guide: np.ndarray, radius: int, eps: float, *,
                threads: int = 1) -> Iterator[np.ndarray]:
    """The slices of :func:`aggregate` one at a time."""
    mean_i = box(guide, radius)
    var_i = box(guide * guide, radius) - mean_i * mean_i + eps

    def smoothed(src: np.ndarray) -> np.ndarray:
        mean_p = box(src, radius)
        a = (box(src * guide, radius) - mean_i * mean_p) / var_i
        b = mean_p - a * mean_i
        return np.maximum(box(a, radius) * guide + box(b, radius), 0)

    yield from in_turns(smoothed, volume, threads=threads)


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
    k = argmax0(volume)
    return refine_at(volume, k), pick0(volume, k)


def check_prefer(prefer: str) -> str:
    """Validate a ``prefer`` option (see :func:`focus_index_map`)."""
    if prefer not in PREFER:
        raise OptionError("prefer", prefer, f"choose one of {', '.join(PREFER)}")
    return prefer


def refine_at(volume: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sub-frame position of the peak at integer frame ``k`` (per pixel): parabola through the log-measures.

    Examples
    --------
    >>> v = np.exp(-0.5 * (np.arange(5)[:, None, None] - 1.2) ** 2) * np.ones((5, 1, 1))
    >>> round(float(refine_at(v.astype(np.float32), np.array([[1]]))[0, 0]), 2)
    1.2
    """
    n = volume.shape[0]
    if n < 3:
        return k.astype(np.float32)
    km, kp = np.clip(k - 1, 0, n - 1), np.clip(k + 1, 0, n - 1)
    # Only three measures per pixel are needed: gather them (logs are taken of those, not of the whole volume).
    return parabola_peak(k, pick0(volume, k), pick0(volume, km), pick0(volume, kp), n)


def gaussian_peak(volume: np.ndarray, k: np.ndarray, reach: int, floor: float = 0.0, *,
                  threads: int = 1) -> np.ndarray:
    """Sub-frame peak position: a Gaussian fitted to the measures within ``reach`` frames of frame ``k``.

    A defocused point's focus measure falls off about as a Gaussian of the
    distance from its focus (Subbarao & Choi 1993; Nayar & Nakagawa 1994 fit
    one through three frames, :func:`refine_at`). Through more frames the fit
    averages out the noise of each measure, which matters when the sweep is
    dense and the curve is flat over several frames. The Gaussian is a
    parabola in ``log(measure - floor)``, fitted by least squares with the
    weights ``(measure - floor)^2`` (Guo 2011), so the tails near the noise
    floor count little. Where no peaked fit exists (a flat or rising curve)
    the three-frame parabola is kept. The result stays within ``reach`` of
    ``k`` and inside ``[0, N - 1]``.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures (aggregated).
    k : int (H, W) frame of each pixel's peak (e.g. the argmax).
    reach : frames on each side of ``k`` that enter the fit (1 = three frames).
    floor : noise floor subtracted from the measures first.
    threads : 1, or 2: a helper fits the top half of the rows (each pixel's fit is its own: the same bits).

    Returns
    -------
    float32 (H, W) fractional frame.

    References
    ----------
    M. Subbarao, T. Choi, "Accurate recovery of three-dimensional shape from image focus", IEEE PAMI 17(3), 1995.
    S. K. Nayar, Y. Nakagawa, "Shape from focus", IEEE PAMI 16(8), 1994.
    H. Guo, "A simple algorithm for fitting a Gaussian function", IEEE Signal Processing Magazine 28(5), 2011.

    Examples
    --------
    >>> x = np.arange(30)[:, None, None]
    >>> v = (np.exp(-0.5 * ((x - 12.4) / 4.0) ** 2) * np.ones((30, 1, 1))).astype(np.float32)
    >>> round(float(gaussian_peak(v, np.array([[12]]), 4)[0, 0]), 2)
    12.4
    """
    n = volume.shape[0]
    if int(threads) >= 2 and k.shape[0] >= 2:  # (each half's measures copied whole: pick0 reads a flat volume)
        half = k.shape[0] // 2
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-peak") as pool:
            top = pool.submit(lambda: gaussian_peak(np.ascontiguousarray(volume[:, :half]), k[:half], reach, floor))
            bottom = gaussian_peak(np.ascontiguousarray(volume[:, half:]), k[half:], reach, floor)
            return np.concatenate([top.result(), bottom])
    base = refine_at(volume, k)
    if n < 3 or reach <= 1:
        return base
    peak = np.maximum(pick0(volume, k) - floor, 1e-12)
    sums = [np.zeros(k.shape, np.float64) for _ in range(8)]  # S0..S4 of weights * x^p; T0..T2 of weights * x^p * log y
    for j in range(-reach, reach + 1):
        at = k + j
        inside = (at >= 0) & (at < n)
        y = np.maximum(pick0(volume, np.clip(at, 0, n - 1)) - floor, 1e-6 * peak)
        w = np.where(inside, (y / peak) ** 2, 0.0)
        ly = np.log(y / peak)
        xp = 1.0
        for p in range(5):
            sums[p] += w * xp
            if p < 3:
                sums[5 + p] += w * xp * ly
            xp = xp * j
    s0, s1, s2, s3, s4, t0, t1, t2 = sums
    det = s0 * (s2 * s4 - s3 * s3) - s1 * (s1 * s4 - s3 * s2) + s2 * (s1 * s3 - s2 * s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (s0 * (t1 * s4 - s3 * t2) - t0 * (s1 * s4 - s3 * s2) + s2 * (s1 * t2 - t1 * s2)) / det
        c = (s0 * (s2 * t2 - t1 * s3) - s1 * (s1 * t2 - t1 * s2) + t0 * (s1 * s3 - s2 * s2)) / det
        offset = -b / (2.0 * c)
    good = np.isfinite(offset) & (c < -1e-9) & (np.abs(det) > 1e-12)
    fitted = np.clip(k + np.where(good, np.clip(offset, -reach, reach), 0.0), 0, n - 1)
    return np.where(good, fitted, base).astype(np.float32)


def curve_width(volume: np.ndarray, k: np.ndarray, floor: float = 0.0, level: float = 10.0) -> float:
    """Typical width (the Gaussian's sigma, in frames) of the focus curves of a volume.

    From the curvature of ``log(measure - floor)`` at each pixel's peak frame
    ``k`` (three frames), over the pixels whose peak is inside the sweep and
    stands ``level`` times above the floor; the median of those. A sweep whose
    focus steps are small next to the depth of field has wide curves.
    Returns 1.0 when no pixel qualifies.

    Examples
    --------
    >>> x = np.arange(30)[:, None, None]
    >>> v = (np.exp(-0.5 * ((x - 12.0) / 3.0) ** 2) * np.ones((30, 2, 2))).astype(np.float32)
    >>> round(curve_width(v, np.full((2, 2), 12)), 1)
    3.0
    """
    n = volume.shape[0]
    if n < 3:
        return 1.0
    logs = [np.log(np.maximum(pick0(volume, np.clip(k + j, 0, n - 1)) - floor, 1e-12)) for j in (-1, 0, 1)]
    c = 0.5 * (logs[0] - 2.0 * logs[1] + logs[2])
    ok = (k > 0) & (k < n - 1) & (c < -1e-9) & (logs[1] > np.log(max(level * floor, 1e-12)))
    if not ok.any():
        return 1.0
    return float(np.median(np.sqrt(-0.5 / c[ok])))


def peak_near(volume: np.ndarray, at: np.ndarray, where: np.ndarray, reach: int, floor: float = 0.0) -> np.ndarray:
    """Where ``where`` holds: whether the pixel's focus curve has a local maximum within ``reach`` frames of ``at``.

    A local maximum is a frame whose measure is at least that of both
    neighbours (one at the sweep's ends) and above four times the noise
    ``floor``; a second surface seen at a pixel (the far wall beside a near
    outline) gives its curve one.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures (aggregated).
    at : float (H, W) frame (fractional) to look around.
    where : bool (H, W) pixels to test (the others are False).
    reach : frames on each side of ``at``.
    floor : noise floor of the measure.

    Returns
    -------
    bool (H, W).

    Examples
    --------
    >>> curve = np.array([1, 9, 2, 1, 3, 1], np.float32)[:, None, None]
    >>> bool(peak_near(curve, np.array([[4.2]]), np.array([[True]]), 1)[0, 0])
    True
    >>> bool(peak_near(curve, np.array([[2.6]]), np.array([[True]]), 0)[0, 0])
    False
    """
    ys, xs = np.nonzero(where)
    found = np.zeros(np.shape(where), bool)
    if ys.size == 0:
        return found
    curves = volume[:, ys, xs]  # (N, m): only the pixels in question
    edge = np.full((1, ys.size), -np.inf, curves.dtype)
    padded = np.concatenate([edge, curves, edge])
    local = (curves >= padded[:-2]) & (curves >= padded[2:]) & (curves > 4.0 * floor)
    centre = np.rint(np.asarray(at)[ys, xs]).astype(np.intp)
    found[ys, xs] = (local & (np.abs(np.arange(volume.shape[0])[:, None] - centre[None]) <= reach)).any(axis=0)
    return found


def preferred_peak(
    volume: np.ndarray, prefer: str, floor: float, rel: float = 0.02, dip: float = 0.5, above_floor: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """Integer frame of each pixel's front-most (``'front'``) or back-most (``'back'``) clear focus peak.

    A peak other than the strongest counts when it is a local maximum of the
    (aggregated) focus curve, reaches ``rel`` of the strongest peak and
    ``above_floor`` times the noise ``floor``, and the curve between it and
    the strongest peak falls to ``dip`` of it or lower (two separate peaks,
    not the shoulder of one). Elsewhere the strongest peak is kept. Frame 0
    is the front (the nearest focus of a near-to-far sweep).

    Returns
    -------
    (frame, valley): int (H, W) chosen frame, and float32 (H, W) the lowest
    measure between it and the strongest peak (NaN where the strongest peak
    is kept).

    Examples
    --------
    >>> curve = np.array([0, 3, 0.5, 0.2, 0.4, 9, 1], np.float32)[:, None, None]
    >>> int(preferred_peak(curve, "front", 0.01)[0][0, 0]), int(preferred_peak(curve, "back", 0.01)[0][0, 0])
    (1, 5)
    """
    n = volume.shape[0]
    g = argmax0(volume)
    valley = np.full(g.shape, np.nan, np.float32)
    if n < 3 or prefer == "none":
        return g, valley
    vmax = pick0(volume, g)
    threshold = np.maximum(rel * vmax, above_floor * floor)
    order = range(n - 1, -1, -1) if prefer == "front" else range(n)
    step = 1 if prefer == "front" else -1  # towards the strongest peak
    choice = g.copy()
    low = np.full(g.shape, np.inf, np.float32)  # lowest value between a candidate and the strongest peak
    for k in order:
        nb = k + step
        beyond = (g - k) * step > 0  # k lies on the preferred side of the strongest peak
        if 0 <= nb < n:
            low = np.where(beyond, np.minimum(low, volume[nb]), np.inf)
        v = volume[k]
        left = volume[k - 1] if k > 0 else np.full_like(v, -np.inf)
        right = volume[k + 1] if k < n - 1 else np.full_like(v, -np.inf)
        peak = (v >= left) & (v > right) if prefer == "front" else (v > left) & (v >= right)
        clear = beyond & peak & (v >= threshold) & (low <= dip * v)
        choice = np.where(clear, k, choice)
        valley = np.where(clear, low, valley)
    return choice, valley


def focus_index_map(
    volume: np.ndarray,
    guide: np.ndarray,
    radius: int = 4,
    eps: float = 1e-4,
    fill_radius: int = 24,
    prefer: str = "none",
    sides: bool = False,
    outline: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Regularised focus-index map and its confidence.

    Parameters
    ----------
    volume : float32 (N, H, W) focus measures of aligned frames.
    guide : float32 (H, W) grey image whose edges are object edges (e.g. a rough all-in-focus).
    radius, eps : guided aggregation of each slice of the volume.
    fill_radius : how far confident values spread into textureless areas.
    prefer : ``"none"`` takes each pixel's strongest focus peak; where the
        focus curve has two clear peaks (a blurred near object with far detail
        shining through it, as in microscopy), ``"front"`` takes the one
        nearest the front of the sweep (frame 0) and ``"back"`` the farthest
        (see :func:`preferred_peak`).
    sides : give the pixels next to an occlusion edge back to the surface they
        belong to (:func:`occlusion_sides`): a near object's sharp outline
        otherwise claims the background up to :func:`edge_spill` px around it
        (each confident pixel given back only if its own aggregated focus curve
        peaks near the far side's frame, see ``volume`` there). Off by default: the index is then right on the background, but the
        frames focused there carry the near object's blur, which only the
        background solver (``fuse(..., restore=True)``) takes off; without
        it the bled index is the safer choice (docs/quality.md).
    outline : move the occlusion edges onto the near object's outline, where the near frame's own measure
        peaks across them (:func:`~postfocus.focus.near_outline.near_outline`; after ``sides`` if both; not
        within reach of clipped light in ``guide``); off by default for the same reason as ``sides``.

    Returns
    -------
    (index, confidence): float32 (H, W) each; index in [0, N-1], confidence in [0, 1].

    Examples
    --------
    >>> idx, conf = focus_index_map(volume, guide)  # doctest: +SKIP
    """
    check_prefer(prefer)
    n = volume.shape[0]
    valley = None
    if prefer == "none" and not sides:  # the aggregated volume is not needed whole: its slices are summed up
        k, peak, before, after, low, mean = streamed_peak(_aggregated(volume, guide, radius, eps), n)  # as made
        floor = float(np.median(low)) + 1e-12
        index = parabola_peak(k, peak, before, after, n)
    else:
        agg = aggregate(volume, guide, radius, eps)
        # Detail above the noise floor: the typical energy of a pixel in its most blurred frame.
        floor = float(np.median(agg.min(axis=0))) + 1e-12
        if prefer == "none":
            index, peak = peak_index(agg)
        else:
            k, valley = preferred_peak(agg, prefer, floor)
            index, peak = refine_at(agg, k), pick0(agg, k)
        mean = agg.mean(axis=0)
    # Confidence: how far the peak stands above the average frame, and whether there is detail at all.
    contrast = 1.0 - mean / np.maximum(peak, 1e-12)
    if valley is not None:  # a preferred weaker peak: how far it stands above the valley to the strongest one
        contrast = np.where(np.isnan(valley), contrast, 1.0 - valley / np.maximum(peak, 1e-12))
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
    if sides:
        out = occlusion_sides(out, confidence, guide, spill=edge_spill(radius), volume=agg, floor=floor)
    if outline:
        # the rim edge_spill wide, and past it the unsure, filled band to the far side's confident pixels
        out = near_outline(out, volume, confidence, guide, reach=2 * edge_spill(radius))
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
