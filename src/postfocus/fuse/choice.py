"""A per-pixel choice between the depth-map and pyramid results by the forward-model residual.

At an occlusion edge the two fusions fail differently: the depth-map blend takes whole frames by the
focus index, so where the index's edge lies past the near object's outline the far surface beside it comes
from a frame focused nearer (a smooth band); the pyramid picks its fine bands by contrast per coefficient,
which brings the far surface's texture back there but also takes a near object's blurred light where that
light has hard edges (a clipped highlight's bloom). Which one is right at a pixel is what the frames say:
rendering every frame from each result and its depth (Pentland [1]_, Hasinoff and Kutulakos [2]_;
:func:`postfocus.check.forward.check_frames`) and comparing with the aligned frames gives each result a
residual, and the result with the lower one is taken, with the difference smoothed so that the choice
has no seams.

Near clipped light the forward model is weak: a clipped highlight's light is unknown in the result, so its
bloom in the far frames is brighter than any render from the clipped value. The check can read that light from
the bloom (opt-in ``glints``: :func:`postfocus.check.glints.missing_light`, once, on the depth-map result, the
scene's light being the same for both results) and render it, but that did not make it choose better there; within
the blur reach of clipped light (the stack's blur growth times its span of frames) the depth-map result is kept.

The check runs only over the box where the two results differ, grown by the guard's reach and the
check's own reach (one call per result, the defocus calibrated once).

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987.
.. [2] S. W. Hasinoff and K. N. Kutulakos, "A layer-based restoration framework for variable-aperture
   photography", ICCV 2007 (the defocused near object's light over the far surface).
.. [3] P. J. Burt and E. H. Adelson, "The Laplacian pyramid as a compact image code", IEEE Trans.
   Communications 31(4), 1983 (the pyramid method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

__all__ = ["CLIP_LEVEL", "Choice", "clipped_guard", "differing_box", "residual_choice"]

CLIP_LEVEL = 0.97
"""An aligned frame's value (display-encoded, 0-1) at or above which its light counts as clipped."""

_DIFFER = 2.0 / 255.0  # the two results differ where their smoothed difference exceeds this (any channel)


@dataclass
class Choice:
    """A residual-driven choice and what it was made of.

    Attributes
    ----------
    image : numpy.ndarray
        float32 (H, W, 3): the depth-map result with the pyramid's blended in by ``weight``.
    weight : numpy.ndarray
        float32 (H, W) in [0, 1]: the pyramid's share.
    guard : numpy.ndarray
        bool (H, W): within the blur reach of clipped light (the depth-map result kept).
    box : tuple of int
        (top, left, bottom, right): where the check ran (the two results differ, grown); empty when they agree.
    """

    image: np.ndarray
    weight: np.ndarray
    guard: np.ndarray
    box: tuple[int, int, int, int]


def clipped_guard(clipped: np.ndarray, reach: float) -> np.ndarray:
    """Pixels within ``reach`` px (a disc) of clipped light.

    Parameters
    ----------
    clipped : numpy.ndarray
        bool (H, W): clipped in some aligned frame.
    reach : float
        The largest blur radius of clipped light over the stack, px.

    Returns
    -------
    numpy.ndarray
        bool (H, W).
    """
    clipped = np.asarray(clipped, bool)
    r = int(math.ceil(max(float(reach), 0.0)))
    if r == 0 or not clipped.any():
        return clipped.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(clipped.astype(np.uint8), disc) > 0


def differing_box(a: np.ndarray, b: np.ndarray, *, grow: int, level: float = _DIFFER) -> tuple[int, int, int, int]:
    """The box (top, left, bottom, right) where ``a`` and ``b`` differ by more than ``level`` after a 1 px
    Gaussian (any channel), grown by ``grow`` px and cut to the picture; (0, 0, 0, 0) where they agree."""
    diff = cv2.GaussianBlur(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)), (0, 0), 1.0)
    differ = (diff.max(axis=2) if diff.ndim == 3 else diff) > level
    if not differ.any():
        return (0, 0, 0, 0)
    rows, cols = np.flatnonzero(differ.any(axis=1)), np.flatnonzero(differ.any(axis=0))
    h, w = differ.shape
    return (max(0, int(rows[0]) - grow), max(0, int(cols[0]) - grow),
            min(h, int(rows[-1]) + 1 + grow), min(w, int(cols[-1]) + 1 + grow))


