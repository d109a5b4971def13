"""Comparing two aligned frames of a sweep: the change that focus explains, the change a displacement explains.

:func:`pair_change` is step 1 of the detection (see :mod:`postfocus.motion`),
:func:`displacement_change` step 2 and :func:`coarse_change` step 3. A frame's
blurs (:func:`blur_stats`) and its low-passed light (:func:`coarse_light`)
serve every pair it is in.

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE Trans. PAMI 9(4), 1987
   (defocus as a convolution with a blur kernel growing with the distance to the focal plane:
   a change of focus low-passes the picture and moves no structure).
.. [2] T. Kroeger, R. Timofte, D. Dai and L. Van Gool, "Fast optical flow using dense
   inverse search", ECCV 2016 (``cv2.DISOpticalFlow``).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

from postfocus.align.flow import dis_flow
from postfocus.colour import gamma_decode

__all__ = ["COARSE_SIGMA", "JITTER", "MIN_SHIFT", "SIGMAS", "WINDOW", "Stats", "blur_stats", "coarse_change", "coarse_light",
           "displacement_change", "local_mean", "pair_change", "texture_level"]

# Blurs (analysis pixels) tried to equalise the focus of two neighbouring frames.
SIGMAS = (0.0, 0.6, 1.2, 1.9, 2.8, 4.0, 5.6)
WINDOW = 7
COARSE_SIGMA = 1.5  # smallest scale (comparison px) of the coarse-light check
MIN_SHIFT = 0.5  # displacement (comparison px) below which a flow is no evidence; full weight from 1.5 px
JITTER = 3.0  # a subject's displacement counts beyond this many times the scene's median one


def local_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over a ``window`` x ``window`` box, edges reflected."""
    return cv2.boxFilter(x, -1, (window, window), borderType=cv2.BORDER_REFLECT)


class Stats(NamedTuple):
    """The blurs of one frame (:func:`blur_stats`), kept for both pairs the frame is in."""

    blurred: list[np.ndarray]  # the frame blurred with each sigma (the first: sigma 0, the frame itself)
    mean: list[np.ndarray]  # local mean of each blur
    spread: list[np.ndarray]  # local variance of each blur, at least 1e-9 (what a fit divides by)
    var: np.ndarray  # local variance of the frame itself


def blur_stats(g: np.ndarray, sigmas: Sequence[float] = SIGMAS, window: int = WINDOW) -> Stats:
    """Each blur of ``g`` with its local mean and variance (see :class:`Stats`)."""
    blurred, means, spreads, var0 = [], [], [], None
    for s in sigmas:
        x = g if s <= 0 else cv2.GaussianBlur(g, (0, 0), s, borderType=cv2.BORDER_REFLECT)
        m = local_mean(x, window)
        var = np.maximum(local_mean(x * x, window) - m * m, 0)
        var0 = var if var0 is None else var0
        blurred.append(x)
        means.append(m)
        spreads.append(np.maximum(var, np.float32(1e-9)))
    return Stats(blurred, means, spreads, var0)


