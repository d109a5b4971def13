"""Frames given as arrays (the Python API): checked like files, never a silent wrong result (issue 17, 12-13)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from postfocus import OptionError, StackOptions, stack
from postfocus.errors import InputError, PostfocusWarning
from postfocus.io.arrays import ArraySource, InvalidFrameError


def three_frames(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.random((64, 96, 3)).astype(np.float32)
    return [np.clip(base + 0.01 * k, 0, 1).astype(np.float32) for k in range(3)]


def quiet_stack(frames, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stack(frames, align="none", motion="off", **options)


def test_a_nan_pixel_is_refused_naming_the_frame():
    frames = three_frames()
    frames[1][10, 10, 0] = np.nan
    with pytest.raises(ValueError, match=r"frame 2 \(frames\[1\]\): 1 value NaN or infinite"):
        stack(frames)


def test_infinite_values_are_refused():
    frames = three_frames()
    frames[2][::10, ::10] = np.inf
    with pytest.raises(InvalidFrameError, match=r"frame 3 \(frames\[2\]\): .* NaN or infinite"):
        stack(frames)


def test_uint8_frames_are_read_as_0_to_255():
    floats = three_frames()
    ints = [np.round(f * 255).astype(np.uint8) for f in floats]
    a, b = quiet_stack(floats), quiet_stack(ints)
    assert np.abs(a.image - b.image).max() < 2 / 255  # not 99.95 % white
    assert b.image.mean() == pytest.approx(a.image.mean(), abs=0.01)


def test_uint16_and_other_integers_use_their_type_range():
    src = ArraySource([np.full((4, 4), 65535, np.uint16), np.zeros((4, 4), np.uint16)])
    assert src.read(0).max() == pytest.approx(1.0) and src.info.bit_depth == 16
    src = ArraySource([np.full((4, 4, 3), 2**31 - 1, np.int32), np.full((4, 4, 3), -5, np.int32)])
    assert src.read(0).max() == pytest.approx(1.0) and src.read(1).min() == 0.0


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32, np.uint64])
def test_wide_integer_frames_of_8_or_16_bit_values_are_refused_naming_the_type_meant(dtype):
    """``(frame * 255).astype(int)`` gives int64 frames of 0-255, scaled by int64's range to under 3e-17: black. The
    stack failed at alignment ("fewer than two frames could be aligned; try another alignment model") or, with
    ``align="none"``, fused a black picture without a word (review20). Frames of a type of 32 bits or more whose
    values all lie within 0-65535 are refused, naming the type meant."""
    floats = three_frames()
    with pytest.raises(InvalidFrameError, match=rf"frame 1 \(frames\[0\]\): {np.dtype(dtype).name} values from \d+ to 255 .*uint8"):
        stack([np.round(f * 255).astype(dtype) for f in floats])
    with pytest.raises(InvalidFrameError, match=r"frame 1 \(frames\[0\]\): .* values from \d+ to 65535 .*uint16"):
        stack([np.round(f * 65535).astype(dtype) for f in floats], align="none")
    top = np.iinfo(dtype).max * 0.99  # the type's whole range: read as before
    wide = [np.round(f.astype(np.float64) * top).astype(dtype) for f in floats]
    assert quiet_stack(wide).image.mean() == pytest.approx(0.99 * quiet_stack(floats).image.mean(), abs=0.01)


def test_floats_far_outside_0_1_warn():
    frames = [f * 255 for f in three_frames()]
    with pytest.warns(PostfocusWarning, match=r"frames 1, 2, 3 \(frames\[0\], \.\.\.\): float values from .* taken as \[0, 1\]"):
        quiet_result = stack(frames, align="none", motion="off")
    assert any("taken as [0, 1]" in w for w in quiet_result.warnings)


def test_grey_frames_and_one_stacked_array_are_accepted():
    grey = [f.mean(axis=2) for f in three_frames()]
    result = quiet_stack(grey)
    assert result.image.shape[2] == 3 and result.info.grey
    as_one = quiet_stack(np.stack(three_frames()))  # (N, H, W, 3)
    assert as_one.image.shape[:2] == (64, 96)
    grey_one = quiet_stack(np.stack(grey))  # (N, H, W)
    assert np.allclose(grey_one.image, result.image)


def test_grey_frames_given_as_numpy_matrices_are_grey_frames():
    """``np.matrix`` frames (an ndarray subclass that stays 2-D when indexed) failed in pass 1 with NumPy's
    "ValueError: shape too large to be a matrix"; they are read as the plain arrays they hold."""
    import warnings

    grey = [f.mean(axis=2) for f in three_frames()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # NumPy's own word on np.matrix
        matrices = [np.asmatrix(g) for g in grey]
    assert np.array_equal(quiet_stack(matrices).image, quiet_stack(grey).image)


def test_array_frames_are_named_and_said_as_a_videos_counted_from_one():
    """Arrays have no file names: they were named "frame0", "frame1" ..., which ``labels.frame_label`` took for file
    names, so a message said "frame2: left out" where every other one counts from 1 ("frame 3"). They are named as
    a video's frames are ("frame 0002"), said "frame 3"; a list of names of another length is refused."""
    from postfocus.labels import frame_label

    frames = three_frames()
    src = ArraySource(frames)
    assert src.info.names == ["frame 0000", "frame 0001", "frame 0002"]
    assert [frame_label(src.info.names, k) for k in range(3)] == ["frame 1", "frame 2", "frame 3"]
    result = quiet_stack(frames)
    assert result.info.names == src.info.names
    with pytest.raises(InvalidFrameError, match="^2 names for 3 frames"):
        ArraySource(frames, names=["a", "b"])
    assert ArraySource(frames, names=["a", "b", "c"]).info.names == ["a", "b", "c"]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((64, 96), np.float32), "not a stack"),
    ([np.zeros((64, 96, 3), np.float32), "frame.jpg"], r"frame 2 \(frames\[1\]\): a str, not an array"),
    ([np.zeros((0, 5, 3), np.float32)] * 2, r"frame 1 \(frames\[0\]\): is empty"),
    ([np.zeros((8, 8, 5), np.float32)] * 2, r"frame 1 \(frames\[0\]\): shape \(8, 8, 5\) is not a picture"),
    ([np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32)], r"frame 2 \(frames\[1\]\): size 9x8 differs from frame 1"),
    ([np.zeros((8, 8, 3), bool)] * 2, "cannot be pixels"),
    ([np.zeros((8, 8, 3), np.float32)], "at least two frames"),
])
def test_unusable_arrays_get_a_clear_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        stack(bad)


@pytest.mark.parametrize("field, value", [("analysis_size", 0), ("align_size", -1), ("reference", -2),
                                          ("frame_range", (5, 2)), ("method", "magic"), ("memory_mb", 0)])
def test_bad_parameters_are_refused_by_name(field, value):
    with pytest.raises(OptionError, match=f"^{field}="):
        stack(three_frames(), **{field: value})
    with pytest.raises(OptionError):
        StackOptions(**{field: value})


def test_a_reference_beyond_the_stack_names_the_range():
    with pytest.raises(OptionError, match=r"reference=7: must be a frame number from 0 to 2"):
        stack(three_frames(), reference=7)


def test_arrays_too_small_to_stack_are_refused_before_any_work():
    """Arrays bypass the file opener: frames of 10x10 reached OpenCV's optical flow and failed inside it."""
    with pytest.raises(InputError, match="at least 16x16"):
        stack(np.zeros((3, 10, 10, 3), np.float32), align="none")
