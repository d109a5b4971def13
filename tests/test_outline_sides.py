"""Depth edges placed to the pixel (:mod:`postfocus.focus.outline_sides`) against the generator's ground truth.

The tripod motorcycle at 180x240 (``bench_depth.PROFILES["tripod"]``): when this test was written, the pixels within
1.5 px of a true depth step read within one frame 71.30 % without the decision (``pixel=False``, main) and 71.68 % with
it, the whole picture 92.95 -> 93.11 %. A near card of fine texture over a far textured wall, whose outline main
already places to the pixel, keeps it there.
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
from postfocus.focus.measure import laplacian_energy  # noqa: E402
from postfocus.focus.outline_sides import pixel_sides  # noqa: E402
from postfocus.products.depth import depth_map, refine_depth  # noqa: E402
from postfocus.synth import render_stack  # noqa: E402

LEFT, RIGHT = 60, 124  # the card covers columns LEFT .. RIGHT - 1


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    return (noise - noise.min()) / (noise.max() - noise.min())


@pytest.fixture(scope="module")
def card():
    rng = np.random.default_rng(3)
    h, w = 96, 184
    wall = 0.35 + 0.4 * _texture(rng, (h, w), 1.2)
    near = 0.15 + 0.5 * _texture(rng, (h, w), 0.8)
    sharp = np.stack([wall, 0.9 * wall, 0.8 * wall], axis=-1)
    sharp[16:80, LEFT:RIGHT] = np.stack([near, 0.8 * near, 0.6 * near], axis=-1)[16:80, LEFT:RIGHT]
    depth01 = np.ones((h, w), np.float32)
    depth01[16:80, LEFT:RIGHT] = 0.0
    stack = render_stack(sharp.astype(np.float32), depth01, 8, max_blur=6.0, noise=0.005, seed=1)
    volume = np.stack([laplacian_energy(to_grey(f)) for f in stack.frames]).astype(np.float32)
    return volume, sharp.astype(np.float32), np.asarray(stack.depth, np.float32)


def _outline_offsets(depth: np.ndarray) -> np.ndarray:
    """Per row of the card's middle, how far (px) each side's depth edge (the crossing of 3.5) lies off the outline."""
    offsets = []
    for row in depth[24:72]:
        near = row < 3.5
        cols = np.flatnonzero(near[LEFT - 12:RIGHT + 12]) + LEFT - 12
        offsets += [abs(cols.min() - LEFT), abs(cols.max() + 1 - RIGHT)]
    return np.asarray(offsets, np.float32)


def test_the_motorcycle_outlines_read_closer_to_the_truth(tmp_path):
    frames, camera, fmt = PROFILES["tripod"]
    ps, _, truth = make_stack("motorcycle", tmp_path / "motorcycle", size=(180, 240), frames=frames, fmt=fmt, **camera)
    band = cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3) < 1.5
    now, before = depth_map(ps).depth, depth_map(ps, pixel=False).depth
    assert score(now, truth, band)[0] >= score(before, truth, band)[0] + 0.003
    assert score(now, truth)[0] >= score(before, truth)[0] + 0.001
    assert score(now, truth)[1] <= score(before, truth)[1]


def test_a_card_outline_placed_to_the_pixel_stays_there(card):
    volume, sharp, truth = card
    before = refine_depth(volume, sharp, pixel=False, threads=1)[0]
    after = refine_depth(volume, sharp, threads=1)[0]
    off_before, off_after = _outline_offsets(before), _outline_offsets(after)
    assert (off_after > 0.5).mean() <= (off_before > 0.5).mean() <= 0.1
    assert (np.abs(after - truth) <= 1).mean() >= (np.abs(before - truth) <= 1).mean() >= 0.99


def test_nothing_moves_without_a_step_or_where_the_sides_are_not_told_apart():
    rng = np.random.default_rng(0)
    volume = rng.random((6, 40, 40)).astype(np.float32)  # noise: no side sharper in its own frame
    depth = np.full((40, 40), 1.0, np.float32)
    depth[:, 22:] = 4.0
    assert np.array_equal(pixel_sides(depth, volume, jump=1.0), depth)
    flat = np.full((40, 40), 2.0, np.float32)
    assert np.array_equal(pixel_sides(flat, volume, jump=1.0), flat)


def _halves(width: int = 32):
    """Two frames: the left half's texture sharp in frame 0 (near), the right half's in frame 1 (far); each pixel's
    measure in its blurred frame a tenth to a fifth of its sharp one (independent textures: the ratios vary)."""
    rng = np.random.default_rng(0)
    sharp, blurred = rng.uniform(0.5, 1.0, (2, width, width)), rng.uniform(0.1, 0.2, (2, width, width))
    left = np.arange(width) < width // 2
    return np.stack([np.where(left, sharp[0], blurred[0]), np.where(left, blurred[1], sharp[1])]).astype(np.float32)


@pytest.mark.parametrize("read_edge", [14, 15, 17, 18])
def test_a_step_read_one_or_two_pixels_off_goes_back_towards_the_outline_from_either_side(read_edge):
    volume = _halves()
    depth = np.zeros((32, 32), np.float32)
    depth[:, read_edge:] = 1.0  # the outline lies between columns 15 and 16
    truth = (np.arange(32) >= 16).astype(np.float32)[None, :].repeat(32, axis=0)
    placed = pixel_sides(depth, volume, jump=0.5)
    wrong = depth != truth
    assert not (placed != truth)[~wrong].any()  # a pixel on its side stays there
    assert (placed == truth)[wrong].mean() >= 0.3, (placed == truth)[wrong].mean()


@pytest.mark.parametrize("nan_at", [(2, 2), (10, 14), (10, 16)], ids=["far-off", "beside-the-step", "on-the-step"])
def test_a_nan_depth_is_left_alone_and_decides_nothing(nan_at):
    """A NaN in the depth (``pixel_sides`` is public; a NaN is "no depth" to ``visible_index``) was cast to a frame
    index: an IndexError (review16). It stays NaN, the pixels beyond its reach are decided as without it, those
    beside it left as read or decided as without it."""
    width = 48
    volume = _halves(width)
    depth = np.zeros((width, width), np.float32)
    depth[:, 26:] = 1.0  # the outline between columns 23 and 24: read two columns too near
    without = pixel_sides(depth, volume, jump=0.5)
    holed = depth.copy()
    holed[nan_at] = np.nan
    placed = pixel_sides(holed, volume, jump=0.5)
    assert np.isnan(placed[nan_at]) and np.isnan(placed).sum() == 1
    yy, xx = np.mgrid[0:width, 0:width]
    far_off = (yy - nan_at[0]) ** 2 + (xx - nan_at[1]) ** 2 > 12 ** 2  # (beyond the disc, its band and the sides)
    assert np.array_equal(placed[far_off], without[far_off])
    near = ~far_off & ~np.isnan(holed)  # (beside it: left as read, or decided as without it)
    assert ((placed == holed) | (placed == without))[near].all()


def test_the_batches_decided_on_two_threads_are_the_same_to_the_bit(monkeypatch):
    """With ``threads=2`` a pass's batches of band pixels are decided on the calling thread and a helper in turns
    (``postfocus-turns``): the same depth to the bit as on one thread, which starts no thread."""
    import threading

    import postfocus.focus.outline_sides as outline_sides

    volume = np.concatenate([_halves()] * 4, axis=1)  # (2, 128, 32): the outline between columns 15 and 16
    depth = np.zeros(volume.shape[1:], np.float32)
    depth[:, 14:] = 1.0  # read two pixels off
    monkeypatch.setattr(outline_sides, "_CHUNK", 64)  # (several batches a pass)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread.name), real_start(thread))[1])
    one = pixel_sides(depth, volume, jump=0.5, threads=1)
    assert started == []
    two = pixel_sides(depth, volume, jump=0.5, threads=2)
    assert any(name.startswith("postfocus-turns") for name in started)
    assert np.array_equal(one, two) and not np.array_equal(one, depth)  # (some pixels decided)
