"""The command line's process settings made before NumPy and OpenCV load (``postfocus.cli.start``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from postfocus.cli.start import BLAS_THREADS, one_blas_thread

# What `python -m postfocus` and the `postfocus` script do first, then NumPy and OpenCV used as a run uses them.
_PROBE = """
import os, sys
import postfocus.cli
import cv2, numpy as np
a = np.ones((300, 300), np.float32)
(a @ a).sum(), cv2.solve(np.eye(3), np.ones((3, 1)))  # (BLAS and OpenCV's LAPACK once)
tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else -1
print(os.environ.get("OPENBLAS_NUM_THREADS"), tasks)
"""


def _probe(**env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != BLAS_THREADS} | env
    src = str(Path(__file__).resolve().parents[1] / "src")
    environ["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [environ.get("PYTHONPATH")])])
    run = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=environ, check=True)
    value, tasks = run.stdout.split()
    return value, int(tasks)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts the process's threads in /proc")
def test_the_command_line_process_starts_no_blas_worker_threads():
    """NumPy's and OpenCV's OpenBLAS each started a spinning worker per extra core (3 threads here before)."""
    value, tasks = _probe()
    assert value == "1"
    assert tasks == 1  # the main thread only: no BLAS pool (OpenCV's own pool starts with its first parallel call)


def test_the_users_blas_setting_is_kept():
    assert _probe(OPENBLAS_NUM_THREADS="2")[0] == "2"
    assert _probe(OPENBLAS_NUM_THREADS="")[0] == "1"  # (empty: not set)


def test_nothing_is_set_once_numpy_is_loaded(monkeypatch):
    """A program that loaded NumPy before ``postfocus.cli`` keeps its BLAS pools and its environment."""
    import numpy  # noqa: F401  (loaded, as in this test process)

    monkeypatch.delenv(BLAS_THREADS, raising=False)
    assert one_blas_thread() is False
    assert BLAS_THREADS not in os.environ
