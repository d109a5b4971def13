"""Threads of the pipeline: decoding and per-frame work overlapped with the loop that consumes it.

Decoding (PyAV, Pillow, OpenCV) and most per-frame work release the GIL, so
one background thread that prepares frame ``k + 1`` while the loop works on
frame ``k`` keeps both cores busy. A fixed number of frames is held ahead (one by
default; as many as the workers when two prepare frames at once), so memory stays
flat in the number of frames: a frame is freed as soon as the loop has folded it in
and dropped its reference.

The number of threads OpenCV and FFmpeg use is set explicitly by
:func:`configure_threads` (from ``StackOptions.threads``), for one run: OpenCV's
is a process setting, set back when the run ends; nothing reads it from the
environment.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from postfocus.io.base import FrameSource

__all__ = ["InOrder", "compute_ahead", "configure_threads", "helper_threads", "in_background", "read_ahead", "usable_cores"]


def configure_threads(threads: int | None) -> Callable[[], None]:
    """Limit OpenCV's worker threads to ``threads`` for a run (None leaves OpenCV's setting: all cores).

    OpenCV's thread count is the whole process's: a library call must not leave it changed for the
    caller's own OpenCV work, so the returned function sets it back.

    Parameters
    ----------
    threads : int or None
        Threads for image processing.

    Returns
    -------
    callable
        Call it when the run is over (also on an error): OpenCV's thread count is as it was before.

    Examples
    --------
    >>> before = cv2.getNumThreads()
    >>> restore = configure_threads(1)
    >>> cv2.getNumThreads(), restore(), cv2.getNumThreads() == before
    (1, None, True)
    """
    if not threads:
        return lambda: None
    before = cv2.getNumThreads()
    cv2.setNumThreads(int(threads))
    return lambda: cv2.setNumThreads(before)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system reports one (a container or ``taskset``
    given 2 of a 64-core host's cores has 2), else the machine's count, cut to its cgroup's CPU quota (a container
    given ``--cpus 2`` on a 64-core host has 2; 1.5 cores count as 2), at least 1.

    Examples
    --------
    >>> 1 <= usable_cores() <= (os.cpu_count() or 1)
    True
    """
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # (no affinity on macOS and Windows)
        cores = max(1, os.cpu_count() or 1)
    quota = _quota_now()
    return cores if quota is None else max(1, min(cores, quota))


_QUOTA_FRESH = 5.0
"""Seconds a quota read stays in use: reading it costs about 0.3 ms (``/proc/self/cgroup`` is made by the kernel
on each read), and a run asks for the thread budget once per fused region; a server given another quota sees it."""
_quota_read: list = [float("-inf"), None]  # (when, cores)


def _quota_now() -> int | None:
    """:func:`_quota_cores` of this process, read again at most every :data:`_QUOTA_FRESH` seconds."""
    now = time.monotonic()
    when, cores = _quota_read
    if now - when >= _QUOTA_FRESH:
        cores = _quota_cores()
        _quota_read[:] = [now, cores]
    return cores


def _quota_cores(root: Path = Path("/")) -> int | None:
    """The CPU quota of this process's cgroup (and of its parents: the least) in whole cores, rounded up;
    None without one, or where the files are missing or not as expected (never an error).

    cgroup v2: ``cpu.max`` ("max 100000" is none, "200000 100000" two cores); v1: ``cpu.cfs_quota_us`` (-1 is
    none) over ``cpu.cfs_period_us``. The cgroup is the one ``/proc/self/cgroup`` names, under ``root``.
    """
    try:
        lines = (root / "proc/self/cgroup").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    base = root / "sys/fs/cgroup"
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        _, controllers, own = parts
        if controllers == "":  # v2
            found += _levels(base, own, lambda d: _ratio(_read(d / "cpu.max").split()))
        elif "cpu" in controllers.split(","):  # v1
            for mount in (base / controllers, base / "cpu", base / "cpu,cpuacct", base / "cpuacct,cpu"):
                if mount.is_dir():
                    found += _levels(mount, own, lambda d: _ratio([_read(d / "cpu.cfs_quota_us"),
                                                                   _read(d / "cpu.cfs_period_us")]))
                    break
    found = [cores for cores in found if cores is not None]
    return min(found) if found else None


def _levels(mount: Path, own: str, quota: Callable[[Path], int | None]) -> list[int | None]:
    """``quota`` of the cgroup ``own`` and of each parent up to ``mount``; the mount's own alone when ``own`` is not
    under it (a container whose cgroup namespace names a path the mount does not show)."""
    parts = [part for part in own.split("/") if part and part not in (".", "..")]
    if not (mount.joinpath(*parts)).is_dir():
        parts = []
    return [quota(mount.joinpath(*parts[:k])) for k in range(len(parts), -1, -1)]


