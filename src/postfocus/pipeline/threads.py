"""Threads of the pipeline: decoding and per-frame work overlapped with the loop that consumes it.

Decoding (PyAV, Pillow, OpenCV) and most per-frame work release the GIL, so
one background thread that prepares frame ``k + 1`` while the loop works on
frame ``k`` keeps both cores busy. Exactly one frame is held ahead, so memory
stays flat in the number of frames: a frame is freed as soon as the loop has
folded it in and dropped its reference.

The number of threads OpenCV and FFmpeg use is set explicitly by
:func:`configure_threads` (from ``StackOptions.threads``); nothing reads it
from the environment.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from postfocus.io.base import FrameSource

__all__ = ["compute_ahead", "configure_threads", "helper_threads", "in_background", "read_ahead"]


def configure_threads(threads: int | None) -> None:
    """Limit OpenCV's worker threads to ``threads`` (None leaves OpenCV's default: all cores).

    Parameters
    ----------
    threads : int or None
        Threads for image processing.
    """
    if threads:
        cv2.setNumThreads(int(threads))


def helper_threads(threads: int | None) -> int:
    """How many background matching threads to run for a thread budget (1 or 2).

    Examples
    --------
    >>> helper_threads(1), helper_threads(None) in (1, 2)  # None: as many as the machine has cores
    (1, True)
    """
    if threads is None:
        threads = os.cpu_count() or 1
    return 2 if threads > 1 else 1


def read_ahead(
    source: FrameSource,
    indices: Sequence[int],
    read: Callable[[int], np.ndarray] | None = None,
    prepare: Callable[[int, np.ndarray], object] | None = None,
    ahead: int = 1,
) -> Iterator[tuple[int, object]]:
    """Yield ``(index, frame)`` in order while the next frames are decoded in a background thread.

    Only one thread ever reads the source, and at most ``ahead`` frames are held ahead.

    Parameters
    ----------
    source : FrameSource
        The frames.
    indices : sequence of int
        Which frames, in this order.
    read : callable, optional
        How to read one (default ``source.read``; e.g. ``source.read_pixels``).
    prepare : callable, optional
        ``prepare(index, frame)``, also done in the background thread on each
        frame read, in order (e.g. shrinking it to a working size), so the full
        frame is dropped there.
    ahead : int
        Frames decoded (and prepared) ahead of the one the loop works on.

    Examples
    --------
    >>> [i for i, _ in read_ahead(source, [0, 1, 2])]  # doctest: +SKIP
    [0, 1, 2]
    """
    read = read or source.read
    task = read if prepare is None else (lambda index: prepare(index, read(index)))
    return compute_ahead(indices, task, "postfocus-decode", ahead=ahead)


def compute_ahead(indices: Sequence[int], task: Callable[[int], object],
                  name: str = "postfocus-ahead", *, ahead: int = 1) -> Iterator[tuple[int, object]]:
    """Yield ``(index, task(index))`` in order, computing the next ones in a background thread.

    Parameters
    ----------
    indices : sequence of int
        Arguments of ``task``, in order.
    task : callable
        Work for one index.
    name : str
        Prefix of the thread's name.
    ahead : int
        Results computed ahead of the one the caller works on (at least 1). More than one keeps
        the thread busy while the caller waits for something else (e.g. the alignment threads).

    Examples
    --------
    >>> list(compute_ahead([1, 2], lambda i: i * 10))
    [(1, 10), (2, 20)]
    """
    order = list(indices)
    if not order:
        return
    ahead = max(1, int(ahead))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        pending = deque(pool.submit(task, index) for index in order[:ahead])
        for k, index in enumerate(order):
            result = pending.popleft().result()
            if k + ahead < len(order):
                pending.append(pool.submit(task, order[k + ahead]))
            yield index, result
            del result


def in_background(task: Callable[[], object], name: str) -> Future:
    """Start ``task()`` in a thread of its own (named ``name``); its result comes from the Future.

    Examples
    --------
    >>> in_background(lambda: 6 * 7, "postfocus-example").result()
    42
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(task)
    finally:
        pool.shutdown(wait=False)
