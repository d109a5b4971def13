"""The depth map's edge-aware fill (step 4 of :mod:`postfocus.products.depth`), on one thread or two.

Distrusted pixels (outlier islands, occlusion bands) and weak ones take their depth from the trusted pixels
of their region: a plane fitted by first-order normalised convolution (Knutsson & Westin 1993,
:func:`postfocus.focus.fill.plane_fill`), and where a pixel belongs to one of two surfaces of its colour,
the region's weighted median instead (Ma et al. 2013 with the domain-transform kernel of Gastal & Oliveira
2011, :func:`postfocus.focus.clean.geodesic_median`). The fill and the two medians read the same inputs and
none reads another's result, so with a thread budget of two the work is shared between the calling thread
and a helper: each writes and filters a part of the fill's 13 sums (6 and 7 channels), then the helper makes the
outliers' median while the calling thread solves the fill and makes the bands' median (on ``pcb_depthmap``
about 0.45 s of CPU on each side). The filters' weights depend on the guide only (the fill's and the bands'
median's are the same): :func:`fill_weights` makes them on the helper while the caller still works on the
steps before the fill. Their filters are numpy and OpenCV loops that release the GIL; each array is made by
the same operations on the same values as on one thread, so the depth is the same to the bit. Two medians
filtering at once hold two chunks of levels (on ``pcb_depthmap`` 30 MB each, and 10 MB each for their
filters' weights); the volume's aggregation, let go before the fill
(:func:`~postfocus.products.depth.refine_depth`), makes room for about half of that.

References
----------
H. Knutsson, C.-F. Westin, "Normalized and differential convolution", CVPR 1993.
Z. Ma, K. He, Y. Wei, J. Sun, E. Wu, "Constant time weighted median filtering for stereo matching and
beyond", ICCV 2013.
E. S. L. Gastal, M. M. Oliveira, "Domain transform for edge-aware image and video processing", ACM
Transactions on Graphics 30(4), 2011.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np

from postfocus.focus.clean import domain_weights, geodesic_median
from postfocus.focus.fill import RIDGE, PlaneSums
from postfocus.focus.map import push_pull_fill
from postfocus.pipeline.threads import helper_threads, in_background

__all__ = ["fill_regions", "fill_weights"]

_Weights = list[tuple[np.ndarray, ...]]


def fill_weights(guide: np.ndarray, *, sigma_s: float, sigma_r: float, outlier_sigma_r: float,
                 threads: int | None = None) -> Future:
    """The weights of :func:`fill_regions`' filters, made on a helper thread while the caller goes on.

    Parameters
    ----------
    guide, sigma_s, sigma_r, outlier_sigma_r : as for :func:`fill_regions`.
    threads : thread budget (None: the machine's cores). With 1 nothing is made ahead: the future holds
        ``(None, None)`` and :func:`fill_regions` makes the weights when it needs them, one set at a time.

    Returns
    -------
    concurrent.futures.Future of ``(shared, outliers)``: :func:`~postfocus.focus.clean.domain_weights` of the
    fill and the bands' median (``sigma_r``) and of the outliers' median (``outlier_sigma_r``).
    """
    def make() -> tuple[_Weights | None, _Weights | None]:
        if helper_threads(threads) == 1:
            return None, None
        return domain_weights(guide, sigma_s, sigma_r), domain_weights(guide, sigma_s, outlier_sigma_r)

    return in_background(make, "postfocus-depth-weights", inline=helper_threads(threads) == 1)


def fill_regions(index: np.ndarray, weight: np.ndarray, guide: np.ndarray, *, bands: np.ndarray, weak: np.ndarray,
                 outliers: np.ndarray, surface: np.ndarray | None, sigma_s: float, sigma_r: float,
                 outlier_sigma_r: float, jump: float, plane: bool = True, threads: int | None = None,
                 weights: Future | None = None) -> np.ndarray:
    """The depth each pixel would take from its region: the plane fill, or the region's median where it is owed one.

    Parameters
    ----------
    index : float32 (h, w) depth in slices (the per-pixel fit).
    weight : float32 (h, w) >= 0 how much each depth counts in the fill and the medians.
    guide : float32 (h, w, 3) all-in-focus colours.
    bands : bool (h, w) pixels in an occlusion band (they take their region's median).
    weak : bool (h, w) pixels that take most of their depth from the fill (their region's median where it is
        ``jump`` or more from the fill: their region holds two surfaces).
    outliers : bool (h, w) outlier islands (their region's median, looked for with ``outlier_sigma_r``).
    surface : float32 (h, w) the slope's weights (:func:`~postfocus.focus.fill.plane_fill`'s ``slope_weight``).
    sigma_s, sigma_r : the fill's and the bands' median's reach (px) and colour tolerance.
    outlier_sigma_r : the outliers' median's colour tolerance.
    jump : depth step (slices) between two surfaces.
    plane : fit a plane (False: the weighted mean).
    threads : thread budget (None: the machine's cores; 1: the calling thread only). The result is the same.
    weights : :func:`fill_weights` of the same guide, reach and tolerances, started earlier (default: made here).

    Returns
    -------
    float32 (h, w).
    """
    parallel = helper_threads(threads) > 1
    owed = (bands | weak) & ~outliers
    if weights is None:
        weights = fill_weights(guide, sigma_s=sigma_s, sigma_r=sigma_r, outlier_sigma_r=outlier_sigma_r,
                               threads=threads)
    sums = PlaneSums(index, weight, sigma_s=sigma_s, slope_weight=surface, parts=2 if parallel else 1)
    shared, wide = weights.result()
    if shared is None:  # (one thread: the fill's weights made now, and kept for the bands' median)
        shared = domain_weights(guide, sigma_s, sigma_r)

    def region(mask: np.ndarray, tolerance_r: float, made: _Weights | None) -> np.ndarray | None:
        if not mask.any():
            return None
        return geodesic_median(index, weight, guide, sigma_s=sigma_s, sigma_r=tolerance_r, where=mask, weights=made)

    def filtered_part(part: int) -> None:
        sums.filter(part, guide, sigma_r=sigma_r, weights=shared)

    if parallel:
        # Each thread filters a part of the sums; the fill is solved (and its sums let go) before the medians.
        second = threading.Event()

        def helper_work() -> np.ndarray | None:
            try:
                filtered_part(1)
            finally:
                second.set()
            return region(outliers, outlier_sigma_r, wide)

        helper = in_background(helper_work, "postfocus-depth")
        try:
            filtered_part(0)
            second.wait()
            filled, total = sums.solve(ridge=RIDGE if plane else np.inf)
            sums = None
            owed_median = region(owed, sigma_r, shared)
        finally:
            outlier_median = helper.result()
    else:  # (the bands' median right after the fill: the weights they share let go before the outliers' median)
        filtered_part(0)
        filled, total = sums.solve(ridge=RIDGE if plane else np.inf)
        sums = None
        owed_median = region(owed, sigma_r, shared)
        shared = None
        outlier_median = region(outliers, outlier_sigma_r, wide)
    local = np.where(total > 1e-6, filled, push_pull_fill(index, weight))
    for mask, median, two_surfaces in ((owed, owed_median, True), (outliers, outlier_median, False)):
        if median is not None:
            if two_surfaces:
                mask = mask & (bands | (np.abs(median - local) > jump))
            local = np.where(mask & np.isfinite(median), median, local)
    return local
