"""The pixels beside a depth step judged in the aligned frames (:mod:`postfocus.focus.frame_sides`), against the
generator's ground truth.

The tripod motorcycle at 180x240 (``bench_depth.PROFILES["tripod"]``): when this test was written, the pixels within
1.5 px of a true depth step read within one frame 71.68 % with ``pixel_sides`` alone (``frames=None``, main) and
72.36 % with the frames' decision, the whole picture 93.11 -> 93.31 %, the median 0.1377 -> 0.1373 frames. The pins
(seed 2), whose shaded edges look like the far board by focus, lose nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import PROFILES, depth_edges, make_stack, score  # noqa: E402

from postfocus.colour import to_grey  # noqa: E402
from postfocus.focus.frame_sides import frame_sides  # noqa: E402
from postfocus.focus.measure import laplacian_energy  # noqa: E402
from postfocus.focus.outline_sides import pixel_sides  # noqa: E402
from postfocus.products.depth import depth_map  # noqa: E402
from postfocus.synth import render_stack  # noqa: E402


def _near_band(truth: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3) < 1.5


def test_the_motorcycle_outlines_are_placed_closer_to_the_truth_than_by_the_stored_measure(tmp_path):
    frames, camera, fmt = PROFILES["tripod"]
    ps, _, truth = make_stack("motorcycle", tmp_path / "motorcycle", size=(180, 240), frames=frames, fmt=fmt, **camera)
    band = _near_band(truth)
    beside = cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3) < 3
    now, before = depth_map(ps).depth, depth_map(ps, frames=None).depth
    assert score(now, truth, band)[0] >= score(before, truth, band)[0] + 0.005
    assert score(now, truth)[0] >= score(before, truth)[0] + 0.0012
    assert score(now, truth)[1] <= score(before, truth)[1]
    # pixels more than a frame off that the frames place within one, beside a true step: most of the change
    fixed = (np.abs(before - truth) > 1) & (np.abs(now - truth) <= 1)
    broken = (np.abs(before - truth) <= 1) & (np.abs(now - truth) > 1)
    assert fixed.sum() >= 4 * broken.sum() and beside[fixed].mean() >= 0.9, (fixed.sum(), broken.sum())


def test_shaded_pins_that_look_far_by_focus_keep_their_edges(tmp_path):
    frames, camera, fmt = PROFILES["tripod"]
    ps, _, truth = make_stack("pins", tmp_path / "pins", size=(180, 240), frames=frames, fmt=fmt, seed=2, **camera)
    now, before = depth_map(ps).depth, depth_map(ps, frames=None).depth
    assert score(now, truth)[0] >= score(before, truth)[0] - 0.0003


def _two_frames(width: int = 32, *, near_texture: bool = True):
    """Two frames of a near left half over a far right one (the outline between columns 15 and 16), composited as a
    lens does: frame 0 focused near (the near half sharp over the far texture blurred), frame 1 focused far (the far
    texture sharp, the near half blurred over it, its edge too); with the generator's noise."""
    rng = np.random.default_rng(1)
    texture = rng.random((2, width, width)).astype(np.float32)
    left = (np.arange(width) < width // 2).astype(np.float32)[None, :].repeat(width, axis=0)
    near = 0.2 + (0.2 * texture[0] if near_texture else 0.0) * np.ones_like(left)
    far = 0.6 + 0.2 * texture[1]

    def blur(x):
        return cv2.GaussianBlur(x, (0, 0), 2.0)

    focused_near = left * near + (1 - left) * blur(far)
    alpha = blur(left)
    focused_far = alpha * blur(near * left) / np.maximum(alpha, 1e-6) + (1 - alpha) * far
    noise = 0.005 * rng.standard_normal((2, width, width))
    return [(focused_near + noise[0]).astype(np.float32), (focused_far + noise[1]).astype(np.float32)]


@pytest.fixture(scope="module")
def card():
    """A textured card over a textured wall, rendered (8 frames, 6 px of blur), its outline known: the card covers
    rows 16-79 and columns 60-123."""
    rng = np.random.default_rng(3)
    h, w = 96, 184

    def texture(sigma):
        noise = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigma)
        return (noise - noise.min()) / (noise.max() - noise.min())

    wall, near = 0.35 + 0.4 * texture(1.2), 0.15 + 0.5 * texture(0.8)
    sharp = np.stack([wall, 0.9 * wall, 0.8 * wall], axis=-1)
    sharp[16:80, 60:124] = np.stack([near, 0.8 * near, 0.6 * near], axis=-1)[16:80, 60:124]
    depth01 = np.ones((h, w), np.float32)
    depth01[16:80, 60:124] = 0.0
    stack = render_stack(sharp.astype(np.float32), depth01, 8, max_blur=6.0, noise=0.005, seed=1)
    greys = [to_grey(f) for f in stack.frames]
    return greys, np.stack([laplacian_energy(g) for g in greys]).astype(np.float32), np.asarray(stack.depth)


