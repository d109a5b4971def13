"""``merge(ps, frames=...)`` refuses frame numbers the stack does not have; ``save_image`` names a missing info
(New user, tenth session)."""

from __future__ import annotations

import pytest

from postfocus.errors import OptionError
from postfocus.pipeline.run import process


@pytest.mark.parametrize("frames, bad", [(range(1, 99), "3"), ([0, -1], "-1"), ([0, 1.5], "1.5"), ([True, 2], "True")])
def test_a_merge_of_frame_numbers_beyond_the_stack_is_refused(tiny_stack, tmp_path, frames, bad):
    """``merge(ps, frames=range(5, 99))`` of a 28-frame stack merged frames 5-27 without a word, and
    ``range(-3, 2)`` frames 0-1, where ``frame_range=(5, 99)`` is an OptionError naming the frames it takes."""
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    with pytest.raises(OptionError, match=rf"^frames=.*: frame {bad} is not in this stack \(frames 0 to 2\)$"):
        ps.merge(frames=frames)


def test_a_merge_of_frames_the_stack_has_still_merges(tiny_stack, tmp_path):
    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    assert ps.merge(frames=range(0, 2)).shape[:2] == ps.size


@pytest.mark.parametrize("method", ["depthmap", "pyramid"])
def test_frames_given_in_another_order_or_twice_merge_as_the_stacks_frames(tiny_stack, tmp_path, method):
    """``merge(frames=[2, 1, 0])`` blurred half the tiny stack (its depth-map fusion took each pixel from the wrong
    frame: a frame's place in the focus order is read from its rank among the frames given), and
    ``frames=[0, 0, 1, 2]`` changed the picture too (review13). The frames are a set, merged in the stack's order."""
    import numpy as np

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    ordered = ps.merge(method=method, frames=[0, 1, 2])
    for frames in ([2, 1, 0], [0, 0, 1, 2], [1, 2, 2, 0]):
        assert np.array_equal(ps.merge(method=method, frames=frames), ordered), frames
    assert np.array_equal(ps.merge(method=method, frames=[1, 0]), ps.merge(method=method, frames=[0, 1]))


def test_save_image_without_its_info_names_none_as_none(tmp_path):
    """``save_image(path, image, None)`` said "info='NoneType': must be the SourceInfo ..."."""
    import numpy as np

    from postfocus.result import save_image

    image = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(OptionError, match=r"^info=None: must be the SourceInfo of the source"):
        save_image(tmp_path / "x.jpg", image, None)
    with pytest.raises(OptionError, match=r"^info='a dict': must be the SourceInfo of the source"):
        save_image(tmp_path / "x.jpg", image, {})
