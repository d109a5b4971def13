"""Does another depth explain a pixel's frames better? A likelihood-ratio test of the depth map.

The residual of :mod:`postfocus.check.forward` is an absolute level: how many
typical errors a pixel's worst frames show. A depth outlier on fine texture
contradicts the frames only a little in each frame (at the check's analysis
size most of the texture is averaged away), but in many of them, and in the
same direction: the frames near its true depth show the texture sharper than
the wrong depth renders it, the frames near its wrong depth blurrier. No
single frame passes an absolute level; the sum over frames does.

The right statistic for that is a likelihood ratio between two hypotheses
about the same pixel: the depth given, and the best local alternative. Under
a Laplace error model whose scale is the typical error of pixels of the same
contrast in that frame (Laplace errors fit rendering errors, which are
heavy-tailed, better than Gaussian ones), the log-likelihood of a depth is
minus the sum over frames of the pixel's absolute error divided by that scale.
:class:`DepthEvidence` renders every frame of every candidate depth as a
fronto-parallel patch (the all-in-focus image blurred by the disc of that
depth in that frame: Subbarao & Surya's spatial-domain model) and keeps, per
pixel and window, how many typical errors the given depth costs more than the
best candidate, summed over the frames. The scale is taken from the recorded
frame's contrast, not from either render, so that both hypotheses are measured
with the same yardstick. Near depth edges the fronto-parallel alternatives are
worse than the occlusion-aware render of a correct depth, so true edges are not
contradicted; where the given depth is wrong over a patch wider than the window,
the candidate at the true depth wins in every frame. A candidate moves all the light
its disc brings into the window, a neighbour's spill included, so it counts only where
the light-carrying pixels of the window's own surface within its reach are explained
better too (:meth:`DepthEvidence.result`): a black background beside a bright edge
cannot take the blame for the edge's light.

References
----------
Subbarao, M., & Surya, G. (1994). Depth from defocus: a spatial domain approach. IJCV 13(3), 271-294.
Neyman, J., & Pearson, E. S. (1933). On the problem of the most efficient tests of statistical hypotheses.
Phil. Trans. R. Soc. A 231, 289-337.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from postfocus.check.defocus import DefocusModel
from postfocus.colour import gamma_decode, gamma_encode, to_grey
from postfocus.synth import optics

__all__ = ["DepthEvidence", "EVIDENCE_LEVEL", "OUTLIER_FRAMES", "candidate_depths"]

EVIDENCE_LEVEL = 1.25
"""Typical errors, summed over the frames, by which the best other depth must beat the given one to contradict it,
per square root of the number of frames (the render's own errors add up over the frames like a random walk;
4 for 10 frames, 8 for 41)."""

OUTLIER_FRAMES = 2.0
"""Frames by which a depth must be off to count as an outlier (a fraction of a frame is precision, not an outlier)."""

_RADIUS_STEP = 1.12  # successive radii of the blur bank (interpolated between)
_MAX_CANDIDATES = 12


def _own_light(grey: np.ndarray, depth: np.ndarray, radius: float, width: float) -> np.ndarray:
    """Per pixel, the light its own surface brings it under the disc of ``radius``.

    The surface is the pixels whose given depth lies in the same band of ``width`` frames, of two
    sets of bands offset by half a band, the one in which the pixel lies nearer the middle (so
    its surface holds every depth within a quarter band of its own): ``grey`` masked to each
    band, blurred, read back inside the band.
    """
    if radius < 0.5:
        return grey.copy()
    kernel = optics.disc_kernel(radius)
    position = (depth - float(depth.min())) / width
    central = np.abs(position % 1.0 - 0.5) < 0.25
    out = np.empty_like(grey)
    for shift, mine in ((0.0, central), (0.5, ~central)):
        band = np.floor(position + shift).astype(np.int32)
        for b in np.unique(band[mine]):
            inside = band == b
            blurred = cv2.filter2D(np.where(inside, grey, np.float32(0.0)), -1, kernel, borderType=cv2.BORDER_REFLECT)
            out[inside & mine] = blurred[inside & mine]
    return out


def candidate_depths(depth: np.ndarray, model: DefocusModel, *, count: int = _MAX_CANDIDATES) -> np.ndarray:
    """Depths the given one is tested against: evenly over the central 99 % of ``depth``.

    Spaced at most about a disc radius of 1.5 px apart (at the slope of ``model``) or ``count`` in all.

    Examples
    --------
    >>> d = np.linspace(0.0, 9.0, 100, dtype=np.float32).reshape(10, 10)
    >>> c = candidate_depths(d, DefocusModel(1.0, 1.0))
    >>> float(c[0]) < 0.1 and float(c[-1]) > 8.9
    True
    """
    a, b = (float(v) for v in np.quantile(depth, [0.005, 0.995]))
    slope = max(model.near_slope, model.far_slope, 1e-3)
    n = int(np.clip(math.ceil((b - a) * slope / 1.5) + 1, 2, count))
    return np.linspace(a, b, n) if b - a > 1e-3 else np.array([a])


class DepthEvidence:
    """Accumulates, frame by frame, how much worse the given depth explains each pixel than the best candidate.

    Parameters
    ----------
    linear : np.ndarray
        float32 (h, w, 3) all-in-focus image in linear light, analysis size.
    model : DefocusModel
        Blur radius per frame distance in analysis pixels.
    candidates : np.ndarray
        (K,) alternative depths (frame numbers).
    frames : sequence of int
        The frames that will be added.
    window : int
        Half-size of the window the errors are summed over.
    depth : np.ndarray, optional
        float32 (h, w) the given depth. With it, a candidate moves only the light of the pixel's own
        surface (the pixels whose given depth lies in its band: every depth within ``apart / 2`` frames of
        its own, none farther than ``3 apart / 2``) to the candidate's disc and keeps the rest of the
        given render, so a pixel cannot win by blurring a neighbouring surface's light over itself;
        without it, a candidate is the whole window blurred by its disc (a fronto-parallel patch).
        Not used by :func:`~postfocus.check.forward.forward_check`: it loses real outliers narrower
        than the blur (``docs/check.md``, fifth session).
    apart : float
        Frames: half the width of the depth bands that make a surface.
    """

    def __init__(self, linear: np.ndarray, model: DefocusModel, candidates: np.ndarray, frames: Sequence[int],
                 *, window: int = 2, depth: np.ndarray | None = None,
                 apart: float = OUTLIER_FRAMES) -> None:  # noqa: D107 (documented on the class)
        self.candidates = np.asarray(candidates, np.float64)
        self.window = window
        self._model = model
        self._depth = None if depth is None else np.asarray(depth, np.float32)
        h, w = linear.shape[:2]
        radii = model.radius(np.subtract.outer(np.asarray(frames, np.float64), self.candidates))  # (F, K)
        top = max(float(radii.max()), 0.5)
        bank = [0.0] + [0.5 * _RADIUS_STEP**j for j in range(int(math.log(top / 0.5) / math.log(_RADIUS_STEP)) + 2)]
        self._radii = np.asarray(bank)
        premult = optics.premultiply(linear)
        whole = optics.Slabs(np.zeros((h, w), np.int32), 1)
        kernels = optics.KernelCache()
        self._bank = [to_grey(gamma_encode(linear if r < 0.5 else
                                           optics.render_defocus(premult, whole, np.array([r]), kernels)))
                      for r in bank]
        self._frame_radius = {int(i): radii[j] for j, i in enumerate(frames)}
        sharp = self._bank[0]  # where light is: the sharp image's gradient (a uniform or black area carries none)
        self._texture = cv2.magnitude(cv2.Sobel(sharp, cv2.CV_32F, 1, 0, ksize=3),
                                      cv2.Sobel(sharp, cv2.CV_32F, 0, 1, ksize=3))
        self._reach = radii.max(axis=0)  # (K,) the farthest a candidate's disc carries light in any frame
        if self._depth is not None:  # the light of each pixel's own surface at each radius of the bank (linear)
            grey = to_grey(linear)
            self._own = np.stack([_own_light(grey, self._depth, r, 2.0 * apart) for r in bank])

        self._given = np.zeros((h, w), np.float32)
        self._added = 0
        self._other = np.zeros((len(self.candidates), h, w), np.float32)

    def add(self, index: int, rendered: np.ndarray, frame: np.ndarray, judged: np.ndarray,
            typical: np.ndarray) -> None:
        """Add frame ``index``: ``rendered`` from the given depth, the recorded ``frame``.

        Parameters
        ----------
        index : int
            Frame number (one of ``frames``).
        rendered, frame : np.ndarray
            float32 (h, w) grey, display-encoded: the occlusion-aware render of the given depth and the frame.
        judged : np.ndarray
            float32 (h, w) in [0, 1]: weight of each pixel (0 where glints make it unknowable).
        typical : np.ndarray
            float32 (h, w) > 0: the typical absolute error of this frame at each pixel's contrast
            (the Laplace scale; the same for every hypothesis).
        """
        gain = float((rendered * frame).sum(dtype=np.float64) / max((rendered * rendered).sum(dtype=np.float64),
                                                                     1e-12))
        gain = min(max(gain, 0.5), 2.0)
        weight = judged / typical
        self._added += 1
        self._given += cv2.absdiff(rendered * np.float32(gain), frame) * weight
        if self._depth is not None:
            j, t = self._between(self._model.radius(index - self._depth))
            rows, cols = np.indices(j.shape, sparse=True)
            given = (1.0 - t) * self._own[j, rows, cols] + t * self._own[j + 1, rows, cols]
            context = gamma_decode(rendered) - given  # the light of everything but the pixel's own surface
        for k, r in enumerate(self._frame_radius[int(index)]):
            j, t = self._between(np.float64(r))
            j, t = int(j), float(t)
            if self._depth is None:
                pred = cv2.addWeighted(self._bank[j], gain * (1.0 - t), self._bank[j + 1], gain * t, 0.0)
            else:
                pred = gamma_encode(context + cv2.addWeighted(self._own[j], 1.0 - t, self._own[j + 1], t, 0.0))
                pred *= np.float32(gain)
            self._other[k] += cv2.absdiff(pred, frame) * weight

    def _between(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bank's radius just below ``r`` and how far ``r`` lies towards the next one."""
        j = np.clip(np.searchsorted(self._radii, r, side="right") - 1, 0, len(self._radii) - 2)
        t = np.clip((r - self._radii[j]) / (self._radii[j + 1] - self._radii[j]), 0.0, 1.0)
        return j, t.astype(np.float32)

    def _supported(self, other: np.ndarray, d: float, reach: float, depth: np.ndarray, band: np.ndarray,
                   wanted: np.ndarray, apart: float, surfaces: dict) -> np.ndarray:
        """Where candidate ``d`` also explains better the light-carrying pixels of the window's surface in its reach.

        The candidate moves every light its disc brings into the window, a neighbour's spill included: the
        pixels that carry that light (weighted by the sharp image's gradient), on the window's own surface
        (given depths in the pixel's band of ``apart`` frames or the next ones) and moved by it (more than
        ``apart`` from ``d``), within its reach, must, summed, be explained better too. Only ``wanted`` pixels
        are looked at (the rest are False).
        """
        r = int(math.ceil(reach)) + self.window
        moved = ((np.abs(depth - np.float32(d)) > apart) * self._texture * (self._given - other)).astype(np.float32)
        out = np.zeros(wanted.shape, bool)
        h, w = wanted.shape
        for b in np.unique(band[wanted]):
            if b not in surfaces:
                surfaces[b] = (band == b, ((band >= b - 1) & (band <= b + 1)).astype(np.float32))
            mine, near_band = surfaces[b]
            here = mine & wanted
            rows, cols = np.flatnonzero(here.any(axis=1)), np.flatnonzero(here.any(axis=0))
            y0, y1 = max(int(rows[0]) - r, 0), min(int(rows[-1]) + r + 1, h)  # the box sums stay inside the crop
            x0, x1 = max(int(cols[0]) - r, 0), min(int(cols[-1]) + r + 1, w)
            crop = np.s_[y0:y1, x0:x1]
            wide = cv2.boxFilter(moved[crop] * near_band[crop], -1, (2 * r + 1, 2 * r + 1),
                                 borderType=cv2.BORDER_REFLECT)
            out[crop] |= here[crop] & (wide > 0)
        return out

    def level(self) -> float:
        """The evidence that contradicts a depth: :data:`EVIDENCE_LEVEL` times the square root of the frames added."""
        return EVIDENCE_LEVEL * math.sqrt(max(self._added, 1))

    def result(self, depth: np.ndarray, *, apart: float = OUTLIER_FRAMES) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel: the evidence that the depth is wrong by more than ``apart`` frames, and the depth it points to.

        The two hypotheses are composite: the pixel's window lies within ``apart`` frames of
        the depths ``depth`` gives in it (the occlusion-aware render of the given depth or
        any candidate that near, whichever explains the frames best: a depth a fraction of
        a frame off, or the fronto-parallel model's own error, is no outlier; a window across
        a depth step holds both sides' depths), or farther from all of them (the best
        candidate that far).

        A candidate moves all the light its disc brings into the window, a bright neighbour's
        spill over a black pixel included. It counts only where the pixels that carry that light
        (weighted by the sharp image's gradient) on the window's own surface (given depths within
        ``apart`` bands of the pixel's) within the candidate's reach are, summed, explained
        better by it too: a black or uniform surface has no light of its own to move, and a
        textured neighbour of the same surface that the candidate blurs wrongly vetoes it.

        Parameters
        ----------
        depth : np.ndarray
            float32 (h, w) the given depth at the analysis size.
        apart : float
            Frames: how far a depth must be to count as another.

        Returns
        -------
        evidence : np.ndarray
            float32 (h, w): typical errors (mean over the window, summed over the frames) by which the
            best depth within ``apart`` explains the frames worse than the best depth beyond it; at most
            0 where it explains them as well or better.
        best : np.ndarray
            float32 (h, w): that farther depth.
        """
        k = 2 * self.window + 1

        def box(x: np.ndarray) -> np.ndarray:
            return cv2.boxFilter(x, -1, (k, k), borderType=cv2.BORDER_REFLECT)

        near = box(self._given)
        far = np.full_like(near, np.inf)
        best = np.zeros_like(near)
        square = np.ones((k, k), np.uint8)  # a window that straddles a depth step holds both depths
        lo, hi = cv2.erode(depth, square) - np.float32(apart), cv2.dilate(depth, square) + np.float32(apart)
        band = np.floor((depth - float(depth.min())) / apart).astype(np.int32)  # the surfaces near each pixel's depth
        surfaces: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for d, o, reach in zip(self.candidates, self._other, self._reach):
            cost = box(o)
            close = (lo <= d) & (d <= hi)
            np.minimum(near, np.where(close, cost, np.inf), out=near)
            better = ~close & (cost < far)
            if better.any():
                better &= self._supported(o, d, reach, depth, band, better, apart, surfaces)
            far[better] = cost[better]
            best[better] = d
        evidence = np.where(np.isfinite(far), near - far, 0.0)
        return evidence.astype(np.float32), best
