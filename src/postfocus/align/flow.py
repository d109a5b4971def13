"""Dense refinement of the alignment: local parallax of handheld close-ups.

A global transform cannot register a close-up shot by hand: near and far
content shift differently between frames. DIS optical flow (Kroeger et al. [1]_)
between neighbouring aligned frames, checked both ways and spread smoothly
into untrusted areas, is chained outwards from the reference
(:func:`chain_flows`); pass 2 resamples each full-resolution frame once with
its transform and its flow (:func:`refined_warp`).

References
----------
.. [1] T. Kroeger, R. Timofte, D. Dai and L. Van Gool, "Fast optical flow using
   dense inverse search", ECCV 2016.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = ["DIS_MIN_SIDE", "apply_flow", "chain_flows", "dis_flow", "neighbour_flow", "refined_warp"]

#: OpenCV's DIS flow (5.0) crashes the process on frames less than this tall when they are wide (e.g. 24x128).
DIS_MIN_SIDE = 32


def dis_flow(dis: "cv2.DISOpticalFlow", a8: np.ndarray, b8: np.ndarray) -> np.ndarray:
    """``dis.calc(a8, b8)``, the frames first padded (mirrored) to :data:`DIS_MIN_SIDE` a side and the flow cropped.

    OpenCV's DIS optical flow ends the process with a segmentation fault on a long, thin frame (a
    strip 20 px tall and 256 wide); padding keeps such frames (a cropped strip of a stack, shrunk
    for comparison) out of that path. Frames already large enough are passed as they are.

    Examples
    --------
    >>> a = np.zeros((20, 256), np.uint8)
    >>> dis_flow(cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST), a, a).shape
    (20, 256, 2)
    """
    h, w = a8.shape[:2]
    pad_y, pad_x = max(0, DIS_MIN_SIDE - h), max(0, DIS_MIN_SIDE - w)
    if not (pad_y or pad_x):
        return dis.calc(a8, b8, None)
    a8 = cv2.copyMakeBorder(a8, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT)
    b8 = cv2.copyMakeBorder(b8, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT)
    return np.ascontiguousarray(dis.calc(a8, b8, None)[:h, :w])


def neighbour_flow(a: np.ndarray, b: np.ndarray, *, max_px: float, smooth: float, deadzone: float = 0.35) -> np.ndarray:
    """Residual displacement of ``b`` against ``a`` (both aligned grey, analysis size).

    DIS optical flow both ways on lightly blurred frames (the blur evens out
    their difference in focus); only displacements that agree both ways are
    kept, spread smoothly into the rest by normalised convolution and faded to
    zero where nothing was trusted nearby.

    Returns
    -------
    float32 (h, w, 2) ``f`` with ``a(x) ~ b(x + f(x))``.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    a8 = np.clip(cv2.GaussianBlur(a, (0, 0), 1.0) * 255 + 0.5, 0, 255).astype(np.uint8)
    b8 = np.clip(cv2.GaussianBlur(b, (0, 0), 1.0) * 255 + 0.5, 0, 255).astype(np.uint8)
    fwd = dis_flow(dis, a8, b8)
    bwd = dis_flow(dis, b8, a8)
    h, w = a.shape
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = cv2.remap(bwd, xx + fwd[..., 0], yy + fwd[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    error = np.hypot(fwd[..., 0] + back[..., 0], fwd[..., 1] + back[..., 1])
    size = np.hypot(fwd[..., 0], fwd[..., 1])
    # Trust needs agreement both ways, a plausible size and texture to lock on to.
    gx = cv2.Sobel(a, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(a, cv2.CV_32F, 0, 1, ksize=3)
    texture = cv2.GaussianBlur(gx * gx + gy * gy, (0, 0), 2.0)
    weight = ((error < 0.3 + 0.1 * size) & (size < max_px)).astype(np.float32)
    weight *= np.clip(texture / 2e-3, 0, 1)
    # The flow has to explain something: the difference between the (blurred) frames must
    # shrink clearly when b is moved by it. Where focus alone changed the picture, it does not.
    a1 = a8.astype(np.float32) * np.float32(1 / 255)
    b1 = b8.astype(np.float32) * np.float32(1 / 255)
    moved = cv2.remap(b1, xx + fwd[..., 0], yy + fwd[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    e0 = cv2.GaussianBlur((a1 - b1) ** 2, (0, 0), 3.0)
    e1 = cv2.GaussianBlur((a1 - moved) ** 2, (0, 0), 3.0)
    weight *= np.clip((e0 - e1) / (0.5 * e0 + 1e-5), 0, 1)
    den = cv2.GaussianBlur(weight, (0, 0), smooth)
    out = np.empty_like(fwd)
    for c in range(2):
        out[..., c] = cv2.GaussianBlur(fwd[..., c] * weight, (0, 0), smooth) / np.maximum(den, 0.05)
    out *= np.clip(den / 0.05, 0, 1)[..., None]
    # Sub-threshold displacements are estimation noise between differently focused frames
    # (chained over the sweep it would add up): a non-negative garrote removes them and
    # barely touches real parallax.
    mag2 = out[..., 0] ** 2 + out[..., 1] ** 2
    out *= np.maximum(0.0, 1.0 - np.float32(deadzone * deadzone) / np.maximum(mag2, 1e-12))[..., None]
    return out.astype(np.float32)


def chain_flows(greys: dict[int, np.ndarray], used: Sequence[int], reference: int, *, max_px: float | None = None,
                smooth: float | None = None) -> dict[int, np.ndarray]:
    """Per frame, the displacement ``D_i`` that registers it to the reference pixel by pixel.

    Flows between neighbouring frames of the sweep are chained outwards from
    the reference: ``ref(x) ~ frame_i(x + D_i(x))``.

    Parameters
    ----------
    greys : aligned grey frames (analysis size) by frame number.
    used : frame numbers in sweep order; ``reference`` among them.
    max_px, smooth : largest plausible neighbour displacement and the reach of
        the smoothing (default 2 % of the long edge each).

    Returns
    -------
    {frame: float32 (h, w, 2)}; zeros for the reference.
    """
    order = list(used)
    h, w = greys[order[0]].shape
    long_edge = max(h, w)
    max_px = 0.02 * long_edge if max_px is None else max_px
    smooth = max(2.0, 0.02 * long_edge) if smooth is None else smooth
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    p = order.index(reference)
    out = {reference: np.zeros((h, w, 2), np.float32)}
    for step in (1, -1):
        k = p + step
        while 0 <= k < len(order):
            near, far = order[k - step], order[k]
            f = neighbour_flow(greys[near], greys[far], max_px=max_px, smooth=smooth)
            d = out[near]
            out[far] = d + cv2.remap(f, xx + d[..., 0], yy + d[..., 1], cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
            k += step
    return out


def apply_flow(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample ``image`` (same size as ``flow``) at ``x + flow(x)``."""
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xx + flow[..., 0], yy + flow[..., 1], interpolation, borderMode=cv2.BORDER_REFLECT)


def refined_warp(frame: np.ndarray, matrix: np.ndarray, flow: np.ndarray, size: tuple[int, int],
                 interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Warp a full-resolution frame to the reference with its global transform and a dense refinement.

    ``flow`` is the analysis-size displacement in analysis pixels (reference
    geometry); a single resampling at ``matrix @ (x + flow(x) / scale)``.
    """
    h, w = size
    fh, fw = flow.shape[:2]
    sx, sy = w / fw, h / fh
    dx = cv2.resize(np.ascontiguousarray(flow[..., 0], np.float32), (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(sx)
    dy = cv2.resize(np.ascontiguousarray(flow[..., 1], np.float32), (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(sy)
    dx += np.arange(w, dtype=np.float32)[None, :]
    dy += np.arange(h, dtype=np.float32)[:, None]
    m = np.asarray(matrix, np.float64)
    if abs(m[2, 0]) + abs(m[2, 1]) > 1e-12:
        den = m[2, 0] * dx + m[2, 1] * dy + m[2, 2]
        mx = ((m[0, 0] * dx + m[0, 1] * dy + m[0, 2]) / den).astype(np.float32)
        my = ((m[1, 0] * dx + m[1, 1] * dy + m[1, 2]) / den).astype(np.float32)
    else:
        mx = (np.float32(m[0, 0]) * dx + np.float32(m[0, 1]) * dy + np.float32(m[0, 2])).astype(np.float32)
        my = (np.float32(m[1, 0]) * dx + np.float32(m[1, 1]) * dy + np.float32(m[1, 2])).astype(np.float32)
    del dx, dy
    return cv2.remap(frame, mx, my, interpolation, borderMode=cv2.BORDER_REFLECT)
