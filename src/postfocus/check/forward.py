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
exact), so the residual map reads "times the typical error"; a pixel's
residual is the mean of its worst eighth of the frames (at least two). A halo, a fleck or a wrong depth is a place
where the result contradicts the frames: there the residual is many times 1.

Two things are reported beside the residual. A moving subject that the result
shows from one instant (the motion mask) contradicts every other frame by
design: those pixels are compared with that instant's frame only. And where
no frame of the sweep looks different from the all-in-focus image by more than
the flag level (a textureless patch: blurring a uniform area gives the same
area), no depth could be contradicted: those pixels are *unverifiable*, not
consistent.

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
from postfocus.check.evidence import DepthEvidence, candidate_depths
from postfocus.check.glints import missing_light
from postfocus.check.layers import hidden_jump, hidden_zone, jump_frames, render_closest, render_frame, soft_slabs
from postfocus.check.yardstick import _WINDOW, _contrast, _rgb, _top_count, _typical_error  # noqa: F401 (bench reads)
from postfocus.check.yardstick import worst_regions
from postfocus.colour import gamma_decode, to_grey
from postfocus.errors import OptionError, PostfocusError
from postfocus.synth import optics

__all__ = ["CheckResult", "DEFAULT_PIXELS", "FLAG_LEVEL", "check_frames", "worst_regions"]

DEFAULT_PIXELS = 600_000
"""Pixels of the analysis size the frames are rendered and compared at (at most; long stacks use fewer)."""

_PIXEL_FRAMES = 12_000_000  # long stacks: analysis pixels x frames stays under this ...
_MIN_PIXELS = 250_000  # ... but the analysis size never drops below this

FLAG_LEVEL = 3.0
"""A pixel whose residual is this many times the typical error of its contrast is flagged."""

_CLIPPED = 0.98  # an all-in-focus value this high may be clipped
_GLINT_SHARE = 0.03  # a pixel that owes this share of its rendered light to clipped pixels is not judged


@dataclass
class CheckResult:
    """How well an all-in-focus image and its depth explain the frames.

    Attributes
    ----------
    residual : np.ndarray
        float32 (H, W), output geometry: the rendering error divided by the
        typical error of pixels of the same contrast in that frame, averaged
        over the pixel's worst eighth of the frames (at least 2); about 1 where the result is consistent, many
        times 1 at halos, flecks and wrong depths. Where the likelihood-ratio test contradicts the depth
        (:attr:`evidence` above its level), at least the flag level times the evidence over its level.
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
        in output pixels, ``scale`` (analysis size / output size), ``frames``,
        ``layers`` (depth slabs rendered), ``border``: the band along the
        picture's edges (output pixels, half the largest blur at the median
        depth, at most 2 % of the long edge) that is not judged, because
        the frames there hold blur from outside the picture (residual 1),
        ``unverifiable``: share of the picture in :attr:`unverifiable`,
        ``instant``: share judged against one instant's frame only (moving subjects).
    unverifiable : np.ndarray or None
        bool (H, W): pixels where no frame differs from the all-in-focus image by
        the flag level times the typical error, whatever the depth: the frames
        cannot tell whether their depth is right (textureless areas). Their
        residual is low because nothing can contradict them, not because they were confirmed.
    instant : np.ndarray or None
        int32 (H, W): the frame a moving subject is shown from (judged against that frame
        only), -1 elsewhere; None when nothing moved.
    evidence : np.ndarray or None
        float32 (H, W): typical errors, summed over the frames, by which a depth more than 2 frames
        from the given ones explains the frames better (:mod:`postfocus.check.evidence`); above
        ``summary["evidence_level"]`` the depth is contradicted (``summary["contradicted"]``).
    better_depth : np.ndarray or None
        float32 (H, W): that depth (frame numbers in the frames' order).
    rendering : np.ndarray or None
        float32 (H, W): :attr:`residual` without the evidence: the render's own residual, which a
        halo raises (:func:`postfocus.check.stack.band_ratio` reads it).
    glints : tuple of np.ndarray or None
        At the analysis size: float32 the linear light (grey) of the clipped pixels whose light was read from
        the frames (:func:`postfocus.check.glints.missing_light`; 0 elsewhere) and bool the clipped pixels whose
        light is unknown (judged one-sided, as a lower bound); for another check (``glints=``).
    """

    residual: np.ndarray
    per_frame: dict[int, float]
    flagged_per_frame: dict[int, float]
    model: DefocusModel
    summary: dict = field(default_factory=dict)
    unverifiable: np.ndarray | None = None
    instant: np.ndarray | None = None
    evidence: np.ndarray | None = None
    better_depth: np.ndarray | None = None
    rendering: np.ndarray | None = None
    glints: tuple[np.ndarray, np.ndarray] | None = None

    def to_dict(self) -> dict:
        """Everything but the residual map, as plain JSON numbers."""
        return {
            **self.summary,
            "model": self.model.as_dict(),
            "per_frame": {str(i): round(v, 3) for i, v in self.per_frame.items()},
            "flagged_per_frame": {str(i): round(v, 5) for i, v in self.flagged_per_frame.items()},
        }


