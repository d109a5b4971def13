"""Atomic writes held back until the work they belong to is done (postfocus.io.held)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from postfocus.errors import OutputError
from postfocus.io.held import HeldWrites, held_writes
from postfocus.io.write import atomic_write_bytes


def test_a_held_write_is_renamed_into_place_only_by_commit(tmp_path):
    out = tmp_path / "out.jpg"
    out.write_bytes(b"old")
    held = HeldWrites()
    with held:
        assert held_writes() is held
        assert atomic_write_bytes(out, b"new") == out
    assert held_writes() is None
    assert out.read_bytes() == b"old"
    parts = [p.name for p in tmp_path.iterdir() if p.name != "out.jpg"]
    assert len(parts) == 1 and parts[0].startswith(".out.") and parts[0].endswith(".jpg.part")
    held.commit()
    assert out.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]
    held.discard()  # (nothing left to discard)
    assert out.read_bytes() == b"new"


def test_a_discarded_write_leaves_the_path_as_it_was_and_no_temporary_file(tmp_path):
    out, new = tmp_path / "out.png", tmp_path / "new.png"
    out.write_bytes(b"old")
    held = HeldWrites()
    with held:
        atomic_write_bytes(out, b"new")
        atomic_write_bytes(new, b"new")
    held.discard()
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_only_the_thread_in_the_block_is_held(tmp_path):
    held, done = HeldWrites(), threading.Event()

    def other():
        atomic_write_bytes(tmp_path / "other.txt", b"x")
        done.set()

    with held:
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert done.is_set() and (tmp_path / "other.txt").read_bytes() == b"x"
    held.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_a_failed_held_write_holds_nothing(tmp_path):
    held = HeldWrites()

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    from postfocus.io.write import atomic_write

    with held, pytest.raises(OutputError, match="No space left"):
        atomic_write(tmp_path / "out.jpg", fail)
    held.commit()
    assert list(tmp_path.iterdir()) == []


def test_a_commit_that_cannot_rename_says_so_and_leaves_nothing(tmp_path):
    out = tmp_path / "out.jpg"
    held = HeldWrites()
    with held:
        atomic_write_bytes(out, b"new")
    out.mkdir()
    (out / "x").write_bytes(b"")  # a folder now where the file goes: the rename fails
    with pytest.raises(OutputError, match="out.jpg: cannot write"):
        held.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"] and out.is_dir()


def test_a_held_file_a_killed_process_left_is_removed_by_the_next_write(tmp_path):
    """A process killed while it holds a write leaves its temporary file with its lock free (the descriptor
    closed by the system): the next write of the same name removes it, as any write's."""
    out = tmp_path / "out.jpg"
    held = HeldWrites()
    with held:
        atomic_write_bytes(out, b"new")
    (fd, tmp, _), = held._take()
    os.close(fd)  # what the process's end does
    old = time.time() - 60
    os.utime(tmp, (old, old))
    atomic_write_bytes(out, b"next")
    assert out.read_bytes() == b"next" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]
