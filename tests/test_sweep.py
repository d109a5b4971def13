"""Tests for postfocus.sweep: frame summaries that tell a repeated frame from a focus step.

Leaving repeated frames out of a video is tested end to end in test_refocus.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus.sweep import REPEAT_FOCUS, REPEAT_MAD, frame_difference, summarize

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
