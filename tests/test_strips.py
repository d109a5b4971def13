"""A frame's rectangles folded on two threads: the shares cover every pixel once, and the blend is the same to the bit."""

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

    with StripFolder(2) as folder:
        folder.fold([(0, 0, 300, 400), (300, 0, 320, 400)], task, cut=True)
    assert np.array_equal(_cover(seen, (320, 400)), np.ones((320, 400), int))
    assert threads == {"MainThread", "postfocus-fuse"}


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


def test_the_background_solver_finishes_on_two_threads_the_same(shaken_stack):
    """With ``restore`` the frames fold on one thread, but the blend is finished on two (result()'s bands)."""
    source, analysis = shaken_stack
    common = dict(alignment=analysis.alignment, region=analysis.common_area(), restore=True)
    assert np.array_equal(fuse(source, analysis.maps, threads=1, **common),
                          fuse(source, analysis.maps, threads=2, **common))
