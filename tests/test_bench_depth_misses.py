"""The depth-miss bench's classes and curve test (bench/bench_depth_misses.py): pure helpers on made arrays."""

import cv2
import numpy as np
import pytest
from conftest import bench_module


@pytest.fixture(scope="module")
def bench():
    yield from bench_module("bench_depth_misses.py", also=("bench_depth",))


def test_every_pixel_is_in_one_class_and_each_class_is_where_it_is_made(bench):
    truth = np.full((40, 60), 5.0, np.float32)
    truth[:, 30:] = 20.0  # a step of 15 frames
    truth[:, 30] = 12.0  # its outline pixels: an area average of the two surfaces
    truth[:, 45:48] = 23.0  # a step of 3 frames at columns 45 and 48
    truth[30:, :10] = 0.5  # the sweep's first frame
    level = np.full(truth.shape, 100.0, np.float32)
    level[:5, :10] = 1.0  # textureless
    kinds = dict(bench.classes(truth, level, 30, 4))
    assert np.array_equal(sum(w.astype(int) for w in kinds.values()), np.ones(truth.shape, int))
    assert kinds["mixed truth"][:, 30].all() and kinds["mixed truth"].sum() == 40
    assert kinds["textureless"][:5, :10].all() and kinds["textureless"].sum() == 50
    far = kinds["two surfaces within 4 px, 8-inf frames apart"]
    middle = kinds["two surfaces within 4 px, 4-8 frames apart"]  # (the 9x9 holds 5 or 20, and the outline's 12)
    assert np.nonzero(far[10, :40])[0].tolist() == [27, 28, 29, 31, 32, 33]
    assert np.nonzero(middle[10, :40])[0].tolist() == [26, 34]
    assert np.nonzero(kinds["two surfaces within 4 px, 2-4 frames apart"][10])[0].tolist() == list(range(41, 52))
    assert middle[26:34, 5].all()  # the sweep's first frame beside a surface 4.5 frames away: the span decides first
    assert kinds["sweep's end"][34:, 5].all()
    assert kinds["one surface"][15, 15] and kinds["one surface"][10, 38] and kinds["one surface"][10, 53]


def test_a_curve_peaks_near_the_truth_only_where_it_has_a_local_maximum_within_a_frame(bench):
    x = np.arange(30, dtype=np.float32)[:, None, None]
    two = np.exp(-0.5 * ((x - 5.0) / 2.0) ** 2) + 0.3 * np.exp(-0.5 * ((x - 20.0) / 2.0) ** 2)  # a neighbour's peak
    rising = x / 29.0  # cut by the sweep's last frame
    curves = np.concatenate([two, two, two, rising], axis=2)
    truth = np.array([[5.6, 20.9, 12.0, 28.2]], np.float32)
    assert bench.truth_peak(curves, truth).tolist() == [[True, True, False, True]]


def test_the_misses_are_split_by_the_side_of_a_true_step_and_the_way_they_err(bench):
    truth = np.full((20, 40), 3.0, np.float32)
    truth[:, 20:] = 20.0  # a near surface (3) left of a far one (20)
    depth = truth.copy()
    depth[:, 20:23] = 3.0  # the far surface's first three columns read the near depth
    depth[:, 17] = 7.0  # one near column reads four frames too far
    depth[5, 35] = 22.5  # one pixel on the far surface, beyond the step's reach, reads too far
    truth[2, 24] = 11.0  # a speck between the two surfaces read as the far one: neither side's depth is right
    kinds = dict(bench.step_sides(truth, depth, 4))
    assert np.nonzero(kinds["far side, read nearer"][10])[0].tolist() == [20, 21, 22]
    assert np.nonzero(kinds["near side, read farther"][10])[0].tolist() == [17]
    assert kinds["one surface, read farther"].sum() == 1 and kinds["one surface, read farther"][5, 35]
    assert not kinds["far side, read farther"].any() and not kinds["near side, read nearer"].any()
    assert not kinds["one surface, read nearer"].any()
    beside, bound = bench.side_bound(truth, depth, 4, 2.9)
    assert beside.sum() == 4 * 20 + 1 and not beside[5, 35]  # the lone far miss is beside no step of the map
    assert bound.sum() == 4 * 20 and beside[2, 24] and not bound[2, 24]  # the near column: the map's 3 beside it


def test_the_finer_measure_reads_a_far_pixel_three_px_beside_a_near_outline_that_the_stored_one_reads_near(bench):
    from postfocus.focus.measure import laplacian_energy

    yy, xx = np.mgrid[:40, :48]
    near = 0.5 + 0.4 * (((yy // 2) + (xx // 2)) % 2)  # a strong checker on the left, sharp in frame 2
    far = 0.5 + 0.03 * (((yy // 2) + (xx // 2)) % 2)  # a faint one on the right, sharp in frame 8
    frames = []
    for k in range(12):
        left = cv2.GaussianBlur(near, (0, 0), 0.1 + 0.8 * abs(k - 2))
        right = cv2.GaussianBlur(far, (0, 0), 0.1 + 0.8 * abs(k - 8))
        frames.append(np.where(xx < 20, left, right).astype(np.float32))
    frames = np.stack(frames)
    stored = np.stack([laplacian_energy(f) for f in frames])  # the stored measure: 5 px window, presmoothed
    fine = bench.fine_measure(frames)
    rows = slice(6, 34)
    assert (bench.own_peak(stored)[rows, 21] == 2).all()  # the near outline's spill, 2 px away, wins the 5 px window
    assert (bench.own_peak(stored)[rows, 22] == 2).mean() == 0.5  # and half the rows 3 px away
    assert (bench.own_peak(fine)[rows, 22:] == 8).all()  # 2 px of reach: only the far texture from 3 px on
    assert (bench.own_peak(fine)[rows, 35] == 8).all() and (bench.own_peak(stored)[rows, 35] == 8).all()
    assert (bench.own_peak(fine)[rows, 10] == 2).all()


def test_the_own_peak_is_the_maximum_of_the_curve_smoothed_along_the_sweep(bench):
    x = np.arange(20, dtype=np.float32)[:, None, None]
    curve = np.exp(-0.5 * ((x - 12.0) / 2.0) ** 2)
    curve[4] = 1.2  # one frame's spike: the raw maximum, not the smoothed one
    assert bench.own_peak(curve, smooth=0).item() == 4
    assert bench.own_peak(curve).item() == 12
