"""The near-fattening band bench's distance to the surface a pixel took (bench/bench_depth_band.py): made arrays."""

import numpy as np
import pytest
from conftest import bench_module


@pytest.fixture(scope="module")
def bench():
    yield from bench_module("bench_depth_band.py", also=("bench_depth", "bench_depth_misses"))


def test_the_distance_is_to_the_nearest_pixel_whose_truth_the_reading_matches(bench):
    truth = np.full((20, 30), 6.0, np.float32)
    truth[:, :10] = 1.0  # a near surface in columns 0-9, the far one from column 10
    final = truth.copy()
    final[:, 10:14] = 1.2  # the near surface read 4 columns too wide
    final[5, 20] = 3.5  # a reading no surface within reach has
    where = final < truth - 1.0
    dist = bench.taken_distance(final, truth, where)
    ys, xs = np.nonzero(where)
    row = dict(zip(xs[ys == 3].tolist(), dist[ys == 3].tolist()))
    assert row == {10: 1.0, 11: 2.0, 12: 3.0, 13: 4.0}
    assert np.isinf(dist[(ys == 5) & (xs == 20)]).all()
    assert np.isinf(bench.taken_distance(final, truth, where, reach=3)[(ys == 3) & (xs == 13)]).all()
