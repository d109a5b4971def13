"""The forward-model check: does the result, blurred as the lens blurs, give back the frames?

An all-in-focus image and its depth map say what every frame of the sweep
should look like: each pixel blurred by the disc its distance from the frame's
focal plane gives (:mod:`postfocus.check.defocus`, calibrated from the stack
itself), near layers laid over far ones (:func:`postfocus.synth.optics.render_defocus`:
a defocused occluder spreads over what lies behind it, a sharp one does not).
:func:`check_frames` renders every frame that way at a reduced analysis size,
matches its exposure to the aligned frame, and measures the difference in a
small window. The difference of a pixel is divided by what pixels of the same
local contrast in the same frame typically show (texture is never rendered
perfectly: the point-spread function is not exactly a disc, alignment is not
exact), so the residual map reads "times the typical error"; the frames are
combined by their root mean square. A halo, a fleck or a wrong depth is a place
where the result contradicts the frames: there the residual is many times 1.

References
----------
Pentland, A. P. (1987). A new sense for depth of field. IEEE TPAMI 9(4), 523-531.
Subbarao, M., & Surya, G. (1994). Depth from defocus: a spatial domain approach. IJCV 13(3), 271-294.
Hasinoff, S. W., & Kutulakos, K. N. (2007). A layer-based restoration framework for variable-aperture
photography. ICCV (layered, occlusion-aware defocus compositing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from postfocus.check.defocus import DefocusModel, calibrate
from postfocus.colour import gamma_decode, gamma_encode, to_grey
from postfocus.errors import OptionError, PostfocusError
from postfocus.synth import optics

__all__ = ["CheckResult", "DEFAULT_PIXELS", "FLAG_LEVEL", "check_frames", "render_frame", "worst_regions"]

DEFAULT_PIXELS = 600_000
"""Pixels of the analysis size the frames are rendered and compared at."""

FLAG_LEVEL = 3.0
"""A pixel whose residual is this many times the typical error of its contrast is flagged."""

_WINDOW = 2  # half-size of the window a difference is averaged over (analysis px)
_MAX_LAYERS = 24
_BINS = 16


@dataclass
class CheckResult:
    """How well an all-in-focus image and its depth explain the frames.

    Attributes
    ----------
    residual : np.ndarray
        float32 (H, W), output geometry: root mean square over the frames of
        the rendering error divided by the typical error of pixels of the same
        contrast in that frame; about 1 where the result is consistent, many
        times 1 at halos, flecks and wrong depths.
    per_frame : dict of int to float
        Per frame number: mean absolute difference between the rendered and the
        aligned frame, in 8-bit levels (after exposure matching).
    flagged_per_frame : dict of int to float
        Per frame number: share of pixels whose error exceeds :data:`FLAG_LEVEL` times the typical error.
    model : DefocusModel
        The defocus the frames were rendered with (output pixels per frame).
    summary : dict
        ``flagged`` (share of pixels with residual above ``level``), ``level``,
        ``median``, ``p99`` of the residual, ``regions``: the worst flagged
        regions, largest first, as ``{"x", "y", "width", "height", "peak", "mean"}``
        in output pixels, ``scale`` (analysis size / output size), ``frames``.
    """

    residual: np.ndarray
    per_frame: dict[int, float]
    flagged_per_frame: dict[int, float]
    model: DefocusModel
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Everything but the residual map, as plain JSON numbers."""
        return {
            **self.summary,
            "model": self.model.as_dict(),
            "per_frame": {str(i): round(v, 3) for i, v in self.per_frame.items()},
            "flagged_per_frame": {str(i): round(v, 5) for i, v in self.flagged_per_frame.items()},
        }


def render_frame(premult: np.ndarray, slabs: optics.Slabs, slab_depth: np.ndarray, model: DefocusModel,
                 index: float, kernels: optics.KernelCache | None = None) -> np.ndarray:
    """Frame ``index`` as the sharp image and its depth predict it, in linear light.

    Parameters
    ----------
    premult : np.ndarray
        float32 (4, h, w) linear RGB and alpha (:func:`postfocus.synth.optics.premultiply`).
    slabs : optics.Slabs
        The depth slabs of the canvas.
    slab_depth : np.ndarray
        (layers,) depth of each slab in frame numbers (NaN: empty).
    model : DefocusModel
        Blur radius per frame distance, in pixels of this canvas.
    index : float
        The frame number (focal plane).
    kernels : optics.KernelCache, optional
        Shared disc kernels.

    Returns
    -------
    np.ndarray
        float32 (h, w, 3) linear light.
    """
    radii = model.radius(index - np.nan_to_num(np.asarray(slab_depth, np.float64), nan=index))
    return optics.render_defocus(premult, slabs, radii, kernels)


