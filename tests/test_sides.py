"""occlusion_sides: a near outline's bled focus index given back to the background it lies on."""

from __future__ import annotations

import numpy as np
import pytest

from postfocus.focus.sides import edge_spill, occlusion_sides, seen_through, spilled


def _step(bled: int = 6, contrast: float = 0.7):
    guide = np.full((30, 60), 0.8, np.float32)
    guide[:, :20] = 0.8 - contrast  # the near object, px 0-19
    guide[:, 20::6] = 0.9  # a little texture on the wall
    index = np.full((30, 60), 9.0, np.float32)
    index[:, :20 + bled] = 0.0  # its index bled ``bled`` px into the wall
    return index, guide


def test_the_bled_rim_goes_back_to_the_wall_and_the_object_keeps_its_own():
    index, guide = _step()
    out = occlusion_sides(index, np.ones_like(index), guide, spill=edge_spill(2))
    assert np.all(out[:, 20:26] == 9.0)
    assert np.all(out[:, :20] == 0.0)


def test_no_outline_in_the_guide_no_change():
    index, guide = _step(contrast=0.0)  # the two surfaces look alike: nothing tells the sides apart
    assert np.array_equal(occlusion_sides(index, np.ones_like(index), guide, spill=8), index)


def test_a_slope_is_no_occlusion():
    ramp = np.tile(np.linspace(0, 6, 60, dtype=np.float32), (30, 1))  # 0.1 frame a pixel
    assert np.array_equal(occlusion_sides(ramp, np.ones_like(ramp), np.random.rand(30, 60).astype(np.float32)), ramp)


def _thin_rim():
    """A dark near object whose blurred, translucent rim the far frames see through (so its rim reads far),
    its index bled 6 px into a textured wall; a focus volume where the wall has its own peak at the far frame."""
    index, guide = _step()
    guide[:, 40:] = 0.55  # a darker part of the wall: the far class is not one grey
    index[:, 18:20] = 9.0  # the object's rim, seen through in the far frames
    frames = np.arange(10, dtype=np.float32)[:, None, None]
    volume = np.where(index[None] < 4.5, np.exp(-frames), np.exp(-(frames - 9.0) ** 2)).astype(np.float32)
    volume[:, :, 20:26] += np.exp(-frames)  # the bled band: the object's sharp outline in frame 0 ...
    volume[-1, :, 20:26] += 0.3  # ... and the wall's own texture, sharp in frame 9
    return index, guide, volume


def test_a_rim_read_far_does_not_hide_the_outline_when_the_focus_curves_are_asked():
    index, guide, volume = _thin_rim()
    sure = np.ones_like(index)
    old = occlusion_sides(index, sure, guide, spill=edge_spill(2))
    assert np.all(old[:, 20:26] == 0.0)  # the rim widens the far class's spread: the spread test refuses the band
    new = occlusion_sides(index, sure, guide, spill=edge_spill(2), volume=volume, floor=1e-6)
    assert np.all(new[:, 20:26] == 9.0)  # given back: it looks like the wall and its curve peaks at frame 9
    assert np.all(new[:, :18] == 0.0)  # the object keeps its own


def test_a_confident_pixel_without_a_far_peak_keeps_its_index():
    index, guide, volume = _thin_rim()
    volume[-1, :, 20:26] -= 0.3  # the band's curve falls from frame 0 on: no sign of the wall there
    sure = np.ones_like(index)
    out = occlusion_sides(index, sure, guide, spill=edge_spill(2), volume=volume, floor=1e-6)
    assert np.all(out[:, 20:26] == 0.0)
    unsure = sure.copy()
    unsure[:, 20:26] = 0.1  # filled from the neighbours: no evidence of its own, the colour decides
    out = occlusion_sides(index, unsure, guide, spill=edge_spill(2), volume=volume, floor=1e-6)
    assert np.all(out[:, 20:26] == 9.0)


def test_only_a_band_with_no_detail_of_its_own_is_spilled():
    """A flat wall beside a striped near card: its bled band is the outline's; a textured wall's is its own."""
    rng = np.random.default_rng(3)
    card = np.tile(np.float32([0.1, 0.3]), (40, 10))
    index = np.full((40, 60), 9.0, np.float32)
    index[:, :26] = 0.0  # the card's index bled 6 px into the wall
    flat = np.full((40, 60), 0.8, np.float32)
    flat[:, :20] = card
    textured = flat.copy()
    textured[:, 20:] += rng.normal(0.0, 0.05, (40, 40)).astype(np.float32)
    least = 1e-3
    band = spilled(index, flat, spill=8, least=least)
    assert band[:, 23:26].all() and not band[:, :20].any() and not band[:, 26:].any()
    assert not spilled(index, textured, spill=8, least=least)[:, 22:26].any()


def _gap(reading: float = 5.0, half: int = 8, frames: int = 8):
    """A near frame (index 1) with a square gap of far floor (index ``reading``), its focus volume and masks."""
    index = np.full((40, 40), 1.0, np.float32)
    patch = np.zeros(index.shape, bool)
    patch[20 - half:20 + half, 20 - half:20 + half] = True
    index[patch] = reading
    f = np.arange(float(frames))[:, None, None]
    volume = np.exp(-0.5 * (f - index) ** 2).astype(np.float32)
    return index, volume, patch


