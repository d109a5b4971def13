"""Global command-line options."""

from __future__ import annotations

import cv2


def test_threads_option_limits_opencv_and_still_stacks(cli, tiny_stack, tmp_path):
    out = tmp_path / "t.png"
    run = cli("--threads", "1", "-q", "stack", tiny_stack.folder, "-o", out, "--no-cache")
    assert run.returncode == 0, run.stderr
    assert cv2.imread(str(out)) is not None


def test_threads_in_process_sets_opencv(monkeypatch):
    from postfocus.cli.common import set_threads

    before = cv2.getNumThreads()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "")
    try:
        set_threads(1)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_threads_must_be_positive(cli, tiny_stack, tmp_path):
    run = cli("--threads", "0", "-q", "stack", tiny_stack.folder, "-o", tmp_path / "x.png")
    assert run.returncode == 2
    assert len(run.err_lines) == 1 and "--threads" in run.stderr and "Traceback" not in run.stderr
