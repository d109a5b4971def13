"""Moving subjects: where aligned frames change beyond what a change of focus explains.

A focus stacker assumes the scene stands still. Flames, water, leaves and
people do not: blending frames there mixes several instants into a ghost.
This module finds those regions; the fusion then takes each from one
instant (:class:`~postfocus.fuse.instant.InstantBlend`).

Detection (at analysis size, reference geometry, streaming over the frames):

1. *Blur-equalised comparison of neighbours.* Between neighbouring frames of a
   sweep the focus moves a little, so where nothing moved one frame is (very
   nearly) a blurred copy of the other. For each pair each frame is blurred
   with Gaussians of growing sigma and fitted locally (non-negative gain and an
   offset) to the other; the smallest share of local variance left unexplained
   (:func:`pair_change`) is what focus cannot explain: about 0 for a still
   scene whatever its texture, about 1 for unrelated content.
2. *Coarse check.* Defocus moves light only locally: low-passed beyond the
   focus step of the pair (measured from the blurs that explained the pair),
   two frames of a still scene agree even where the fine comparison fails
   (defocus rings and halos of microscopes, bokeh). Evidence counts only
   where the coarse light changed too (:func:`coarse_change`).
3. *Evidence over the sweep*: per pixel, the median of the pair residuals
   (changed in most pairs: seeds) and the mean of their largest quarter
   (changed clearly in a few: growth), so a single glitch (a specular
   highlight, a JPEG block) does not count.
4. *Hysteresis and clean-up*: seeds (opened, at least half a disc of one
   margin radius) grow through the growth evidence; gaps are closed, holes
   filled, specks dropped.
5. *Feathered mask*: the regions are widened by a margin and feathered, so the
   seam to the all-in-focus surroundings lies in static content.

Each moving region is taken from one frame: the frame whose focus measure
over the region is highest (:func:`region_frames`).

Examples
--------
>>> det = MotionDetector((120, 160))  # doctest: +SKIP
>>> for i, grey, valid in aligned_small_frames: det.add(i, grey, valid)  # doctest: +SKIP
>>> motion = det.finish()  # doctest: +SKIP
>>> motion.share < 0.01  # doctest: +SKIP
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from postfocus.colour import gamma_decode
from postfocus.focus.measure import noise_sigma

__all__ = ["COARSE_MIN", "COARSE_SIGMA", "COARSE_WEAK", "DETECT_SIZE", "HIGH", "LOW", "SEED_AREA", "SIGMAS", "WINDOW",
           "Motion", "MotionDetector", "Stats", "blur_stats", "clean_mask", "coarse_change", "feather",
           "fill_holes", "instant_at", "pair_change", "region_frames", "regions"]



# Blurs (analysis pixels) tried to equalise the focus of two neighbouring frames.
SIGMAS = (0.0, 0.6, 1.2, 1.9, 2.8, 4.0, 5.6)
WINDOW = 7
HIGH, LOW = 0.35, 0.20  # hysteresis thresholds on the evidence (0 = explained by focus, ~1 = unrelated)
COARSE_SIGMA, COARSE_MIN = 3.0, 0.2  # scale (analysis px) and threshold of the coarse-light check on seeds
COARSE_WEAK = 0.1  # coarse-light threshold for growing regions
SEED_AREA = 0.5  # smallest seed, in discs of one margin radius
DETECT_SIZE = 640  # long edge (px) at which frames are compared


@dataclass
class Motion:
    """Where a stack moved.

    Attributes
    ----------
    mask : float32 (h, w) in [0, 1], analysis size, reference geometry: 1 on
        moving content, feathered to 0 over a margin of static surroundings.
        Connected parts of ``mask > 0`` are the moving regions.
    core : bool (h, w) the detected moving pixels (before widening and feathering).
    evidence : float32 (h, w) the evidence per pixel (see module docs).
    share : fraction of the (covered) image that moved: ``core`` over the area.
    """

    mask: np.ndarray
    core: np.ndarray
    evidence: np.ndarray
    share: float

    @property
    def any(self) -> bool:
        return bool(self.core.any())


def _local(x: np.ndarray, window: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (window, window), borderType=cv2.BORDER_REFLECT)


Stats = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def blur_stats(g: np.ndarray, sigmas: Sequence[float] = SIGMAS, window: int = WINDOW) -> Stats:
    """Each blur of ``g`` with its local mean and variance: ``[(blurred, mean, var), ...]``."""
    out = []
    for s in sigmas:
        x = g if s <= 0 else cv2.GaussianBlur(g, (0, 0), s, borderType=cv2.BORDER_REFLECT)
        m = _local(x, window)
        out.append((x, m, np.maximum(_local(x * x, window) - m * m, 0)))
    return out


def coarse_change(a: np.ndarray, b: np.ndarray, sigma: float = COARSE_SIGMA) -> np.ndarray:
    """Change of the light distribution at a scale coarser than the focus step, relative to its contrast.

    Defocus moves light around only locally and keeps its total (in linear
    light): low-passed well beyond the blur step between neighbours, two frames
    of a still scene agree even where defocus rings or bright halos (microscopes,
    bokeh) defeat the fine comparison. A flame or a moving object changes the
    coarse picture too.

    Returns
    -------
    float32 (h, w) >= 0: mean square difference of the low-passed frames over a
    window of ``4 sigma``, over their local variance there.
    """
    la = cv2.GaussianBlur(gamma_decode(a), (0, 0), sigma)
    lb = cv2.GaussianBlur(gamma_decode(b), (0, 0), sigma)
    w = int(4 * sigma) | 1

    def var(x: np.ndarray) -> np.ndarray:
        m = _local(x, w)
        return np.maximum(_local(x * x, w) - m * m, 0)

    return (_local((la - lb) ** 2, w) / (var(la) + var(lb) + np.float32(1e-4))).astype(np.float32)


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
    eps = np.float32(1e-9)
    results = []
    for own, other in ((sa, sb), (sb, sa)):
        # ``other``'s unblurred frame y is predicted by each blur x of ``own``: the best blur
        # explains the most variance, cov(x, y)^2 / var(x).
        y, mean_y, var_y = other[0]
        explained, chosen = None, None
        for k, (x, mean_x, var_x) in enumerate(own):
            cov = _local(x * y, window) - mean_x * mean_y
            np.maximum(cov, 0, out=cov)
            q = cov * cov / np.maximum(var_x, eps)
            if explained is None:
                explained = q
                chosen = np.full(a.shape, sigmas[k], np.float32) if blur_out is not None else None
            else:
                if chosen is not None:
                    chosen[q > explained] = sigmas[k]
                np.maximum(explained, q, out=explained)
        # The floor keeps flat areas (only noise, nothing to see) quiet.
        r = np.maximum(var_y - explained - np.float32(0.5) * n2, 0) / (var_y + np.float32(4 * n2 + 2.5e-4))
        results.append((r, chosen))
    (r0, c0), (r1, c1) = results
    if blur_out is not None:
        blur_out.append(np.where(r1 < r0, c1, c0))
    return np.clip(np.minimum(r0, r1), 0.0, 1.0).astype(np.float32)


class MotionDetector:
    """Accumulates neighbour comparisons of aligned frames, one frame at a time.

    Frames larger than :data:`DETECT_SIZE` are compared at that size; the mask
    comes back at the size they were given.

    Parameters
    ----------
    shape : (h, w) analysis size.
    margin : widening of the regions (comparison px) before feathering; default
        1.2 % of the long edge, at least 4 px.
    """

    def __init__(self, shape: tuple[int, int], margin: int | None = None):
        self.shape = tuple(shape)
        f = min(1.0, DETECT_SIZE / max(shape))
        self.work = (max(8, round(shape[0] * f)), max(8, round(shape[1] * f))) if f < 1 else self.shape
        self.margin = max(4, int(round(0.012 * max(self.work)))) if margin is None else int(margin)
        self._prev: tuple[np.ndarray, list, np.ndarray] | None = None
        self._pairs: list[np.ndarray] = []
        self._coarse: list[np.ndarray] = []
        self._noise: list[float] = []
        self._covered = np.ones(self.work, bool)

    def prepare(self, grey: np.ndarray, valid: np.ndarray | None = None) -> tuple:
        """What :meth:`add` needs of one frame on its own (no state is read or changed: may run
        in another thread, ahead of the frames before it)."""
        g = np.ascontiguousarray(grey, np.float32)
        if valid is None:
            valid = np.ones(self.shape, np.uint8)
        if self.work != self.shape:
            g = cv2.resize(g, self.work[::-1], interpolation=cv2.INTER_AREA)
            valid = cv2.resize(valid.astype(np.uint8), self.work[::-1], interpolation=cv2.INTER_NEAREST)
        reach = WINDOW // 2 + int(np.ceil(2 * SIGMAS[-1])) + 1
        v = cv2.erode(valid.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
        return g, valid.astype(bool), v, blur_stats(g), noise_sigma(g)

    def add(self, index: int, grey: np.ndarray | None = None, valid: np.ndarray | None = None,
            prepared: tuple | None = None) -> None:
        """Add the next aligned frame (grey, analysis size; ``valid`` = where it has real pixels),
        or what :meth:`prepare` made of it."""
        g, covered, v, blurred, frame_noise = prepared if prepared is not None else self.prepare(grey, valid)
        self._covered &= covered
        self._noise.append(frame_noise)
        if self._prev is not None:
            pg, pb, pv = self._prev
            noise = max(self._noise[-2], self._noise[-1])
            chosen: list[np.ndarray] = []
            r = pair_change(pg, g, noise=noise, blurred=(pb, blurred), blur_out=chosen)
            r[(pv & v) == 0] = 0
            self._pairs.append(np.minimum(r, 1.0).astype(np.float16))
            # The coarse check looks beyond the focus step of this pair: the blur that explained
            # the well-explained detailed pixels (90th percentile) sets its scale.
            detail = (r < 0.1) & ((pv & v) > 0) & (_local(np.abs(pg - g), 3) > 4 * noise + 0.004)
            step = float(np.percentile(chosen[0][detail], 90)) if detail.sum() > 100 else 0.0
            c = coarse_change(pg, g, max(COARSE_SIGMA, 1.5 * step))
            c[(pv & v) == 0] = 0
            self._coarse.append(np.minimum(c, 8.0).astype(np.float16))
        self._prev = (g, blurred, v)

    def evidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(persistent, peak) evidence per pixel: the median of its pair residuals, and the
        mean of their largest quarter (at least two). Each counts only where the coarse light
        distribution changed as well, persistently or in a few pairs (:func:`coarse_change`)."""
        if not self._pairs:
            zero = np.zeros(self.work, np.float32)
            return zero, zero
        stack = np.stack(self._pairs).astype(np.float32)
        p = len(self._pairs)
        k = min(p, max(2, int(np.ceil(p / 4))))
        persistent = np.median(stack, axis=0).astype(np.float32)
        coarse = np.stack(self._coarse).astype(np.float32)
        persistent *= np.clip(np.median(coarse, axis=0) / np.float32(COARSE_MIN), 0, 1)
        if k < p:
            stack = -np.partition(-stack, k - 1, axis=0)[:k]
            coarse = -np.partition(-coarse, k - 1, axis=0)[:k]
        peak = stack.mean(axis=0)
        if COARSE_WEAK > 0:
            peak *= np.clip(coarse.mean(axis=0) / np.float32(COARSE_WEAK), 0, 1)
        return persistent, peak.astype(np.float32)

    def finish(self) -> Motion:
        """The motion mask of the frames added so far."""
        persistent, peak = self.evidence()
        core = clean_mask(persistent, peak, self.margin)
        mask = feather(core, self.margin)
        area = max(int(self._covered.sum()), 1)
        share = float((core & self._covered).sum()) / area
        self._prev, self._pairs, self._coarse = None, [], []
        if self.work != self.shape:  # back to analysis size
            size = self.shape[::-1]
            mask = np.clip(cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR), 0, 1)
            mask[mask < 0.02] = 0
            core = cv2.resize(core.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            mask[core] = 1.0
            persistent = cv2.resize(persistent, size, interpolation=cv2.INTER_LINEAR)
        return Motion(mask=mask.astype(np.float32), core=core, evidence=persistent, share=share)


def clean_mask(
    persistent: np.ndarray, peak: np.ndarray, margin: int, high: float = HIGH, low: float = LOW
) -> np.ndarray:
    """Hysteresis threshold and morphological clean-up of the evidence -> bool mask.

    Seeds are pixels whose content changed in most frame pairs (``persistent >
    high``); regions grow through pixels that changed clearly in a few
    (``peak > low``).
    """
    h, w = persistent.shape
    strong = (persistent > high).astype(np.uint8)
    # Thin structures (an edge left over by the alignment, a single bright line) are no subject.
    r_open = max(1, margin // 3)
    strong = cv2.morphologyEx(strong, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_open + 1,) * 2))
    # A seed must have the size of a subject, not of a speck (half a disc of one margin radius).
    n, labels, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    big = stats[:, cv2.CC_STAT_AREA] >= SEED_AREA * np.pi * margin * margin
    big[0] = False
    strong = big[labels].astype(np.uint8)
    if not strong.any():
        return np.zeros((h, w), bool)
    weak = ((peak > low) | (strong > 0)).astype(np.uint8)
    n, labels = cv2.connectedComponents(weak, connectivity=8)
    seeded = np.zeros(n, bool)
    seeded[np.unique(labels[strong > 0])] = True
    seeded[0] = False
    core = seeded[labels].astype(np.uint8)
    # Close gaps and fill holes, then drop specks.
    r_close = max(2, margin // 2)
    core = cv2.morphologyEx(core, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_close + 1,) * 2))
    core = fill_holes(core)
    min_area = max(24, int(2e-4 * h * w))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """uint8 0/1 mask with the background components that do not touch the border filled."""
    h, w = mask.shape
    inv = (mask == 0).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border) & (inv > 0)
    return (~outside).astype(np.uint8)


