"""Messages name frames compactly: a long video's kept frames are ranges, not a list of every number."""

import pytest

from postfocus.errors import OptionError, frame_runs
from postfocus.pipeline.plan import pick_frames


def test_runs_of_frames_read_as_ranges_and_gaps_show():
    assert frame_runs(range(120)) == "0-119"
    assert frame_runs([5, 0, 1, 2, 9, 10, 2]) == "0-2, 5, 9-10"  # any order, repeats once
    assert frame_runs([3], first=1) == "4"
    assert frame_runs(()) == "none"


def test_a_merge_of_frames_the_stack_left_out_names_the_kept_ones_in_one_short_line():
    used = [i for i in range(120) if i not in (40, 41)]  # two frames left out of a 120-frame video
    with pytest.raises(OptionError) as caught:
        pick_frames(used, 120, [40, 41])
    message = str(caught.value)
    assert "frames kept: 0-39, 42-119" in message and len(message) < 120, message


def test_a_value_too_long_to_write_is_said_short():
    """An OptionError for ``10**5000`` could not be made (Python writes no int of more than 4300 digits: a ValueError
    while the message was made), and ``frames=range(10**400)``'s own frame was said back in 401 digits (review13)."""
    from postfocus.errors import shown

    assert str(OptionError("x", 10**5000, "must be a number")) == "x=an int too long to show: must be a number"
    assert shown(list(range(100))).endswith("(390 characters)") and len(shown(list(range(100)))) < 100
    with pytest.raises(OptionError) as refused:
        pick_frames([0, 1], 2, [0, 10**5000])
    assert len(str(refused.value)) < 200, str(refused.value)


def test_frames_given_in_another_order_or_twice_are_the_stacks_frames_in_its_order():
    """The fusion reads a frame's place in the focus order from its rank among the frames given (review13)."""
    assert pick_frames([0, 1, 2, 4], 5, [4, 2, 1, 1]) == [1, 2, 4]
    assert pick_frames([0, 1, 2], 3, [2, 0, 2]) == [0, 2]


def test_a_value_whose_repr_runs_over_lines_is_said_on_one():
    """A 2-D array given as a point or as frames was said back over two lines (its repr's); every message is one
    line (review14)."""
    import numpy as np

    message = str(OptionError("x", np.array([[1.0, 2.0], [3.0, 4.0]]), "must be a number of pixels"))
    assert message == "x=array([[1., 2.], [3., 4.]]): must be a number of pixels"
    with pytest.raises(OptionError) as refused:
        pick_frames([0, 1, 2], 3, np.arange(4).reshape(2, 2))
    assert "\n" not in str(refused.value) and "frame array([0, 1])" in str(refused.value), str(refused.value)
