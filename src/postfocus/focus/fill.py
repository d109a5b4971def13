"""Edge-aware fill of a sparse, weighted depth map that keeps a slope a slope: first-order normalised convolution.

:func:`postfocus.products.depth.refine_depth` fills textureless and distrusted pixels from the trusted ones
around them with a normalised convolution, ``F(w d) / F(w)``, whose kernel ``F`` is the domain-transform
filter (:func:`postfocus.focus.clean.domain_transform`: it follows colours and stops at outlines). That is a
zero-order fit, a weighted mean. On a sloping surface (a floor receding from the camera) it is biased by
the slope times the offset between the pixel and the centre of the weight that reaches it: at the picture's
border, or beside an outline, all the support lies on one side, and the mean reads the depth of the surface
a few dozen pixels inwards. Normalised convolution with a linear basis (Knutsson & Westin 1993) fits a plane
instead, ``d ~ a + b (x - x0) + c (y - y0)`` weighted by the same kernel, and reads ``a``.

:func:`plane_fill` keeps the weighted mean and adds the slope times that offset, the slope fitted only to the
pixels given in ``slope_weight`` (those whose depth is a measurement of one surface, not noise nor a
neighbour's spilled focus energy). A ridge on the slope keeps the mean where the slope's support spans too
little in a direction (a thin strip of texture says nothing about the slope across it).

References
----------
H. Knutsson, C.-F. Westin, "Normalized and differential convolution: methods for interpolation and
filtering of incomplete and uncertain data", CVPR 1993.
E. S. L. Gastal, M. M. Oliveira, "Domain transform for edge-aware image and video processing", ACM
Transactions on Graphics 30(4), 2011.
"""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.focus.clean import domain_transform

RIDGE = 0.05  # squared share of the fill's reach (sigma_s) a slope's support must spread over in a direction

__all__ = ["RIDGE", "PlaneSums", "plane_fill"]