def feather(core: np.ndarray, margin: int) -> np.ndarray:
    """Widen ``core`` by ``margin`` px and feather the widening: float32 mask, 1 on ``core``.

    Examples
    --------
    >>> core = np.zeros((40, 40), bool); core[15:25, 15:25] = True
    >>> m = feather(core, 4)
    >>> float(m[20, 20]), float(m[0, 0]), 0 < float(m[20, 27]) < 1
    (1.0, 0.0, True)
    """
    if not core.any():
        return np.zeros(core.shape, np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    grown = cv2.dilate(core.astype(np.uint8), k).astype(np.float32)
    soft = cv2.GaussianBlur(grown, (0, 0), margin / 2.0)
    soft = np.maximum(soft, core.astype(np.float32))
    soft[soft < 0.02] = 0.0
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


def regions(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """Moving regions: connected parts of ``mask > 0`` -> (count, int32 labels, 0 = static)."""
    n, labels = cv2.connectedComponents((np.asarray(mask) > 0).astype(np.uint8), connectivity=8)
    return n - 1, labels.astype(np.int32)


def region_frames(mask: np.ndarray, volume: np.ndarray, frames: Sequence[int]) -> tuple[np.ndarray, dict[int, int]]:
    """The one frame each moving region is taken from: where its focus measure is highest.

    Parameters
    ----------
    mask : (h, w) motion mask (see :class:`Motion`).
    volume : (len(frames), h, w) focus measure of the candidate frames.
    frames : frame numbers of the volume's slices.

    Returns
    -------
    (labels, choice): int32 (h, w) region labels (0 = static) and ``{label: frame}``.

    Examples
    --------
    >>> m = np.zeros((8, 8), np.float32); m[2:5, 2:5] = 1
    >>> vol = np.zeros((3, 8, 8), np.float32); vol[2, 3, 3] = 1
    >>> region_frames(m, vol, [4, 5, 6])[1]
    {1: 6}
    """
    m = np.asarray(mask, np.float32)
    n, labels = regions(m)
    choice: dict[int, int] = {}
    if n == 0:
        return labels, choice
    vol = np.asarray(volume, np.float32)
    flat = labels.ravel()
    # Only the moving content itself votes, not the static margin around it.
    weight = (m.ravel() >= 0.999).astype(np.float32)
    for k, f in enumerate(frames):
        score = np.bincount(flat, weights=vol[k].ravel() * weight, minlength=n + 1)
        if k == 0:
            best, best_score = np.zeros(n + 1, int), score
        else:
            better = score > best_score
            best[better], best_score = k, np.where(better, score, best_score)
    for r in range(1, n + 1):
        choice[r] = int(frames[best[r]])
    return labels, choice


def instant_at(mask: np.ndarray, volume: np.ndarray, frames: Sequence[int], x: int, y: int) -> int | None:
    """The frame the moving region at map pixel (x, y) is shown from, or None if (x, y) is static.

    The same choice as :func:`region_frames`, reading only the region's bounding box.

    Examples
    --------
    >>> m = np.zeros((8, 8), np.float32); m[2:5, 2:5] = 1
    >>> vol = np.zeros((3, 8, 8), np.float32); vol[2, 3, 3] = 1
    >>> instant_at(m, vol, [4, 5, 6], 3, 3), instant_at(m, vol, [4, 5, 6], 7, 7)
    (6, None)
    """
    m = np.asarray(mask, np.float32)
    if m[y, x] <= 0.5:
        return None
    _, labels = regions(m)
    inside = labels == labels[y, x]
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    vote = inside[y0:y1, x0:x1] & (m[y0:y1, x0:x1] >= 0.999)
    scores = [float(np.asarray(volume[k, y0:y1, x0:x1], np.float32)[vote].sum(dtype=np.float64))
              for k in range(len(frames))]
    return int(frames[int(np.argmax(scores))])
