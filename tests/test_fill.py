"""The depth fill that keeps a slope a slope (``postfocus.focus.fill``), alone and in the depth product.

The dense motorcycle (30 frames, ``bench_depth.PROFILES["long"]``, 180x240): its floor recedes from the bottom
border (frame 0-3) to the wheels (frame 15), with little texture; its weak pixels take most of their depth from the
fill, and the weighted mean read them a frame or more too far (the support of a bottom-row pixel lies above it,
farther). Measured when this test was written (within one frame / median error; weighted mean -> plane): more than
4 px from a depth step 84.6 % / 0.307 -> 89.2 % / 0.278, its bottom fifth 68.1 % / 0.657 -> 79.2 % / 0.463, the
whole picture 74.3 % -> 76.2 %.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import PROFILES, depth_edges, make_stack, score  # noqa: E402

from postfocus.focus.fill import plane_fill  # noqa: E402
from postfocus.products.depth import depth_map  # noqa: E402


def test_a_slope_measured_on_one_side_is_continued_and_a_flat_surface_stays_flat():
    """Texture on the upper half of a sloping floor only: the plane continues it, the mean does not."""
    h, w = 80, 60
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    floor = 20.0 - yy / 8.0  # a frame every 8 px
    weight = (yy < 40).astype(np.float32)
    guide = np.zeros((h, w), np.float32)
    plane, total = plane_fill(floor, weight, guide, sigma_s=25.0, sigma_r=0.2, ridge=0.0)
    mean, _ = plane_fill(floor, weight, guide, sigma_s=25.0, sigma_r=0.2, ridge=np.inf)
    low = yy >= 40
    assert np.abs(plane - floor)[low].max() < 0.05
    assert np.abs(mean - floor)[low].min() > 1.0  # every unmeasured row read farther than it is
    assert (total > 0).all()
    # noise on a flat surface measured on one side does not tilt it beyond the noise
    rng = np.random.default_rng(1)
    flat = 7.0 + 0.3 * rng.standard_normal((h, w)).astype(np.float32)
    filled, _ = plane_fill(flat, weight, guide, sigma_s=25.0, sigma_r=0.2)
    assert np.abs(filled[low] - 7.0).max() < 0.3


def test_the_slope_is_fitted_only_to_the_pixels_given():
    """A near band at the support's edge (a neighbour's spilled focus energy) tilts the plane unless left out of it."""
    h, w = 60, 60
    yy = np.mgrid[0:h, 0:w][0]
    depth = np.full((h, w), 25.0, np.float32)
    depth[36:40] = 2.0  # a band read at a near object's frame, next to the unmeasured rows
    weight = np.where(yy < 40, 1.0, 0.0).astype(np.float32)
    weight[36:40] = 0.1  # distrusted
    guide = np.zeros((h, w), np.float32)
    surface = weight * (yy < 36)
    kept, _ = plane_fill(depth, weight, guide, sigma_s=20.0, sigma_r=0.2, slope_weight=surface)
    tilted, _ = plane_fill(depth, weight, guide, sigma_s=20.0, sigma_r=0.2)
    mean, _ = plane_fill(depth, weight, guide, sigma_s=20.0, sigma_r=0.2, ridge=np.inf)
    assert abs(float(kept[59, 30]) - float(mean[59, 30])) < 0.01  # a flat surface's slope is 0: the mean
    assert float(tilted[59, 30]) < float(mean[59, 30]) - 2.0  # the band's 23 frames as a slope


def test_a_receding_floor_at_the_border_keeps_its_slope(tmp_path):
    """The dense motorcycle's weak floor: 3 points more within one frame off its depth steps, 8 at the bottom."""
    frames, camera, fmt = PROFILES["long"]
    ps, _, truth = make_stack("motorcycle", tmp_path / "motorcycle", size=(180, 240), frames=frames, fmt=fmt, **camera)
    off = cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3) >= 4
    bottom = off.copy()
    bottom[: int(0.8 * truth.shape[0])] = False
    plane, mean = depth_map(ps).depth, depth_map(ps, plane=False).depth
    (now, median), (before, median_before) = score(plane, truth, off), score(mean, truth, off)
    assert now >= 0.87 and now >= before + 0.03, (now, before)
    assert median < median_before, (median, median_before)
    assert score(plane, truth, bottom)[0] >= score(mean, truth, bottom)[0] + 0.08
    assert score(plane, truth)[0] >= score(mean, truth)[0] + 0.01


def test_the_fill_in_bands_of_rows_is_the_same_to_the_bit(monkeypatch):
    """The 13 sums written and solved a band of rows at a time (speed17: a band's products alive, not 13 images):
    bands of 7 rows give the bits of one band, with and without a slope weight."""
    import postfocus.focus.fill as fill

    h, w = 45, 38
    depth, weight, guide, surface = _sloped_inputs(4, h, w, ramp=10.0 + np.mgrid[0:h, 0:w][0] / 6.0, share=0.6)
    bands = fill._bands
    runs = []
    for rows in (h, 7):
        monkeypatch.setattr(fill, "_bands", lambda n, rows=rows: bands(n, rows))
        runs.append([plane_fill(depth, weight, guide, sigma_s=15.0, sigma_r=0.3, slope_weight=s) for s in (None, surface)])
    assert len(bands(h, 7)) == 7
    for one, many in zip(*runs):
        for a, b in zip(one, many):
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_the_fill_filtered_in_two_parts_on_two_threads_is_the_same_to_the_bit():
    """depth18: ``PlaneSums`` in two parts (6 and 7 channels), each filtered on its own thread with weights made
    ahead (``domain_weights``), gives the bits of ``plane_fill`` in one part, with and without a slope weight;
    depthrow21: each part's channels are written by the thread that filters it."""
    import threading

    from postfocus.focus.clean import domain_weights
    from postfocus.focus.fill import PlaneSums

    h, w = 41, 53
    depth, weight, guide, surface = _sloped_inputs(8, h, w, ramp=6.0 + np.mgrid[0:h, 0:w][1] / 9.0, share=0.5)
    for slope in (None, surface):
        one = plane_fill(depth, weight, guide, sigma_s=12.0, sigma_r=0.3, slope_weight=slope)
        sums = PlaneSums(depth, weight, sigma_s=12.0, slope_weight=slope, parts=2)
        assert [part.shape[-1] for part in sums.sums] == [6, 7]
        writers = {}
        write = sums._write
        sums._write = lambda part: (writers.setdefault(part, threading.get_ident()), write(part))[1]
        made = domain_weights(guide, 12.0, 0.3)
        other = threading.Thread(target=sums.filter, args=(1, guide), kwargs={"sigma_r": 0.3, "weights": made})
        other.start()
        sums.filter(0, guide, sigma_r=0.3, weights=made)
        other.join()
        two = sums.solve()
        assert writers == {0: threading.get_ident(), 1: other.ident}
        assert not np.array_equal(one[0], depth)  # (the fill acted)
        for a, b in zip(one, two):
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def _sloped_inputs(seed, h, w, *, ramp, share):
    """A noisy sloped depth, a weight present on ``share`` of the pixels, a random guide and a slope weight on
    about 70 % of the weighted pixels (float32)."""
    rng = np.random.default_rng(seed)
    depth = (ramp + rng.normal(0, 0.3, (h, w))).astype(np.float32)
    weight = (rng.uniform(0, 1, (h, w)) * (rng.uniform(0, 1, (h, w)) < share)).astype(np.float32)
    guide = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    return depth, weight, guide, weight * (rng.uniform(0, 1, (h, w)) < 0.7)
