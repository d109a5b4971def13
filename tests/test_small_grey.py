"""Pass 1's small copies into reference geometry as grey (postfocus.pipeline.small_grey)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import textured_scene
from postfocus.align import warp as warp_module
from postfocus.colour import to_grey
from postfocus.pipeline import small_grey


def _as_main_made_it(small: np.ndarray, matrix: np.ndarray, gain: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The colour copy scaled, warped, gained and then made grey (pass 1's grey frame until this session)."""
    warped = warp_module.warp_to_reference(np.multiply(small, np.float32(1 / 255), dtype=np.float32), matrix, size)
    return to_grey(warped * gain)


@pytest.mark.parametrize("matrix", [np.eye(3), np.array([[1.002, -0.004, 2.3], [0.004, 1.002, -1.7], [0, 0, 1.0]])])
def test_an_rgb_copy_is_made_grey_before_one_plane_is_warped_to_within_rounding(matrix, monkeypatch):
    small = (textured_scene(120, 180) * 255 + 0.5).astype(np.uint8)
    small[:20, :30] = 255  # (white, where the gain lifts values above 1)
    gain = np.array([1.07, 0.96, 1.12], np.float32)
    expected = _as_main_made_it(small, matrix, gain, (110, 170))
    planes = []

    def counting(frame, *args, **kwargs):
        planes.append(1 if frame.ndim == 2 else frame.shape[2])
        return warp_module.warp_to_reference(frame, *args, **kwargs)

    monkeypatch.setattr(small_grey, "warp_to_reference", counting)
    grey = small_grey.reference_grey(small, matrix, gain, (110, 170))
    assert planes == [1]  # one plane warped, not three
    assert grey.dtype == np.float32 and grey.shape == (110, 170)
    assert float(np.abs(grey - expected).max()) < 1e-6
    assert float(grey[3, 3]) == pytest.approx(0.299 * 1.07 + 0.587 * 0.96 + 0.114 * 1.12, abs=1e-6)


def test_a_grey_copy_is_warped_and_gained_as_before_to_the_bit():
    small = cv2.cvtColor((textured_scene(60, 80) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    matrix = np.array([[1.0, 0.0, 1.25], [0.0, 1.0, -0.5], [0, 0, 1.0]])
    gain = np.array([1.05], np.float32)
    grey = small_grey.reference_grey(small, matrix, gain, (60, 80))
    assert np.array_equal(grey, _as_main_made_it(small, matrix, gain, (60, 80)))
