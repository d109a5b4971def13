"""Colour pop follows the subject's edges: no fringe of the background's colour around it (issue 18)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

import sys
from pathlib import Path

from postfocus import process
from postfocus.errors import OptionError
from postfocus.colour import to_grey
from postfocus.products.pop import colour_pop, pop, pop_mask, saturation
from postfocus.synth import render_stack, scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack, plant_outlier  # noqa: E402


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


def test_planted_depth_outlier_does_not_drop_out_of_the_pop(tmp_path):
    """A confident wrong focus peak (a bokeh rim, a glint) inside the tapped surface keeps its colour.

    Measured: the mask over the blob matches the clean stack's on all of it (the refilled depth is within
    0.3 frames of the truth); with the blob's own depth the blob would turn grey.
    """
    ps, _, truth = make_stack("ramp", tmp_path / "ramp", size=(160, 240), cache=tmp_path / "cache")
    h, w = ps.size
    centre = (0.45 * w, 0.5 * h)
    wrong = 0.0 if float(truth[int(centre[1]), int(centre[0])]) > 3.5 else 7.0
    planted, blob = plant_outlier(ps, tmp_path / "planted", centre, 0.03 * w, wrong)
    # tap the same surface beside the blob (the ramp's depth changes from top to bottom only)
    result = pop(planted, centre[0] - 0.2 * w, centre[1])
    clean = pop(ps, centre[0] - 0.2 * w, centre[1])
    assert float(clean.mask[blob].mean()) > 0.9  # the surface there is at the tapped depth
    assert float(result.mask[blob].mean()) > 0.9 * float(clean.mask[blob].mean())
    aif = planted.all_in_focus()
    depth = np.where(blob, wrong, truth).astype(np.float32)
    kept = pop_mask(depth, result.tap.position, to_grey(aif))
    assert float(kept[blob].mean()) < 0.2  # the outlier's own depth would have turned it grey


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_tolerance_that_is_not_a_number_is_refused_before_any_work(tiny_stack, tmp_path, cli, value):
    """``pop --tolerance nan`` passed click's FloatRange, processed the stack and wrote a picture (rc 0)."""
    run = cli("pop", *map(str, tiny_stack.paths), "--at", "1,1", "--tolerance", value, "-o", tmp_path / "p.jpg",
              "--cache", tmp_path / "cache")
    assert run.returncode == 2 and len(run.err_lines) == 1, run.stderr
    assert run.err_lines[0].startswith(f"postfocus: error: --tolerance {value}")
    assert not (tmp_path / "p.jpg").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    with pytest.raises(OptionError) as refused:
        pop_mask(np.zeros((4, 4), np.float32), 0.0, np.zeros((4, 4), np.float32), tolerance=float(value))
    assert refused.value.param == "tolerance"
