"""Depth edges moved onto the image's outlines (``focus.edges``), against ground truth.

Measured when written (``depth_map`` with and without the step; share within one frame of the truth, all
pixels / within 4 px of a true depth edge): generated tripod occluder 99.4 % -> 99.9 % / 94.3 % -> 98.6 %,
steps 94.1 % -> 94.4 % / 82.6 % -> 83.6 %, dense (30-frame, 120x160) steps 86.2 % -> 88.1 % / 65.4 % ->
70.1 %; a depth edge drawn 1-2 px off a textured outline lands on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import PROFILES, depth_edges, make_stack, score  # noqa: E402

import postfocus.products.depth as depth_module  # noqa: E402
from postfocus.focus.edges import snap_to_outlines  # noqa: E402


def _textured(h: int, w: int, outline: int, seed: int = 0) -> np.ndarray:
    """Two textured surfaces of different colours meeting at column ``outline``."""
    rng = np.random.default_rng(seed)
    image = np.empty((h, w, 3), np.float32)
    image[:, :outline] = (0.55, 0.35, 0.25)
    image[:, outline:] = (0.25, 0.35, 0.6)
    return np.clip(image + rng.normal(0, 0.03, image.shape).astype(np.float32), 0, 1)


@pytest.mark.parametrize("offset", [-2, -1, 1, 2])
def test_a_depth_edge_off_the_outline_lands_on_it(offset):
    h, w, outline = 40, 60, 30
    image = _textured(h, w, outline)
    depth = np.full((h, w), 1.0, np.float32)
    depth[:, outline + offset:] = 6.0  # the depth edge drawn ``offset`` columns off the outline
    out = snap_to_outlines(depth, image, np.ones_like(depth), reach=4, jump=1.0, sigma_r=0.1)
    truth = np.where(np.arange(w)[None] < outline, 1.0, 6.0)
    assert float((out == truth).mean()) > 0.99
    assert set(np.unique(out).tolist()) <= {1.0, 6.0}  # one side's depth or the other's, never between


def test_slopes_and_flat_surfaces_are_left_alone():
    image = _textured(40, 60, 30)
    ramp = np.tile(np.linspace(0, 5, 60, dtype=np.float32), (40, 1))  # under one frame per window: a slope
    assert np.array_equal(snap_to_outlines(ramp, image, np.ones_like(ramp), reach=4, jump=1.0, sigma_r=0.1), ramp)


def test_a_sure_depth_outweighs_an_unsure_one_of_the_same_colour():
    image = np.full((20, 20, 3), 0.5, np.float32)  # no outline to follow
    depth = np.full((20, 20), 2.0, np.float32)
    depth[:, 10:] = 7.0
    weight = np.ones_like(depth)
    weight[:, 10:] = 0.0  # the right side was rejected: it barely counts
    out = snap_to_outlines(depth, image, weight, reach=4, jump=1.0, sigma_r=0.1)
    assert (out[:, 10:12] == 2.0).all() and (out[:, :10] == 2.0).all()


@pytest.mark.parametrize("profile,name,size,band_gain",
                         [("tripod", "occluder", (240, 320), 0.03), ("long", "steps", (120, 160), 0.03)])
def test_depth_edges_follow_the_outlines_of_generated_stacks(tmp_path, monkeypatch, profile, name, size, band_gain):
    frames, camera, fmt = PROFILES[profile]
    ps, _, truth = make_stack(name, tmp_path / name, size=size, frames=frames, fmt=fmt, **camera)
    snapped = depth_module.depth_map(ps).depth
    monkeypatch.setattr(depth_module, "snap_to_outlines", lambda depth, *args, **kwargs: depth)
    plain = depth_module.depth_map(ps).depth
    band = cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3) < 4
    assert score(snapped, truth)[0] >= score(plain, truth)[0]
    assert score(snapped, truth, band)[0] >= score(plain, truth, band)[0] + band_gain


def test_batches_give_the_same_depth_as_one_pass(monkeypatch):
    """The windows are gathered a bounded batch of pixels at a time (memory): the medians do not change."""
    import postfocus.focus.edges as edges

    rng = np.random.default_rng(0)
    depth = (rng.random((60, 80)) * 20).astype(np.float32)  # noisy depth: an edge everywhere
    image = rng.random((60, 80, 3)).astype(np.float32)
    weight = rng.random((60, 80)).astype(np.float32)
    monkeypatch.setattr(edges, "_CHUNK", 10 ** 9)
    whole = snap_to_outlines(depth, image, weight, reach=4, jump=2.0, sigma_r=0.05)
    monkeypatch.setattr(edges, "_CHUNK", 777)  # batches that split rows and end mid-way
    batched = snap_to_outlines(depth, image, weight, reach=4, jump=2.0, sigma_r=0.05)
    assert not np.array_equal(whole, depth)  # the step did act
    assert np.array_equal(whole, batched)


def test_two_threads_give_the_same_depth_to_the_bit(monkeypatch):
    """depth18: with ``threads=2`` a second thread takes every other batch of pixels; the same bits as one thread,
    and ``threads=1`` starts no thread."""
    import threading

    import postfocus.focus.edges as edges

    rng = np.random.default_rng(1)
    depth = (rng.random((60, 80)) * 20).astype(np.float32)
    image = rng.random((60, 80, 3)).astype(np.float32)
    weight = rng.random((60, 80)).astype(np.float32)
    monkeypatch.setattr(edges, "_CHUNK", 501)  # about ten batches
    ran = []
    window_median = edges._window_median
    monkeypatch.setattr(edges, "_window_median", lambda *a, **k: (ran.append(threading.get_ident()),
                                                                  window_median(*a, **k))[1])
    one = snap_to_outlines(depth, image, weight, reach=4, jump=2.0, sigma_r=0.05, threads=1)
    assert set(ran) == {threading.get_ident()} and len(ran) > 2
    ran.clear()
    two = snap_to_outlines(depth, image, weight, reach=4, jump=2.0, sigma_r=0.05, threads=2)
    assert len(set(ran)) == 2 and threading.get_ident() in ran
    assert not np.array_equal(one, depth)
    assert one.dtype == two.dtype == np.float32 and np.array_equal(one.view(np.uint32), two.view(np.uint32))
