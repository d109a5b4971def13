"""focus/peak.py: the per-pixel peak of a focus volume from its slices one at a time, equal to whole-volume results."""

from __future__ import annotations

import numpy as np
import pytest

from postfocus.focus.map import focus_index_map, gaussian_peak, peak_index
from postfocus.focus.peak import curve_shape, parabola_peak, shape_peak, streamed_peak
from postfocus.numeric import argmax0, pick0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 28])
def test_streamed_peak_is_the_whole_volume_result_to_the_bit(n):
    rng = np.random.default_rng(n)
    volume = rng.gamma(0.5, 1e-3, (n, 37, 53)).astype(np.float32)
    volume[:, :5] = np.round(volume[:, :5], 3)  # ties: the first slice holding the maximum counts
    p = streamed_peak(iter(volume), n)
    k = np.argmax(volume, axis=0)
    assert np.array_equal(p.k, k)
    assert np.array_equal(p.top, pick0(volume, k))
    assert np.array_equal(p.before, pick0(volume, np.clip(k - 1, 0, n - 1)))
    assert np.array_equal(p.after, pick0(volume, np.clip(k + 1, 0, n - 1)))
    assert np.array_equal(p.low, volume.min(axis=0))
    assert np.array_equal(p.mean, volume.mean(axis=0))
    assert np.array_equal(parabola_peak(p.k, p.top, p.before, p.after, n), peak_index(volume)[0])


def test_too_few_slices_are_refused():
    with pytest.raises(ValueError, match="expected 3 slices"):
        streamed_peak(iter(np.zeros((2, 4, 4), np.float32)), 3)


def test_the_focus_map_from_streamed_slices_is_the_one_from_the_aggregated_volume():
    # With one peak per pixel, a preferred side picks the same peak; that path aggregates the volume whole.
    rng = np.random.default_rng(5)
    guide = rng.random((60, 80)).astype(np.float32)
    single = np.exp(-0.5 * ((np.arange(9)[:, None, None] - rng.uniform(1, 7, (1, 60, 80))) / 1.5) ** 2)
    single = (single * 1e-3 * (0.2 + guide)).astype(np.float32)
    streamed = focus_index_map(single, guide)
    whole = focus_index_map(single, guide, prefer="front")
    assert np.array_equal(streamed[0], whole[0]) and np.array_equal(streamed[1], whole[1])
    assert float(streamed[1].mean()) > 0.2 and float(np.ptp(streamed[0])) > 1.5  # a real map, not an empty one


def _flat_topped(offset: np.ndarray) -> np.ndarray:
    """A dense sweep's focus curve: flat while the blur circle is under a pixel, heavy tails beyond."""
    return 1.0 / (1.0 + np.maximum(np.abs(offset) - 1.5, 0.0) ** 2)


def test_the_shape_of_flat_topped_curves_is_learnt_and_places_their_peaks_better_than_a_gaussian():
    rng = np.random.default_rng(3)
    n, h, w = 30, 40, 50
    truth = rng.uniform(8.0, 21.0, (h, w))
    clean = _flat_topped(np.arange(n)[:, None, None] - truth[None])
    volume = (clean * (1.0 + 0.03 * rng.standard_normal(clean.shape))).astype(np.float32)
    k = np.argmax(volume, axis=0)
    gauss = gaussian_peak(volume, k, 6)
    offsets, values = curve_shape(volume, gauss, volume.max(axis=0), np.ones((h, w), bool), 6)
    # the learnt shape is the curve's own: flat top, half height 2.5 frames from focus
    assert np.max(np.abs(values - _flat_topped(offsets)) ) < 0.1
    fitted = shape_peak(volume, gauss, 6, (offsets, values))
    err_shape, err_gauss = np.abs(fitted - truth), np.abs(gauss - truth)
    assert float(np.median(err_shape)) < 0.6 * float(np.median(err_gauss))
    assert float(np.mean(err_shape)) < float(np.mean(err_gauss))


def test_shape_peak_fits_only_the_pixels_asked_and_stays_in_the_sweep():
    x = np.arange(12)[:, None, None]
    volume = _flat_topped(x - np.array([[[0.2, 5.4, 11.0]]])).astype(np.float32)
    k = np.argmax(volume, axis=0)
    first = gaussian_peak(volume, k, 4)
    offsets = np.arange(-6, 6.01, 0.25)
    where = np.array([[True, True, False]])
    out = shape_peak(volume, first, 4, (offsets, _flat_topped(offsets)), where=where)
    assert out[0, 2] == first[0, 2]
    assert abs(out[0, 1] - 5.4) < 0.05
    assert 0.0 <= out[0, 0] <= 1.2
    assert curve_shape(volume, k.astype(float), volume.max(0), where, 4)[1] is None  # too few curves to learn from


@pytest.mark.parametrize("rows", [57, 2, 1])
def test_the_gaussian_fit_on_two_threads_is_the_same_to_the_bit(rows):
    """``gaussian_peak(threads=2)``: a helper fits the top half of the rows, each pixel's fit its own."""
    rng = np.random.default_rng(rows)
    centre = rng.uniform(-1.0, 12.0, (rows, 40))  # peaks inside and beyond the 12-frame sweep's ends
    f = np.arange(12)[:, None, None]
    volume = (np.exp(-0.5 * ((f - centre) / 2.5) ** 2) + 0.02 * rng.random((12, rows, 40))).astype(np.float32)
    best = argmax0(volume)
    one = gaussian_peak(volume, best, 4, 0.01)
    two = gaussian_peak(volume, best, 4, 0.01, threads=2)
    assert one.dtype == two.dtype == np.float32 and one.shape == two.shape == (rows, 40)
    assert np.array_equal(one, two)
    inside = (centre > 1.0) & (centre < 10.0)
    assert np.abs(one - centre)[inside].max() < 0.3  # (a fit, not a copy of the best frame)


def test_the_volume_aggregated_on_two_threads_is_the_same_to_the_bit():
    """``aggregate(threads=2)``: a helper smooths every other slice, with the guide's statistics made once."""
    from postfocus.focus.map import aggregate, guided_filter

    rng = np.random.default_rng(5)
    guide = rng.random((48, 64)).astype(np.float32)
    volume = rng.random((7, 48, 64)).astype(np.float32) - 0.2  # (some negative: clipped at 0)
    one = aggregate(volume, guide, 3, 1e-3)
    two = aggregate(volume, guide, 3, 1e-3, threads=2)
    assert np.array_equal(one, two)
    assert np.array_equal(one[4], np.maximum(guided_filter(guide, volume[4], 3, 1e-3), 0))
