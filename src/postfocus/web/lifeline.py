"""Worker processes that die with the server.

A worker process of the web app must never outlive the server that started
it: an orphan would keep writing into a job folder that the next server has
already marked interrupted (and cleaned), and would keep the CPU busy for no
one. :func:`worker_main` is what a worker process runs first; it ties the
process's life to its parent's before it does any work:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker
  the moment the thread that started it ends (the server's job dispatcher,
  which lives as long as the server);
* then a check of ``os.getppid()``, for a parent that died before the
  ``prctl`` took effect;
* elsewhere (no ``prctl``), a daemon thread that checks ``os.getppid()`` every
  :data:`WATCH_SECONDS` and ends the process when the parent is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Callable

__all__ = ["ORPHAN_EXIT", "WATCH_SECONDS", "die_with_parent", "worker_main"]

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 1.0
ORPHAN_EXIT = 70  # exit status of a worker that found its server gone


def _set_pdeathsig() -> bool:
    """Ask the kernel to SIGKILL this process when its parent ends; False where there is no prctl."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_SECONDS)
    os._exit(ORPHAN_EXIT)


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the server) ends, and at once if it already has.

    Parameters
    ----------
    parent_pid : int
        The server's process id, as the server saw it when it started this process.
    """
    if not _set_pdeathsig():
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="postfocus-parent-watch",
                         daemon=True).start()
    if os.getppid() != parent_pid:  # the server died before the prctl took effect
        os._exit(ORPHAN_EXIT)


def worker_main(target: Callable[[str], object], folder: str, parent_pid: int) -> None:
    """The body of a worker process: tie its life to the server's, then ``target(folder)``."""
    die_with_parent(parent_pid)
    target(folder)
