"""pipeline/early.py: a video's first frames of pass 2 read beside the focus map (docs/performance.md, fourteenth
session)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_stack

from postfocus.io.arrays import ArraySource
from postfocus.io.images import read_image
from postfocus.io.video_write import write_video
from postfocus.pipeline import run
from postfocus.pipeline.early import EarlyReads
from postfocus.pipeline.run import process


class _Counted(ArraySource):
    """Frames whose reads are counted, by thread, and must never overlap."""

    def __init__(self, frames):
        super().__init__(frames)
        self.reads: list[tuple[int, str]] = []
        self._busy = False

    def read_pixels(self, index):
        assert not self._busy, "two reads at once"
        self._busy = True
        try:
            time.sleep(0.01)  # (room for an overlap to show)
            self.reads.append((index, threading.current_thread().name))
            return super().read_pixels(index)
        finally:
            self._busy = False


def _frames(n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.random((40, 48, 3), dtype=np.float32) for _ in range(n)]


def test_the_planned_frames_are_read_once_on_their_own_thread_and_handed_out_once():
    frames = _frames()
    source = _Counted(frames)
    reads = EarlyReads(source, count=3)
    reads.plan([1, 2, 4, 5])
    reads.begin()
    got = {i: reads.read_pixels(i) for i in (1, 2, 3, 4, 5)}  # as pass 2 reads: in order, all at once
    reads.close()
    expected = ArraySource(frames)
    assert all(np.array_equal(got[i], expected.read_pixels(i)) for i in got)
    early = [i for i, name in source.reads if name.startswith("postfocus-early")]
    assert early == [1, 2, 4]  # the first three planned, in order, on the early thread
    assert sorted(i for i, _ in source.reads) == [1, 2, 3, 4, 5]  # each read once
    assert reads.read_pixels(1) is not None and source.reads[-1][0] == 1  # handed out once: read again now


def test_nothing_is_read_ahead_before_begin_or_without_a_plan():
    source = _Counted(_frames(3))
    reads = EarlyReads(source)
    reads.begin()  # nothing planned: no thread
    reads.plan([0, 1])
    assert source.reads == []
    assert np.array_equal(reads.read_pixels(0), ArraySource(_frames(3)).read_pixels(0))
    assert [name for _, name in source.reads] == [threading.current_thread().name]
    reads.close()
    assert not any(t.name.startswith("postfocus-early") for t in threading.enumerate())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("early")
    tiny = make_tiny_stack(folder / "png")
    return write_video([read_image(p) for p in tiny.paths], folder / "sweep.mp4", crf=18)


def _folder_files(ps) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(Path(ps.folder).rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _spy(monkeypatch, count: int | None = None) -> list[str]:
    """Names of the threads EarlyReads read on; ``count``: how many frames it reads ahead (None: its own)."""
    names: list[str] = []
    real = run.EarlyReads

    def made(source):
        reads = real(source) if count is None else real(source, count=count)
        read = reads._read
        reads._read = lambda i: names.append(threading.current_thread().name) or read(i)
        return reads

    monkeypatch.setattr(run, "EarlyReads", made)
    return names


def test_a_video_folder_read_early_holds_the_files_of_one_read_in_pass_2(sweep, tmp_path, monkeypatch):
    early = _spy(monkeypatch)
    ps = process(sweep, cache_dir=tmp_path / "early", threads=2)
    assert any(name.startswith("postfocus-early") for name in early)
    monkeypatch.undo()
    none = _spy(monkeypatch, count=0)
    plain = process(sweep, cache_dir=tmp_path / "plain", threads=2)
    assert none and not any(name.startswith("postfocus-early") for name in none)
    assert _folder_files(ps) == _folder_files(plain)  # kept frames, maps, volume, the image: the same bytes
    assert np.array_equal(ps.all_in_focus(), plain.all_in_focus())


def test_one_thread_reads_nothing_early(sweep, tmp_path, monkeypatch):
    made: list = []
    monkeypatch.setattr(run, "EarlyReads", lambda source: made.append(source) or EarlyReads(source))
    process(sweep, cache_dir=tmp_path / "one", threads=1)
    assert made == []
    process(sweep, cache_dir=tmp_path / "two", threads=2)
    assert len(made) == 1
