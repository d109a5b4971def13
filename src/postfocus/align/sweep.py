"""Align a whole sweep: neighbour matches, chained to the reference frame.

Neighbouring frames of a focus sweep differ little in blur, so each frame is
matched to its neighbour (:func:`~postfocus.align.pair.match_pair`) and the
pairwise transforms are chained to the reference frame. Blurred frames at the
ends of a sweep would never match the reference directly; their neighbours do.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np

from postfocus.colour import GAMMA, gamma_decode
from postfocus.align.pair import MODELS, FramePyramid, PairMatch, channel_gain, match_pair, prepare_frame
from postfocus.align.report import FrameAlignment
from postfocus.align.warp import rescale_matrix, valid_mask, warp_to_reference
from postfocus.labels import frame_label

__all__ = ["SweepAligner"]


class _Link(NamedTuple):
    """A neighbour match in the chain: frame ``b`` mapped onto frame ``a`` (working-size coordinates)."""

    a: int
    b: int
    matrix: np.ndarray
    gain: np.ndarray
    correlation: float
    method: str


#: Linear light from which a pixel may hold more light than it shows (encoded 0.987).
CLIPPED = 0.97


def _without_clipped_light(mask: np.ndarray, a: np.ndarray, b: np.ndarray, reach: int) -> np.ndarray:
    """``mask`` less the pixels within ``reach`` px of a clipped pixel of ``a`` or ``b``.

    ``a`` and ``b`` are :meth:`SweepAligner.exposure_frame` copies: three planes of linear light and a
    fourth, above 0 where the frame had a clipped pixel before it was shrunk. Defocus keeps the total light,
    except where a highlight brighter than white is clipped: sharp, its excess is cut off; blurred, it spreads
    below white and is kept, so a frame focused away from a specular highlight holds more light than the one
    focused on it, which an exposure comparison would take for a change of exposure. The pixels the
    highlight's blur can reach (as far as the overlap's border is eroded for the same reason) are left out;
    if fewer than a quarter of ``mask`` would remain (a frame mostly clipped), ``mask`` is kept whole.
    """
    # (the planes copied out by OpenCV: NumPy's comparison of a strided plane costs ten times as much)
    clipped = ((cv2.extractChannel(a, 3) > 0) | (cv2.extractChannel(b, 3) > 0)).astype(np.uint8)
    if not clipped.any():
        return mask
    near = cv2.dilate(clipped, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    kept = mask.astype(bool) & (near == 0)
    return kept if kept.sum() >= 0.25 * np.count_nonzero(mask) else mask


def _colour_planes(exposure: np.ndarray) -> np.ndarray:
    """The colour planes of an exposure copy: an RGB frame's three copied out by OpenCV (a strided view's
    reading costs NumPy ten times as much), else ``exposure[..., :3]``."""
    if exposure.ndim == 3 and exposure.shape[2] == 4 and exposure.dtype == np.float32:
        return cv2.cvtColor(exposure, cv2.COLOR_RGBA2RGB)
    return exposure[..., :3]


class SweepAligner:
    """Align a sweep streamed in file order, one small frame at a time.

    Feed every frame with :meth:`add` (grey and colour at working resolution),
    then :meth:`finish` returns one :class:`FrameAlignment` per frame, with
    transforms at full resolution. Neighbour matches run in a background
    thread while the caller goes on (``background=False``: in the caller's
    thread); at most a few small frames wait for their match. Matches run at
    once take turns through the tile refinement (its frame-sized arrays, for
    memory) unless ``turns`` is false, where pass 1 is not the peak (a video's):
    then both refine at once and twice as many frames may wait.

    Examples
    --------
    >>> aligner = SweepAligner(names, reference=3, model="similarity", scale=0.5)  # doctest: +SKIP
    >>> for i, frame in enumerate(source): aligner.add(i, small_grey, small_rgb)  # doctest: +SKIP
    >>> report, reference = aligner.finish()  # doctest: +SKIP
    """

    #: Frames received but not yet matched, beyond which :meth:`add` waits (bounds memory).
    MAX_WAITING = 3
    #: The same where pass 1 is not the memory peak (``turns=False``): a slow match then holds up
    #: neither the decoding nor the other match thread (on the 4K sweep pass 1's peak 12-15 MB higher).
    ROOMY_WAITING = 6

    def __init__(self, names: list[str], reference: int, model: str = "similarity", scale: float = 1.0,
                 background: bool = True, workers: int = 2, *, turns: bool = True, fps: float | None = None):
        if model not in MODELS:
            raise ValueError(f"unknown alignment model {model!r}; choose one of {', '.join(MODELS)}")
        self.names = names
        self.fps = fps  # (a video's frames are said with their time)
        self.reference = reference
        self.model = model
        self.scale = scale
        self._last: tuple[int, FramePyramid, np.ndarray] | None = None
        self._last_linked = False
        # First frame of a chain that did not match the frame after it: if the frame after
        # that matches it instead, the middle one was the odd frame out, not this one.
        self._orphan: tuple[int, FramePyramid, np.ndarray] | None = None
        self._links: list[_Link] = []
        self._dropped: dict[int, str] = {}
        # Frames waiting to be linked, each with the match against the frame received before it,
        # started as soon as both were there (the usual case: that frame becomes the last kept).
        self._waiting: list[tuple[tuple[int, FramePyramid, np.ndarray], int | None, Future | None]] = []
        self._received: tuple[int, FramePyramid, np.ndarray] | None = None
        self._pool = None
        # One tile refinement at a time (the matches' largest arrays), beside the other's correlation match;
        # without ``turns`` (a video: pass 1 holds no decoded frames, pass 2's blend sets the peak) both at once.
        self._refining = threading.Lock() if turns else None
        self._most_waiting = self.MAX_WAITING if turns else self.ROOMY_WAITING
        if background:
            # ``workers`` matches at once (one on a single-thread budget, beside the caller).
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="postfocus-align")

    def _pair(self, a: tuple[int, FramePyramid, np.ndarray], b: tuple[int, FramePyramid, np.ndarray]):
        """Match frame ``b`` to frame ``a``; with the exposure gain between them when they match."""
        match = match_pair(a[1], b[1], self.model, refining=self._refining)
        gain = self._gain(a[2], b[2], match, b[1].shape[1]) if match.ok else None
        return match, gain

    #: Long edge (px) at which neighbours' exposures are compared: means need no detail.
    GAIN_SIZE = 400

    @staticmethod
    def _gain(last_small: np.ndarray, small: np.ndarray, match: PairMatch, work_width: int) -> np.ndarray:
        """Exposure gain between neighbours, from their frames kept in linear light at :attr:`GAIN_SIZE`
        (``match`` is at the working size, ``work_width`` pixels wide)."""
        size = small.shape[:2]
        matrix = rescale_matrix(match.matrix, size[1] / work_width)
        aligned = warp_to_reference(small, matrix, size)
        border = max(3, int(0.04 * max(size)))  # blur spreads light across the edge of the overlap
        mask = cv2.erode(valid_mask(matrix, size), np.ones((border, border), np.uint8))
        mask = _without_clipped_light(mask, last_small, aligned, border)
        # The colour planes copied out by OpenCV: NumPy reads them from the four-plane arrays as strided views
        # (0.5 ms each for a 400 px frame, against 0.04 ms), and a masked mean of three planes costs a third
        # of one of four (the same sums: each channel's is its own).
        linear_gain = channel_gain(_colour_planes(last_small), _colour_planes(aligned), mask, gamma=1.0)
        return (linear_gain ** np.float32(1 / GAMMA)).astype(np.float32)

    @classmethod
    def exposure_frame(cls, linear: np.ndarray) -> np.ndarray:
        """A working-size frame in linear light shrunk to :attr:`GAIN_SIZE`, as neighbours' exposures are compared.

        Shrunk in linear light: defocus moves light around but keeps its total, so means of
        linear values compare frames focused differently fairly, at any size. A fourth plane, above 0
        where any channel of the frame reached :data:`CLIPPED` before shrinking, marks where that does not
        hold (``_without_clipped_light``).
        """
        h, w = linear.shape[:2]
        f = min(1.0, cls.GAIN_SIZE / max(h, w))
        # per channel, as one (h, 3w) plane of 0/255, shrunk by a whole factor at least as large as the copy's
        # (OpenCV's fast path), then brought to the copy's size as floats: channels and neighbours mix, which
        # is harmless (the flagged pixels' surroundings are left out anyway); a lone clipped pixel survives a
        # factor up to 22
        flag = cv2.compare(np.ascontiguousarray(linear, np.float32).reshape(h, -1), CLIPPED, cv2.CMP_GE)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        k = int(np.ceil(max(h / size[1], w / size[0]) - 1e-6))
        if k > 1:
            flag = cv2.resize(flag, None, fx=1.0 / k, fy=1.0 / k, interpolation=cv2.INTER_AREA)
        flag = cv2.resize(flag.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        if f < 1.0:
            linear = cv2.resize(linear, size, interpolation=cv2.INTER_AREA)
        if linear.ndim == 3 and linear.shape[2] == 3 and linear.dtype == np.float32:
            # (OpenCV interleaves the planes: the same values as np.dstack's, at a tenth of its 0.5 ms)
            out = cv2.cvtColor(linear, cv2.COLOR_RGB2RGBA)
            out[..., 3] = flag
            return out
        return np.dstack([linear, flag]).astype(np.float32, copy=False)

    def add(self, index: int, grey: np.ndarray, colour: np.ndarray, exposure: np.ndarray | None = None) -> None:
        """Take frame ``index``; its match to the frame before it starts now (in the background).

        Only the grey frame (with its pyramid, made once for both of its matches) and a small copy of
        ``colour`` in linear light (for exposure) are kept; ``exposure`` is
        ``exposure_frame(gamma_decode(colour))`` if already made.
        """
        linear = self.exposure_frame(gamma_decode(colour)) if exposure is None else exposure
        frame = (index, prepare_frame(grey), linear)
        before = self._received
        job = None
        if before is not None and self._pool is not None:
            job = self._pool.submit(self._pair, before, frame)
        elif before is not None:  # in the caller's thread: a future that is already done
            job = Future()
            job.set_result(self._pair(before, frame))
        self._waiting.append((frame, None if before is None else before[0], job))
        self._received = frame
        self._link(block=len(self._waiting) > self._most_waiting)

    def _link(self, block: bool) -> None:
        """Link waiting frames in order, as far as their matches are done (all of them with ``block``)."""
        while self._waiting:
            frame, before, job = self._waiting[0]
            if not block and job is not None and not job.done():
                return
            self._waiting.pop(0)
            index, grey, colour = frame
            if self._last is None:
                self._last = frame
                self._last_linked = False
                continue
            last_index, last_grey, last_colour = self._last
            if before == last_index and job is not None:
                match, gain = job.result()
            else:  # the frame before this one was left out: match against the last one kept
                match, gain = self._pair(self._last, frame)
            if not match.ok and not self._last_linked and self._orphan is not None:
                retry, retry_gain = self._pair(self._orphan, frame)
                if retry.ok:  # the orphan and this frame match: the frame between them is the odd one
                    self._dropped.pop(self._orphan[0], None)
                    self._dropped[last_index] = f"cannot be aligned with {self._label(index)} ({match.reason})"
                    last_index, last_grey, last_colour = self._orphan
                    match, gain = retry, retry_gain
            self._orphan = None
            if match.ok:
                self._links.append(_Link(last_index, index, match.matrix, gain, match.correlation, match.method))
                self._last = frame
                self._last_linked = True
            elif not self._last_linked:
                # The chain has only its first frame so far: take it for the odd frame out, unless
                # the next frame matches it (see above).
                self._dropped[last_index] = f"cannot be aligned with {self._label(index)} ({match.reason})"
                self._orphan = self._last
                self._last = frame
            else:
                self._dropped[index] = f"cannot be aligned with {self._label(last_index)} ({match.reason})"

    def _label(self, index: int) -> str:
        """Frame ``index`` as people read it (:func:`postfocus.labels.frame_label`)."""
        return frame_label(self.names, index, fps=self.fps)

    def close(self) -> None:
        """Stop the background thread (:meth:`finish` does this too)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def finish(self) -> tuple[list[FrameAlignment], int]:
        """Wait for the last matches and chain them to the reference frame.

        Returns
        -------
        report : list of FrameAlignment
            One per frame, matrices relative to the reference.
        reference : int
            The reference frame: the one asked for, or the linked frame
            nearest to it when it could not be linked.
        """
        try:
            self._link(block=True)
        finally:
            self.close()
        self._received = None
        n = len(self.names)
        report = [FrameAlignment(i, self.names[i]) for i in range(n)]
        for i, why in self._dropped.items():
            report[i].used = False
            report[i].method = "none"
            report[i].correlation = 0.0
            report[i].note = why
        chain = [self._links[0].a] + [link.b for link in self._links] if self._links else []
        if not chain:
            for r in report:
                r.used = r.index == (self._last[0] if self._last else self.reference)
            return report, self.reference
        used = set(chain)
        for i in range(n):
            if i not in used and report[i].used:
                report[i].used = False
                report[i].method = "none"
                report[i].note = report[i].note or "not linked to the other frames"
        ref = self.reference if self.reference in used else min(chain, key=lambda i: abs(i - self.reference))
        pos = chain.index(ref)
        full = 1.0 / self.scale
        report[ref].matrix = np.eye(3)
        report[ref].gain = np.ones(3, np.float32)
        report[ref].method = "reference"
        for k in range(pos, len(chain) - 1):  # frames after the reference
            link = self._links[k]
            report[link.b].matrix = rescale_matrix(link.matrix, full) @ report[link.a].matrix
            report[link.b].gain = (report[link.a].gain * link.gain).astype(np.float32)
            report[link.b].correlation, report[link.b].method = link.correlation, link.method
        for k in range(pos - 1, -1, -1):  # frames before the reference
            link = self._links[k]
            report[link.a].matrix = np.linalg.inv(rescale_matrix(link.matrix, full)) @ report[link.b].matrix
            report[link.a].gain = (report[link.b].gain / link.gain).astype(np.float32)
            report[link.a].correlation, report[link.a].method = link.correlation, link.method
        for r in report:
            r.matrix = r.matrix / r.matrix[2, 2]
        return report, ref
