"""open_regular: a file the project keeps is opened only if it is a regular file, never waiting on a FIFO."""

from __future__ import annotations

import os

import pytest

from postfocus.io.regular import open_regular


def test_a_regular_file_is_opened_and_read(tmp_path):
    path = tmp_path / "kept.bin"
    path.write_bytes(b"abc")
    with open_regular(path) as fh:
        assert fh.read() == b"abc"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_a_folder_and_a_device_are_no_file_and_the_fifo_is_not_waited_on(tmp_path):
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)  # (an ordinary open would wait here for a writer)
    assert open_regular(fifo) is None
    assert open_regular(tmp_path) is None
    assert open_regular(os.devnull) is None


def test_a_link_is_followed_unless_told_not_to(tmp_path):
    target = tmp_path / "outside.bin"
    target.write_bytes(b"elsewhere")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with open_regular(link) as fh:
        assert fh.read() == b"elsewhere"
    with pytest.raises(OSError):
        open_regular(link, follow=False)
    with pytest.raises(FileNotFoundError):
        open_regular(tmp_path / "missing.bin")
