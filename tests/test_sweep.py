"""Tests for postfocus.sweep: dropping repeated frames and ordering a sweep near to far."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from postfocus.io.base import FrameSource, SourceInfo
from postfocus.io.open import open_source
from postfocus.io.video import VideoSource, write_video
from postfocus.sweep import (
    REPEAT_FOCUS,
    REPEAT_MAD,
    drop_repeated_frames,
    focus_order,
    frame_difference,
    summarize,
    sweep_direction,
)

DATA = Path(__file__).parents[1].parent / "shared" / "data"
KEYBOARD_SWEEP = DATA / "keyboard_sweep.mp4"
H, W = 160, 240


def textured(seed: int = 0) -> np.ndarray:
    """Sharp grey detail with smooth colour, in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    detail = cv2.GaussianBlur(rng.random((H, W), dtype=np.float32), (0, 0), 0.8)
    detail = (detail - detail.min()) / (detail.max() - detail.min())
    colour = cv2.GaussianBlur(rng.random((H, W, 3), dtype=np.float32), (0, 0), 8.0)
    colour = (colour - colour.min()) / (colour.max() - colour.min())
    return (0.1 + 0.8 * (0.7 * detail[:, :, None] + 0.3 * colour)).astype(np.float32)


def synthetic_sweep(n: int = 12, seed: int = 0) -> list[np.ndarray]:
    """A focus sweep near to far over a scene whose lower part is nearer.

    Depth runs from 0 (bottom row, near) to 1 (top row, far); frame k is
    focused at depth k / (n - 1), and each pixel is blurred with a Gaussian whose
    sigma grows with its distance from the focused depth.
    """
    sharp = textured(seed)
    depth = np.linspace(1.0, 0.0, H, dtype=np.float32)[:, None, None]  # top far, bottom near
    sigmas = np.linspace(0.0, 4.0, 9)
    stack = [sharp] + [cv2.GaussianBlur(sharp, (0, 0), s) for s in sigmas[1:]]
    frames = []
    for k in range(n):
        sigma = np.minimum(6.0 * np.abs(depth - k / (n - 1)), sigmas[-1])
        position = np.interp(sigma, sigmas, np.arange(len(sigmas)))
        lower = np.floor(position).astype(int)
        upper = np.minimum(lower + 1, len(sigmas) - 1)
        weight = (position - lower).astype(np.float32)
        rows = [(1 - weight[y]) * stack[lower[y, 0, 0]][y] + weight[y] * stack[upper[y, 0, 0]][y] for y in range(H)]
        frames.append(np.stack(rows).astype(np.float32))
    return frames


@pytest.fixture(scope="module")
def sweep_frames() -> list[np.ndarray]:
    return synthetic_sweep()


def test_synthetic_steps_and_repeats_lie_on_either_side_of_the_thresholds(sweep_frames):
    summaries = [summarize(f) for f in sweep_frames]
    for a, b in zip(summaries, summaries[1:]):
        mad, change = frame_difference(a, b)
        assert mad > REPEAT_MAD or change > REPEAT_FOCUS
    assert frame_difference(summaries[3], summarize(sweep_frames[3].copy())) == (0.0, 0.0)


def test_repeated_frames_at_both_ends_are_dropped(sweep_frames, tmp_path):
    # frames 0, 1, 2 identical (lens not moving yet), last two identical (stopped)
    sequence = [sweep_frames[0]] * 3 + sweep_frames[1:10] + [sweep_frames[10]] * 2
    path = write_video(sequence, tmp_path / "repeats.mp4", crf=18)
    src = VideoSource(path)
    assert len(src) == 14
    kept, dropped = drop_repeated_frames(src)
    assert dropped == [1, 2, 13]
    assert kept == [0] + list(range(3, 13))


def test_real_sweep_loses_no_frame():
    if not KEYBOARD_SWEEP.exists():
        pytest.skip(f"{KEYBOARD_SWEEP} not found")
    kept, dropped = drop_repeated_frames(open_source(KEYBOARD_SWEEP))
    assert dropped == []
    assert kept == list(range(41))


def test_focus_order_keeps_near_to_far_and_reverses_far_to_near(sweep_frames, tmp_path):
    forward = VideoSource(write_video(sweep_frames, tmp_path / "near_far.mp4"))
    backward = VideoSource(write_video(sweep_frames[::-1], tmp_path / "far_near.mp4"))
    n = len(sweep_frames)
    assert focus_order(forward) == list(range(n))
    assert focus_order(backward) == list(range(n))[::-1]
    assert focus_order(backward, [0, 2, 5, 7]) == [7, 5, 2, 0]


class ListSource(FrameSource):
    """Frames held in memory, for tests."""

    def __init__(self, frames):
        self._frames = list(frames)
        h, w = self._frames[0].shape[:2]
        self.info = SourceInfo(kind="images", names=[str(i) for i in range(len(self._frames))], height=h, width=w)

    def __len__(self):
        return len(self._frames)

    def read(self, index):
        return self._frames[index]


def test_exact_repeats_in_memory_are_dropped(sweep_frames):
    sequence = sweep_frames[:4] + [sweep_frames[3]] + sweep_frames[4:]
    kept, dropped = drop_repeated_frames(ListSource(sequence))
    assert dropped == [4]
    assert kept == [0, 1, 2, 3] + list(range(5, len(sequence)))


def test_focus_order_keeps_the_given_order_when_unclear():
    # the whole picture defocuses alike: every tile peaks in the same frame
    sharp = textured(1)
    frames = [cv2.GaussianBlur(sharp, (0, 0), s) if s else sharp for s in (2.0, 1.0, 0.0, 1.0, 2.0, 3.0)]
    direction, _, _ = sweep_direction([summarize(f) for f in frames])
    assert direction == 0
    assert focus_order(ListSource(frames)) == list(range(6))
    assert focus_order(ListSource(frames[::-1])) == list(range(6))
