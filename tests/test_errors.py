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
