"""plain_sides: a plain region whose own outline reads a far surface beside a near one is the far surface."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack  # noqa: E402

from postfocus.focus.plain import plain_regions, plain_sides  # noqa: E402


def _wall(far_top: bool):
    """A black wall (columns 10-19) beside a textured near card (columns 0-9, depth 0), under a grey band whose
    outline with the wall reads ``7`` when ``far_top`` (the wall's own top edge, sharp in the far frames), else 0."""
    rng = np.random.default_rng(3)
    g = np.zeros((40, 20, 3), np.float32)
    g[:8] = 0.5
    g[8:, :10] = rng.random((32, 10, 1)).astype(np.float32)
    index = np.zeros((40, 20), np.float32)
    index[:10, 10:] = 7.0 if far_top else 0.0  # the band and the wall's top rows: the band-wall outline's reading
    index[:8, :10] = 0.0
    weight = np.ones((40, 20), np.float32)
    weight[12:, 13:] = 0.0  # the wall's inside: no texture, no reading
    depth = np.where(weight > 0, index, 0.0).astype(np.float32)  # the fill took the near card's depth
    return depth, index, weight, g, weight == 0


def test_a_plain_wall_whose_own_top_reads_far_is_far_up_to_the_near_card():
    depth, index, weight, g, weak = _wall(far_top=True)
    out = plain_sides(depth, index, weight, g, weak, jump=1.0, reach=3)
    assert np.all(out[12:, 13:] == 7.0)  # its inside
    assert np.all(out[12:, 10:13] == 7.0)  # its rim by the card, which read the card's outline
    assert np.array_equal(out[:, :10], depth[:, :10])  # the card keeps its own


def test_a_plain_region_whose_outline_reads_one_surface_is_left_to_the_fill():
    """A plain key top ringed by its own edges (all near) beside a far textured gap: nothing tells it is far."""
    depth, index, weight, g, weak = _wall(far_top=False)
    assert np.array_equal(plain_sides(depth, index, weight, g, weak, jump=1.0, reach=3), depth)
    rng = np.random.default_rng(4)
    g = np.zeros((40, 40, 3), np.float32)
    g[...] = rng.random((40, 40, 1))  # a textured far wall (7) ...
    g[10:30, 10:30] = 0.8  # ... and a plain near square (2) in front of it, its rim read near
    index = np.full((40, 40), 7.0, np.float32)
    index[8:32, 8:32] = 2.0
    weight = np.ones((40, 40), np.float32)
    weight[13:27, 13:27] = 0.0
    depth = np.where(weight > 0, index, 2.0).astype(np.float32)
    assert np.array_equal(plain_sides(depth, index, weight, g, weight == 0, jump=1.0, reach=3), depth)


def test_a_blob_of_far_readings_with_no_far_surface_across_it_does_not_relabel_the_wall():
    """A misread blob inside the wall (nothing confident across it) or on its rim beside the near card (the card
    across it, reading near) is no outline against a far surface: the wall keeps the fill's depth (main: 7)."""
    for rows, cols in ((slice(20, 24), slice(14, 18)), (slice(20, 24), slice(10, 14))):
        depth, index, weight, g, weak = _wall(far_top=False)
        index[rows, cols], weight[rows, cols] = 7.0, 1.0
        out = plain_sides(depth, index, weight, g, weak, jump=1.0, reach=3)
        assert np.array_equal(out[weak], depth[weak]), (rows, cols)


def test_a_plain_region_is_one_colour_connected():
    g = np.zeros((10, 20), np.float32)
    g[:, 10:] = 0.5
    count, labels = plain_regions(g)
    assert count == 3 and labels[0, 0] != labels[0, 19] and labels[0, 9] == 0  # the two sides, and the step


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """The 160x240 ``steps`` render of test_animate (a focus pull): the near gravel card has a black strip of the
    far background on its right, plain, between it and the picture's border."""
    ps, _, truth = make_stack("steps", tmp_path_factory.mktemp("plain") / "steps", size=(160, 240), frames=8, seed=1)
    return ps, truth


def test_the_plain_far_strip_beside_the_near_card_reads_the_far_depth(steps):
    """On main the strip read the near card's depth (0, truth 7): its rim read the card's outline, the fill spread
    that along its colour; islands17 corrected some rows and left a ragged line through it."""
    from postfocus.products.depth_cache import stack_depth

    ps, truth = steps
    depth = stack_depth(ps).depth
    aif = ps.all_in_focus()
    near = truth <= truth.min() + 0.5
    beside = cv2.dilate(near.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    strip = beside & ~near & (truth >= truth.max() - 0.5) & (aif.max(axis=2) < 0.05)  # black, far, beside the card
    assert strip.sum() > 300
    error = np.abs(depth[strip] - truth[strip])
    assert np.mean(error < 1.0) > 0.95, np.mean(error < 1.0)  # main: 0.00
    assert float(np.median(depth[strip])) > truth.max() - 0.5


def test_a_plain_wall_beside_a_misread_blob_keeps_its_depth(tmp_path):
    """The sweep of test_viewer_page (left half sharp in frame 0): a blob of pixels by the astronaut's hair misreads
    ~2.3; the plain grey wall left of the hair has no outline against anything that far, and stays at 0 (main with
    fill18's rule: the whole wall read 2.3, 84 % of the left half within half a frame of 0; before it, 98.8 %)."""
    from test_viewer_page import make_sweep

    from postfocus.pipeline.run import process
    from postfocus.products.depth import depth_map

    ps = process(make_sweep(tmp_path / "frames"), cache_dir=tmp_path / "cache")
    depth = depth_map(ps).depth
    h, w = depth.shape
    margin = 10 * w // 320
    left = depth[:, margin:w // 2 - margin]
    assert np.mean(np.abs(left) < 0.5) >= 0.98, np.mean(np.abs(left) < 0.5)
    assert np.mean(np.abs(depth[:, w // 2 + 5:-5] - 5) < 0.5) >= 0.98
