"""A frame's rectangles folded into a fusion on two threads: one takes them from the top, one from the bottom.

Pass 2 folds each frame into the blend rectangle by rectangle (the depth-map fusion's footprint).
The rectangles never overlap, and every pixel of the blend is computed from its own pixels only
(weight, product, sum), so two threads can fold a frame's rectangles at once, in any order, without
changing a bit of the result. The caller's thread takes them from the top and a helper thread from
the bottom until they meet, so a part that costs more than its area says (a tile row of the
occlusion-safe blend, a rectangle whose warp is slow) is made up for by the other thread. The
rectangle where the two halves of the area meet is cut between two rows when its pixels come from a
frame already warped. A rectangle warped on its own is never warped in pieces (a warp that starts at
another row may round differently): that rectangle is warped whole once, by the helper thread before
anything else, and the two threads fold its rows from that warp, so a frame whose footprint is one
large rectangle, or a few, is still shared. On few large frames this keeps the second core busy in
pass 2, where otherwise the main thread fused alone.
"""

from __future__ import annotations

from collections import deque
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
    upper, lower, _ = _split(rects, cut=cut)
    return upper, lower


def _split(rects: Sequence[Rect], *, cut: bool) -> tuple[list[Rect], list[Rect], Rect | None]:
    """:func:`split_rects`, with the rectangle cut between the shares (None if none was): its upper piece
    is the first share's last rectangle, its lower piece the second share's first."""
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
            return first + [(t, l, row, r)], [(row, l, b, r)] + list(rects[k + 1:]), rect
        if half - done > done + area - half:  # whole: on the side that leaves the shares closer
            return first + [rect], list(rects[k + 1:]), None
        return first, list(rects[k:]), None
    return first, [], None


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

    def fold(self, rects: Sequence[Rect], task: Callable[[Rect], object], *, cut: bool,
             whole: Callable[[Rect], object] | None = None) -> None:
        """``task(rect)`` for every rectangle (on both threads when the footprint is large enough).

        The caller's thread takes rectangles from the top, the helper from the bottom, until they meet
        (a share that costs more than its area says, say a tile row of the occlusion-safe blend, is
        made up for by the other thread). ``cut``: the rectangle where the two halves of the area meet
        may be cut between rows (its pixels come from a frame already warped). Else, with ``whole``,
        it is cut all the same: ``whole(rect)`` is called with the uncut rectangle in the helper
        thread, before either piece is folded (e.g. to warp it once, for ``task`` to cut its pieces from).
        """
        if self._pool is None or sum(_area(r) for r in rects) < MIN_SHARED_PIXELS:
            for rect in rects:
                task(rect)
            return
        upper, lower, border = _split(rects, cut=cut or whole is not None)
        made = self._pool.submit(whole, border) if border is not None and not cut else None
        pieces = {upper[-1], lower[0]} if made is not None else set()
        left = deque(upper + lower)  # (popping either end is atomic)

        def take(pop: Callable[[], Rect]) -> None:
            while left:
                try:
                    rect = pop()
                except IndexError:  # (the other thread took the last one)
                    return
                if rect in pieces:
                    made.result()
                task(rect)

        job = self._pool.submit(take, left.pop)  # (after ``made``: one worker)
        try:
            take(left.popleft)
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
