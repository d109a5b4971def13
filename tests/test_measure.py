"""Focus measures: the Laplacian energy written into a given array."""

from __future__ import annotations

import cv2
import numpy as np

from postfocus.focus.measure import laplacian_energy


def _by_hand(grey: np.ndarray) -> np.ndarray:
    lap = cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 0.7), cv2.CV_32F, ksize=3)
    return cv2.boxFilter(lap * lap, -1, (5, 5))


def test_the_measure_written_into_a_block_slice_is_the_same_to_the_bit():
    grey = np.random.default_rng(1).random((40, 60), dtype=np.float32)
    block = np.full((3, 40, 60), -1.0, np.float32)
    out = laplacian_energy(grey, out=block[1])
    assert np.shares_memory(out, block)
    assert np.array_equal(block[1], _by_hand(grey)) and np.array_equal(laplacian_energy(grey), _by_hand(grey))
    assert (block[0] == -1).all() and (block[2] == -1).all()  # its neighbours untouched


def test_an_output_opencv_cannot_write_into_is_filled_too():
    grey = np.random.default_rng(2).random((40, 60), dtype=np.float32)
    out = np.zeros((60, 40), np.float32).T  # not C-contiguous
    assert laplacian_energy(grey, out=out) is out and np.array_equal(out, _by_hand(grey))


def test_scratch_arrays_give_the_same_measure_frame_after_frame():
    """A thread measuring frame after frame lends the smoothed image's and the Laplacian's arrays, and the first
    of them takes the measure: the same values as new arrays, and no new frame-sized array is returned."""
    rng = np.random.default_rng(3)
    smoothed, lap = np.full((40, 60), np.nan, np.float32), np.full((40, 60), np.nan, np.float32)
    for _ in range(2):
        grey = rng.random((40, 60), dtype=np.float32)
        assert laplacian_energy(grey, out=smoothed, scratch=(smoothed, lap)) is smoothed
        assert np.array_equal(smoothed, _by_hand(grey))
    block = np.zeros((2, 40, 60), np.float32)  # the measure elsewhere, the scratch for the intermediates only
    assert np.shares_memory(laplacian_energy(grey, out=block[1], scratch=(smoothed, lap)), block[1])
    assert np.array_equal(block[1], _by_hand(grey)) and not block[0].any()