def check_frames(
    image: np.ndarray,
    depth: np.ndarray,
    read: Callable[[int], np.ndarray],
    frames: Sequence[int],
    *,
    confidence: np.ndarray | None = None,
    model: DefocusModel | None = None,
    pixels: int = DEFAULT_PIXELS,
    level: float = FLAG_LEVEL,
    progress: Callable[[str, int, int], None] | None = None,
) -> CheckResult:
    """Render every frame from ``image`` and ``depth`` and measure where the frames disagree.

    Parameters
    ----------
    image : np.ndarray
        float32 (H, W, 3) all-in-focus image in [0, 1] (display-encoded), output geometry.
    depth : np.ndarray
        float32 (H, W) depth in frame numbers in the frames' own order (frame ``i`` is sharp at depth ``i``).
    read : callable
        ``read(i)`` -> float32 (H, W, 3) aligned, exposure-matched frame ``i`` (any size of the same aspect).
    frames : sequence of int
        Frame numbers to render and compare (at least 2).
    confidence : np.ndarray, optional
        float32 (H, W) in [0, 1]: trust in ``depth``; only trusted pixels calibrate the defocus.
    model : DefocusModel, optional
        Use this defocus instead of calibrating one (output pixels per frame).
    pixels : int
        Analysis size in pixels (the residual is upsampled to (H, W)).
    level : float
        Residual above which a pixel counts as flagged.
    progress : callable, optional
        ``progress(stage, done, total)``.

    Returns
    -------
    CheckResult

    Raises
    ------
    PostfocusError
        Image and depth of different sizes, or fewer than 2 frames.

    References
    ----------
    Pentland (1987); Subbarao & Surya (1994); Hasinoff & Kutulakos (2007).
    """
    image = np.asarray(image, np.float32)
    depth = np.asarray(depth, np.float32)
    if image.ndim != 3 or image.shape[2] < 3 or depth.shape != image.shape[:2]:
        raise PostfocusError(f"image {image.shape} and depth {depth.shape} do not match")
    frames = [int(i) for i in frames]
    if len(frames) < 2:
        raise OptionError("frames", frames, "the check needs at least 2 frames")
    big_h, big_w = depth.shape
    scale = min(1.0, math.sqrt(pixels / float(big_h * big_w)))
    h, w = max(8, round(big_h * scale)), max(8, round(big_w * scale))
    scale = w / big_w

    def small(x: np.ndarray, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        return x if x.shape[:2] == (h, w) else cv2.resize(x, (w, h), interpolation=interpolation)

    img = np.clip(small(image[..., :3]), 0.0, 1.0)
    dep = small(depth, cv2.INTER_NEAREST)  # depth edges stay edges: no made-up middle layers
    linear = gamma_decode(img)
    grey = to_grey(linear)
    if model is None:
        weight = small(confidence) if confidence is not None else None
        mean = max(float(grey.mean()), 1e-6)

        def read_grey(i: int) -> np.ndarray:
            g = to_grey(gamma_decode(np.clip(small(read(i)[..., :3]), 0.0, 1.0)))
            return g * np.float32(mean / max(float(g.mean()), 1e-6))

        model = calibrate(grey, dep, read_grey, frames, weight=weight, scale=scale)
    local = model.scaled(scale)
    lo, hi = float(dep.min()), float(dep.max())
    slope = max(local.near_slope, local.far_slope, 1e-6)
    layers = int(min(_MAX_LAYERS, max(1, math.ceil((hi - lo) * slope / 0.75) + 1)))
    labels, slab_depth = optics.slab_labels(dep - np.float32(lo), hi - lo, layers)
    slab_depth = slab_depth + lo
    slabs = optics.Slabs(labels, layers)
    premult = optics.premultiply(linear)
    kernels = optics.KernelCache()

    sum_sq = np.zeros((h, w), np.float32)
    per_frame: dict[int, float] = {}
    flagged: dict[int, float] = {}
    k = 2 * _WINDOW + 1
    for done, i in enumerate(frames, 1):
        rendered = gamma_encode(render_frame(premult, slabs, slab_depth, local, i, kernels))
        frame = np.clip(small(read(i)[..., :3]), 0.0, 1.0)
        gain = _gain(rendered, frame)
        diff = np.abs(rendered * gain - frame).mean(axis=2)
        error = cv2.boxFilter(diff, -1, (k, k), borderType=cv2.BORDER_REFLECT)
        norm = error / _typical_error(error, _contrast(to_grey(rendered)))
        sum_sq += norm * norm
        per_frame[i] = float(diff.mean() * 255.0)
        flagged[i] = float((norm > level).mean())
        if progress:
            progress("check", done, len(frames))
    residual = np.sqrt(sum_sq / len(frames))
    full = cv2.resize(residual, (big_w, big_h), interpolation=cv2.INTER_LINEAR) if (h, w) != (big_h, big_w) \
        else residual
    summary = {
        "level": level,
        "flagged": round(float((residual > level).mean()), 5),
        "median": round(float(np.median(residual)), 3),
        "p99": round(float(np.quantile(residual, 0.99)), 3),
        "regions": worst_regions(residual, level, scale),
        "scale": round(scale, 4),
        "frames": len(frames),
        "layers": layers,
    }
    return CheckResult(residual=full.astype(np.float32), per_frame=per_frame, flagged_per_frame=flagged, model=model,
                       summary=summary)


def _gain(rendered: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Per-channel exposure factor that brings the rendered frame to the recorded one (least squares)."""
    num = (rendered * frame).reshape(-1, 3).sum(axis=0, dtype=np.float64)
    den = (rendered * rendered).reshape(-1, 3).sum(axis=0, dtype=np.float64)
    return np.clip(num / np.maximum(den, 1e-12), 0.5, 2.0).astype(np.float32)


def _contrast(grey: np.ndarray) -> np.ndarray:
    """Local mean gradient magnitude over the comparison window."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    k = 2 * _WINDOW + 1
    return cv2.boxFilter(cv2.magnitude(gx, gy), -1, (k, k), borderType=cv2.BORDER_REFLECT)


def _typical_error(error: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """The median error of pixels of each contrast, as a non-decreasing function of contrast, per pixel."""
    step = max(1, int(math.sqrt(error.size / 40_000)))
    e, c = error[::step, ::step].ravel(), contrast[::step, ::step].ravel()
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
