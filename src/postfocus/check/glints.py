"""Clipped highlights in the forward-model check: their missing light, read from their blur, and its bounds.

A specular glint can be many times brighter than white; the all-in-focus result holds it clipped, so a frame
rendered from the result lacks the light the glint's blur carries into the other frames (its bloom). Defocus
moves light but neither makes nor loses it (the point-spread function sums to one, Pentland [1]_): over a
region ``R`` holding a clipped patch's blur disc in a frame focused well away from it, the frame's sum
exceeds the sharp image's by the light the patch lost to clipping (the light crossing ``R``'s border in and out
about cancels), as long as the frame does not clip in ``R`` itself (Debevec and Malik [2]_ read light beyond
the sensor's range from other exposures; here the other "exposure" is the defocus spreading it).
:func:`missing_light` reads it from the two frames focused farthest from the patch (the widest, dimmest blur),
and spreads it evenly over the patch (only its total matters for the light it spreads into other frames).

The estimate is not exact (the light's place inside the patch is unknown, the border's in and out flows
do not cancel exactly), so the check renders the missing light at :data:`LOW` and :data:`HIGH` times the
estimate and counts only a frame's distance from that interval (:func:`interval_difference`); the
rendered frame clips at white as the camera does. Patches whose light cannot be read (every such frame
clips over the region) stay as before: the frames are then only a lower bound.

Opt-in (``check_frames(glints=True)``, ``residual_choice(glints=True)``): on pcb the reading raised ``postfocus
check``'s flagged share from 2.42 % to 3.01 %, partly at clipped glints where the light's place inside the patch
(spread evenly here) matters, and it did not make the residual choice choose better near clipped light
(docs/quality.md, seventeenth session, clip15), so neither default changed.

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE TPAMI 9(4), 1987.
.. [2] P. E. Debevec and J. Malik, "Recovering high dynamic range radiance maps from photographs",
   SIGGRAPH 1997.
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from postfocus.colour import gamma_decode, gamma_encode

__all__ = ["HIGH", "LOW", "interval_difference", "missing_light"]

LOW = 0.75
"""The least share of the estimated missing light a rendered frame is given (below, :data:`HIGH`)."""

HIGH = 1.5
"""The most share of the estimated missing light a rendered frame is given (on the rendered pins the reading is
0.8-1.1 of the truth's; of the intervals 0.5-4, 0.5-2, 0.75-1.5 and 0.9-1.2 this one let the residual choice
take the fewest wrong pixels there)."""

_FRAME_CLIPPED = 0.97  # a frame's value (display-encoded) from which it may be clipped itself
_SPREAD = 1e-3  # a pixel holds a patch's light where the patch's blurred shape there exceeds this share of its peak
_AWAY = 2.0  # frames: a frame this near a patch's focus does not spread its light far enough to read it
_SEEN = 0.1  # the share of a patch's light that must fall on a frame's unclipped pixels to read it there


def missing_light(linear: np.ndarray, clipped: np.ndarray, depth: np.ndarray, frames: Sequence[int],
                  render: Callable[[int, np.ndarray], np.ndarray],
                  read: Callable[[int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The light each clipped patch of the sharp image lost, per pixel, and the patches where it is unknown.

    The frames focused farthest from the patches (the first and the last) are rendered with one more plane,
    ``1 / size`` on each patch (its light's shape, sum 1 a patch); where a frame does not clip, the frame less
    the render is that plane's blur times the patch's missing light ``E`` (least squares over both frames'
    unclipped pixels nearest the patch, one ``E`` a patch; as :class:`postfocus.fuse.clipped.ClippedLight`
    fits it at full size during the fusion).

    Parameters
    ----------
    linear : numpy.ndarray
        float32 (h, w, 3) the sharp image in linear light, analysis size.
    clipped : numpy.ndarray
        bool (h, w): its clipped pixels.
    depth : numpy.ndarray
        float32 (h, w) depth in frame numbers (frame ``i`` is sharp at ``i``).
    frames : sequence of int
        The frames of the check.
    render : callable
        ``render(i, plane)`` -> float32 (h, w, 3 + 1) frame ``i`` rendered in linear light from the sharp image
        with the extra plane ``plane`` (float32 (h, w)) rendered alike.
    read : callable
        ``read(i)`` -> float32 (h, w, 3) frame ``i``, display-encoded, analysis size, exposure-matched.

    Returns
    -------
    excess : numpy.ndarray
        float32 (h, w): linear light to add to each pixel of a patch whose light was read (grey: the same in
        every channel), 0 elsewhere.
    unknown : numpy.ndarray
        bool (h, w): clipped pixels whose light could not be read.
    """
    h, w = clipped.shape
    excess = np.zeros((h, w), np.float32)
    unknown = np.asarray(clipped, bool).copy()
    count, labels, stats, _ = cv2.connectedComponentsWithStats(unknown.astype(np.uint8), connectivity=8)
    if count < 2:
        return excess, unknown
    unit = (1.0 / stats[:, cv2.CC_STAT_AREA].astype(np.float32))[labels]
    unit[labels == 0] = 0.0
    # every pixel belongs to the nearest patch (its light there is mostly that patch's)
    _, nearest = cv2.distanceTransformWithLabels((labels == 0).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(labels)
    owner = np.zeros(int(nearest.max()) + 1, np.int32)
    owner[nearest[ys, xs]] = labels[ys, xs]
    owner = owner[nearest]
    at = np.array([0.0] + [float(np.median(depth[labels == k])) for k in range(1, count)])
    span = float(max(frames) - min(frames))
    level = (1.0 / stats[:, cv2.CC_STAT_AREA].astype(np.float32))[owner]  # each pixel's patch's peak of ``unit``
    num = np.zeros(count, np.float64)
    den = np.zeros(count, np.float64)
    for j in sorted({int(frames[0]), int(frames[-1])}):
        out = render(j, unit)
        frame = np.clip(read(j), 0.0, 1.0)
        m = out[..., 3]
        use = (frame.max(axis=2) < _FRAME_CLIPPED) & (m > _SPREAD * level) & (labels == 0)
        rest = (gamma_decode(frame) - out[..., :3]).mean(axis=2)
        seen = np.bincount(owner[use], m[use], count) >= _SEEN  # enough of the patch's light on unclipped pixels
        seen &= np.abs(at - j) >= max(_AWAY, 0.5 * span)  # and a frame far from the patch's focus
        num += np.where(seen, np.bincount(owner[use], (m * rest)[use], count), 0.0)
        den += np.where(seen, np.bincount(owner[use], (m * m)[use], count), 0.0)
    known = den > 0
    light = np.where(known, np.maximum(num, 0.0) / np.maximum(den, 1e-30), 0.0)
    known[0] = False
    excess = np.where(labels > 0, light[labels] * unit, 0.0).astype(np.float32)
    unknown &= ~known[labels]
    return excess, unknown


def interval_difference(linear: np.ndarray, light: np.ndarray, gain: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Per pixel and channel, how far ``frame`` lies outside the renders with :data:`LOW` to :data:`HIGH` of ``light``.

    Parameters
    ----------
    linear : numpy.ndarray
        float32 (h, w, 3) the rendered frame without the missing light, linear.
    light : numpy.ndarray
        float32 (h, w) the missing light as rendered (its blur in this frame), linear.
    gain : numpy.ndarray
        float32 (3,) exposure factor per channel.
    frame : numpy.ndarray
        float32 (h, w, 3) the recorded frame, display-encoded.

    Returns
    -------
    numpy.ndarray
        float32 (h, w, 3), signed: the render's excess over the frame (positive) or shortfall (negative), 0 inside
        the interval; the renders clip at white as the camera does.

    Examples
    --------
    >>> lin = np.full((1, 1, 3), 0.2, np.float32); light = np.full((1, 1), 0.2, np.float32)
    >>> frame = gamma_encode(np.full((1, 1, 3), 0.4, np.float32))
    >>> float(np.abs(interval_difference(lin, light, np.ones(3, np.float32), frame)).max())
    0.0
    """
    low = np.minimum(gamma_encode(linear + np.float32(LOW) * light[..., None]) * gain, 1.0)
    high = np.minimum(gamma_encode(linear + np.float32(HIGH) * light[..., None]) * gain, 1.0)
    return np.maximum(low - frame, 0.0) - np.maximum(frame - high, 0.0)