def _read(path: Path) -> str:
    """A cgroup file's text ("" when it cannot be read)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except (OSError, ValueError):
        return ""


def _ratio(fields: list[str]) -> int | None:
    """``[quota, period]`` as whole cores, rounded up (None for none: "max", -1, or anything odd)."""
    try:
        quota, period = int(fields[0]), int(fields[1])
    except (IndexError, ValueError):
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, -(-quota // period))


def helper_threads(threads: int | None) -> int:
    """How many background matching threads to run for a thread budget (1 or 2).

    Examples
    --------
    >>> helper_threads(1), helper_threads(None) in (1, 2)  # None: as many as the machine has cores
    (1, True)
    """
    if threads is None:
        threads = usable_cores()
    return 2 if threads > 1 else 1


def read_ahead(
    source: FrameSource,
    indices: Sequence[int],
    read: Callable[[int], np.ndarray] | None = None,
    prepare: Callable[[int, np.ndarray], object] | None = None,
    ahead: int = 1,
    workers: int = 1,
) -> "InOrder":
    """``(index, frame)`` in order while the next frames are decoded in a background thread
    (:func:`compute_ahead`: decoding starts at once).

    Only one thread reads the source unless ``workers`` is 2 (for sources whose frames are read
    independently, e.g. image files), and at most ``ahead`` frames are held ahead.

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
        frame read (e.g. shrinking it to a working size), so the full frame is
        dropped there; in frame order with one worker, possibly out of order (at
        once) with two, while the loop still gets the results in order.
    ahead : int
        Frames decoded (and prepared) ahead of the one the loop works on.
    workers : int
        Frames decoded (and prepared) at once, each in a thread of its own (``prepare`` must
        then be safe to run on two frames at once); at least as many are held ahead.

    Examples
    --------
    >>> [i for i, _ in read_ahead(source, [0, 1, 2])]  # doctest: +SKIP
    [0, 1, 2]
    """
    read = read or source.read
    task = read if prepare is None else (lambda index: prepare(index, read(index)))
    return compute_ahead(indices, task, "postfocus-decode", ahead=ahead, workers=workers)


def compute_ahead(indices: Sequence[int], task: Callable[[int], object],
                  name: str = "postfocus-ahead", *, ahead: int = 1, workers: int = 1) -> "InOrder":
    """``(index, task(index))`` in order, computing the next ones in a background thread.

    The first ``ahead`` tasks start at once, before the first result is asked for, so the
    caller can prepare something else meanwhile (e.g. the blend state of pass 2).

    Parameters
    ----------
    indices : sequence of int
        Arguments of ``task``, in order.
    task : callable
        Work for one index.
    name : str
        Prefix of the thread's name.
    ahead : int
        Results computed ahead of the one the caller works on (at least 1, and at least ``workers``).
        More than one keeps the thread busy while the caller waits for something else (e.g. the
        alignment threads).
    workers : int
        Threads computing at once (1 or 2); the results still come in order.

    Returns
    -------
    InOrder
        An iterator of ``(index, result)``; closed (its thread stopped) at its end, on an error,
        or by :meth:`InOrder.close` (also as a context manager).

    Examples
    --------
    >>> list(compute_ahead([1, 2], lambda i: i * 10))
    [(1, 10), (2, 20)]
    """
    return InOrder(indices, task, name, max(ahead, workers), workers)


class InOrder:
    """The iterator of :func:`compute_ahead`: ``workers`` background threads, at most ``ahead`` results held."""

    def __init__(self, indices: Sequence[int], task: Callable[[int], object], name: str, ahead: int = 1,
                 workers: int = 1):
        self._order, self._task, self._ahead, self._k = list(indices), task, max(1, int(ahead)), 0
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix=name) \
            if self._order else None
        self._pending = deque(self._pool.submit(task, index) for index in self._order[: self._ahead]) \
            if self._pool is not None else deque()

    def __iter__(self) -> "InOrder":
        return self

    def __next__(self) -> tuple[int, object]:
        if self._k >= len(self._order) or self._pool is None:
            self.close()
            raise StopIteration
        try:
            result = self._pending.popleft().result()
        except BaseException:
            self.close()
            raise
        if self._k + self._ahead < len(self._order):
            self._pending.append(self._pool.submit(self._task, self._order[self._k + self._ahead]))
        index = self._order[self._k]
        self._k += 1
        return index, result

    def close(self) -> None:
        """Stop the thread: wait for the task running, drop those not started."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "InOrder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_background(task: Callable[[], object], name: str, *, inline: bool = False) -> Future:
    """Start ``task()`` in a thread of its own (named ``name``); its result comes from the Future.

    ``inline``: run it in the calling thread instead (a thread budget of one), the Future done on return.

    Examples
    --------
    >>> in_background(lambda: 6 * 7, "postfocus-example").result()
    42
    >>> in_background(lambda: 6 * 7, "postfocus-example", inline=True).done()
    True
    """
    if inline:
        done: Future = Future()
        try:
            done.set_result(task())
        except Exception as exc:  # raised by result(), as from a thread
            done.set_exception(exc)
        return done
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    try:
        return pool.submit(task)
    finally:
        pool.shutdown(wait=False)
