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


COMMANDS = {  # every command that makes a stack's depth map, with what it needs besides its input and output
    "depth": ([], ".png"), "aperture": (["--preset", "near", "--f-number", "2.8"], ".jpg"), "stereo": ([], ".jpg"),
    "mesh": ([], ".ply"), "pop": (["--at", "50,50"], ".jpg"), "animate": (["--f-number", "2.8", "--duration", "0.2"], ".gif"),
    "view": ([], ".html"), "check": ([], ".png"),
}


def test_threads_reach_the_depth_map_of_every_command(tiny_stack, tmp_path, monkeypatch):
    """``postfocus --threads 1 mesh`` (``pop``, ``animate``, ``view``, ``check``) made the depth map on two threads:
    only ``depth``, ``aperture`` and ``stereo`` passed ``--threads`` on (speed17 noticed). Run in this process, each
    command makes the map's fill on the calling thread alone with ``--threads 1``, its filters' weights on a helper
    with ``--threads 2`` (depth18: the fill's filtering is on both threads)."""
    import threading

    from click.testing import CliRunner

    import postfocus.products.depth_fill as fill_module
    from postfocus.cli import main

    before = cv2.getNumThreads()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # (set by --threads: set back after the test)
        monkeypatch.setenv(var, "")
    real, ran = fill_module.domain_weights, set()
    monkeypatch.setattr(fill_module, "domain_weights",
                        lambda *a, **k: (ran.add(threading.get_ident()), real(*a, **k))[1])
    cache = tmp_path / "cache"
    try:
        for command, (extra, suffix) in COMMANDS.items():
            for threads, on_me in (("1", True), ("2", False)):
                for kept in cache.glob("*/depth_*.npz"):
                    kept.unlink()
                ran.clear()
                out = tmp_path / f"{command}{threads}{suffix}"
                result = CliRunner().invoke(main, ["--threads", threads, "-q", command, str(tiny_stack.folder), *extra,
                                                   "-o", str(out), "--cache", str(cache)])
                assert result.exit_code == 0, (command, result.output, result.exception)
                assert len(ran) == 1 and (threading.get_ident() in ran) == on_me, (command, threads, ran)
    finally:
        cv2.setNumThreads(before)


def test_outputs_named_by_a_loop_of_links_are_no_internal_error(cli, tiny_stack, tmp_path):
    """``-o a.jpg`` where a.jpg -> b.jpg -> a.jpg: pathlib's resolve raises RuntimeError on a loop (Python 3.11), and
    check_distinct, check_output_path, the retouch's folder check and align's target check used it: "internal
    error: RuntimeError: Symlink loop" (fails on main). The output replaces the looping link, as a new file would."""
    frames = [str(p) for p in tiny_stack.paths]
    cache = ["--cache", str(tmp_path / "cache")]
    for command, suffix in (("stack", ".jpg"), ("retouch", ".jpg"), ("align", "")):
        loop, other = tmp_path / f"{command}_a{suffix}", tmp_path / f"{command}_b{suffix}"
        loop.symlink_to(other.name)
        other.symlink_to(loop.name)
        run = cli(command, *frames, "-o", loop, *cache)
        assert "internal error" not in run.stderr and "Traceback" not in run.stderr, (command, run.stderr)
        if command == "align":  # a folder that cannot be made: one line
            assert run.returncode == 2 and run.err_lines == [f"postfocus: error: {loop}: cannot create folder (File "
                                                             "exists)"], run.stderr
        else:
            assert run.returncode == 0, run.stderr
            assert not loop.is_symlink() and loop.stat().st_size > 0 and other.is_symlink()
    assert all(p.is_file() for p in tiny_stack.paths)