def check_frames(
    image: np.ndarray,
    depth: np.ndarray,
    read: Callable[[int], np.ndarray],
    frames: Sequence[int],
    *,
    confidence: np.ndarray | None = None,
    instant: np.ndarray | None = None,
    model: DefocusModel | None = None,
    pixels: int | None = None,
    level: float = FLAG_LEVEL,
    progress: Callable[[str, int, int], None] | None = None,
    also_clipped: np.ndarray | None = None,
    glints: bool | tuple[np.ndarray, np.ndarray] | None = None,
) -> CheckResult:
    """Render every frame from ``image`` and ``depth`` and measure where the frames disagree.

    Parameters
    ----------
    image : np.ndarray
        float32 (H, W, 3) or (H, W) all-in-focus image in [0, 1] (display-encoded), output geometry.
    depth : np.ndarray
        float32 (H, W) depth in frame numbers in the frames' own order (frame ``i`` is sharp at depth ``i``).
    read : callable
        ``read(i)`` -> float32 (H, W, 3) aligned, exposure-matched frame ``i`` (any size of the same aspect).
    frames : sequence of int
        Frame numbers to render and compare (at least 2).
    confidence : np.ndarray, optional
        float32 (H, W) in [0, 1]: trust in ``depth``; only trusted pixels calibrate the defocus.
    instant : np.ndarray, optional
        int (H, W): where ``image`` shows a moving subject from one instant, the frame number of that
        instant, -1 elsewhere (:meth:`postfocus.maps.StackMaps.motion_frames`). Those pixels are
        compared with that frame only (residual 1, not judged, if it is not among ``frames``).
    model : DefocusModel, optional
        Use this defocus instead of calibrating one (output pixels per frame).
    pixels : int, optional
        Analysis size in pixels (the residual is upsampled to (H, W)); default
        :data:`DEFAULT_PIXELS`, less for long stacks (a 40-frame stack: about 300 000).
    level : float
        Residual above which a pixel counts as flagged.
    progress : callable, optional
        ``progress(stage, done, total)``.
    also_clipped : np.ndarray, optional
        bool (H, W): pixels to treat as clipped light besides the image's own (e.g. another result's, so
        that two results are judged over the same pixels).
    glints : bool or tuple of np.ndarray, optional
        True: read the light of clipped highlights from their blur in the frames and render it
        (:mod:`postfocus.check.glints`); or :attr:`CheckResult.glints` of another result's check of the same
        frames at the same analysis size, whose light is used (the scene's light, not the result's). Default:
        clipped light is unknown, and the pixels owing much light to it are not judged.

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
    image = _rgb(image)
    depth = np.asarray(depth, np.float32)
    if depth.shape != image.shape[:2]:
        raise PostfocusError(f"image {image.shape} and depth {depth.shape} do not match")
    frames = [int(i) for i in frames]
    if len(frames) < 2:
        raise OptionError("frames", frames, "the check needs at least 2 frames")
    big_h, big_w = depth.shape
    if pixels is None:
        pixels = max(_MIN_PIXELS, min(DEFAULT_PIXELS, _PIXEL_FRAMES // len(frames)))
    scale = min(1.0, math.sqrt(pixels / float(big_h * big_w)))
    h, w = max(8, round(big_h * scale)), max(8, round(big_w * scale))
    scale = w / big_w

    def small(x: np.ndarray, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        return x if x.shape[:2] == (h, w) else cv2.resize(x, (w, h), interpolation=interpolation)

    img = np.clip(small(image), 0.0, 1.0)
    dep = small(depth, cv2.INTER_NEAREST)
    moment = None if instant is None else small(np.asarray(instant, np.float32), cv2.INTER_NEAREST).astype(np.int32)
    if moment is not None and not (moment >= 0).any():
        moment = None  # depth edges stay edges: no made-up middle layers
    linear = gamma_decode(img)
    grey = to_grey(linear)
    kept: dict[int, np.ndarray] = {}  # frames read for the calibration, kept small for the render

    def read_small(i: int) -> np.ndarray:
        frame = kept.pop(i, None)
        return np.clip(small(_rgb(read(i))), 0.0, 1.0) if frame is None else frame.astype(np.float32)

    if model is None:
        weight = small(confidence) if confidence is not None else None
        mean = max(float(grey.mean()), 1e-6)

        def read_grey(i: int) -> np.ndarray:
            frame = read_small(i)
            kept[i] = frame.astype(np.float16)
            g = to_grey(gamma_decode(frame))
            return g * np.float32(mean / max(float(g.mean()), 1e-6))

        model = calibrate(grey, dep, read_grey, frames, weight=weight, scale=scale)
    local = model.scaled(scale)
    slabs, slab_depth = soft_slabs(depth, (h, w), max(local.near_slope, local.far_slope))
    layers = len(slabs.boxes)
    # content is hidden only behind a step whose parallax (pixels of blur) shows it: there, and in each slab's frames
    jump = hidden_jump(slabs, local)
    zone = hidden_zone(dep, local, np.asarray(frames), jump)
    behind = jump_frames(local, np.asarray(frames), slab_depth, jump)
    summary_zone = 0.0 if zone is None else float(zone.mean())
    # Clipped highlights hold unknown light (a specular glint is often many times the white level): the
    # frames' bokeh of one is brighter than any render from the clipped value. Their reach is carried along.
    clipped = (img.max(axis=2) >= _CLIPPED).astype(np.float32)
    if also_clipped is not None:
        np.maximum(clipped, small(also_clipped.astype(np.float32)) > 0, out=clipped)
    premult, kernels = optics.premultiply(linear), optics.KernelCache()
    # their light, read from their blur in the frames (check/glints.py), or the light another result's check read
    if glints is None or glints is False:
        excess, unknown, glints = np.zeros((h, w), np.float32), clipped > 0, None
    elif glints is True or glints[0].shape != (h, w):
        excess, unknown = missing_light(linear, clipped > 0, dep, frames, lambda j, plane: render_frame(
            np.concatenate([premult, plane[None]]), slabs, slab_depth, local, j, kernels, hidden=zone is not None,
            zone=zone, jump=behind), lambda i: kept.setdefault(i, read_small(i).astype(np.float16)).astype(np.float32))
        glints = (np.where((clipped > 0) & ~unknown, linear.mean(axis=2) + excess, 0.0), unknown)
    else:
        unknown = (clipped > 0) & (glints[1] | (glints[0] <= 0))
        excess = np.where((clipped > 0) & ~unknown, np.maximum(glints[0] - linear.mean(axis=2), 0), 0)
        excess = excess.astype(np.float32)
    premult = np.concatenate([premult, unknown[None].astype(np.float32)] + ([excess[None]] if excess.any() else []))
    evidence = DepthEvidence(linear, local, candidate_depths(dep, local), frames, window=_WINDOW)

    top = np.zeros((_top_count(len(frames)), h, w), np.float32)  # the largest errors of each pixel, largest first
    reveal = np.zeros((h, w), np.float32)  # the most any frame differs from the image, in typical errors
    at_instant = None if moment is None else np.ones((h, w), np.float32)  # moving subjects: their instant's error
    per_frame: dict[int, float] = {}
    flagged: dict[int, float] = {}
    k = 2 * _WINDOW + 1
    for done, i in enumerate(frames, 1):
        frame = read_small(i)
        out, rendered, diff, error = render_closest(premult, slabs, slab_depth, local, i, kernels, frame, zone=zone,
                                                    window=_WINDOW, jump=behind, glint=_GLINT_SHARE)
        judged = np.clip(1.0 - out[..., 3] / _GLINT_SHARE, 0.0, 1.0)
        error *= judged
        typical = _typical_error(error, _contrast(to_grey(rendered)), judged > 0.5)
        if out.shape[2] > 4:  # nor does the depth test judge the light read from the frames (its share, as above)
            judged = judged * np.clip(1.0 - out[..., 4] / np.maximum(out[..., 4] + out[..., :3].mean(axis=2), 1e-6)
                                      / _GLINT_SHARE, 0.0, 1.0)
        _add_evidence(evidence, i, to_grey(rendered), to_grey(frame), judged)
        norm = error / typical
        signal = cv2.boxFilter(np.abs(rendered - img).mean(axis=2), -1, (k, k), borderType=cv2.BORDER_REFLECT)
        np.maximum(reveal, signal * judged / typical, out=reveal)
        if at_instant is not None:
            now = moment == i
            at_instant[now] = norm[now]
        for row in top:  # insert into the sorted rows: keep the larger, carry the smaller on
            larger = np.maximum(row, norm)
            np.minimum(row, norm, out=norm)
            row[...] = larger
        per_frame[i] = float(diff.mean() * 255.0)
        flagged[i] = float((error > level * typical).mean())
        if progress:
            progress("check", done, len(frames))
    residual = top.mean(axis=0)
    against, best_depth = evidence.result(dep)
    # Near the picture's edges the frames hold blur from outside it, which no render can know: not judged.
    reach = float(np.max(local.radius(np.array(frames) - float(np.median(dep)))))
    border = int(min(math.ceil(0.5 * reach), 0.02 * max(h, w)))  # a disc half outside brings in ~20 % of its light
    inner = np.s_[border : h - border, border : w - border]
    edges = (np.s_[:border], np.s_[h - border :], np.s_[:, :border], np.s_[:, w - border :]) if border else ()
    typical_residual = max(float(np.median(residual[inner])), 1e-6)
    residual /= typical_residual  # 1 = typical
    # A depth outlier on fine texture contradicts many frames a little each, which no absolute level catches: where
    # a depth more than two frames away explains the frames better by the likelihood-ratio level (evidence.py),
    # the pixel is flagged too (residual = the flag level times the evidence over its level).
    for edge in edges:  # not judged (below)
        against[edge] = 0.0
    if moment is not None:  # shown from one instant on purpose: only that frame can contradict them
        against[moment >= 0] = 0.0
    contradicted = against > evidence.level()
    rendering = residual.copy()  # the render's own residual (what a halo raises), before the evidence joins it
    residual = np.maximum(residual, against * np.float32(level / evidence.level()))
    # A depth can be contradicted only where some frame looks different from the image. Another depth changes a
    # pixel's render by at most twice the most any frame's render differs from the image (there and back), and
    # the frame's own error adds about one typical error: where that cannot reach the flag level, no depth
    # would be flagged.
    blind = 2.0 * reveal + 1.0 < level * typical_residual
    if at_instant is not None:  # shown from one instant on purpose: only that frame can contradict them
        residual = np.where(moment >= 0, at_instant, residual).astype(np.float32)
    if at_instant is not None:
        rendering = np.where(moment >= 0, at_instant, rendering).astype(np.float32)
    for edge in edges:
        residual[edge] = 1.0
        rendering[edge] = 1.0
        blind[edge] = False  # not judged at all (above), which is another thing
    full = cv2.resize(residual, (big_w, big_h), interpolation=cv2.INTER_LINEAR) if (h, w) != (big_h, big_w) \
        else residual
    unverifiable = cv2.resize(blind.astype(np.uint8), (big_w, big_h), interpolation=cv2.INTER_NEAREST) > 0
    summary = {
        "level": level,
        "flagged": round(float((residual > level).mean()), 5),
        "median": round(float(np.median(residual)), 3),
        "p99": round(float(np.quantile(residual, 0.99)), 3),
        "regions": worst_regions(residual, level, scale),
        "scale": round(scale, 4),
        "frames": len(frames),
        "layers": layers,
        "hidden_zone": round(summary_zone, 4),
        "border": int(math.ceil(border / scale)),
        "unverifiable": round(float(blind.mean()), 5),
        "instant": 0.0 if moment is None else round(float((moment >= 0).mean()), 5),
    }
    full_instant = None if instant is None else np.asarray(instant, np.int32)
    summary["contradicted"] = round(float(contradicted.mean()), 5)
    summary["evidence_level"] = round(evidence.level(), 3)
    big = (lambda x: cv2.resize(x, (big_w, big_h), interpolation=cv2.INTER_LINEAR)) if (h, w) != (big_h, big_w) \
        else (lambda x: x)
    return CheckResult(residual=full.astype(np.float32), per_frame=per_frame, flagged_per_frame=flagged, model=model,
                       summary=summary, unverifiable=unverifiable, instant=full_instant, evidence=big(against),
                       better_depth=big(best_depth), rendering=big(rendering), glints=glints)


def _add_evidence(evidence: DepthEvidence, index: int, rendered: np.ndarray, frame: np.ndarray,
                  judged: np.ndarray) -> None:
    """Add one frame to the likelihood-ratio test, with the frame's own contrast setting the error scale."""
    gain = float((rendered * frame).sum(dtype=np.float64) / max((rendered * rendered).sum(dtype=np.float64), 1e-12))
    k = 2 * _WINDOW + 1
    error = cv2.boxFilter(cv2.absdiff(rendered * np.float32(min(max(gain, 0.5), 2.0)), frame), -1, (k, k),
                          borderType=cv2.BORDER_REFLECT)
    typical = _typical_error(error * judged, _contrast(frame), judged > 0.5)
    evidence.add(index, rendered, frame, judged, typical)
