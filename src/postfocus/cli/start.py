"""Settings the command-line process makes before NumPy and OpenCV are loaded.

Process settings, not the library's (as :mod:`postfocus.cli.heap`'s): the command line makes them for
the one process it runs, and only while NumPy and OpenCV are not loaded yet (a program that imports
``postfocus.cli`` after them keeps what it has).
"""

from __future__ import annotations

import os
import sys

__all__ = ["one_blas_thread"]

#: The BLAS libraries' thread-count variable: NumPy's OpenBLAS and the one bundled with OpenCV read it when
#: they are loaded.
BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def one_blas_thread() -> bool:
    """Let the BLAS libraries that NumPy and OpenCV load make no worker threads (``OPENBLAS_NUM_THREADS=1``).

    NumPy and OpenCV each bring an OpenBLAS that, when loaded, starts a worker for every core but one;
    a new worker spins (``sched_yield``) for a while before it sleeps, and again after each call that
    wakes it. postfocus's BLAS calls are small (matrices of 3 x 3, tile sums of a few thousand values)
    and its own threads keep both cores busy, so those workers only took CPU: measured on beetle
    (docs/performance.md, "Small stacks, eighteenth session"), about 0.15 s of CPU and 0.04 s of wall
    a run, with the same output files. Nothing is changed when the user set the variable (an empty
    value counts as not set), nor once NumPy or OpenCV is loaded (their pools exist then).

    Returns
    -------
    bool
        Whether the variable was set here.
    """
    if "numpy" in sys.modules or "cv2" in sys.modules or os.environ.get(BLAS_THREADS, "").strip():
        return False
    os.environ[BLAS_THREADS] = "1"
    return True