def test_a_far_surface_seen_through_a_gap_is_kept_and_false_islands_are_not():
    index, volume, patch = _gap()
    kw = dict(width=1.0, tolerance=1.5)
    assert (seen_through(index, volume, patch, patch, ~patch, **kw) == patch).all()
    assert not seen_through(index, volume, np.zeros_like(patch), patch, ~patch, **kw).any()  # bright: a glint
    near = np.where(patch, 0.0, 3.0).astype(np.float32)  # nearer than its edges: no gap
    assert not seen_through(near, volume, patch, patch, ~patch, **kw).any()
    assert not seen_through(index, volume, patch, patch, np.zeros_like(patch), **kw).any()  # no edges around it
    scattered = index.copy()
    scattered[patch] = np.tile([3.0, 7.0], patch.sum() // 2)  # readings of no one surface
    assert not seen_through(scattered, volume, patch, patch, ~patch, **kw).any()


def test_a_gap_narrower_than_the_blur_or_without_a_shared_peak_is_no_surface():
    index, volume, patch = _gap(reading=7.0, half=2, frames=10)  # 6 frames behind, 2 px wide: hidden by the blur
    assert not seen_through(index, volume, patch, patch, ~patch, width=1.0, tolerance=1.5).any()
    index, volume, patch = _gap()
    flat = volume.copy()
    flat[:, patch] = 1.0  # weak curves with no peak: the reading is noise
    assert not seen_through(index, flat, patch, patch, ~patch, width=1.0, tolerance=1.5).any()


def _seen_through_one_patch_at_a_time(index, volume, weak, islands, trusted, *, width, tolerance, ring=2):
    """seen_through as it was written first: each patch's tests one patch at a time (the reference)."""
    import cv2

    from postfocus.focus.sides import _one_peak, _plane_scatter

    keep = np.zeros_like(islands)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(islands.astype(np.uint8), connectivity=8)
    box = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    for k, (x, y, w, h, _) in enumerate(stats[1:], start=1):
        y0, x0, y1, x1 = max(0, y - ring), max(0, x - ring), y + h + ring, x + w + ring
        patch = labels[y0:y1, x0:x1] == k
        if np.mean(weak[y0:y1, x0:x1][patch]) < 0.5:
            continue
        around = (cv2.dilate(patch.astype(np.uint8), box) > 0) & ~patch & trusted[y0:y1, x0:x1]
        values = index[y0:y1, x0:x1]
        reading = float(np.median(values[patch]))
        if not around.any() or reading <= float(np.median(values[around])) + tolerance:
            continue
        behind = (reading - float(np.median(values[around]))) / width
        if cv2.distanceTransform(np.pad(patch, 1).astype(np.uint8), cv2.DIST_L2, 5).max() < behind:
            continue
        if not _one_peak(volume[:, y0:y1, x0:x1][:, patch], reading, width):
            continue
        if _plane_scatter(values, patch) <= width:
            keep[y0:y1, x0:x1] |= patch
    return keep


@pytest.mark.parametrize("seed", range(8))
def test_seen_through_judges_all_patches_at_once_as_one_at_a_time(seed):
    """The patches' weak shares, readings and ring medians made for all at once (rings that overlap, patches at the
    picture's border, trusted pixels inside other patches) decide as each patch's own did."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(20, 70, 2))
    islands = cv2.dilate((rng.random((h, w)) < 0.04).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    index = (rng.random((h, w)) * 4).astype(np.float32)
    index[islands] += np.float32(3.0)  # behind the pixels around them
    if seed % 2:
        index = np.round(index * 2) / 2  # ties: medians of two equal middle values
    volume = np.exp(-0.5 * (np.arange(10.0)[:, None, None] - index) ** 2).astype(np.float32)
    weak = rng.random((h, w)) < 0.8
    trusted = rng.random((h, w)) < 0.7
    if seed % 3 == 0:
        trusted &= ~islands  # (as refine_depth passes it: no island pixel is trusted)
    kept_any = False
    for tolerance, width, ring in ((1.5, 1.0, 2), (0.5, 3.0, 1), (-2.0, 6.0, 3), (1.0, 0.4, 2)):
        kw = dict(width=width, tolerance=tolerance, ring=ring)
        got = seen_through(index, volume, weak, islands, trusted, **kw)
        assert np.array_equal(got, _seen_through_one_patch_at_a_time(index, volume, weak, islands, trusted, **kw))
        kept_any |= bool(got.any())
    assert kept_any  # (the checks decide both ways: some patches kept)


def test_occlusion_sides_on_two_threads_is_the_same_to_the_bit(monkeypatch):
    """Each index's two classes described on the calling thread and a helper in turns (``postfocus-turns``): the
    same index to the bit as on one thread, which starts no thread."""
    import threading

    rng = np.random.default_rng(4)
    guide = (0.6 + 0.1 * rng.random((60, 90))).astype(np.float32)
    index = np.full((60, 90), 9.0, np.float32)
    for level, (y, x) in enumerate([(5, 5), (30, 10), (8, 50), (35, 55)]):
        guide[y:y + 20, x:x + 25] = 0.1 + 0.05 * level  # near objects of their own colours
        index[y:y + 20, x:x + 25 + 4] = 2.0 * level  # each one's index bled 4 px into the wall
    confidence = rng.random(index.shape).astype(np.float32)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread.name), real_start(thread))[1])
    one = occlusion_sides(index, confidence, guide, spill=8, threads=1)
    assert started == []
    two = occlusion_sides(index, confidence, guide, spill=8, threads=2)
    assert any(name.startswith("postfocus-turns") for name in started)
    assert np.array_equal(one, two) and not np.array_equal(one, index)  # (some bled pixels given back)
