"""Pass 1 (pipeline/analyse.py): its hooks come in order, and how far ahead frames are measured changes nothing."""

from __future__ import annotations

import numpy as np

from postfocus.io.open import open_source
from postfocus.pipeline import analyse as pass1


def test_on_measured_comes_once_after_the_alignment_and_the_maps_do_not_depend_on_the_threads(
        tiny_stack, monkeypatch):
    calls: list[str] = []
    first = pass1.analyse(open_source(tiny_stack.folder), on_alignment=lambda report, used: calls.append("aligned"),
                          on_measured=lambda: calls.append("measured"))
    assert calls == ["aligned", "measured"]
    monkeypatch.setattr(pass1, "MEASURED_AHEAD", 1)
    monkeypatch.setattr(pass1, "MEASURED_WORKERS", 1)
    second = pass1.analyse(open_source(tiny_stack.folder))
    for name in ("focus_index", "confidence", "volume"):
        assert np.array_equal(getattr(first.maps, name), getattr(second.maps, name)), name
    assert np.array_equal(first.guide, second.guide)


def test_a_frame_left_out_keeps_the_measures_on_one_thread(tiny_stack, monkeypatch):
    """Task k writes slice k of the measures' block and reads frame used[k]'s: with a frame left out, task k
    reads the slice task k + 1 writes, so two threads would race; the frames left out change nothing else."""
    seen: list[int] = []
    compute_ahead = pass1.compute_ahead

    def noting(indices, task, *args, workers=1, **kwargs):
        seen.append(workers)
        return compute_ahead(indices, task, *args, workers=workers, **kwargs)

    monkeypatch.setattr(pass1, "compute_ahead", noting)
    whole = pass1.analyse(open_source(tiny_stack.folder), motion="off", threads=2)
    gap = pass1.analyse(open_source(tiny_stack.folder), motion="off", threads=2, leave_out=lambda: {0: "test"},
                        warn=lambda message: None)
    assert seen == [2, 1] and gap.used == [1, 2]
    assert np.array_equal(whole.maps.volume[1:], gap.maps.volume[:2])  # each used frame's measure, in place


def test_a_videos_matches_refine_at_once_a_photo_stacks_take_turns(tiny_stack, tmp_path, monkeypatch):
    """Pass 1 of a video holds no decoded frames (pass 2's blend sets its memory peak), so its two matches refine
    their tiles at once (``turns=False``); a photo stack's take turns, for memory, as before."""
    from postfocus.io.images import read_image
    from postfocus.io.video_write import write_video

    turns: list[bool] = []

    class Noting(pass1.SweepAligner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            turns.append(self._refining is not None)

    monkeypatch.setattr(pass1, "SweepAligner", Noting)
    video = write_video([read_image(p) for p in tiny_stack.paths], tmp_path / "sweep.mp4", crf=18)
    with open_source(video) as source:
        pass1.analyse(source, motion="off", threads=2)
    pass1.analyse(open_source(tiny_stack.folder), motion="off", threads=2)
    assert turns == [False, True]


def test_the_second_file_is_prepared_beside_the_first_and_the_decoding_thread_reuses_its_arrays(
        tiny_stack, monkeypatch):
    """With one decoding thread, frame 1 is read and prepared in a thread of its own at the same time as frame 0
    (the first match needs both); the decoding thread measures every frame in the same scratch arrays. Neither
    changes a bit: the maps and the alignment are those of a pass that reads the frames in order on one thread
    with new arrays (an ``on_frame`` hook turns both off)."""
    import threading

    from conftest import meeting_twice

    lent: dict[int, set] = {}
    measure = pass1.laplacian_energy

    def noting(grey, **kwargs):
        scratch = kwargs.get("scratch")
        lent.setdefault(threading.get_ident(), set()).add(  # (the arrays' memory: they may be views made anew)
            None if scratch is None else tuple(a.__array_interface__["data"][0] for a in scratch))
        return measure(grey, **kwargs)

    monkeypatch.setattr(pass1, "laplacian_energy", noting)
    source = open_source(tiny_stack.folder)
    reads: list = []
    monkeypatch.setattr(source, "read_pixels", meeting_twice(source.read_pixels, reads))  # frames 0 and 1 at once
    beside = pass1.analyse(source, threads=2)
    assert len(reads) == 3 and len(lent) == 2  # frames 0 and 2 on the decoding thread, frame 1 on its own
    assert sorted(map(len, lent.values())) == [1, 1] and None not in set().union(*lent.values())
    lent.clear()
    monkeypatch.setattr(pass1, "laplacian_energy", measure)
    in_order = pass1.analyse(open_source(tiny_stack.folder), threads=2, on_frame=lambda index, frame: None)
    for name in ("focus_index", "confidence", "volume"):
        assert np.array_equal(getattr(beside.maps, name), getattr(in_order.maps, name)), name
    assert np.array_equal(beside.guide, in_order.guide)
    assert all(np.array_equal(a.matrix, b.matrix) and np.array_equal(a.gain, b.gain)
               for a, b in zip(beside.alignment, in_order.alignment))


def test_an_8_bit_frames_measure_is_made_in_its_float_frames_memory_and_changes_nothing(tiny_stack, monkeypatch):
    """A decoding thread asks for one scratch array only, the float RGB frame: the smoothed image and its
    Laplacian (two grey frames, 14 MB on ring) are made in two of its planes' worth, and the small copy is made
    from it before they overwrite it. The maps, the guide and the alignment are those of a pass with new arrays
    (an ``on_frame`` hook turns the scratch off), with the small copies shared (analysis size = working size)
    and shrunk (analysis size 120 px: the measure pooled, the small copy resized from the float frame).
    Fails on main: the thread also asks for "smoothed" and "laplacian"."""
    asked: list[str] = []
    get = pass1._Scratch.get

    def noting(self, name, shape, dtype):
        asked.append(name)
        return get(self, name, shape, dtype)

    monkeypatch.setattr(pass1._Scratch, "get", noting)
    for size, shape in ((800, (200, 300)), (120, (80, 120))):  # (the tiny frames: 200 x 300)
        asked.clear()
        reused = pass1.analyse(open_source(tiny_stack.folder), threads=2, analysis_size=size)
        assert asked and set(asked) == {"work"}, size
        fresh = pass1.analyse(open_source(tiny_stack.folder), threads=2, analysis_size=size,
                              on_frame=lambda index, frame: None)
        assert reused.maps.volume.shape[1:] == shape
        for name in ("focus_index", "confidence", "volume"):
            assert np.array_equal(getattr(reused.maps, name), getattr(fresh.maps, name)), (size, name)
        assert np.array_equal(reused.guide, fresh.guide)
        assert all(np.array_equal(a.matrix, b.matrix) and np.array_equal(a.gain, b.gain)
                   for a, b in zip(reused.alignment, fresh.alignment))
