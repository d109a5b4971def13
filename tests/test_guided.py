"""Tests for focus/guided.py: the guided upsampling of a map to the image's size."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np

from postfocus.colour import to_grey
from postfocus.focus.guided import guided_filter, guided_upsample


def _whole(values: np.ndarray, guide: np.ndarray, radius: int, eps: float = 1e-3) -> np.ndarray:
    """The guided upsampling as one full-size guided filter (what the bands must reproduce)."""
    h, w = guide.shape[:2]
    up = cv2.resize(values, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(guided_filter(to_grey(guide), up, radius, eps), values.min(), values.max()).astype(np.float32)


def test_guided_upsample_in_bands_is_the_whole_image_filter_to_the_bit():
    rng = np.random.default_rng(3)
    guide = rng.uniform(0, 1, (203, 157, 3)).astype(np.float32)
    guide[:, 80:] += 0.5  # an edge for the filter to snap to
    values = rng.uniform(0, 9, (61, 47)).astype(np.float32)
    for radius, band in ((None, 7), (None, 50), (2, 4), (5, 1000)):
        r = radius if radius is not None else max(2, int(round(1.5 * 203 / 61)))
        out = guided_upsample(values, guide, radius, band=band)
        assert out.dtype == np.float32 and out.shape == (203, 157)
        assert np.array_equal(out, _whole(values, guide, r)), (radius, band)


def test_guided_upsample_holds_a_band_of_temporaries_not_the_whole_filter():
    rng = np.random.default_rng(4)
    guide = rng.uniform(0, 1, (600, 800, 3)).astype(np.float32)
    values = rng.uniform(0, 9, (150, 200)).astype(np.float32)
    frame = 600 * 800 * 4
    tracemalloc.start()
    try:
        out = guided_upsample(values, guide, band=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the upsampled frame (filtered in place) and the band's temporaries (40 rows, the halo included, ten arrays):
    # under two frames; the whole-image filter held about nine
    assert peak < frame * 2.0, peak / frame
    assert out.shape == (600, 800)


def test_guided_upsample_on_two_threads_is_the_same_to_the_bit(monkeypatch):
    """``threads=2``: a helper guides the top half's bands, the calling thread the bottom half's; each half reads
    the rows beside the split as upsampled, whichever thread wrote them first."""
    import threading

    import postfocus.focus.guided as guided

    rng = np.random.default_rng(2)
    seen = set()
    real = guided.guided_filter
    monkeypatch.setattr(guided, "guided_filter", lambda *a, **k: (seen.add(threading.get_ident()), real(*a, **k))[1])
    for rows, band in ((300, 16), (257, 64), (1000, 128), (40, 16), (20, 16)):
        values = rng.random((rows // 4 + 1, 30)).astype(np.float32)
        guide = rng.random((rows, 120, 3)).astype(np.float32)
        seen.clear()
        one = guided_upsample(values, guide, band=band)
        assert seen == {threading.get_ident()}
        seen.clear()
        two = guided_upsample(values, guide, band=band, threads=2)
        assert np.array_equal(one, two)
        assert len(seen) == (2 if rows >= 2 * band else 1)  # (fewer than two bands: nothing to share)