@pytest.mark.parametrize("grow", [-1, -2, 1])
def test_a_card_read_a_pixel_or_two_off_its_outline_goes_back_where_the_stored_measure_leaves_it(card, grow):
    """The card's depth read ``grow`` px wider (or narrower, negative) than the card on every side: the frames give
    back a share of the pixels of a card read too narrow (main's ``pixel_sides`` none of them) and move no pixel
    placed right."""
    greys, volume, truth = card
    depth = np.full(truth.shape, 7.0, np.float32)
    depth[16 - grow:80 + grow, 60 - grow:124 + grow] = 0.0
    wrong = np.abs(depth - truth) > 1
    stored = pixel_sides(depth, volume, jump=0.7, floor=float(np.median(volume.min(axis=0))))
    placed = frame_sides(stored, greys.__getitem__, count=8, jump=0.7)
    right_now, right_before = np.abs(placed - truth) <= 1, np.abs(stored - truth) <= 1
    assert not (~right_now & ~wrong).any()  # a pixel on its side stays there
    if grow < 0:
        assert right_before[wrong].mean() < 0.05 and right_now[wrong].mean() >= 0.3, right_now[wrong].mean()


def test_no_frame_is_read_without_a_step_and_a_nan_decides_nothing():
    def never(k):
        raise AssertionError(f"frame {k} read")

    flat = np.full((24, 24), 2.0, np.float32)
    assert np.array_equal(frame_sides(flat, never, count=6, jump=1.0), flat)
    frames = _two_frames(48)
    depth = np.zeros((48, 48), np.float32)
    depth[:, 25:] = 1.0
    without = frame_sides(depth, frames.__getitem__, count=2, jump=0.5)
    holed = depth.copy()
    holed[10, 24] = np.nan
    placed = frame_sides(holed, frames.__getitem__, count=2, jump=0.5)
    assert np.isnan(placed[10, 24]) and np.isnan(placed).sum() == 1
    yy, xx = np.mgrid[0:48, 0:48]
    far_off = (yy - 10) ** 2 + (xx - 24) ** 2 > 12 ** 2
    assert np.array_equal(placed[far_off], without[far_off])


def test_a_smooth_near_side_is_not_moved_by_focus_alone():
    """A near half of one grey (no focus evidence of its own): its edge pixel's focus ratio is the far texture's
    spill, but its look in the frame focused near is the near half's: it stays."""
    frames = _two_frames(near_texture=False)
    depth = np.zeros((32, 32), np.float32)
    depth[:, 16:] = 1.0  # placed right
    assert np.array_equal(frame_sides(depth, frames.__getitem__, count=2, jump=0.5), depth)


def test_the_frames_read_two_at_a_time_on_two_threads_decide_the_same_to_the_bit(card, monkeypatch):
    """With ``threads=2`` the frames (and the stored slices) a batch asks for are read and measured in turns with a
    helper (``postfocus-turns``); every frame is read once and the depth is the same to the bit as on one thread,
    which starts no thread."""
    import threading

    greys, volume, truth = card
    depth = np.full(truth.shape, 7.0, np.float32)
    depth[17:79, 61:123] = 0.0  # the card read a pixel too narrow
    depth[:, :30] = 3.5  # and a third surface: a step between other slices
    floor = float(np.median(volume.min(axis=0)))
    started, reads = [], []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread.name), real_start(thread))[1])

    def frames(k):
        reads.append(k)
        return greys[k]

    one = frame_sides(depth, frames, count=8, jump=0.7, volume=volume, floor=floor, threads=1)
    assert started == [] and len(reads) == len(set(reads)) >= 2
    reads.clear()
    two = frame_sides(depth, frames, count=8, jump=0.7, volume=volume, floor=floor, threads=2)
    assert any(name.startswith("postfocus-turns") for name in started)
    assert len(reads) == len(set(reads)) >= 2
    assert np.array_equal(one, two) and not np.array_equal(one, depth)  # (the frames decided some pixels)
