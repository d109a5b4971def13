"""The stack's own defocus: blur radius as a function of a frame's distance from a pixel's depth.

A thin lens focused at distance :math:`u_f` images a point at :math:`u` as a
disc whose radius is proportional to :math:`|1/u - 1/u_f|` (Pentland 1987;
Subbarao & Surya 1994). A focus sweep moves the focal plane in nearly equal
steps of inverse distance, so in frame units the radius grows linearly with
the frame distance ``delta = frame - depth``, possibly with another slope on
the near side than on the far side (the steps are not exactly equal, and
focus breathing changes the magnification). A sharp image is never perfectly
sharp (lens, demosaicing, the fused result's own softness): that residual blur
adds in quadrature. :class:`DefocusModel` is therefore

.. math::  r(\\delta) = \\sqrt{r_0^2 + (a_\\pm \\delta)^2},

with :math:`a_-` for frames focused nearer than the pixel, :math:`a_+` for
frames focused farther. :func:`calibrate` fits it from the stack itself: the
all-in-focus image is blurred with discs of candidate radii, each pixel of a
frame takes the radius whose blur explains its neighbourhood best (textured,
confident pixels away from depth edges only), and the model is fitted to the
median radius in bins of ``delta``. The measured medians themselves (made to
grow away from ``delta = 0``) are kept as a table and used where they exist:
a video sweep's focus steps are often not even, and its radius then grows
more slowly than linearly far from the focal plane.

References
----------
Pentland, A. P. (1987). A new sense for depth of field. IEEE TPAMI 9(4), 523-531.
Subbarao, M., & Surya, G. (1994). Depth from defocus: a spatial domain approach. IJCV 13(3), 271-294.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from postfocus.products.aperture import disc_blur

__all__ = ["CANDIDATE_RADII", "DefocusModel", "calibrate", "radius_profile"]

CANDIDATE_RADII = (0.0, 0.6, 0.9, 1.2, 1.5, 1.9, 2.4, 3.0, 3.7, 4.6, 5.7, 7.1, 8.8, 11.0, 14.0, 18.0, 23.0, 30.0)
"""Disc radii (analysis pixels) tried for every calibration pixel; about 25 % apart above 1 px."""

_WINDOW = 4  # half-size of the neighbourhood that votes for a radius (analysis px)
_BIN = 0.5  # width of a delta bin (frames)
_MIN_BIN = 20  # pixels a delta bin needs to count
_RESOLVED = 10.0  # radii (analysis px) below this are measured well enough for the slope fit
_FLAT = 0.25  # depth spread (frames) allowed around a pixel, as a share of its frame distance (beyond one frame)


@dataclass(frozen=True)
class DefocusModel:
    """Blur radius of a pixel in a frame, from the frame's distance to the pixel's depth.

    Attributes
    ----------
    near_slope : float
        Radius growth (output pixels per frame) for frames focused nearer than the pixel (``delta < 0``).
    far_slope : float
        The same for frames focused farther than the pixel (``delta > 0``).
    floor : float
        Radius (output pixels) at ``delta = 0``: what the sharp image lacks in sharpness.
    samples : int
        Calibration pixels the fit rests on (0: defaults, nothing measured).
    table : tuple of (float, float)
        Measured ``(delta, radius)`` pairs (output pixels), increasing in delta;
        when given, radii are interpolated in it and extended beyond its ends
        with the slopes.
    """

    near_slope: float
    far_slope: float
    floor: float = 0.0
    samples: int = 0
    table: tuple[tuple[float, float], ...] = ()

    def radius(self, delta: np.ndarray | float) -> np.ndarray:
        """Disc radius (output pixels) at frame distance ``delta = frame - depth``.

        Examples
        --------
        >>> m = DefocusModel(near_slope=1.0, far_slope=2.0, floor=0.0)
        >>> m.radius(np.array([-3.0, 0.0, 3.0])).tolist()
        [3.0, 0.0, 6.0]
        """
        d = np.asarray(delta, np.float64)
        slope = np.where(d < 0, self.near_slope, self.far_slope)
        if len(self.table) < 2:
            return np.sqrt(self.floor**2 + (slope * d) ** 2)
        x = np.array([p[0] for p in self.table])
        y = np.array([p[1] for p in self.table])
        inside = np.interp(d, x, y)
        below = y[0] + self.near_slope * (x[0] - d)
        above = y[-1] + self.far_slope * (d - x[-1])
        return np.where(d < x[0], below, np.where(d > x[-1], above, inside))

    def scaled(self, factor: float) -> "DefocusModel":
        """The same model with radii measured in pixels ``factor`` times as large (``factor`` < 1: smaller image)."""
        table = tuple((d, r * factor) for d, r in self.table)
        return DefocusModel(self.near_slope * factor, self.far_slope * factor, self.floor * factor, self.samples, table)

    def as_dict(self) -> dict:
        """Plain numbers for JSON."""
        out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items() if k != "table"}
        out["table"] = [[d, round(r, 3)] for d, r in self.table]
        return out


def radius_profile(
    grey: np.ndarray,
    frame: np.ndarray,
    radii: Sequence[float] = CANDIDATE_RADII,
    *,
    blurred: Sequence[np.ndarray] | None = None,
    window: int = _WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the disc radius that turns ``grey`` into ``frame`` best over a small window.

    Parameters
    ----------
    grey : np.ndarray
        float32 (h, w) sharp image in linear light.
    frame : np.ndarray
        float32 (h, w) one frame, same geometry and light.
    radii : sequence of float
        Candidate radii, increasing.
    blurred : sequence of np.ndarray, optional
        ``grey`` already blurred by each radius (saves the work across frames).
    window : int
        Half-size of the box the squared differences are summed over.

    Returns
    -------
    radius : np.ndarray
        float32 (h, w) best radius, refined between candidates by a parabola.
    ok : np.ndarray
        bool (h, w): the best radius is an interior minimum (neither end of the candidates).
    """
    if blurred is None:
        blurred = [disc_blur(grey, r) for r in radii]
    k = 2 * window + 1
    cost = np.stack([cv2.boxFilter((frame - b) ** 2, -1, (k, k), borderType=cv2.BORDER_REFLECT) for b in blurred])
    best = np.argmin(cost, axis=0)
    n = len(radii)
    i = np.clip(best, 1, n - 2)
    rows, cols = np.indices(best.shape)
    c0, c1, c2 = cost[i - 1, rows, cols], cost[i, rows, cols], cost[i + 1, rows, cols]
    denom = c0 - 2 * c1 + c2
    shift = np.where(denom > 1e-12, 0.5 * (c0 - c2) / np.maximum(denom, 1e-12), 0.0)
    pos = np.where((best > 0) & (best < n - 1), i + np.clip(shift, -0.5, 0.5), best)
    radius = np.interp(pos, np.arange(n), np.asarray(radii, np.float64)).astype(np.float32)
    return radius, best < n - 1


