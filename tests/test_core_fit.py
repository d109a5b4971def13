"""focus/core_fit.py: the focus curve's peak fitted over its core, on curves and on rendered dense sweeps.

Measured when written (``bench_depth.PROFILES["long"]``, 240x320, seed 1, ``depth_map`` within one frame / median
error in frames): motorcycle 81.01 % / 0.316 with the fit over three curve widths (main before this module),
82.45 % / 0.295 with the core fit; steps 93.92 % -> 94.71 %. The first fit alone (before any cleaning) on the
clear pixels 1.5-4 px from a true depth step: motorcycle 84.3 % -> 87.4 %, steps 55.1 % -> 67.8 % within one frame.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import PROFILES, depth_edges, make_stack, score  # noqa: E402

from postfocus.colour import to_grey  # noqa: E402
from postfocus.focus.core_fit import CORE_WIDTHS, WIDE_WIDTHS, core_peak  # noqa: E402
from postfocus.focus.map import aggregate, curve_width, gaussian_peak  # noqa: E402
from postfocus.numeric import argmax0, pick0  # noqa: E402
from postfocus.products.depth import depth_map  # noqa: E402


def _curves(n: int, centre: np.ndarray, width: float, tail: float, second: np.ndarray | None = None) -> np.ndarray:
    """Gaussian cores with heavy (Lorentzian) tails, optionally a second, weaker surface's curve beside."""
    x = np.arange(n, dtype=np.float64)[:, None, None]
    d = x - centre[None]
    v = np.exp(-0.5 * (d / width) ** 2) + tail / (1.0 + (d / (2.0 * width)) ** 2)
    if second is not None:
        v = v + 0.4 * np.exp(-0.5 * ((x - second[None]) / width) ** 2)
    return v.astype(np.float32)


def test_the_core_fit_is_the_gaussian_over_the_core_inside_and_the_wide_fit_at_the_ends_and_in_noise():
    rng = np.random.default_rng(0)
    n, width = 30, 2.0
    centre = rng.uniform(-1.0, 30.0, (20, 30))
    volume = _curves(n, centre, width, 0.1) * (1.0 + 0.02 * rng.standard_normal((n, 20, 30))).astype(np.float32)
    volume[:, :3] *= 0.01  # three rows that stand under the noise level asked for
    k = argmax0(volume)
    index, reach = core_peak(volume, k, width, 0.01, least=3.0)
    core, wide = round(CORE_WIDTHS * width), round(WIDE_WIDTHS * width)
    assert reach == core
    inside = (k >= core) & (k <= n - 1 - core) & (pick0(volume, k) > 3.0 * 0.01)
    assert inside.any() and (~inside).any() and not inside[:3].any()
    assert np.array_equal(index[inside], gaussian_peak(volume, k, core, 0.01)[inside])
    assert np.array_equal(index[~inside], gaussian_peak(volume, k, wide, 0.01)[~inside])
    # on two threads: the same bits
    assert np.array_equal(core_peak(volume, k, width, 0.01, least=3.0, threads=2)[0], index)


def test_a_second_surface_in_the_tails_does_not_pull_the_core_fit():
    rng = np.random.default_rng(1)
    n, width = 30, 2.0
    centre = rng.uniform(9.0, 20.0, (16, 16))
    second = centre + rng.choice([-1.0, 1.0], centre.shape) * rng.uniform(4.0, 6.0, centre.shape)  # 2-3 widths off
    volume = _curves(n, centre, width, 0.15, second)
    k = argmax0(volume)
    core = np.abs(core_peak(volume, k, width)[0] - centre)
    wide = np.abs(gaussian_peak(volume, k, round(WIDE_WIDTHS * width)) - centre)
    assert float(np.median(core)) < 0.5 * float(np.median(wide)), (np.median(core), np.median(wide))
    assert float(np.max(core)) < float(np.max(wide))


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    frames, camera, fmt = PROFILES["long"]
    return {name: make_stack(name, root / name, size=(240, 320), frames=frames, fmt=fmt, cache=root / "cache", **camera)
            for name in ("motorcycle", "steps")}


def test_the_dense_motorcycle_meets_the_median_target_and_steps_gain(dense):
    """Issue 15's median target (under 0.3 frames) on the bench's dense motorcycle; fails with the fit over three
    widths (81.0 % / 0.316, steps 93.9 %)."""
    ps, _, truth = dense["motorcycle"]
    within, median = score(depth_map(ps).depth, truth)
    assert median < 0.3 and within >= 0.82, (within, median)
    ps, _, truth = dense["steps"]
    within, median = score(depth_map(ps).depth, truth)
    assert within >= 0.944 and median < 0.1, (within, median)


def test_the_first_fit_beside_depth_steps_is_nearer_the_truth_than_the_fit_over_three_widths(dense):
    for name, gain in (("motorcycle", 0.02), ("steps", 0.08)):
        ps, _, truth = dense[name]
        volume = np.asarray(ps.volume, np.float32)
        n, h, w = volume.shape
        agg = aggregate(volume, to_grey(ps.all_in_focus()), max(2, round(0.005 * max(h, w))), 1e-3)
        floor = float(np.median(agg.min(axis=0))) + 1e-12
        best = argmax0(agg)
        width = max(1.0, curve_width(agg, best, floor))
        core, reach = core_peak(agg, best, width, floor, least=3.0)
        wide = gaussian_peak(agg, best, round(WIDE_WIDTHS * width), floor)
        steps = cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3)
        near = (steps >= 1.5) & (steps < 4) & (best >= reach) & (best <= n - 1 - reach)
        near &= pick0(agg, best) > 3.0 * floor
        mine, theirs = score(core[near], truth[near]), score(wide[near], truth[near])
        assert mine[0] >= theirs[0] + gain and mine[1] < theirs[1], (name, mine, theirs)
