"""StackMaps: the moving regions and the frame each is shown from."""

from __future__ import annotations

import numpy as np
import pytest

from postfocus.maps import StackMaps


class _Unread:
    """A focus volume that fails the test when its pixels are read."""

    shape = (3, 8, 8)

    def __getitem__(self, key):
        raise AssertionError("the focus volume was read although nothing moved")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the focus volume was read although nothing moved")


def _maps(volume, motion) -> StackMaps:
    flat = np.zeros((8, 8), np.float32)
    return StackMaps(flat, flat, volume, [4, 5, 6], (16, 16), motion=motion)


def test_a_still_stack_has_no_moving_region_and_its_volume_is_not_read():
    for motion in (None, np.zeros((8, 8), np.float32)):
        labels, choice = _maps(_Unread(), motion).motion_frames()
        assert choice == {} and labels.dtype == np.int32 and labels.shape == (8, 8) and not labels.any()


def test_a_moving_region_is_shown_from_the_frame_sharpest_there():
    motion = np.zeros((8, 8), np.float32)
    motion[2:5, 2:5] = 1
    volume = np.zeros((3, 8, 8), np.float32)
    volume[1, 3, 3], volume[2, 3, 3] = 1, 0.5  # frame 5 is sharpest inside the region, then frame 6
    labels, choice = _maps(volume, motion).motion_frames()
    assert choice == {1: 5} and (labels[2:5, 2:5] == 1).all() and labels.sum() == 9
    assert _maps(volume, motion).motion_frames([4, 6])[1] == {1: 6}  # among the frames asked for


# A hand-edited manifest's map_place and blur_slope (review21): read as None (the plain grid, the slope measured
# again), never an internal error in every later run, never a place or slope no stack could have kept.
_PLACE = [[300, 400], [300, 400], [4, 4], [4, 4], [293, 393]]


def test_a_kept_place_reads_back():
    from postfocus.maps import MapPlace

    assert MapPlace.from_list(_PLACE) == MapPlace((300, 400), (300, 400), (4, 4), (4, 4), (293, 393))


def _edited(pair: int, value) -> list:
    return [value if k == pair else p for k, p in enumerate(_PLACE)]


@pytest.mark.parametrize("value", [
    [[float("inf"), 1]] * 5,  # (main: OverflowError from int(inf), on every read of the maps)
    _edited(2, [-100000, -5]),  # a cut before the maps' start
    _edited(2, [10**40, 10**40]), _edited(0, [10**40, 10**40]),  # (main: maps upscaled from float32 overflow)
    _edited(3, [8, 4]),  # the cut runs past the uncut maps (4 + 293 rows of 300 fit, 8 + 293 do not)
    _edited(2, [300, 4]),  # the cut starts past the uncut size
    [[True, True]] * 5, ["12", "34", "56", "78", "91"], [[4.7, 4]] * 5,  # not whole numbers (main took them)
    [[1]], {"a": 1}, None, "x", [[[1], [2]]] * 5,
])
def test_a_place_no_stack_could_keep_reads_as_none(value):
    from postfocus.maps import MapPlace

    assert MapPlace.from_list(value) is None


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1, 0, "2", True, None,
                                   pytest.param(10**400, id="10**400"),  # (main: TypeError from np.isfinite)
                                   1e308,  # (main: ZeroDivisionError in the merge)
                                   1e-308,  # (main: an inf step, overflow warnings)
                                   1e6, 1e-6])
def test_a_slope_no_stack_could_measure_reads_as_none(value):
    from postfocus.maps import known_slope

    assert known_slope(value) is None


@pytest.mark.parametrize("value", [1.2510168552398682, 1, 0.06, 7.0])
def test_a_measured_slope_reads_back(value):
    from postfocus.maps import known_slope

    assert known_slope(value) == value

def test_cut_maps_read_output_pixels_on_the_uncut_grid():
    """map_grid/to_map of cut maps give the uncut maps' coordinate less the cut's map origin; maps without a place
    (or reshaped since the cut) keep their own grid, to the bit."""
    rng = np.random.default_rng(1)
    small = rng.random((150, 200)).astype(np.float32)
    maps = StackMaps(small, small, small[None], [0], (600, 800))
    cut = maps.crop((25, 18, 530, 757), 0.25)
    assert cut.map_grid() == ((0.25, 0.25), (18, 25), (4, 6))
    for x, y in [(0.0, 0.0), (101.0, 37.0), (738.0, 504.0)]:
        ux, uy = maps.to_map(x + 18, y + 25)
        assert cut.to_map(x, y) == (ux - 4, uy - 6)
    (h, w), (H, W) = cut.shape, cut.size
    assert cut.to_map(101.0, 37.0) != (101.0 * w / W, 37.0 * h / H)  # (its own grid: half a map pixel off)
    assert maps.to_map(101.0, 37.0) == (101.0 * 200 / 800, 37.0 * 150 / 600)
    half = StackMaps(small[::2, ::2], small[::2, ::2], small[None, ::2, ::2], [0], (600, 800), place=cut.place)
    assert half.grid_place is None and half.map_grid() == ((0.125, 0.125), (0, 0), (0, 0))
    # StackMaps.upscale of cut maps: the uncut maps' upscale inside the cut
    import cv2

    whole = cv2.resize(small, (800, 600), interpolation=cv2.INTER_LINEAR)[25:530, 18:757]
    up = cut.upscale(cut.focus_index)
    assert up.shape == (H, W)
    np.testing.assert_array_equal(up[4:-4, 4:-4], whole[4:-4, 4:-4])
