"""The kept frames of a small stack warped for the stack folder beside the end of pass 1.

A stack decoded once (``pipeline/run.py``) holds every frame after pass 1: as soon as the alignment is
final, each is warped over the output region as pass 2 would, handed to the stack folder's writer and
kept for pass 2, which then only fuses. The work is handed to the thread when pass 1's measures are in
reference geometry (``on_measured`` of :func:`~postfocus.pipeline.analyse.analyse`), beside the focus map
(one thread), not beside the motion comparison (two threads already).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np

from postfocus.align.warp import common_area
from postfocus.io.base import FrameSource
from postfocus.pipeline.merge import aligned_region, apply_gain, warp_whole

__all__ = ["WarpAhead"]


class WarpAhead:
    """Frames of a stack decoded once, warped for the stack folder beside the end of pass 1.

    A thread warps every kept frame over the output region (as pass 2 would), hands it to the
    writer exposure-corrected, and keeps it for pass 2, which then only fuses: the warping and
    the writing overlap the focus map, where a core would otherwise wait. The warped frames
    replace the decoded ones, so memory stays as it was.

    Parameters
    ----------
    source : FrameSource
        The stack (its frames read again here: kept decoded, they are not decoded again).
    keep : callable
        ``keep(index, frame)``: the stack folder's writer.
    method : str
        The fusion method (how far beyond the output region frames are warped).
    kept : callable
        Whether every frame is kept decoded (asked when the alignment is known); if not, nothing is warped here.
    """

    def __init__(self, source: FrameSource, keep: Callable[[int, np.ndarray], None], method: str, *,
                 kept: Callable[[], bool]):
        self.source, self.keep, self.method, self.kept = source, keep, method, kept
        self._pool: ThreadPoolExecutor | None = None
        self._frames: dict[int, Future] = {}
        self._work: list = []

    def start(self, alignment: list, used: list[int]) -> None:
        """Plan the warping of the ``used`` frames (the ``on_alignment`` of :func:`analyse`), if all are kept decoded;
        :meth:`begin` hands them to the thread."""
        if not self.kept():
            return
        size = self.source.info.size
        box = common_area([alignment[i].matrix for i in used], size)
        grown = aligned_region(box, size, self.method)
        oy, ox, h, w = box[0] - grown[0], box[1] - grown[1], box[2] - box[0], box[3] - box[1]

        def warp(i: int) -> np.ndarray:
            a = alignment[i]
            aligned = warp_whole(self.source.read_pixels(i), a.matrix, size, grown)
            # cut to the output region, then corrected: at gain 1 the writer gets a view of the kept frame, no copy
            self.keep(i, apply_gain(aligned[oy:oy + h, ox:ox + w], np.asarray(a.gain, np.float32)))
            return aligned

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-warp")
        self._work = [(i, warp) for i in used]  # handed to the thread by :meth:`begin`

    def begin(self) -> None:
        """Hand the frames to the warping thread (the ``on_measured`` of :func:`analyse`, or a first
        :meth:`frame`)."""
        work, self._work = self._work, []
        self._frames.update({i: self._pool.submit(warp, i) for i, warp in work})

    @property
    def started(self) -> bool:
        return self._pool is not None

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` warped (the ``warped`` of :func:`fuse`); each is handed out once."""
        if self._work:
            self.begin()
        return self._frames.pop(index).result()

    def close(self) -> None:
        """Wait for the thread (frames not started yet are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._frames.clear()
        self._work = []