def calibrate(
    grey: np.ndarray,
    depth: np.ndarray,
    read: Callable[[int], np.ndarray],
    frames: Sequence[int],
    *,
    weight: np.ndarray | None = None,
    scale: float = 1.0,
    max_frames: int = 12,
) -> DefocusModel:
    """Fit the stack's :class:`DefocusModel` from the sharp image, its depth and some frames.

    Parameters
    ----------
    grey : np.ndarray
        float32 (h, w) sharp image (all-in-focus), grey, linear light, at the analysis size.
    depth : np.ndarray
        float32 (h, w) depth in frame numbers (the frames' own order).
    read : callable
        ``read(i)`` -> float32 (h, w) frame ``i`` at the analysis size, grey, linear light, exposure-matched.
    frames : sequence of int
        Frame numbers available.
    weight : np.ndarray, optional
        float32 (h, w) in [0, 1]: how much each pixel's depth is trusted.
    scale : float
        Analysis size / output size; the model is returned in output pixels.
    max_frames : int
        At most this many frames (evenly spread) are used.

    Returns
    -------
    DefocusModel
        In output pixels per frame.

    References
    ----------
    Pentland (1987); Subbarao & Surya (1994): blur radius linear in inverse distance.
    """
    frames = list(frames)
    pick = frames if len(frames) <= max_frames else [frames[int(round(j))] for j in
                                                      np.linspace(0, len(frames) - 1, max_frames)]
    mask, spread = _calibration_pixels(grey, depth, weight)
    if mask.sum() < 50 or len(pick) < 2:
        return DefocusModel(0.0, 0.0, 0.0, 0)  # nothing to measure: no blur (every frame is the sharp image)
    blurred = [disc_blur(grey, r) for r in CANDIDATE_RADII]
    deltas, found = [], []
    for i in pick:
        radius, ok = radius_profile(grey, read(i), blurred=blurred)
        delta = i - depth
        # The blur must be nearly the same over the pixel's reach: its depth may spread over one frame, or over
        # a share of its distance from the frame (the radius then varies by about that share, whatever the
        # frame spacing: a dense sweep's surfaces span many frames over the reach).
        sel = mask & ok & (spread <= np.maximum(1.0, _FLAT * np.abs(delta)))
        deltas.append(delta[sel].astype(np.float32))
        found.append(radius[sel])
    return _fit(np.concatenate(deltas), np.concatenate(found), scale)


