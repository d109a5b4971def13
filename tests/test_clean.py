"""Depth outliers: the edge-aware weighted median, the outlier test, and planted outlier blobs in rendered stacks.

A planted blob is a disc of the stored focus volume that peaks clearly (or
weakly, with low confidence) at a frame 3.5 frames from the truth, as the
rim of a bright object's bokeh disc does on the real ``keyboard_sweep.mp4``
(``bench_depth.plant_outlier``). Measured when written (160x240 ramp, 8
frames): 98.7 % of the confident blob and 100 % of the weak blob within one
frame of the truth; the blob's confidence drops to 0.0 (confident blob) and
0.001 (weak one).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack, plant_outlier, score  # noqa: E402

from postfocus.focus.clean import (domain_transform, domain_weights, geodesic_median, outliers,  # noqa: E402
                                   weighted_median)
from postfocus.products.depth import depth_map  # noqa: E402


def test_geodesic_median_matches_one_level_at_a_time():
    """Filtering all levels in one pass gives the median of filtering them a few at a time."""
    rng = np.random.default_rng(3)
    values = np.tile(np.linspace(0, 12, 50, dtype=np.float32), (30, 1)) + rng.normal(0, 0.3, (30, 50)).astype(np.float32)
    weight = rng.uniform(0.2, 1.0, values.shape).astype(np.float32)
    guide = np.zeros((30, 50, 3), np.float32)
    guide[:, 25:] = 0.8
    one = geodesic_median(values, weight, guide, sigma_s=10.0, sigma_r=0.2)
    few = geodesic_median(values, weight, guide, sigma_s=10.0, sigma_r=0.2, chunk=3)
    np.testing.assert_allclose(one, few, atol=1e-4)
    assert float(np.abs(one[:, 30:45] - values[:, 30:45]).mean()) < 1.0  # stays on its side of the edge


def test_weighted_median_ignores_a_minority_however_far():
    rng = np.random.default_rng(1)
    values = (4.0 + 0.1 * rng.standard_normal((60, 60))).astype(np.float32)
    values[25:35, 25:35] = 30.0  # 100 of the 441 pixels of a radius-10 window
    m = weighted_median(values, np.ones_like(values), np.zeros_like(values), radius=10)
    assert abs(float(m[30, 30]) - 4.0) < 0.3
    mean = float(values[20:41, 20:41].mean())
    assert mean > 9.0  # a mean would be dragged off by the minority


def test_weighted_median_follows_weights_and_edges():
    values = np.full((40, 40), 2.0, np.float32)
    values[:, 20:] = 9.0
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0  # the image edge where the depth steps
    m = weighted_median(values, np.ones_like(values), guide, radius=8)
    assert np.abs(m[:, :18] - 2.0).max() < 0.6 and np.abs(m[:, 22:] - 9.0).max() < 0.6
    # weights: untrusted pixels do not vote
    weight = np.ones_like(values)
    values2 = values.copy()
    values2[15:25, 5:15] = 30.0
    weight[15:25, 5:15] = 0.0
    m2 = weighted_median(values2, weight, guide, radius=8)
    assert abs(float(m2[20, 10]) - 2.0) < 0.6


def test_outliers_marks_only_the_blob():
    values = np.full((50, 50), 3.0, np.float32)
    values[20:26, 20:26] = 15.0
    mask, median = outliers(values, np.ones_like(values), np.zeros_like(values), radius=10, tolerance=1.5)
    assert mask[20:26, 20:26].all() and mask.sum() == 36
    assert abs(float(median[22, 22]) - 3.0) < 0.5


def test_domain_transform_stops_at_edges():
    guide = np.zeros((20, 40), np.float32)
    guide[:, 20:] = 1.0
    values = np.where(guide > 0, 5.0, 1.0).astype(np.float32) + np.random.default_rng(0).normal(0, 0.3, guide.shape)
    out = domain_transform(values.astype(np.float32), guide, 10.0, 0.05)
    assert abs(float(out[:, :18].mean()) - 1.0) < 0.1 and abs(float(out[:, 22:].mean()) - 5.0) < 0.1
    assert float(out[:, :18].std()) < 0.1


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    ps, _, truth = make_stack("ramp", root / "ramp", size=(160, 240), cache=root / "cache")
    return root, ps, truth


@pytest.mark.parametrize("confident", [True, False])
def test_planted_outlier_blob_is_removed(ramp, confident):
    root, ps, truth = ramp
    h, w = ps.size
    centre = (0.45 * w, 0.5 * h)
    true_there = float(truth[int(centre[1]), int(centre[0])])
    wrong = 7.0 if true_there < 3.5 else 0.0
    planted, blob = plant_outlier(ps, root / f"planted-{confident}", centre, 0.03 * w, wrong, confident=confident)
    # The blob is in the data: the stored volume peaks at the wrong frame there.
    vol = np.asarray(planted.volume, np.float32)
    my, mx = int(centre[1] * vol.shape[1] / h), int(centre[0] * vol.shape[2] / w)
    assert int(np.argmax(vol[:, my, mx])) == int(wrong)
    result = depth_map(planted)
    err = np.abs(result.depth - truth)[blob]
    assert float((err <= 1.0).mean()) >= 0.95, f"{(err <= 1.0).mean():.3f} of the blob within one frame"
    assert float(result.confidence[blob].mean()) < 0.1  # marked as filled in, not measured
    # nothing else suffers
    assert score(result.depth, truth)[0] >= 0.99


def test_geodesic_median_holds_one_chunk_of_levels_at_a_time():
    """Each chunk of levels is filtered and scaled in place and let go before the next: the traced peak
    stays near one chunk (five chunks before), with the same result as one level at a time."""
    import tracemalloc

    rng = np.random.default_rng(1)
    values = np.tile(np.linspace(0, 12, 300, dtype=np.float32), (200, 1)) + rng.normal(0, 0.2, (200, 300)).astype(np.float32)
    weight = rng.uniform(0.2, 1.0, values.shape).astype(np.float32)
    guide = np.zeros((200, 300, 3), np.float32)
    guide[:, 150:] = 0.7
    tracemalloc.start()
    try:
        median = geodesic_median(values, weight, guide, sigma_s=12.0, sigma_r=0.2, chunk=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * (16 * values.size * 4)
    one = geodesic_median(values, weight, guide, sigma_s=12.0, sigma_r=0.2, chunk=1)
    assert np.array_equal(median, one, equal_nan=True)


def test_domain_transform_in_place_is_the_same_filter():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 1, (40, 60, 2)).astype(np.float32)
    guide = rng.uniform(0, 1, (40, 60, 3)).astype(np.float32)
    expected = domain_transform(src, guide, 8.0, 0.3)
    work = src.copy()
    out = domain_transform(work, guide, 8.0, 0.3, overwrite=True)
    assert out is work and np.array_equal(out, expected)


def test_geodesic_median_where_gives_the_same_median_there():
    rng = np.random.default_rng(5)
    v = rng.uniform(0, 9, (30, 40)).astype(np.float32)
    w = rng.uniform(0, 1, (30, 40)).astype(np.float32)
    g = rng.uniform(0, 1, (30, 40, 3)).astype(np.float32)
    where = np.zeros((30, 40), bool)
    where[5:12, 8:20] = True
    full = geodesic_median(v, w, g, sigma_s=6.0, sigma_r=0.3, chunk=4)
    part = geodesic_median(v, w, g, sigma_s=6.0, sigma_r=0.3, chunk=4, where=where)
    assert np.array_equal(full[where], part[where])


def test_geodesic_median_in_bands_and_blocks_is_the_same_to_the_bit(monkeypatch):
    """The level indicators written a band of rows at a time and the crossing searched a block of open pixels at a
    time (speed16): bands of 3 rows and blocks of 7 pixels give the bits of one band and one block."""
    import postfocus.focus.clean as clean

    rng = np.random.default_rng(7)
    v = (np.tile(np.linspace(0, 8, 50, dtype=np.float32), (37, 1)) + rng.normal(0, 0.5, (37, 50))).astype(np.float32)
    w = rng.uniform(0, 1, v.shape).astype(np.float32)
    w[rng.uniform(0, 1, v.shape) < 0.3] = 0.0
    g = rng.uniform(0, 1, v.shape + (3,)).astype(np.float32)
    where = rng.uniform(0, 1, v.shape) < 0.4
    runs = []
    for band, gather in ((v.shape[0], v.size), (3, 7)):
        monkeypatch.setattr(clean, "BAND", band)
        monkeypatch.setattr(clean, "GATHER", gather)
        runs.append([geodesic_median(v, w, g, sigma_s=9.0, sigma_r=0.3, chunk=5, where=m) for m in (None, where)])
    for one, many in zip(*runs):
        assert np.array_equal(one.view(np.uint32), many.view(np.uint32))


def test_geodesic_median_shares_its_levels_evenly_between_the_chunks_its_budget_needs(monkeypatch):
    """33 levels within a budget of 20 are filtered as 17 + 16 (18 and 16 channels with the weight), not 20 + 13
    (speed17: the largest chunk is the memory); any budget gives the same bits."""
    import postfocus.focus.clean as clean

    rng = np.random.default_rng(3)
    v = (np.tile(np.linspace(0, 8, 40, dtype=np.float32), (30, 1)) + rng.normal(0, 0.3, (30, 40))).clip(0, 8)
    v = v.astype(np.float32)
    v[0, 0], v[0, 1] = 0.0, 8.0  # levels 0, 0.25 .. 8: 33 of them
    w = rng.uniform(0.1, 1, v.shape).astype(np.float32)
    g = rng.uniform(0, 1, v.shape + (3,)).astype(np.float32)
    seen = []
    recurse = clean._recurse
    monkeypatch.setattr(clean, "_recurse", lambda out, coefficients: (seen.append(out.shape[-1]),
                                                                       recurse(out, coefficients)))
    results = {}
    for most in (20, 13, 33):
        seen.clear()
        monkeypatch.setattr(clean, "CHUNK_BUDGET", most * v.size)
        results[most] = geodesic_median(v, w, g, sigma_s=9.0, sigma_r=0.3)
        results[most, "channels"] = list(seen)
    assert results[20, "channels"] == [18, 16]
    assert results[13, "channels"] == [12, 11, 11]
    assert results[33, "channels"] == [34]
    for most in (13, 33):
        assert np.array_equal(results[20].view(np.uint32), results[most].view(np.uint32))


def test_filters_given_weights_made_ahead_are_the_same_to_the_bit():
    """depth18: ``domain_weights`` made once (ahead, on another thread in the depth map) and given to
    ``domain_transform`` and ``geodesic_median`` give the bits of the weights each makes itself."""
    rng = np.random.default_rng(9)
    v = rng.uniform(0, 6, (33, 47)).astype(np.float32)
    w = rng.uniform(0, 1, v.shape).astype(np.float32)
    g = rng.uniform(0, 1, v.shape + (3,)).astype(np.float32)
    made = domain_weights(g, 9.0, 0.3)
    src = rng.uniform(0, 1, v.shape + (7,)).astype(np.float32)  # (7 channels: stepped channel-major since depth18)
    assert np.array_equal(domain_transform(src, g, 9.0, 0.3).view(np.uint32),
                          domain_transform(src, g, 9.0, 0.3, weights=made).view(np.uint32))
    assert np.array_equal(geodesic_median(v, w, g, sigma_s=9.0, sigma_r=0.3).view(np.uint32),
                          geodesic_median(v, w, g, sigma_s=9.0, sigma_r=0.3, weights=made).view(np.uint32))
    other = domain_weights(g, 9.0, 0.6)  # (weights of another tolerance are another filter: the check can fail)
    assert not np.array_equal(geodesic_median(v, w, g, sigma_s=9.0, sigma_r=0.3, weights=other),
                              geodesic_median(v, w, g, sigma_s=9.0, sigma_r=0.3), equal_nan=True)


def test_seven_channels_stepped_channel_major_are_the_same_to_the_bit(monkeypatch):
    """depth18 raised ``TRANSPOSED_CHANNELS`` to 7 (the fill's second part): the same bits as row-major steps."""
    import postfocus.focus.clean as clean

    rng = np.random.default_rng(10)
    src = rng.uniform(0, 1, (29, 41, 7)).astype(np.float32)
    g = rng.uniform(0, 1, (29, 41, 3)).astype(np.float32)
    runs = []
    for few in (6, 7):
        monkeypatch.setattr(clean, "TRANSPOSED_CHANNELS", few)
        runs.append(domain_transform(src, g, 7.0, 0.2))
    assert np.array_equal(runs[0].view(np.uint32), runs[1].view(np.uint32))


def test_weighted_median_on_two_threads_is_the_same_to_the_bit():
    """A helper filters every other level's share (``threads=2``); the levels are folded in order as on one thread:
    a smooth surface with a far patch on it, random weights and guide, two level spacings."""
    import cv2

    rng = np.random.default_rng(4)
    values = (rng.random((80, 96)) * 9.0).astype(np.float32)
    values = cv2.GaussianBlur(values, (0, 0), 6.0)  # a smooth surface between 0 and 9 frames
    values[30:40, 40:52] += 6.0  # a confident-looking patch far off it
    weight = rng.random(values.shape).astype(np.float32)
    guide = cv2.GaussianBlur(rng.random(values.shape).astype(np.float32), (0, 0), 2.0)
    for step in (0.5, 0.2):
        one = weighted_median(values, weight, guide, radius=9, step=step)
        two = weighted_median(values, weight, guide, radius=9, step=step, threads=2)
        assert one.dtype == two.dtype == np.float32
        assert np.array_equal(one, two, equal_nan=True)
    bad_one, median_one = outliers(values, weight, guide, radius=9, tolerance=1.5)
    bad_two, median_two = outliers(values, weight, guide, radius=9, tolerance=1.5, threads=2)
    assert np.array_equal(bad_one, bad_two) and np.array_equal(median_one, median_two, equal_nan=True)
    assert bad_one[32:38, 42:50].all() and bad_one.mean() < 0.1  # (it judged something: the patch)
