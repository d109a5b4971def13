"""The check's yardstick: the typical error of a pixel's contrast, how many frames a residual averages, regions.

A rendered frame never matches a recorded one exactly (the point-spread function is not exactly a disc,
alignment is not exact), and the more texture a window holds, the larger its error: the check divides a
pixel's error by the median error of pixels of the same local contrast in the same frame
(:func:`_typical_error`), so a residual reads "times the typical error" (Subbarao and Surya [1]_ compare
defocused windows in the same local, contrast-normalised way).

References
----------
.. [1] M. Subbarao and G. Surya, "Depth from defocus: a spatial domain approach", IJCV 13(3), 1994.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from postfocus.errors import PostfocusError

__all__ = ["worst_regions"]

_WINDOW = 2  # half-size of the window a difference is averaged over (analysis px)
_BINS = 16


def _top_count(frames: int) -> int:
    """How many of a pixel's worst frames its residual averages: an eighth of the frames, at least 2.

    A wrong pixel contradicts the frames focused near its true depth and
    those near its wrong one, not all: a mean over every frame would dilute
    it, the single worst frame would catch every frame's noise.
    """
    return max(2, math.ceil(frames / 8))


def _rgb(image: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3): grey pictures repeated over three channels, alpha dropped."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise PostfocusError(f"a picture of shape {image.shape} is neither grey nor RGB")
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]


def _contrast(grey: np.ndarray) -> np.ndarray:
    """Local mean gradient magnitude over the comparison window."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    k = 2 * _WINDOW + 1
    return cv2.boxFilter(cv2.magnitude(gx, gy), -1, (k, k), borderType=cv2.BORDER_REFLECT)


def _typical_error(error: np.ndarray, contrast: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The median error of ``valid`` pixels of each contrast, as a non-decreasing function of contrast, per pixel."""
    step = max(1, int(math.sqrt(error.size / 40_000)))
    keep = valid[::step, ::step].ravel()
    if keep.sum() < 100:
        keep = np.ones_like(keep)
    e, c = error[::step, ::step].ravel()[keep], contrast[::step, ::step].ravel()[keep]
    edges = np.unique(np.quantile(c, np.linspace(0.0, 1.0, _BINS + 1)))
    if edges.size < 2:
        return np.full_like(error, max(float(np.median(e)), 1e-4))
    which = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, edges.size - 2)
    centres, medians = [], []
    for b in range(edges.size - 1):
        sel = which == b
        if sel.any():
            centres.append(float(np.median(c[sel])))
            medians.append(float(np.median(e[sel])))
    floor = max(medians[0], 0.5 / 255.0)  # noise and quantisation: never expect less than this
    medians = np.maximum.accumulate(np.maximum(medians, floor))
    return np.interp(contrast, centres, medians).astype(np.float32)


def worst_regions(residual: np.ndarray, level: float, scale: float = 1.0, count: int = 5) -> list[dict]:
    """The largest connected areas above ``level``, as boxes in output pixels, worst first.

    Parameters
    ----------
    residual : np.ndarray
        float32 (h, w) residual map.
    level : float
        Flag level.
    scale : float
        Size of ``residual`` / output size (boxes are given in output pixels).
    count : int
        At most this many regions.

    Returns
    -------
    list of dict
        ``{"x", "y", "width", "height", "peak", "mean", "area"}``; ``area`` is the share of the picture.

    Examples
    --------
    >>> r = np.ones((20, 20), np.float32); r[5:9, 10:15] = 6.0
    >>> worst_regions(r, 3.0)[0]["x"], worst_regions(r, 3.0)[0]["width"]
    (10, 5)
    """
    mask = (residual > level).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    excess = np.maximum(residual - 1.0, 0.0)
    mass = np.bincount(labels.ravel(), weights=excess.ravel(), minlength=n)
    out = []
    for j in sorted(range(1, n), key=lambda j: -mass[j])[:count]:
        x, y, bw, bh, area = (int(v) for v in stats[j])
        sel = labels[y : y + bh, x : x + bw] == j
        values = residual[y : y + bh, x : x + bw][sel]
        out.append({"x": int(x / scale), "y": int(y / scale), "width": int(math.ceil(bw / scale)),
                    "height": int(math.ceil(bh / scale)), "peak": round(float(values.max()), 2),
                    "mean": round(float(values.mean()), 2), "area": round(area / residual.size, 5)})
    return out
