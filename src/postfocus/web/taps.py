"""The web app's taps: a plain tap's depth made ahead and bounded, and the thread budget of the app's renders.

A tap on a textureless spot answers from the stack's depth (:func:`postfocus.products.refocus.plain_fill`):
the depth map a job keeps in its stack folder, read in tens of milliseconds, else the depth map's rules run on
the focus map's grid (:mod:`postfocus.products.tap_depth`, 1.5 s of CPU on a 4K stack) when that map is gone
(deleted, a folder that cannot be written). :class:`TapAhead` makes it before the user's first tap: when a job
finishes and when the server first opens a job's stack, on one background thread inside the app's heavy budget
(:data:`postfocus.web.ops.HEAVY_AT_ONCE`), at the server's own priority. A tap that still has to make it waits for
the one piece of work under way for its stack folder (one lock per folder), never starts a second copy, and goes
through the same heavy budget; a tap that reads a kept depth, or a textured window, waits for nothing.

The app's own renders (depth map, aperture, colour pop, range merge, a tap's depth) share the machine with the
jobs, each in a worker process of its own: :func:`app_threads` gives each render a thread budget once, at
start-up, from the cores and the jobs allowed at once, instead of every render taking every core.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from postfocus.store import ProcessedStack

__all__ = ["TapAhead", "app_threads"]

log = logging.getLogger("postfocus.web")


def app_threads(workers: int, *, cores: int | None = None) -> int:
    """Thread budget of each of the app's own renders: the machine's cores shared between the jobs allowed at once
    (``workers``, each in its own process) and the app as one more, at least 1.

    Parameters
    ----------
    workers : int
        Jobs processed at the same time (``serve --workers``).
    cores : int, optional
        The cores the server may run on (default:
        :func:`~postfocus.pipeline.threads.usable_cores`, its CPU affinity).

    Returns
    -------
    int
        ``max(1, cores // (workers + 1))``.

    Examples
    --------
    >>> app_threads(2, cores=2), app_threads(2, cores=8), app_threads(1, cores=16)
    (1, 2, 8)
    """
    if cores is None:
        from postfocus.pipeline.threads import usable_cores

        cores = usable_cores()
    return max(1, int(cores) // (max(1, int(workers)) + 1))


class TapAhead:
    """A plain tap's depth made ahead on one background thread, and made at most once per stack folder.

    Parameters
    ----------
    heavy : threading.Semaphore
        The app's budget of heavy work at once; making a depth takes one of it.
    threads : int, optional
        Thread budget of a depth made (None: the machine's cores).
    """

    def __init__(self, heavy: threading.Semaphore, *, threads: int | None = None):
        self.threads = threads
        self._heavy = heavy
        self._lock = threading.Condition()
        # One per stack folder, alive while held or waited for (a server's every job kept one: review18)
        self._folders: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._waiting: dict[str, Callable[[], ProcessedStack]] = {}  # name -> opens the stack, in order asked
        self._busy = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._logged: set[str] = set()

    def soon(self, name: str, opened: Callable[[], ProcessedStack]) -> None:
        """Make the plain tap's depth of the stack ``opened()`` gives in the background (a job id ``name`` asked
        again while it waits is asked once, from the newest ``opened``: its stack made again). Returns at once."""
        with self._lock:
            if self._closed:
                return
            self._waiting[name] = opened  # (the first one kept was the stack of a folder since replaced: review18)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="postfocus-tap-ahead", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def before_tap(self, stack: ProcessedStack, x: float, y: float, name: str) -> bool:
        """Make what a tap at (x, y) needs first: the stack's plain fill, for a plain window only (a textured
        window, or a fill already made, waits for nothing). False when making it failed (logged once for the job
        ``name``): the tap then answers from the focus map (``tap(..., make=False)``) rather than failing; a
        damaged stack is raised (the app makes it again). False too for a textured window while the fill is not
        made: every tap reads the fill once it is (:mod:`postfocus.products.tap_read`), but a textured one does not
        make it outside the heavy budget; it answers from its own window's curve meanwhile."""
        from postfocus.errors import PostfocusError
        from postfocus.products.refocus import is_plain, plain_fill_ready

        if not plain_fill_ready(stack):
            if not is_plain(stack, x, y):
                return False
            try:
                self.fill(stack)
            except PostfocusError:
                raise
            except Exception as exc:  # noqa: BLE001 - out of disk or memory: the focus map still answers
                self._failed(name, exc)
                return False
        return True

    def fill(self, stack: ProcessedStack) -> None:
        """Make the stack's plain fill unless it is made: under its folder's lock (a second asker waits for the
        first one's, then reads it) and inside the heavy budget."""
        from postfocus.products.refocus import plain_fill, plain_fill_ready
        from postfocus.products.tap_read import depth_weights

        with self._folder_lock(str(stack.folder)):
            if not plain_fill_ready(stack):  # (else made by the one this waited for, or kept meanwhile)
                with self._heavy:
                    plain_fill(stack, threads=self.threads)
            depth_weights(stack, stack.focus_index.shape)  # (the kept depth's confidence in memory too: conf20)

    def forget(self, name: str) -> None:
        """Make nothing for job ``name`` unless asked again (deleted, or to be processed again)."""
        with self._lock:
            self._waiting.pop(name, None)
            self._lock.notify_all()

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting or being made; False when ``timeout`` (seconds) passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def close(self) -> None:
        """Stop taking work and wait for the piece under way (at most one depth made). The interpreter ending with
        the thread inside OpenCV aborted the process (exit 134: review18); the waiting ones are dropped."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._lock.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _folder_lock(self, folder: str) -> threading.Lock:
        with self._lock:
            return self._folders.setdefault(folder, threading.Lock())

    def _run(self) -> None:
        from postfocus.products.refocus import is_plain

        # (at the server's priority: a thread's nice value is inherited by the OpenCV workers it makes, and could
        # not be taken back; a tap waiting on its folder's lock would wait for a thread the jobs starve: review18)
        while True:
            with self._lock:
                self._busy = False
                self._lock.notify_all()
                self._lock.wait_for(lambda: self._waiting or self._closed)
                if self._closed:
                    return
                name = next(iter(self._waiting))
                opened = self._waiting.pop(name)
                self._busy = True
            try:
                stack = opened()
                self.fill(stack)
                is_plain(stack, 0, 0)  # a tap's own first-use costs paid here too (np.median imports numpy.ma: 18 ms)
            except Exception as exc:  # noqa: BLE001 - a tap tries again, or says the stack's trouble itself
                self._failed(name, exc)

    def _failed(self, name: str, exc: Exception) -> None:
        """Log that the plain tap's depth of job ``name`` could not be made: once per job (asked at every open)."""
        with self._lock:
            if name in self._logged:
                return
            self._logged.add(name)
        log.warning("job %s: a plain tap's depth could not be made (%s: %s); its taps answer from what is kept, "
                    "else from the focus map", name, type(exc).__name__, exc)

