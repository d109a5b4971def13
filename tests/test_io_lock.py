"""``postfocus.io.lock.FileLock``: one process per folder, a clear error otherwise."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("fcntl")  # Windows has no advisory locks; FileLock does nothing there

from postfocus.errors import OutputError, PostfocusError  # noqa: E402
from postfocus.io.lock import FileLock, LockHeldError  # noqa: E402


def test_a_second_holder_gets_a_clear_error_until_the_first_lets_go(tmp_path):
    path = tmp_path / "x.lock"
    first = FileLock(path, held="another thing uses this folder; stop it first")
    first.acquire()
    assert first.locked and path.exists()
    second = FileLock(path, held="another thing uses this folder; stop it first")
    with pytest.raises(LockHeldError, match=f"^{tmp_path}: another thing uses this folder; stop it first$"):
        second.acquire()
    assert not second.locked
    assert issubclass(LockHeldError, OutputError) and issubclass(LockHeldError, PostfocusError)
    first.release()
    second.acquire()
    second.release()
    first.release()  # releasing twice does nothing
    assert path.exists()  # the lock file stays; only the lock goes


def test_the_default_message_names_the_lock_file(tmp_path):
    with FileLock(tmp_path / "server.lock"):
        with pytest.raises(LockHeldError, match="server.lock is held by another process"):
            FileLock(tmp_path / "server.lock").acquire()


def test_context_manager_releases_even_on_error(tmp_path):
    path = tmp_path / "x.lock"
    with pytest.raises(RuntimeError):
        with FileLock(path) as lock:
            assert lock.locked
            raise RuntimeError("boom")
    assert not lock.locked
    with FileLock(path):
        pass


def test_blocking_waits_for_the_holder(tmp_path):
    path = tmp_path / "x.lock"
    holder = FileLock(path)
    holder.acquire()
    threading.Timer(0.3, holder.release).start()
    t0 = time.monotonic()
    with FileLock(path, blocking=True):
        assert time.monotonic() - t0 >= 0.2
    holder.acquire()
    try:
        t0 = time.monotonic()
        with pytest.raises(LockHeldError):
            FileLock(path).acquire(blocking=True, timeout=0.3)
        assert 0.25 <= time.monotonic() - t0 < 5
    finally:
        holder.release()


def test_another_process_holds_it_until_it_dies(tmp_path):
    path = tmp_path / "x.lock"
    code = (
        "import fcntl, sys, time\n"
        f"fh = open({str(path)!r}, 'a+')\n"
        "fcntl.flock(fh.fileno(), fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError):
            FileLock(path).acquire()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    with FileLock(path):  # the operating system released it with the process
        pass


def test_an_unopenable_lock_file_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot open the lock file"):
        FileLock(tmp_path / "missing-folder" / "x.lock").acquire()


def test_the_web_server_lock_says_what_to_do(tmp_path):
    pytest.importorskip("starlette")
    from postfocus.web.store import Lock

    first = Lock(tmp_path / "server.lock")
    first.acquire()
    try:
        with pytest.raises(PostfocusError, match="another postfocus server is using this data folder"):
            Lock(tmp_path / "server.lock").acquire()
    finally:
        first.release()
