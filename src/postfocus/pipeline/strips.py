"""A frame's rectangles folded into a fusion on two threads: each thread takes one strip of rows.

Pass 2 folds each frame into the blend rectangle by rectangle (the depth-map fusion's footprint).
The rectangles never overlap, and every pixel of the blend is computed from its own pixels only
(weight, product, sum), so two threads can fold the two halves of a frame's rectangles at once
without changing a bit of the result: the rectangles are split into an upper and a lower share of
about equal area, a rectangle on the border cut between two rows when its pixels come from a
frame already warped (a rectangle warped on its own is never cut: a warp that starts at another
row may round differently). On few large frames this keeps the second core busy in pass 2, where
otherwise the main thread fused alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

__all__ = ["StripFolder", "split_rects"]

Rect = tuple[int, int, int, int]

#: Below this many pixels in a frame's footprint one thread folds it (the hand-off would cost more).
MIN_SHARED_PIXELS = 65536


def _area(rect: Rect) -> int:
    return (rect[2] - rect[0]) * (rect[3] - rect[1])


def split_rects(rects: Sequence[Rect], *, cut: bool) -> tuple[list[Rect], list[Rect]]:
    """Rectangles in two shares of about equal area, in order: the first share the upper rows.

    Parameters
    ----------
    rects : sequence of tuple of int
        (top, left, bottom, right), in the order a fusion's footprint gives them (top to bottom).
    cut : bool
        Whether the rectangle on the border between the shares may be cut between two rows.

    Returns
    -------
    (list, list)
        The two shares; together they cover exactly the pixels of ``rects``, once each.

    Examples
    --------
    >>> split_rects([(0, 0, 10, 4)], cut=True)
    ([(0, 0, 5, 4)], [(5, 0, 10, 4)])
    >>> split_rects([(0, 0, 10, 4), (10, 0, 12, 4)], cut=False)
    ([(0, 0, 10, 4)], [(10, 0, 12, 4)])
    """
    half = sum(_area(r) for r in rects) / 2.0
    first: list[Rect] = []
    done = 0
    for k, rect in enumerate(rects):
        area = _area(rect)
        if done + area <= half:
            first.append(rect)
            done += area
            continue
        t, l, b, r = rect
        if cut and b - t > 1:
            row = t + min(b - t - 1, max(1, round((half - done) / max(1, r - l))))
            return first + [(t, l, row, r)], [(row, l, b, r)] + list(rects[k + 1:])
        if half - done > done + area - half:  # whole: on the side that leaves the shares closer
            return first + [rect], list(rects[k + 1:])
        return first, list(rects[k:])
    return first, []


class StripFolder:
    """Runs ``task(rect)`` over a frame's rectangles, the lower share in a helper thread.

    Parameters
    ----------
    threads : int
        1: every rectangle in the caller's thread; 2: a helper thread (``postfocus-fuse``) takes the lower share.

    Examples
    --------
    >>> seen = []
    >>> with StripFolder(2) as folder:
    ...     folder.fold([(0, 0, 400, 400)], seen.append, cut=True)
    >>> sorted(seen)
    [(0, 0, 200, 400), (200, 0, 400, 400)]
    """

    def __init__(self, threads: int):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-fuse") if threads > 1 else None

    def fold(self, rects: Sequence[Rect], task: Callable[[Rect], object], *, cut: bool) -> None:
        """``task(rect)`` for every rectangle (on both threads when the footprint is large enough)."""
        if self._pool is None or sum(_area(r) for r in rects) < MIN_SHARED_PIXELS:
            for rect in rects:
                task(rect)
            return
        upper, lower = split_rects(rects, cut=cut)
        job = self._pool.submit(lambda: [task(rect) for rect in lower])
        try:
            for rect in upper:
                task(rect)
        finally:
            job.result()

    def close(self) -> None:
        """Stop the helper thread."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> "StripFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
