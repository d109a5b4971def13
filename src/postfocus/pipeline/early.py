"""A video's first frames of pass 2 read beside the focus map, where one core waits.

Between the passes the focus map (``focus/map.py``'s guided filter) runs on one thread while the
other core waits for it (docs/performance.md, "The 4K sweep, thirteenth session"). Pass 2 reads a
video's frames again from its scratch file (``io/video_scratch.py``), and that read hands each frame
to the stack folder's writer (``store/unwarped.py``'s :class:`~postfocus.store.unwarped.HandOver`),
whose JPEG encoding is most of what keeping the frames costs. :class:`EarlyReads` reads the first
few frames of pass 2 there instead, on a thread of its own, so their conversion to RGB and their
JPEGs fill the waiting core rather than pass 2, which keeps both cores busy; pass 2 then takes the
frames read (the same pixels, read once). No paper: scheduling only.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

import numpy as np

from postfocus.io.base import FrameSource

__all__ = ["EARLY_FRAMES", "EarlyReads"]

#: Frames of pass 2 read beside the focus map (a 4K frame's conversion ~10-15 ms and JPEG ~22 ms of CPU, against
#: the map's ~0.15 s alone), held until pass 2 takes them. They are held while pass 2 makes its blend state,
#: which is where the run's memory peaks: 3840x2160 RGB is 24 MB a frame, and peak memory rose with the
#: count (medians of 3 runs on the 4K sweep: none 657 MB, one 680, two 716, three 704; docs/performance.md,
#: fourteenth session). Two: about half of the map's lone stretch filled, for about one frame more held.
EARLY_FRAMES = 2


class EarlyReads(FrameSource):
    """``source`` whose first frames of pass 2 are read ahead, on a thread of its own, from :meth:`begin` on.

    Reads of ``source`` never overlap (one lock): a video's decoder and scratch file serve one reader.

    Parameters
    ----------
    source : FrameSource
        The frames (a video's, handed to the stack folder's writer on their second read).
    count : int, optional
        How many frames :meth:`begin` reads ahead (default :data:`EARLY_FRAMES`).

    Examples
    --------
    >>> reads = EarlyReads(source)  # doctest: +SKIP
    >>> reads.plan(used); reads.begin()  # doctest: +SKIP
    >>> reads.read_pixels(used[0]) is not None  # doctest: +SKIP
    True
    """

    def __init__(self, source: FrameSource, *, count: int | None = None):
        self.source, self.info = source, source.info
        self.count = EARLY_FRAMES if count is None else count
        self._lock = threading.Lock()
        self._planned: list[int] = []
        self._pool: ThreadPoolExecutor | None = None
        self._held: dict[int, Future] = {}

    def __len__(self) -> int:
        return len(self.source)

    def plan(self, frames: Sequence[int]) -> None:
        """Name the frames pass 2 reads, in its order (the first :attr:`count` are read by :meth:`begin`)."""
        self._planned = [int(i) for i in frames[: self.count]]

    def begin(self) -> None:
        """Start reading the planned frames on a thread of their own (once; nothing when none are planned)."""
        if self._pool is not None or not self._planned:
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-early")
        self._held = {i: self._pool.submit(self._read, i) for i in self._planned}

    def _read(self, index: int) -> np.ndarray:
        with self._lock:
            return self.source.read_pixels(index)

    def read_pixels(self, index: int) -> np.ndarray:
        """Frame ``index`` as stored: the one read ahead if it was (handed out once), else read now."""
        held = self._held.pop(index, None)
        return held.result() if held is not None else self._read(index)

    def read(self, index: int) -> np.ndarray:
        with self._lock:
            return self.source.read(index)

    def identity(self) -> list[tuple[str, int, int]]:
        return self.source.identity()

    def close(self) -> None:
        """Wait for the thread; frames read ahead and not taken are dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._held.clear()
