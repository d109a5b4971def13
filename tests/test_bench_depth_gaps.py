"""The fence bench's scene, distances and table (bench/bench_depth_gaps.py): pure helpers on made arrays."""

import numpy as np
import pytest
from conftest import bench_module


@pytest.fixture(scope="module")
def bench():
    yield from bench_module("bench_depth_gaps.py", also=("bench_depth", "bench_depth_misses"))


def test_the_fence_is_bars_at_the_near_depth_over_a_textured_far_plane(bench):
    pytest.importorskip("skimage")
    image, depth = bench.fence((56, 70), pitch=14, bar=4, near=0.1, far=0.9)
    assert image.shape == (56, 70, 3) and image.dtype == np.float32 and depth.shape == (56, 70)
    assert sorted(np.unique(depth).tolist()) == pytest.approx([0.1, 0.9])
    assert (depth[:, 0:4] == np.float32(0.1)).all() and (depth[0:4] == np.float32(0.1)).all()  # a column and a row bar
    gap = depth[10:20, 5:13]
    assert (gap == np.float32(0.9)).all()
    assert float(image[10:20, 5:13].std()) > 0.02  # the far plane is textured


def test_distance_from_the_bars_is_zero_on_them_and_grows_into_the_gap(bench):
    truth = np.full((30, 40), 26.0, np.float32)
    truth[:, :4] = 3.0
    d = bench.bar_distance(truth)
    assert (d[:, :4] == 0).all()
    assert d[15, 4] == pytest.approx(1.0, abs=0.05) and d[15, 7] == pytest.approx(4.0, abs=0.05)


def test_the_table_counts_readings_within_a_frame_and_masks_by_band(bench):
    truth = np.full((20, 20), 26.0, np.float32)
    truth[:, :4] = 3.0
    d = bench.bar_distance(truth)
    reading = truth.copy()
    reading[:, 4] = 3.0  # the far column next to the bars reads near
    rows = bench.band_table(d, truth, {"r": reading, "m": np.ones(truth.shape, bool)})
    assert rows[0][0].startswith("far, 0-1.5") and rows[0][2] == "0.0 %" and rows[0][3] == "100.0 %"
    assert rows[1][2] == "100.0 %"  # 1.5-2.5 px: column 5 reads right
    assert rows[-1][0] == "near (the bars)" and rows[-1][1] == "20.0 %" and rows[-1][2] == "100.0 %"
