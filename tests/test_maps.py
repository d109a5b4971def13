"""StackMaps: the moving regions and the frame each is shown from."""

from __future__ import annotations

import numpy as np

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
