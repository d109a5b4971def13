"""Tests for postfocus.focus.islands: flagged patches formed by their evidence, then judged by contact.

A patch of right, confident readings (the far ring beside a near disc) that one weak flagged pixel joins to the
noise of a plain area was judged with the noise's median and rejected with it; the plain area's fill then flipped by
two frames (docs/depth-and-aperture.md, fifteenth and sixteenth sessions).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth_flip import plain_patch, run  # noqa: E402

from postfocus.focus.islands import islands, patches  # noqa: E402
from postfocus.store import ProcessedStack  # noqa: E402


def _ring_beside_noise(bridge: bool):
    """A confident far patch (frame 10) vouched for by a few far pixels above it, weak flagged noise (frames 2-6)
    below it, and, with ``bridge``, two weak flagged pixels joining the two (8-connected)."""
    rng = np.random.default_rng(0)
    values = np.zeros((40, 60), np.float32)  # a near surface around (frame 0), confident
    weight = np.ones_like(values)
    values[8:10, 10:30] = 10.0  # the far surface the patch continues, unflagged
    flagged = np.zeros(values.shape, bool)
    flagged[10:14, 10:30] = True
    values[10:14, 10:30] = 10.0 + 0.2 * rng.standard_normal((4, 20)).astype(np.float32)
    flagged[16:38, 5:55] = True  # the plain area's noise: random frames, no confidence
    values[16:38, 5:55] = rng.uniform(2.0, 6.0, (22, 50)).astype(np.float32)
    weight[16:38, 5:55] = 0.02
    if bridge:
        flagged[14:16, 20] = True
        values[14:16, 20] = 4.0
        weight[14:16, 20] = 0.02
    return values, weight, flagged


@pytest.mark.parametrize("bridge", [False, True])
def test_a_confident_patch_is_not_judged_by_the_noise_one_weak_pixel_joins_it_to(bridge):
    """Main judged the joined group by its median (the noise's, 4) and rejected the far patch with it (fails on main
    with the bridge); the noise stays an island either way."""
    values, weight, flagged = _ring_beside_noise(bridge)
    out = islands(values, weight, flagged, tolerance=0.6, sure=0.75)
    assert not out[10:14, 10:30].any()
    assert out[16:38, 5:55].all()


def test_patches_grow_into_the_weak_pixels_they_continue_and_join_where_they_agree():
    """Two confident pieces joined by weak pixels at their value are one patch; a weak pixel at another value is not
    theirs; weak pixels continuing nothing are a patch of their own."""
    values = np.full((5, 12), 9.0, np.float32)
    weight = np.zeros_like(values)
    weight[:, :3] = weight[:, 9:] = 1.0  # two confident pieces, weak between them at their value
    values[1:, 6] = 3.0  # a weak column at another value but for its top pixel: the growths meet there only
    labels, count = patches(values, weight, np.ones(values.shape, bool), tolerance=0.5, sure=0.75)
    assert count == 3  # (label 0 and two patches)
    assert len(np.unique(labels[values == 9.0])) == 1
    assert len(np.unique(labels[values == 3.0])) == 1 and labels[1, 6] != labels[0, 0]


@pytest.fixture(scope="module")
def plain_stack(tmp_path_factory):
    return plain_patch(tmp_path_factory.mktemp("plain_patch"))


def test_a_percent_of_noise_on_the_focus_volume_does_not_flip_the_plain_patch(plain_stack):
    """``plain_patch_scene`` (a dark plain far patch, truth frame 11, around a near disc): the focus volume times
    ``1 + u``, ``u`` uniform in +-1 %, seeds 0-5. On main 4 of the 6 moved 16.6-16.7 % of the patch by more than a
    frame (the far ring beside the disc rejected with the patch's noise); here every seed moves under 2 %, and the
    depth stays right (90 % within a frame of the truth)."""
    folder, box = plain_stack
    base = run(ProcessedStack.open(folder))["depth"]
    assert np.mean(np.abs(base[box] - 11) <= 1) > 0.85
    volume = np.asarray(ProcessedStack.open(folder).volume, np.float32)
    moved = []
    for seed in range(6):
        u = np.random.default_rng(seed).uniform(-0.01, 0.01, volume.shape).astype(np.float32)
        depth = run(ProcessedStack.open(folder), volume * (1 + u))["depth"]
        moved.append(float(np.mean(np.abs(depth - base)[box] > 1)))
    assert max(moved) < 0.02, moved


def test_islands_keeps_a_thin_structure_and_rejects_a_patch():
    """A pin's flagged tip touches its own trusted body; a bokeh-rim patch touches only the board around it."""
    values = np.full((60, 60), 2.0, np.float32)  # the board, far... here frame 2
    values[10:60, 40:44] = 8.0  # a thin pin, its body and tip
    values[20:26, 10:16] = 8.0  # a patch at the pin's depth, alone on the board
    weight = np.ones_like(values)
    flagged = np.zeros(values.shape, bool)
    flagged[10:30, 40:44] = True  # the tip: a minority in a wide median's neighbourhood
    flagged[20:26, 10:16] = True
    out = islands(values, weight, flagged, tolerance=1.5)
    assert not out[10:30, 40:44].any()
    assert out[20:26, 10:16].all()
    # unsure surroundings vouch for nothing
    assert islands(values, np.where(flagged, 1.0, 0.2).astype(np.float32), flagged, tolerance=1.5)[flagged].all()


@pytest.mark.parametrize("seed", range(4))
def test_islands_judged_by_the_patches_medians_made_at_once_as_one_patch_at_a_time(seed):
    """Each patch's median reading made for all patches in one sort decides as each patch's own np.median did."""
    import cv2

    rng = np.random.default_rng(seed)
    values = (rng.random((50, 70)) * 6).astype(np.float32)
    if seed % 2:
        values = np.round(values * 2) / 2
    flagged = cv2.dilate((rng.random(values.shape) < 0.05).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    weight = rng.random(values.shape).astype(np.float32)
    _, blobs = cv2.connectedComponents(flagged.astype(np.uint8), connectivity=8)
    values[flagged & (blobs % 2 == 0)] += np.float32(8.0)  # half the blobs far from all around them
    labels, count = patches(values, weight, flagged, tolerance=1.0, sure=0.5, reach=2)  # (the patches judged)
    medians = np.zeros(count)
    for k in range(1, count):  # (the reference: each patch's own median)
        medians[k] = np.median(values[labels == k])
    near = cv2.dilate(labels.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int32)
    around = ~flagged & (near > 0)
    agree = around & (np.abs(values - medians[near].astype(np.float32)) <= 1.0)
    sure = weight >= 0.5
    seeded = np.array([(sure & (labels == k)).any() for k in range(count)])  # (a patch with a confident pixel)
    total = np.where(seeded, np.bincount(near[around], weight[around], minlength=count),
                     np.bincount(near[around & sure], minlength=count))
    contact = np.bincount(near[agree & sure], minlength=count)
    agreeing = np.where(seeded, np.bincount(near[agree], weight[agree], minlength=count), contact)
    least = np.where(seeded, 0.5, 1e-6)
    island = np.r_[False, ~((total[1:] >= least[1:]) & ((agreeing[1:] >= 0.1 * total[1:]) | (contact[1:] >= 8)))]
    got = islands(values, weight, flagged, tolerance=1.0, sure=0.5)
    assert np.array_equal(got, island[labels] & flagged)
    assert got.any() and (flagged & ~got).any()  # (both ways)


def test_patches_join_without_a_graph_library_and_as_connected_components_do():
    """scipy is a test dependency only: the depth path must not import it (islands17 joined patches with
    scipy.sparse.csgraph, which an installed postfocus without the test extras does not have; it also cost ~0.25 s
    of import and ~20 MB on `postfocus depth`). The numpy joining gives scipy's components on random graphs."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from postfocus.focus.islands import patches\n"
            "v = np.zeros((5, 9), np.float32); v[:, :4] = 9.0; w = np.ones_like(v); w[:, 4] = 0.0\n"
            "patches(v, w, np.ones(v.shape, bool), tolerance=0.5, sure=0.75, reach=2)\n"
            "print('scipy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from postfocus.focus.islands import _lowest_joined

    rng = np.random.default_rng(0)
    for _ in range(100):
        n, k = int(rng.integers(1, 60)), int(rng.integers(0, 80))
        pairs = rng.integers(0, n, (k, 2))
        _, theirs = connected_components(coo_matrix((np.ones(k), (pairs[:, 0], pairs[:, 1])), shape=(n, n)),
                                         directed=False)
        ours = _lowest_joined(pairs, n)
        assert np.array_equal(np.unique(theirs, return_inverse=True)[1], np.unique(ours, return_inverse=True)[1])