def coarse_light(grey: np.ndarray, sigma: float = COARSE_SIGMA,
                 linear: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One frame's part of :func:`coarse_change`: its light low-passed at ``sigma`` and the local variance of that.

    ``linear``: ``gamma_decode(grey)`` if already made.
    """
    low = cv2.GaussianBlur(gamma_decode(grey) if linear is None else linear, (0, 0), sigma)
    m = local_mean(low, int(4 * sigma) | 1)
    return low, np.maximum(local_mean(low * low, int(4 * sigma) | 1) - m * m, 0)


def coarse_change(a: np.ndarray, b: np.ndarray, sigma: float = COARSE_SIGMA,
                  light: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
                  ) -> np.ndarray:
    """Change of the light distribution at a scale coarser than the focus step, relative to its contrast.

    Defocus moves light around only locally and keeps its total (in linear
    light): low-passed well beyond the blur step between neighbours, two frames
    of a still scene agree even where defocus rings or bright halos (microscopes,
    bokeh) defeat the fine comparison. A flame or a moving object changes the
    coarse picture too.

    ``light``: ``(coarse_light(a, sigma), coarse_light(b, sigma))`` if already made
    (a frame's is the same for both its pairs when they use the same ``sigma``).

    Returns
    -------
    float32 (h, w) >= 0: mean square difference of the low-passed frames over a
    window of ``4 sigma``, over their local variance there.
    """
    (la, va), (lb, vb) = light if light is not None else (coarse_light(a, sigma), coarse_light(b, sigma))
    return (local_mean((la - lb) ** 2, int(4 * sigma) | 1) / (va + vb + np.float32(1e-4))).astype(np.float32)


def pair_change(
    a: np.ndarray,
    b: np.ndarray,
    *,
    noise: float = 0.0,
    sigmas: Sequence[float] = SIGMAS,
    window: int = WINDOW,
    blurred: tuple[Stats, Stats] | None = None,
    blur_out: list | None = None,
) -> np.ndarray:
    """How much of the difference between two aligned grey frames focus cannot explain.

    For every blur ``s`` and both directions, the blurred frame ``x`` predicts
    the other frame ``y`` locally with a non-negative gain and an offset (a
    linear fit over the window; the gain and offset absorb the brightness a
    clipped highlight or a bokeh disc gains or loses with focus). The part of
    ``y``'s local variance left unexplained, ``var(y) (1 - rho+^2)``, relative to
    ``var(y)`` plus a noise floor, is minimised over blurs and directions.

    Parameters
    ----------
    a, b : float32 (h, w) aligned grey frames in [0, 1].
    noise : sensor noise sigma of the frames.
    sigmas : Gaussian blurs tried on each frame.
    window : side of the local window.
    blurred : precomputed ``(blur_stats(a), blur_stats(b))``.
    blur_out : if given, receives the float32 (h, w) blur sigma that explained each pixel best.

    Returns
    -------
    float32 (h, w) in [0, 1]: ~0 where one frame is a blur of the other, ~1
    for unrelated content.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (0, 0), 1.0)
    >>> float(pair_change(a, cv2.GaussianBlur(a, (0, 0), 1.5)).mean()) < 0.05
    True
    >>> float(pair_change(a, a[::-1].copy()).mean()) > 0.5
    True
    """
    sa = blurred[0] if blurred is not None else blur_stats(a, sigmas, window)
    sb = blurred[1] if blurred is not None else blur_stats(b, sigmas, window)
    n2 = np.float32(noise * noise)
    zero = np.float32(0)
    # Scratch arrays, reused for every blur (fresh ones each time cost more than the arithmetic).
    product, cov = np.empty_like(sa.var), np.empty_like(sa.var)
    better = np.empty(sa.var.shape, bool)

    def fit(x: np.ndarray, mean_x: np.ndarray, y: np.ndarray, mean_y: np.ndarray) -> np.ndarray:
        """The local covariance of x and y, negative values 0, squared (in ``cov``)."""
        cv2.boxFilter(np.multiply(x, y, out=product), -1, (window, window), dst=cov, borderType=cv2.BORDER_REFLECT)
        np.subtract(cov, np.multiply(mean_x, mean_y, out=product), out=cov)
        return np.square(np.maximum(cov, zero, out=cov), out=cov)

    # The unblurred frames' covariance is the same in both directions.
    square0 = fit(sa.blurred[0], sa.mean[0], sb.blurred[0], sb.mean[0]).copy()
    results = []
    for own, other in ((sa, sb), (sb, sa)):
        # ``other``'s unblurred frame y is predicted by each blur x of ``own``: the best blur
        # explains the most variance, cov(x, y)^2 / var(x).
        y, mean_y, var_y = other.blurred[0], other.mean[0], other.var
        explained = square0 / own.spread[0]
        best = np.zeros(a.shape, np.uint8) if blur_out is not None else None  # the first blur that explains most
        for k in range(1, len(own.blurred)):
            q = np.divide(fit(own.blurred[k], own.mean[k], y, mean_y), own.spread[k], out=cov)
            if best is not None:  # blurs come in order: the last one to explain more is the best
                np.maximum(best, np.greater(q, explained, out=better).view(np.uint8) * np.uint8(k), out=best)
            np.maximum(explained, q, out=explained)
        # The floor keeps flat areas (only noise, nothing to see) quiet.
        r = np.maximum(var_y - explained - np.float32(0.5) * n2, zero) / (var_y + np.float32(4 * n2 + 2.5e-4))
        results.append((r, best))
    (r0, c0), (r1, c1) = results
    if blur_out is not None:
        blur_out.append(np.asarray(sigmas, np.float32)[np.where(r1 < r0, c1, c0)])
    return np.clip(np.minimum(r0, r1), 0.0, 1.0).astype(np.float32)


def _eight_bit_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both frames stretched by one common range (0.5-99.5th percentile) to 8 bits, as DIS flow takes them."""
    lo, hi = np.percentile(np.concatenate([a[::2, ::2].ravel(), b[::2, ::2].ravel()]), [0.5, 99.5])
    scale = np.float32(255.0 / max(float(hi - lo), 1e-3))
    return tuple(cv2.convertScaleAbs(x, alpha=float(scale), beta=float(-lo * scale)) for x in (a, b))


def displacement_change(
    a: np.ndarray,
    b: np.ndarray,
    change: np.ndarray,
    *,
    noise: float = 0.0,
    stats_a: Stats | None = None,
    stats_b: Stats | None = None,
    at_least: float = 0.0,
    flow: "cv2.DISOpticalFlow | None" = None,
    texture: tuple[np.floating, np.floating] | None = None,
) -> np.ndarray:
    """How much of the change between two aligned frames a local displacement explains.

    A change of focus is a change of blur: it keeps the local mean and moves
    no structure, so between aligned frames of a still scene the optical flow
    is about zero and compensating it explains nothing that a blur does not
    already explain ([1]_). A moving subject displaces its structure: once
    ``b`` is warped back along the flow from ``a`` to ``b`` (DIS optical
    flow, [2]_), the blur-equalised comparison (:func:`pair_change`) of ``a``
    with it is much smaller than ``change``, the same comparison without the
    warp; and the same seen from ``b`` (what ``a`` covers, ``b`` shows moved, and
    the other way round). The larger difference, weighted by how far the flow moves, is the evidence.
    A subject moves against a scene that stands still: the displacement counts
    beyond the scene's own, what shake and parallax left after the global
    alignment (:data:`JITTER` times the median displacement of the textured
    half of the picture, at least :data:`MIN_SHIFT`), with full weight one
    pixel further. On flat content the flow is arbitrary, but there is nothing
    to explain either (``change`` ~ 0).

    Parameters
    ----------
    a, b : float32 (h, w) aligned grey frames in [0, 1], at a size where the
        movement between them is a few pixels.
    change : ``pair_change(a, b)``.
    noise : sensor noise sigma of the frames.
    stats_a, stats_b : ``blur_stats(a)``, ``blur_stats(b)`` if already made.
    at_least : evidence at most this large may be left 0 (it is only computed where ``change`` exceeds it).
    flow : a ``cv2.DISOpticalFlow`` to reuse (default: a new one, preset fast).
    texture : ``(texture_level(stats_a), texture_level(stats_b))`` if already made.

    Returns
    -------
    float32 (h, w) in [0, 1]: ~0 for a still scene, up to 1 where a moving
    structure explains the change.

    References
    ----------
    .. [1] Pentland 1987 (see the module).
    .. [2] Kroeger et al. 2016 (see the module).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = cv2.GaussianBlur(rng.random((80, 80)).astype(np.float32), (0, 0), 1.5)
    >>> b = a.copy(); b[25:55, 25:55] = a[25:55, 21:51]  # a patch moved 4 px to the right
    >>> m = displacement_change(a, b, pair_change(a, b))
    >>> float(np.median(m[30:50, 30:50])) > 0.5, float(m[:20].max()) == 0
    (True, True)
    >>> c = cv2.GaussianBlur(a, (0, 0), 1.5)
    >>> float(displacement_change(a, c, pair_change(a, c)).max()) < 0.1
    True
    """
    flow = flow if flow is not None else cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    qa, qb = _eight_bit_pair(a, b)
    sa = stats_a if stats_a is not None else blur_stats(a)
    sb = stats_b if stats_b is not None else blur_stats(b)
    ta, tb = texture if texture is not None else (None, None)
    one = _explained(qa, qb, b, sa, change, noise, flow, at_least, ta)
    if one is None:  # nothing moved beyond the jitter where it changed: nor will it seen from b
        return np.zeros(change.shape, np.float32)
    other = _explained(qb, qa, a, sb, change, noise, flow, at_least, tb)
    return one if other is None else np.maximum(one, other, out=one)


def texture_level(stats: Stats) -> np.floating:
    """The median local variance of a frame (of every other pixel): above it, a pixel is textured
    (:func:`displacement_change` judges the scene's own displacement there).

    Parameters
    ----------
    stats : Stats
        The frame's :func:`blur_stats`.

    Returns
    -------
    NumPy float scalar of the variance's type (compared with it as such).
    """
    return np.percentile(stats.var[::2, ::2], 50)  # (its own type: the comparison stays as it was)


def _explained(qa: np.ndarray, qb: np.ndarray, b: np.ndarray, sa: Stats, change: np.ndarray, noise: float,
               flow: "cv2.DISOpticalFlow", at_least: float, texture: np.floating | None = None) -> np.ndarray | None:
    """:func:`displacement_change` seen from the first frame (its geometry): ``b`` warped onto it.

    Compared only inside the box of the pixels that moved beyond the jitter and changed by
    more than ``at_least`` (the rest cannot score more), with the reach of the blurs around it;
    None if there is no such pixel.
    """
    f = dis_flow(flow, qa, qb)  # (padded: OpenCV's DIS crashes on a thin strip)
    shift = cv2.magnitude(f[..., 0], f[..., 1])
    textured = sa.var > (texture_level(sa) if texture is None else texture)
    floor = max(MIN_SHIFT, JITTER * float(np.median(shift[textured]))) if textured.any() else MIN_SHIFT
    ys, xs = np.nonzero((shift > floor) & (change > at_least))
    if ys.size == 0:
        return None
    out = np.zeros(change.shape, np.float32)
    h, w = change.shape
    pad = WINDOW // 2 + int(np.ceil(3 * SIGMAS[-1])) + 1
    box = np.s_[max(0, ys.min() - pad) : min(h, ys.max() + 1 + pad), max(0, xs.min() - pad) : min(w, xs.max() + 1 + pad)]
    grid = np.indices(change.shape, np.float32)[::-1]
    where = np.dstack([f[..., 0][box] + grid[0][box], f[..., 1][box] + grid[1][box]])
    warped = cv2.remap(b, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    crop = Stats([x[box] for x in sa.blurred], [x[box] for x in sa.mean], [x[box] for x in sa.spread], sa.var[box])
    compensated = pair_change(crop.blurred[0], warped, noise=noise, blurred=(crop, blur_stats(warped)))
    weight = np.clip(shift[box] - np.float32(floor), 0, 1)
    out[box] = np.maximum(change[box] - compensated, 0) * weight
    return out
