"""A frame's rectangles folded on two threads: the shares cover every pixel once, and the blend is the same to the bit."""

import threading
import time

import numpy as np
import pytest

from postfocus.io.open import open_source
from postfocus.pipeline import strips
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import fuse, warp_whole
from postfocus.pipeline.strips import StripFolder, split_rects


def _cover(rects, shape=(300, 300)):
    count = np.zeros(shape, int)
    for t, l, b, r in rects:
        count[t:b, l:r] += 1
    return count


@pytest.mark.parametrize("cut", [True, False])
def test_the_two_shares_cover_every_pixel_once_upper_rows_first(cut):
    rng = np.random.default_rng(3)
    for _ in range(50):
        rects, top = [], 0
        while top < 280:  # footprint-like: runs of tiles, top to bottom, never overlapping
            h, left = int(rng.integers(1, 40)), int(rng.integers(0, 200))
            rects.append((top, left, min(300, top + h), left + int(rng.integers(1, 100))))
            top += h
        upper, lower = split_rects(rects, cut=cut)
        assert np.array_equal(_cover(upper) + _cover(lower), _cover(rects))
        if cut:  # about half the pixels each (within a row of the border rectangle)
            widest = max(r - l for _, l, _, r in rects)
            assert abs(_cover(upper).sum() - _cover(lower).sum()) <= 2 * widest
        else:
            assert set(upper) | set(lower) == set(rects)
        if upper and lower:
            assert max(b for _, _, b, _ in upper) <= min(t for t, _, _, _ in lower)


def test_the_folder_runs_every_rectangle_once_on_both_threads():
    seen, threads = [], set()

    def task(rect):
        import threading
        seen.append(rect)
        threads.add(threading.current_thread().name.split("_")[0])
        time.sleep(0.02)  # (a task that takes time: the helper takes its end before the caller is done)

    with StripFolder(2) as folder:
        folder.fold([(0, 0, 300, 400), (300, 0, 320, 400)], task, cut=True)
    assert np.array_equal(_cover(seen, (320, 400)), np.ones((320, 400), int))
    assert threads == {"MainThread", "postfocus-fuse"}


def test_a_rectangle_warped_alone_is_made_whole_once_then_shared_by_rows():
    """A footprint of one large rectangle whose pixels are warped alone: ``whole`` makes it once, in the
    helper thread before either piece, and both threads fold pieces of it."""
    events, threads = [], {}

    def whole(rect):
        events.append(("whole", rect))
        time.sleep(0.02)

    def task(rect):
        events.append(("task", rect))
        threads[rect] = threading.current_thread().name.split("_")[0]
        time.sleep(0.02)

    with StripFolder(2) as folder:
        folder.fold([(0, 0, 400, 400)], task, cut=False, whole=whole)
    assert events[0] == ("whole", (0, 0, 400, 400)) and [e for e, _ in events].count("whole") == 1
    pieces = [rect for e, rect in events if e == "task"]
    assert np.array_equal(_cover(pieces, (400, 400)), np.ones((400, 400), int)) and len(pieces) == 2
    assert set(threads.values()) == {"MainThread", "postfocus-fuse"}
    seen = []  # without ``whole`` such a rectangle is never cut
    with StripFolder(2) as folder:
        folder.fold([(0, 0, 400, 400)], seen.append, cut=False)
    assert seen == [(0, 0, 400, 400)]


def test_the_threads_meet_where_the_work_is_even_not_the_area():
    """The upper rectangles cost eight times what the lower ones do a pixel: the helper, which starts
    at the bottom, folds more than half of the area."""
    rects = [(100 * k, 0, 100 * k + 100, 100) for k in range(16)]
    done = {}

    def task(rect):
        time.sleep(0.002 * (8 if rect[0] < 800 else 1))
        done[rect] = threading.current_thread().name.split("_")[0]

    with StripFolder(2) as folder:
        folder.fold(rects, task, cut=False)
    assert sorted(done) == rects
    helper = sum(1 for name in done.values() if name == "postfocus-fuse")
    assert helper >= 10, done  # (an even split of the area: 8)


@pytest.fixture(scope="module")
def shaken_stack(tmp_path_factory):
    from postfocus.synth import render_stack, scene, write_stack

    sharp, depth01 = scene("occluder", size=(180, 260), seed=2)
    stack = render_stack(sharp, depth01, 5, shake_px=3.0, noise=0.005, seed=2)
    folder = tmp_path_factory.mktemp("shaken")
    write_stack(stack, folder, fmt="jpg")
    source = open_source(folder)
    return source, analyse(source)


def test_fusing_on_two_threads_gives_the_blend_of_one_to_the_bit(shaken_stack, monkeypatch):
    """Rectangles warped alone (not cut) and rectangles cut from whole warps (cut between rows)."""
    monkeypatch.setattr(strips, "MIN_SHARED_PIXELS", 0)  # this small scene shared too
    source, analysis = shaken_stack
    box = analysis.common_area()
    h, w = analysis.size
    common = dict(alignment=analysis.alignment, region=box)
    one = fuse(source, analysis.maps, threads=1, **common)
    two = fuse(source, analysis.maps, threads=2, **common)
    assert np.array_equal(one, two)

    def warped(i):  # whole frames warped ahead, as process() hands them over
        return warp_whole(source.read_pixels(i), analysis.alignment[i].matrix, (h, w),
                          (max(0, box[0] - 16), max(0, box[1] - 16), min(h, box[2] + 16), min(w, box[3] + 16)))

    assert np.array_equal(fuse(source, analysis.maps, threads=1, warped=warped, **common),
                          fuse(source, analysis.maps, threads=2, warped=warped, **common))
    assert np.abs(one - fuse(source, analysis.maps, threads=2, warped=warped, **common)).max() <= 1.01 / 255


def test_a_footprint_of_one_rectangle_warped_alone_folds_on_two_threads_to_the_bit(shaken_stack, monkeypatch):
    """Each frame's footprint made one rectangle (as a 4K frame's can be): it is warped once, whole, and
    its rows shared by the two threads; the blend is the one thread's."""
    from postfocus.fuse.depthmap import DepthmapFusion

    footprint = DepthmapFusion.footprint

    def one_rect(self, position):
        rects = footprint(self, position)
        if not rects:
            return rects
        return [(min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects),
                 max(r[3] for r in rects))]

    monkeypatch.setattr(DepthmapFusion, "footprint", one_rect)
    monkeypatch.setattr(strips, "MIN_SHARED_PIXELS", 0)
    wholes = []
    fold = StripFolder.fold

    def counted(self, rects, task, *, cut, whole=None):
        wholes.append(whole is not None)
        return fold(self, rects, task, cut=cut, whole=whole)

    monkeypatch.setattr(StripFolder, "fold", counted)
    source, analysis = shaken_stack
    common = dict(alignment=analysis.alignment, region=analysis.common_area())
    assert np.array_equal(fuse(source, analysis.maps, threads=1, **common),
                          fuse(source, analysis.maps, threads=2, **common))
    assert any(wholes)


def test_the_background_solver_finishes_on_two_threads_the_same(shaken_stack):
    """With ``restore`` the frames fold on one thread, but the blend is finished on two (result()'s bands)."""
    source, analysis = shaken_stack
    common = dict(alignment=analysis.alignment, region=analysis.common_area(), restore=True)
    assert np.array_equal(fuse(source, analysis.maps, threads=1, **common),
                          fuse(source, analysis.maps, threads=2, **common))