def plane_fill(values: np.ndarray, weight: np.ndarray, guide: np.ndarray, *, sigma_s: float, sigma_r: float,
               slope_weight: np.ndarray | None = None, ridge: float = RIDGE,
               weights: list[tuple[np.ndarray, ...]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware weighted mean of ``values`` corrected for the local slope (first-order normalised convolution).

    Parameters
    ----------
    values : float (H, W) depths (any value where ``weight`` is 0).
    weight : float (H, W) >= 0 how much each depth counts (e.g. its confidence squared).
    guide : float32 (H, W) or (H, W, C) image whose outlines stop the fill
        (:func:`~postfocus.focus.clean.domain_transform`).
    sigma_s, sigma_r : the fill's reach in pixels and its colour tolerance.
    slope_weight : float (H, W) >= 0 the weights of the slope's fit (default ``weight``).
    ridge : regularisation of the slope, in squared units of ``sigma_s``: where the slope's support spreads over
        less than about ``sqrt(ridge) * sigma_s`` pixels in a direction, its slope there tends to 0 (the mean;
        ``np.inf``: the weighted mean everywhere).
    weights : the filter's weights (:func:`~postfocus.focus.clean.domain_weights` of ``guide``, ``sigma_s`` and
        ``sigma_r``) when made already; default: made here.

    Returns
    -------
    (filled, total): float32 (H, W), the fill and the kernel's total weight at each pixel (where it is 0 no weight
    reaches the pixel and ``filled`` is 0).

    Examples
    --------
    A floor sloping by a frame every 10 px, measured only on its upper half: at the bottom row (truth 14.1)
    the mean reads the floor 30 px farther in, the plane its slope (exactly without the ridge).

    >>> yy = np.mgrid[0:60, 0:40][0].astype(np.float32); depth = 20.0 - yy / 10.0
    >>> w = (yy < 30).astype(np.float32); g = np.zeros((60, 40), np.float32)
    >>> [round(float(plane_fill(depth, w, g, sigma_s=20.0, sigma_r=0.2, ridge=r)[0][59, 20]), 1)
    ...  for r in (np.inf, RIDGE, 0.0)]
    [18.2, 14.9, 14.1]
    """
    sums = PlaneSums(values, weight, sigma_s=sigma_s, slope_weight=slope_weight)
    sums.filter(0, guide, sigma_r=sigma_r, weights=weights)
    return sums.solve(ridge=ridge)


class PlaneSums:
    """:func:`plane_fill` in three steps, for callers that share its filtering between threads.

    Made, it holds the fill's 13 weighted sums in ``parts`` arrays of channels (0-5 and 6-12 for two); each
    part is written and filtered by :meth:`filter` (on any thread, parts at once: channels are made and filtered
    independently, with the same operations, so the result is the same to the bit for any split), then
    :meth:`solve` gives the fill.

    Parameters
    ----------
    values, weight, sigma_s, slope_weight : as for :func:`plane_fill`.
    parts : 1 or 2 arrays of channels.

    Examples
    --------
    >>> yy = np.mgrid[0:60, 0:40][0].astype(np.float32); depth = 20.0 - yy / 10.0
    >>> w = (yy < 30).astype(np.float32); g = np.zeros((60, 40), np.float32)
    >>> sums = PlaneSums(depth, w, sigma_s=20.0, parts=2)
    >>> sums.filter(1, g, sigma_r=0.2); sums.filter(0, g, sigma_r=0.2)
    >>> round(float(sums.solve(ridge=0.0)[0][59, 20]), 1)
    14.1
    """

    def __init__(self, values: np.ndarray, weight: np.ndarray, *, sigma_s: float,
                 slope_weight: np.ndarray | None = None, parts: int = 1) -> None:
        w = np.asarray(weight, np.float32)
        s = w if slope_weight is None else np.asarray(slope_weight, np.float32)
        h, wid = w.shape
        self.sigma_s = float(sigma_s)
        scale = np.float32(max(self.sigma_s, 1e-6))
        x = ((np.arange(wid, dtype=np.float32) - np.float32(0.5 * wid)) / scale)[None, :]  # in units of the reach,
        y = ((np.arange(h, dtype=np.float32) - np.float32(0.5 * h)) / scale)[:, None]  # about the middle
        d = np.asarray(values, np.float32)
        ref = np.float32(np.median(d[w > 0])) if (w > 0).any() else np.float32(0.0)
        d = np.where((w > 0) | (s > 0), d - ref, np.float32(0.0))  # about a typical depth: float32 sums stay exact
        self.x, self.y, self.ref = x, y, ref
        self._inputs = (w, s, d, s * d)
        split = (13,) if int(parts) == 1 else (6, 7)
        self._first = list(np.cumsum((0,) + split[:-1]))
        self.sums = [np.empty((h, wid, c), np.float32) for c in split]
        self._written = [False] * len(split)

    def _write(self, part: int) -> None:
        """Write part ``part``'s channels (by the thread that filters it: the two parts' products made at once).

        Written a band of rows at a time: besides the filtered channels themselves, only a band's products are
        alive; the same element-wise float32 operations for any split, the same bits."""
        w, s, d, sd_ = self._inputs
        x, first, out = self.x, self._first[part], self.sums[part]
        for rows in _bands(w.shape[0]):
            wb, sb, db, sdb, yb = w[rows], s[rows], d[rows], sd_[rows], self.y[rows]
            makers = (lambda: wb, lambda: wb * x, lambda: wb * yb, lambda: wb * db, lambda: sb, lambda: sb * x,
                      lambda: sb * yb, lambda: sb * x * x, lambda: sb * x * yb, lambda: sb * yb * yb, lambda: sdb,
                      lambda: sdb * x, lambda: sdb * yb)
            cv2.merge([make() for make in makers[first:first + out.shape[2]]], dst=out[rows])
        self._written[part] = True

    def filter(self, part: int, guide: np.ndarray, *, sigma_r: float,
               weights: list[tuple[np.ndarray, ...]] | None = None) -> None:
        """Write and filter part ``part`` of the sums in place (``weights``: as for :func:`plane_fill`)."""
        if not self._written[part]:
            self._write(part)
        domain_transform(self.sums[part], guide, self.sigma_s, sigma_r, overwrite=True, weights=weights)

    def solve(self, *, ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
        """``(filled, total)`` of :func:`plane_fill`, once every part is filtered."""
        h, wid = self.sums[0].shape[:2]
        filled, total = np.empty((h, wid), np.float32), np.empty((h, wid), np.float32)
        for rows in _bands(h):
            channels = [c for part in self.sums for c in cv2.split(part[rows])]
            filled[rows], total[rows] = _solve(channels, self.x, self.y[rows], np.float32(ridge), self.ref)
        return filled, total


def _bands(h: int, band: int = 64) -> list[slice]:
    """Slices of ``band`` rows covering ``h`` rows."""
    return [slice(r, min(h, r + band)) for r in range(0, h, band)]


def _solve(channels: list[np.ndarray], x: np.ndarray, y: np.ndarray, lam: np.float32,
           ref: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The plane's value at each pixel of a band from its 13 filtered sums: ``(filled, total)`` float32."""
    w0, wx, wy, wd, s0, sx, sy, sxx, sxy, syy, sd, sdx, sdy = channels
    has = w0 > 1e-6
    sloped = has & (s0 > 1e-6)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        safe = np.where(has, w0, np.float32(1.0))
        mean = wd / safe
        cx, cy, cd = sx / s0, sy / s0, sd / s0  # the slope's support: its centre and its covariances
        vxx, vyy, vxy = sxx / s0 - cx * cx + lam, syy / s0 - cy * cy + lam, sxy / s0 - cx * cy
        vxd, vyd = sdx / s0 - cx * cd, sdy / s0 - cy * cd
        det = vxx * vyy - vxy * vxy
        bx, by = (vyy * vxd - vxy * vyd) / det, (vxx * vyd - vxy * vxd) / det
        offset = bx * (x - wx / safe) + by * (y - wy / safe)  # the slope times the pixel's offset from the mean's centre
    offset = np.where(sloped & np.isfinite(offset), offset, np.float32(0.0))
    filled = np.where(has, mean + offset + ref, np.float32(0.0))
    total = np.where(has, w0, np.float32(0.0))
    return filled.astype(np.float32), total.astype(np.float32)
