"""Per-tile Lucas-Kanade shifts (align/tiles.py) and the frame pyramids a sweep's matches share (align/pair.py).

Known sub-pixel shifts of a textured photo, with a blur difference between the
two frames as in a focus sweep; tiles leaving the iteration once converged
must give the shifts the full iteration gives.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus.align import match_pair, prepare_frame, tile_shifts
from postfocus.align import pair as pair_module
from postfocus.align import tiles as tiles_module
from postfocus.colour import to_grey


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage.data import astronaut

    return to_grey(astronaut().astype(np.float32) / 255.0)


def shifted(image: np.ndarray, dx: float, dy: float, blur: float = 0.0) -> np.ndarray:
    """``image`` moved so that its content at p sits at p + (dx, dy), optionally blurred."""
    h, w = image.shape
    out = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(out, (0, 0), blur) if blur else out


@pytest.mark.parametrize("dx, dy", [(0.3, -0.2), (-0.7, 0.45), (1.2, 0.9)])
def test_tile_shifts_recover_a_known_sub_pixel_shift_under_a_blur_difference(photo, dx, dy):
    template = cv2.GaussianBlur(photo, (0, 0), 0.6)
    moving = shifted(photo, dx, dy, blur=1.4)
    points, shifts = tile_shifts(template, moving, 32)
    assert len(points) > 50  # the photo is textured almost everywhere
    median = np.median(shifts, axis=0)
    # measured: 0.038-0.043 px from the truth (192 tiles; the blur difference slows the steps and 8 are allowed)
    assert np.abs(median - [dx, dy]).max() < 0.08, median


def test_tiles_leaving_once_converged_give_the_shifts_of_the_full_iteration(photo, monkeypatch):
    template = cv2.GaussianBlur(photo, (0, 0), 0.5)
    moving = shifted(photo, 0.35, -0.6, blur=1.0)
    points, early = tile_shifts(template, moving, 32)
    monkeypatch.setattr(tiles_module, "CONVERGED_PX", 0.0)  # every tile takes every step
    points_all, full = tile_shifts(template, moving, 32)
    assert np.array_equal(points, points_all)
    # a converged tile's later steps are each below 0.004 px and shrink: measured 0.0005 px at most
    assert np.abs(early - full).max() < 0.005


def test_a_prepared_pyramid_gives_the_match_of_the_plain_frames(photo):
    a = photo[40:400, 30:470]
    b = shifted(photo, 2.4, -1.3, blur=1.0)[40:400, 30:470]
    plain = match_pair(a, b)
    prepared = match_pair(prepare_frame(a), prepare_frame(b))
    assert plain.ok and prepared.ok
    assert np.array_equal(plain.matrix, prepared.matrix) and plain.correlation == prepared.correlation
    assert abs(plain.matrix[0, 2] - 2.4) < 0.1 and abs(plain.matrix[1, 2] + 1.3) < 0.1


def test_the_shorter_correlation_match_before_the_tiles_ends_where_the_full_one_does(photo, monkeypatch):
    """The tile refinement decides the final transform: a correlation match stopped earlier changes nothing."""
    b = shifted(photo, 1.5, 0.5, blur=0.8)
    short = match_pair(photo, b)
    monkeypatch.setattr(pair_module, "ECC_BEFORE_TILES", (60, 1e-5))  # the correlation match run to the end
    full = match_pair(photo, b)
    assert short.ok and full.ok
    corners = np.array([[0, 0], [512, 0], [512, 512], [0, 512]], np.float64)[None]
    moved = cv2.perspectiveTransform(corners, short.matrix) - cv2.perspectiveTransform(corners, full.matrix)
    assert np.abs(moved).max() < 0.01  # measured: 0.00005 px
    assert abs(short.matrix[0, 2] - 1.5) < 0.05 and abs(short.matrix[1, 2] - 0.5) < 0.05


def test_a_shared_frame_pyramid_is_left_as_it_was():
    """A frame's prepared pyramid is shared by its two matches on two threads: matching must not change it
    (OpenCV's phaseCorrelate multiplies its window into its inputs in place when their size is a fast DFT
    size, as the 256 x 144 small copy of a 16:9 frame is), or results depend on which match runs first."""
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((450, 800)).astype(np.float32), (0, 0), 2.0)
    moved = np.roll(base, (2, 3), axis=(0, 1))
    a, b = prepare_frame(base), prepare_frame(moved)
    assert a.small.shape == (144, 256)
    before = [a.small.copy(), b.small.copy(), *(level.copy() for level in a.levels)]
    first = match_pair(a, b, "similarity")
    again = match_pair(a, b, "similarity")
    after = [a.small, b.small, *a.levels]
    assert all(np.array_equal(x, y) for x, y in zip(before, after))
    assert np.array_equal(first.matrix, again.matrix)
