"""Independent steps of a loop made in turns by the calling thread and one helper thread, used in order.

A loop whose steps each filter a whole image (one level of a weighted median, one disc of a blur series) and
then fold the result into a running state spends most of its time in the filters, which are NumPy and OpenCV
calls that let the GIL go. :func:`in_turns` makes the even steps on the calling thread and the odd ones on a
helper, one pair at a time, and hands them to the loop in order: the loop's own folding is unchanged, so the
result is the same to the bit as on one thread. A loop that stops early leaves at most one helper step made for
nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, Sequence, TypeVar

__all__ = ["in_turns"]

T = TypeVar("T")
R = TypeVar("R")


def in_turns(task: Callable[[T], R], items: Sequence[T], *, threads: int = 1) -> Iterator[R]:
    """``task(item)`` for each of ``items``, in order; with ``threads`` 2 or more, every other one on a helper.

    Parameters
    ----------
    task : work for one item, independent of the others (it reads no state the loop changes).
    items : the items, in the order the loop uses their results.
    threads : 1: every step on the calling thread, as the plain loop; 2 or more: the calling thread and one
        helper (named ``postfocus-turns``), two steps at a time.

    Yields
    ------
    ``task(item)`` of each item in turn.

    Examples
    --------
    >>> list(in_turns(lambda x: x * x, [1, 2, 3], threads=2))
    [1, 4, 9]
    """
    if int(threads) < 2 or len(items) < 2:
        for item in items:
            yield task(item)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="postfocus-turns") as pool:
        for k in range(0, len(items), 2):
            other = pool.submit(task, items[k + 1]) if k + 1 < len(items) else None
            try:
                mine = task(items[k])
            except BaseException:
                if other is not None:
                    other.cancel()
                raise
            yield mine
            if other is not None:
                yield other.result()
