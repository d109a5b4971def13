"""Both passes end to end (pipeline/run.py): small stacks are decoded once, with the same result."""

from __future__ import annotations

from collections import Counter

import numpy as np

from postfocus.io.images import ImageFilesSource
from postfocus.pipeline import run


def test_a_small_stack_is_decoded_once_and_merges_the_same(tiny_stack, tmp_path, monkeypatch):
    reads: Counter = Counter()
    read_pixels = ImageFilesSource.read_pixels

    def counting(self, index):
        reads[index] += 1
        return read_pixels(self, index)

    monkeypatch.setattr(ImageFilesSource, "read_pixels", counting)
    once = run.process(tiny_stack.folder, cache_dir=tmp_path / "once")
    assert sorted(reads.values()) == [1, 1, 1]
    reads.clear()
    monkeypatch.setattr(run, "DECODED_ONCE_MB", 0)  # too big to keep: decoded in each pass
    twice = run.process(tiny_stack.folder, cache_dir=tmp_path / "twice", order="near-to-far")
    assert sorted(reads.values()) == [2, 2, 2]  # (with the order stated: measuring it reads frames a third time)
    assert np.array_equal(once.all_in_focus(), twice.all_in_focus())
    assert all(np.array_equal(once.read_frame(i), twice.read_frame(i)) for i in once.used)
