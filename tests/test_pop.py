"""Colour pop follows the subject's edges: no fringe of the background's colour around it (issue 18)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from postfocus import process
from postfocus.colour import to_grey
from postfocus.products.pop import colour_pop, pop, pop_mask, saturation
from postfocus.synth import render_stack, scene


@pytest.fixture(scope="module")
def occluder(tmp_path_factory):
    """A grey checker disc near, a colourful photo far (like gold pins before a green board, in reverse)."""
    sharp, depth01 = scene("occluder", (480, 720), seed=2)
    st = render_stack(sharp, depth01, 8, max_blur=6.0, seed=2, noise=0.003)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(st.frames, cache_dir=tmp_path_factory.mktemp("cache"), align="none", motion="off")
    near = (depth01 == 0).astype(np.uint8)
    n, labels, stats, centres = cv2.connectedComponentsWithStats(near)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return ps, (labels == k).astype(np.uint8), centres[k]


def test_pop_leaves_no_coloured_fringe_around_the_subject(occluder):
    ps, disc, (cx, cy) = occluder
    result = pop(ps, cx, cy)
    # 4 to 14 px outside the disc's true edge: background, which must turn grey
    ring = (cv2.dilate(disc, np.ones((29, 29), np.uint8)) > 0) & ~(cv2.dilate(disc, np.ones((7, 7), np.uint8)) > 0)
    aif = ps.all_in_focus()
    before = saturation(aif, ring)
    # measured: 0.0 of the all-in-focus saturation stays in the ring; the analysis-size focus index
    # (what pop used before) kept 0.37 of it, a fringe 10-15 px wide as on the real pcb's pins
    assert saturation(result.image, ring) < 0.05 * before
    raw = colour_pop(aif, pop_mask(ps.focus_index, result.tap.position, to_grey(aif)))
    assert saturation(raw, ring) > 0.2 * before  # the scene does show the fringe without the refined depth
    # the subject itself keeps its colour (measured 0.72 of it; a black-and-white checker has little)
    inside = cv2.erode(disc, np.ones((9, 9), np.uint8)) > 0
    assert saturation(result.image, inside) > 0.5 * saturation(aif, inside)
    assert 0.05 < result.share < 0.2  # the disc is about 10 % of the picture