def residual_choice(
    depthmap: np.ndarray,
    pyramid: np.ndarray,
    depth: np.ndarray,
    read: Callable[[int], np.ndarray],
    frames: Sequence[int],
    *,
    clipped: np.ndarray,
    reach: float,
    sigma: float = 2.0,
    margin: float = 0.0,
    width: float = 0.2,
    pixels: int | None = None,
    shared_clipped: bool = True,
    glints: bool = False,
) -> Choice:
    """The depth-map result, with the pyramid's taken where the frames explain it better.

    Parameters
    ----------
    depthmap, pyramid : numpy.ndarray
        float32 (H, W, 3) results of the two fusions, display-encoded, 0-1.
    depth : numpy.ndarray
        float32 (H, W) depth in positions among ``frames`` (frame ``frames[k]`` is sharp at ``k``).
    read : callable
        ``read(i)`` -> float32 (H, W, 3) aligned, exposure-matched frame ``i`` (any size of the same aspect).
    frames : sequence of int
        The frames to render and compare (at least 2).
    clipped : numpy.ndarray
        bool (H, W): clipped (:data:`CLIP_LEVEL`) in some aligned frame.
    reach : float
        Blur radius of the farthest-defocused frame, px (blur growth times the span of frames): the guard's
        radius about clipped light (plus ``2 sigma``), and part of the check's box.
    sigma : float
        Gaussian (px) smoothing the residual difference.
    margin, width : float
        The pyramid is taken from a residual lower by ``margin``, wholly from ``margin + width`` (residual
        units: 1 is a typical error).
    pixels : int, optional
        The check's analysis size for the whole picture (default: the check's); the box gets its share.
    shared_clipped : bool
        Judge both results over the same pixels: the check leaves unjudged the pixels owing light to clipped
        pixels of the result it renders, so each result is rendered with the other's clipped pixels too (a
        result with more clipped pixels, e.g. the pyramid's hard bloom, would be judged over fewer pixels).
    glints : bool
        Read clipped highlights' light from their blur (once, on the depth-map result) and render it in both
        checks (:mod:`postfocus.check.glints`). Off: it did not choose better near clipped light (seventeenth
        session, clip15: unguarded rendered pins 16.19 -> 15.76 at 300x450 but 12.77 -> 13.21 at 480x720).

    Returns
    -------
    Choice
    """
    from postfocus.check.forward import _CLIPPED, DEFAULT_PIXELS, check_frames  # (check reads the store, which reads fuse)

    depthmap = np.asarray(depthmap, np.float32)
    pyramid = np.asarray(pyramid, np.float32)
    h, w = depthmap.shape[:2]
    guard = clipped_guard(clipped, reach + 2.0 * sigma)  # (the smoothed difference reaches 2 sigma further)
    grow = int(math.ceil(reach + 4.0 * sigma)) + 8
    t, l, b, r = differing_box(np.where(guard[..., None], 0.0, depthmap), np.where(guard[..., None], 0.0, pyramid),
                               grow=grow)
    weight = np.zeros((h, w), np.float32)
    if b - t < 16 or r - l < 16:
        return Choice(depthmap.copy(), weight, guard, (t, l, b, r) if b > t else (0, 0, 0, 0))
    share = (b - t) * (r - l) / float(h * w)
    budget = DEFAULT_PIXELS if pixels is None else int(pixels)
    part = max(4096, int(round(budget * share)))

    def read_box(i: int) -> np.ndarray:
        frame = read(i)
        fy, fx = frame.shape[0] / h, frame.shape[1] / w
        return frame[int(round(t * fy)):int(round(b * fy)), int(round(l * fx)):int(round(r * fx))]

    box = np.s_[t:b, l:r]
    dep = np.ascontiguousarray(depth[box], np.float32)
    both = None
    if shared_clipped:
        both = np.maximum(depthmap[box].max(axis=2), pyramid[box].max(axis=2)) >= _CLIPPED
    first = check_frames(np.clip(depthmap[box], 0.0, 1.0), dep, read_box, frames, pixels=part, also_clipped=both,
                         glints=glints)
    second = check_frames(np.clip(pyramid[box], 0.0, 1.0), dep, read_box, frames, pixels=part, model=first.model,
                          also_clipped=both, glints=first.glints if glints else None)
    res = [x.residual if x.rendering is None else x.rendering for x in (first, second)]
    d = cv2.GaussianBlur(res[0] - res[1], (0, 0), sigma)
    wgt = np.clip((d - margin) / width, 0.0, 1.0).astype(np.float32)
    wgt[guard[box]] = 0.0
    weight[box] = wgt
    image = depthmap.copy()
    image[box] += wgt[..., None] * (pyramid[box] - depthmap[box])
    return Choice(image, weight, guard, (t, l, b, r))
