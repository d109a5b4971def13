"""Detection over a sweep: comparisons of frames a few apart accumulated into evidence, cleaned into a mask.

See :mod:`postfocus.motion` for the method.

References
----------
.. [1] A. P. Pentland, "A new sense for depth of field", IEEE Trans. PAMI 9(4), 1987.
.. [2] T. Kroeger, R. Timofte, D. Dai and L. Van Gool, "Fast optical flow using dense
   inverse search", ECCV 2016.
.. [3] J. Canny, "A computational approach to edge detection", IEEE Trans. PAMI 8(6), 1986
   (hysteresis: strong seeds grow through weaker evidence).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postfocus.focus.measure import noise_sigma
from postfocus.motion.compare import (COARSE_SIGMA, SIGMAS, WINDOW, blur_stats, coarse_change, coarse_light,
                                      displacement_change, local_mean, pair_change, texture_level)
from postfocus.numeric import to_float16

__all__ = ["COARSE_MIN", "COARSE_WEAK", "DETECT_SIZE", "HIGH", "LOW", "MAX_STEP", "SEED_AREA", "Motion",
           "MotionDetector", "clean_mask", "feather", "fill_holes", "frame_step"]

HIGH, LOW = 0.35, 0.20  # hysteresis thresholds on the evidence (0 = explained by focus, ~1 = unrelated)
COARSE_MIN = 0.2  # threshold of the coarse-light check on seeds
COARSE_WEAK = 0.1  # coarse-light threshold for growing regions
SEED_AREA = 0.5  # smallest seed, in discs of one margin radius
DETECT_SIZE = 256  # long edge (px) at which frames are compared
MAX_STEP = 4  # at most this many frames between compared frames


def frame_step(frames: int) -> int:
    """Frames between two compared frames of a sweep of ``frames``: about a tenth of the sweep, 1 to :data:`MAX_STEP`.

    Examples
    --------
    >>> frame_step(8), frame_step(28), frame_step(40), frame_step(200)
    (1, 3, 4, 4)
    """
    return min(MAX_STEP, max(1, round(frames / 10)))


@dataclass
class Motion:
    """Where a stack moved.

    Attributes
    ----------
    mask : float32 (h, w) in [0, 1], analysis size, reference geometry: 1 on
        moving content, feathered to 0 over a margin of static surroundings.
        Connected parts of ``mask > 0`` are the moving regions.
    core : bool (h, w) the detected moving pixels (before widening and feathering).
    evidence : float32 (h, w) the seed evidence per pixel (see :mod:`postfocus.motion`).
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
    stays; with ``k`` of all the maps, the mean is the stack's own), converted by OpenCV (exact for float16,
    3x faster). The partition and the sort work on a copy laid out a pixel a row (each pixel's values
    contiguous: NumPy sorts along the first axis of a stack by gathering every pixel's strided values, twice
    as slow; the same 1-D selection and sort of each pixel's values, so the same order), with the values
    negated and negated back for the partition, in place.
    """
    stack = np.empty((len(maps),) + maps[0].shape, np.float32)
    for out, m in zip(stack, maps):
        cv2.multiply(m, 1.0, dst=out, dtype=cv2.CV_32F)
    if k >= len(stack):
        mean = stack.mean(axis=0)
    pixels = cv2.transpose(stack.reshape(len(stack), -1))  # (pixels, maps)
    del stack
    if k < pixels.shape[1]:
        np.negative(pixels, out=pixels)
        pixels.partition(k - 1, axis=1)
        mean = np.negative(pixels[:, :k]).mean(axis=1).reshape(maps[0].shape)
        np.negative(pixels, out=pixels)
    pixels.sort(axis=1)
    half = pixels.shape[1] // 2
    # (the middle one or two, as np.median takes them)
    middle = pixels[:, half : half + 1] if pixels.shape[1] % 2 else pixels[:, half - 1 : half + 1]
    return np.mean(middle, axis=1).reshape(maps[0].shape), mean


class MotionDetector:
    """Accumulates comparisons of aligned frames a few apart, one frame at a time.

    Every :func:`frame_step`-th frame of the sweep and the last one are compared, at
    :data:`DETECT_SIZE`, with the compared frame before it and the one before
    that (frames ``step`` and ``2 step`` apart): a subject that moves a pixel or
    two per frame has moved several pixels between them, while the defocus of
    the low-resolution frames changes little. The mask comes back at the size
    the frames were given.

    Parameters
    ----------
    shape : (h, w) analysis size.
    margin : widening of the regions (comparison px) before feathering; default
        1.2 % of the long edge, at least 2 px.
    frames : frames the sweep will have (sets the step); default: every frame is compared.
    """

    def __init__(self, shape: tuple[int, int], margin: int | None = None, *, frames: int | None = None):
        self.shape = tuple(shape)
        f = min(1.0, DETECT_SIZE / max(shape))
        self.work = (max(8, round(shape[0] * f)), max(8, round(shape[1] * f))) if f < 1 else self.shape
        self.margin = max(2, int(round(0.012 * max(self.work)))) if margin is None else int(margin)
        self.step = 1 if frames is None else frame_step(int(frames))
        self.frames = frames
        # The last two compared frames: (grey, blurs, valid, noise, texture level, {sigma: coarse light}).
        self._recent: list[tuple] = []
        self._count = 0
        self._pairs: list[np.ndarray] = []
        self._coarse: list[np.ndarray] = []
        self._moved: list[np.ndarray] = []
        self._covered = np.ones(self.work, bool)
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def compared(self, position: int) -> bool:
        """Whether the frame at ``position`` (0 = first added) is compared: every ``step``-th and the last."""
        return position % self.step == 0 or (self.frames is not None and position == self.frames - 1)

    def prepare(self, grey: np.ndarray, valid: np.ndarray | None = None, *, position: int | None = None) -> tuple:
        """What :meth:`add` needs of one frame on its own (no state is read or changed: may run
        in another thread, ahead of the frames before it). A frame at a ``position`` that is not
        compared only gives its covered area."""
        if valid is None:
            valid = np.ones(self.shape, np.uint8)
        if self.work != self.shape:
            valid = cv2.resize(valid.astype(np.uint8), self.work[::-1], interpolation=cv2.INTER_NEAREST)
        if position is not None and not self.compared(position):
            return None, valid.astype(bool), None, None, 0.0, None
        g = np.ascontiguousarray(grey, np.float32)
        if self.work != self.shape:
            g = cv2.resize(g, self.work[::-1], interpolation=cv2.INTER_AREA)
        reach = WINDOW // 2 + int(np.ceil(2 * SIGMAS[-1])) + 1
        v = cv2.erode(valid.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
        stats = blur_stats(g)
        return g, valid.astype(bool), v, stats, noise_sigma(g), texture_level(stats)

    def add(self, index: int, grey: np.ndarray | None = None, valid: np.ndarray | None = None,
            prepared: tuple | None = None) -> None:
        """Add the next aligned frame (grey, analysis size; ``valid`` = where it has real pixels),
        or what :meth:`prepare` made of it (given its position)."""
        position = self._count
        self._count += 1
        if prepared is None:
            prepared = self.prepare(grey, valid, position=position)
        g, covered, v, blurred, noise, texture = prepared
        self._covered &= covered
        if not self.compared(position):
            return
        if g is None:  # prepared without a position
            raise ValueError(f"frame {index} was prepared as a frame that is not compared")
        frame = (g, blurred, v, noise, texture, {})
        for before in self._recent:
            self._compare(before, frame)
        self._recent = (self._recent + [frame])[-2:]

    @staticmethod
    def _light(frame: tuple, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """The frame's :func:`coarse_light` at ``sigma``, made once for all the pairs it is in."""
        made = frame[5]
        if sigma not in made:
            made[sigma] = coarse_light(frame[0], sigma)
        return made[sigma]

    def _compare(self, first: tuple, second: tuple) -> None:
        """The evidence of one pair: focus-unexplained change, displacement, coarse change."""
        (pg, pb, pv, pn, pt, _), (g, b, v, n, t, _) = first, second
        noise = max(pn, n)
        outside = (pv & v) == 0
        chosen: list[np.ndarray] = []
        r = pair_change(pg, g, noise=noise, blurred=(pb, b), blur_out=chosen)
        m = displacement_change(pg, g, r, noise=noise, stats_a=pb, stats_b=b, at_least=LOW, flow=self._flow,
                                texture=(pt, t))
        r[outside] = 0
        m[outside] = 0
        self._pairs.append(to_float16(np.minimum(r, 1.0)))
        self._moved.append(to_float16(np.minimum(m, 1.0)))
        # The coarse check looks beyond the focus step of this pair: the blur that explained
        # the well-explained detailed pixels (90th percentile) sets its scale.
        detail = (r < 0.1) & ~outside & (local_mean(np.abs(pg - g), 3) > 4 * noise + 0.004)
        step = float(np.percentile(chosen[0][detail], 90)) if detail.sum() > 100 else 0.0
        sigma = max(COARSE_SIGMA, 1.5 * step)
        c = coarse_change(pg, g, sigma, (self._light(first, sigma), self._light(second, sigma)))
        c[outside] = 0
        self._coarse.append(to_float16(np.minimum(c, 8.0)))

    def evidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(seed, growth) evidence per pixel.

        Seeds: a displacement explains the change in at least two pairs (the mean of the two
        largest :func:`displacement_change`), or the content changed beyond focus in most pairs
        (the median of :func:`pair_change`, where the coarse light changed as well: flames,
        water). Growth: the mean of the largest quarter of the pair changes (at least two),
        where the coarse light changed in a few pairs, or the displacement evidence.
        """
        if not self._pairs:
            zero = np.zeros(self.work, np.float32)
            return zero, zero
        p = len(self._pairs)
        k = min(p, max(2, int(np.ceil(p / 4))))
        persistent, peak = _median_and_top(self._pairs, k)
        coarse_median, coarse_top = _median_and_top(self._coarse, k)
        _, moved = _median_and_top(self._moved, min(p, 2))
        persistent *= np.clip(coarse_median / np.float32(COARSE_MIN), 0, 1)
        peak *= np.clip(coarse_top / np.float32(COARSE_WEAK), 0, 1)
        return np.maximum(persistent, moved), np.maximum(peak, moved)

    def finish(self) -> Motion:
        """The motion mask of the frames added so far."""
        seed, growth = self.evidence()
        core = clean_mask(seed, growth, self.margin)
        mask = feather(core, self.margin)
        area = max(int(self._covered.sum()), 1)
        share = float((core & self._covered).sum()) / area
        self._recent, self._pairs, self._coarse, self._moved, self._count = [], [], [], [], 0
        if self.work != self.shape:  # back to analysis size
            size = self.shape[::-1]
            mask = np.clip(cv2.resize(mask, size, interpolation=cv2.INTER_LINEAR), 0, 1)
            mask[mask < 0.02] = 0
            core = cv2.resize(core.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            mask[core] = 1.0
            seed = cv2.resize(seed, size, interpolation=cv2.INTER_LINEAR)
        return Motion(mask=mask.astype(np.float32), core=core, evidence=seed, share=share)


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
