"""Detection over a sweep: neighbour comparisons accumulated into evidence, cleaned into a mask.

See :mod:`postfocus.motion` for the method.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postfocus.colour import gamma_decode
from postfocus.focus.measure import noise_sigma
from postfocus.motion.compare import (COARSE_SIGMA, SIGMAS, WINDOW, blur_stats, coarse_change, coarse_light, local_mean,
                                      pair_change)
from postfocus.numeric import to_float16

__all__ = ["COARSE_MIN", "COARSE_WEAK", "DETECT_SIZE", "HIGH", "LOW", "SEED_AREA", "Motion", "MotionDetector",
           "clean_mask", "feather", "fill_holes"]

HIGH, LOW = 0.35, 0.20  # hysteresis thresholds on the evidence (0 = explained by focus, ~1 = unrelated)
COARSE_MIN = 0.2  # threshold of the coarse-light check on seeds
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
    evidence : float32 (h, w) the evidence per pixel (see :mod:`postfocus.motion`).
    share : fraction of the (covered) image that moved: ``core`` over the area.
    """

    mask: np.ndarray
    core: np.ndarray
    evidence: np.ndarray
    share: float

    @property
    def any(self) -> bool:
        return bool(self.core.any())


def _median_and_top(maps: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the median of float16 ``maps`` and the mean of their ``k`` largest values, in float32.

    The same bits as ``np.median(stack, axis=0)`` and ``-np.partition(-stack, k - 1, axis=0)[:k].mean(axis=0)``
    of ``stack = np.stack(maps).astype(np.float32)`` (the partition decides the order of the sum, so it
    stays), with one float32 stack partitioned and then sorted in place instead of NumPy's median (5x
    slower along the first axis), converted by OpenCV (exact for float16, 3x faster).
    """
    stack = np.empty((len(maps),) + maps[0].shape, np.float32)
    for out, m in zip(stack, maps):
        cv2.multiply(m, 1.0, dst=out, dtype=cv2.CV_32F)
    if k < len(stack):  # in place: the values are negated, partitioned, and negated back for the sort
        np.negative(stack, out=stack)
        stack.partition(k - 1, axis=0)
        mean = np.negative(stack[:k]).mean(axis=0)
        np.negative(stack, out=stack)
    else:
        mean = stack.mean(axis=0)
    stack.sort(axis=0)
    half = len(stack) // 2
    middle = stack[half : half + 1] if len(stack) % 2 else stack[half - 1 : half + 1]  # as np.median takes it
    return np.mean(middle, axis=0), mean


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
        self._prev: tuple | None = None  # (grey, blurs, valid, linear) of the last frame
        self._light: tuple[float, tuple[np.ndarray, np.ndarray]] | None = None  # its coarse_light, at that sigma
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
        return g, valid.astype(bool), v, blur_stats(g), noise_sigma(g), gamma_decode(g)

    def add(self, index: int, grey: np.ndarray | None = None, valid: np.ndarray | None = None,
            prepared: tuple | None = None) -> None:
        """Add the next aligned frame (grey, analysis size; ``valid`` = where it has real pixels),
        or what :meth:`prepare` made of it."""
        g, covered, v, blurred, frame_noise, linear = prepared if prepared is not None else self.prepare(grey, valid)
        self._covered &= covered
        self._noise.append(frame_noise)
        if self._prev is not None:
            pg, pb, pv, plinear = self._prev
            noise = max(self._noise[-2], self._noise[-1])
            outside = (pv & v) == 0
            chosen: list[np.ndarray] = []
            r = pair_change(pg, g, noise=noise, blurred=(pb, blurred), blur_out=chosen)
            r[outside] = 0
            self._pairs.append(to_float16(np.minimum(r, 1.0)))
            # The coarse check looks beyond the focus step of this pair: the blur that explained
            # the well-explained detailed pixels (90th percentile) sets its scale.
            detail = (r < 0.1) & ~outside & (local_mean(np.abs(pg - g), 3) > 4 * noise + 0.004)
            step = float(np.percentile(chosen[0][detail], 90)) if detail.sum() > 100 else 0.0
            sigma = max(COARSE_SIGMA, 1.5 * step)
            same = self._light is not None and self._light[0] == sigma  # the last frame's, from the pair before
            light = (self._light[1] if same else coarse_light(pg, sigma, plinear), coarse_light(g, sigma, linear))
            c = coarse_change(pg, g, sigma, light)
            c[outside] = 0
            self._coarse.append(to_float16(np.minimum(c, 8.0)))
            self._light = (sigma, light[1])
        self._prev = (g, blurred, v, linear)

    def evidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(persistent, peak) evidence per pixel: the median of its pair residuals, and the
        mean of their largest quarter (at least two). Each counts only where the coarse light
        distribution changed as well, persistently or in a few pairs (:func:`coarse_change`)."""
        if not self._pairs:
            zero = np.zeros(self.work, np.float32)
            return zero, zero
        p = len(self._pairs)
        k = min(p, max(2, int(np.ceil(p / 4))))
        persistent, peak = _median_and_top(self._pairs, k)
        coarse_median, coarse_top = _median_and_top(self._coarse, k)
        persistent *= np.clip(coarse_median / np.float32(COARSE_MIN), 0, 1)
        if COARSE_WEAK > 0:
            peak *= np.clip(coarse_top / np.float32(COARSE_WEAK), 0, 1)
        return persistent, peak.astype(np.float32)

    def finish(self) -> Motion:
        """The motion mask of the frames added so far."""
        persistent, peak = self.evidence()
        core = clean_mask(persistent, peak, self.margin)
        mask = feather(core, self.margin)
        area = max(int(self._covered.sum()), 1)
        share = float((core & self._covered).sum()) / area
        self._prev, self._light, self._pairs, self._coarse = None, None, [], []
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
