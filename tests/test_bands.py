"""Band-wise work of the depth-map blend: bands cover every row once, tile extremes, products and normalisation."""

import threading

import cv2
import numpy as np

from postfocus.fuse.bands import accumulate, in_bands, normalise, tile_reduce


def test_bands_cover_every_row_once_on_both_threads():
    seen, names = [], set()

    def task(rows):
        seen.append(rows)
        names.add(threading.current_thread().name.split("_")[0])

    in_bands(300, task, 2, band=64)
    count = np.zeros(300, int)
    for rows in seen:
        count[rows] += 1
    assert (count == 1).all() and len(seen) == 5 and names == {"MainThread", "postfocus-fuse"}


def test_tile_extremes_equal_each_tiles_own():
    rng = np.random.default_rng(0)
    plane = rng.random((70, 100), dtype=np.float32)
    low = tile_reduce(plane, 32, 3, 4, np.minimum)
    for ty in range(3):
        for tx in range(4):
            assert low[ty, tx] == plane[ty * 32:ty * 32 + 32, tx * 32:tx * 32 + 32].min()


def test_products_and_normalisation_by_bands_equal_plane_by_plane_to_the_bit():
    rng = np.random.default_rng(1)
    frame, weight = rng.random((150, 90, 3), dtype=np.float32), rng.random((150, 90), dtype=np.float32) + 0.1
    sums = rng.random((150, 90, 3), dtype=np.float32)
    planes = [np.ascontiguousarray(sums[..., c]) for c in range(3)]
    accumulate(sums, frame, weight)
    for c in range(3):
        cv2.accumulateProduct(np.ascontiguousarray(frame[..., c]), weight, planes[c])
    expected = [p * np.reciprocal(weight) for p in planes]
    normalise(sums, weight)
    assert np.array_equal(sums, np.stack(expected, axis=2))


def test_tile_extremes_on_two_threads_are_the_same():
    plane = np.random.default_rng(2).random((300, 170), dtype=np.float32)
    for op in (np.minimum, np.maximum):
        assert np.array_equal(tile_reduce(plane, 32, 10, 6, op, 2), tile_reduce(plane, 32, 10, 6, op, 1))