def _calibration_pixels(grey: np.ndarray, depth: np.ndarray,
                        weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Textured pixels of trusted depth (where a blur radius can be read), and each pixel's depth spread (frames)
    over the reach of the largest blurs that matter."""
    k = 2 * _WINDOW + 1
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.boxFilter(gx * gx + gy * gy, -1, (k, k))
    mean = cv2.boxFilter(grey, -1, (k, k))
    relative = energy / np.maximum(mean * mean, 1e-6)  # texture relative to brightness: dark and bright alike
    textured = relative > np.quantile(relative, 0.5)
    reach = 4 * k + 1  # depth must be flat over the reach of the largest blurs that matter
    kernel = np.ones((reach, reach), np.uint8)
    spread = cv2.dilate(depth, kernel) - cv2.erode(depth, kernel)
    ok = textured & (spread < max(1.0, _FLAT * float(np.ptp(depth)))) & (mean > 0.01) & (mean < 0.9)
    if weight is not None:
        ok &= weight > 0.5
    return ok, spread


def _fit(delta: np.ndarray, radius: np.ndarray, scale: float) -> DefocusModel:
    """The model from measured (delta, radius) pairs; radii in analysis pixels, the model in output pixels.

    The slopes and floor are a weighted least-squares fit of ``r^2 = r0^2 + a_side^2 delta^2``
    to the median radius of each delta bin, over the bins whose radius the
    candidates resolve well (below :data:`_RESOLVED`); the table is the bin
    medians made non-decreasing away from ``delta = 0`` on each side (isotonic
    regression), which follows sweeps whose focus steps are not even.
    """
    bins = np.round(delta / _BIN).astype(np.int64)
    rows = []
    for b in np.unique(bins):
        sel = bins == b
        n = int(sel.sum())
        if n >= _MIN_BIN:
            rows.append((float(b * _BIN), float(np.median(radius[sel])), n))
    resolved = [row for row in rows if row[1] < _RESOLVED]
    if len(resolved) < 3:
        return DefocusModel(0.0, 0.0, 0.0, int(delta.size))
    d = np.array([row[0] for row in resolved])
    r2 = np.array([row[1] for row in resolved]) ** 2
    w = np.sqrt([row[2] for row in resolved])
    near, far = d < 0, d > 0
    design = np.stack([np.ones_like(d), np.where(near, d * d, 0.0), np.where(far, d * d, 0.0)], axis=1)
    cols = [0] + [c for c, side in ((1, near), (2, far)) if side.sum() >= 2]
    coef = np.zeros(3)
    solved, *_ = np.linalg.lstsq(design[:, cols] * w[:, None], r2 * w, rcond=None)
    coef[cols] = np.maximum(solved, 0.0)
    a_near, a_far = math.sqrt(coef[1]), math.sqrt(coef[2])
    # One floor for both sides is the physics, but an uneven sweep can make one side's radii grow so much
    # faster near the focal plane that the shared fit lifts the floor above the other side's measured radii
    # and leaves that side flat (slope 0): a radius that stops growing with defocus is not a lens. That side
    # then takes the slope of its own bins (a line through them, its own intercept).
    for c, side in ((1, near), (2, far)):
        if c in cols and coef[c] <= 0.0 and side.sum() >= 2:
            own = np.stack([np.ones(int(side.sum())), d[side] * d[side]], axis=1)
            fit, *_ = np.linalg.lstsq(own * w[side, None], r2[side] * w[side], rcond=None)
            slope = math.sqrt(max(float(fit[1]), 0.0))
            a_near, a_far = (slope, a_far) if c == 1 else (a_near, slope)
    if 1 not in cols:
        a_near = a_far
    if 2 not in cols:
        a_far = a_near
    table = _table(rows)
    return DefocusModel(a_near / scale, a_far / scale, math.sqrt(coef[0]) / scale, int(delta.size),
                        tuple((dd, rr / scale) for dd, rr in table))


def _table(rows: list[tuple[float, float, int]]) -> list[tuple[float, float]]:
    """(delta, radius) of each bin, radius made non-decreasing in |delta| on each side of 0."""
    sides = []
    for sign in (-1.0, 1.0):
        side = sorted((row for row in rows if row[0] * sign >= 0), key=lambda row: abs(row[0]))
        if side:
            fitted = _isotonic(np.array([row[1] for row in side]), np.array([row[2] for row in side], float))
            sides.append([(row[0], float(f)) for row, f in zip(side, fitted)])
        else:
            sides.append([])
    near, far = sides
    zero = [r for dd, r in near + far if dd == 0.0]
    body = [p for p in reversed(near) if p[0] < 0] + ([(0.0, min(zero))] if zero else []) + [p for p in far if p[0] > 0]
    return [(round(dd, 3), round(r, 3)) for dd, r in body]


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool adjacent violators).

    Examples
    --------
    >>> _isotonic(np.array([1.0, 3.0, 2.0, 4.0]), np.ones(4)).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values.tolist(), weights.tolist()):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(c, m) for m, _, c in blocks])
