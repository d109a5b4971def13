"""The inverse-compositional correlation match (align/ecc.py) on rendered handheld sweeps.

Neighbouring frames of :func:`postfocus.synth.render_stack` sweeps (shake, rotation, focus breathing,
exposure drift and a blur that changes from frame to frame), whose true transforms are known: the match must
recover the step between them, stop once its updates are below its threshold, and fail as OpenCV's does.
"""

from __future__ import annotations

import warnings
from itertools import pairwise

import cv2
import numpy as np
import pytest

from postfocus.align import ecc as ecc_module
from postfocus.align import ecc_match, match_pair, prepare_frame
from postfocus.align import pair as pair_module
from postfocus.align.ecc import EccDiverged, ic_ecc, ic_ecc_level
from postfocus.align.pair import coarse_shift
from postfocus.align.warp import rescale_matrix
from postfocus.colour import to_grey

SIZE = (500, 750)  # beetle's frames: the correlation match reads levels of 375 and 188 px


def corner_error(estimated: np.ndarray, true: np.ndarray, size=SIZE) -> float:
    h, w = size
    c = np.array([[0, w, w, 0], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
    a, b = estimated @ c, true @ c
    return float(np.hypot(*(a[:2] / a[2] - b[:2] / b[2])).max())


@pytest.fixture(scope="module")
def sweep():
    from postfocus.synth import render_stack, scene

    sharp, depth01 = scene("motorcycle", SIZE, seed=2)
    stack = render_stack(sharp, depth01, 6, max_blur=6.0, seed=2, shake_px=8.0, rotation_deg=0.5, breathing=0.03,
                         exposure_drift=0.05, noise=0.004)
    frames = [prepare_frame(to_grey(np.asarray(f, np.float32))) for f in stack.frames]
    # frame k's coords -> frame k+1's: reference -> k+1 after k -> reference
    steps = [stack.transforms[k + 1] @ np.linalg.inv(stack.transforms[k]) for k in range(len(frames) - 1)]
    return frames, steps


def match(a, b, start, counts=None):
    return ic_ecc(list(a.smoothed), list(b.smoothed), start, "similarity", scale=a.ecc_scale, counts=counts)


def test_recovers_each_step_of_a_rendered_sweep_from_the_phase_correlation_start(sweep):
    frames, steps = sweep
    errors, forward_additive, starts = [], [], []
    for (a, b), truth in zip(pairwise(frames), steps):
        start = coarse_shift(a.levels[0], b.levels[0])
        matrix, rho = match(a, b, start)
        errors.append(corner_error(matrix, truth))
        starts.append(corner_error(start, truth))
        opencv, _ = ecc_match(a, b, "similarity", init=start, iterations=30, eps=1e-4)  # main's match before the tiles
        forward_additive.append(corner_error(opencv, truth))
        assert rho > 0.99  # measured: 0.998-0.999
    # measured: 0.10-0.17 px from the truth (the global match before the tiles: defocus moves it a little),
    # OpenCV's forward-additive match 0.10-0.26 px, from starts 3.1-5.6 px off (the breathing and rotation
    # the phase correlation does not see)
    assert max(errors) < 0.25, errors
    assert max(errors) <= max(forward_additive) + 0.01, (errors, forward_additive)
    assert min(starts) > 2.0, starts


def test_an_affine_match_agrees_with_opencvs_forward_additive_match_run_to_convergence(sweep):
    frames, _ = sweep
    errors = []
    for a, b in pairwise(frames):
        start = coarse_shift(a.levels[0], b.levels[0])
        ours, _ = ic_ecc(list(a.smoothed), list(b.smoothed), start, "affine", scale=a.ecc_scale)
        # OpenCV at the same level from our answer, 200 iterations down to a gain of 1e-10
        s = a.ecc_scale
        warp = rescale_matrix(ours, s)[:2].astype(np.float32)
        _, warp = cv2.findTransformECC(a.levels[1], b.levels[1], warp, cv2.MOTION_AFFINE,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-10), None, 5)
        theirs = np.eye(3)
        theirs[:2] = warp
        errors.append(corner_error(ours, rescale_matrix(theirs, 1 / s)))
    # measured: 0.008-0.027 px, and 0.158 px on one pair (OpenCV also reads the frame's border, where
    # shake brings in pixels the template lacks; this match reads the area both frames cover)
    assert max(errors) < 0.2, errors
    assert np.median(errors) < 0.05, errors


def test_started_at_its_answer_a_level_stops_after_one_iteration(sweep):
    frames, _ = sweep
    a, b = frames[1], frames[2]
    s = a.ecc_scale
    start = rescale_matrix(coarse_shift(a.levels[0], b.levels[0]), s)
    converged = ecc_module.CONVERGED_PX * s
    matrix, _, first = ic_ecc_level(a.smoothed[0], b.smoothed[0], start, iterations=30, converged=converged)
    again, _, second = ic_ecc_level(a.smoothed[0], b.smoothed[0], matrix, iterations=30, converged=converged)
    assert first > 1  # from the phase correlation's start it needed more than one step (measured: 3)
    # measured: the second start moved by 0.010 px
    assert second == 1
    assert corner_error(again, matrix, a.smoothed[0].shape) < converged


def test_an_inverted_frame_is_reported_as_a_diverged_match(sweep):
    frames, _ = sweep
    a = frames[0]
    negative = prepare_frame(1.0 - a.levels[0])
    with pytest.raises(cv2.error):  # as OpenCV's match: match_pair takes it for a failed correlation match
        match(a, negative, np.eye(3))
    assert issubclass(EccDiverged, cv2.error)


def test_match_pair_uses_it_before_the_tiles_of_a_similarity(sweep, monkeypatch):
    frames, steps = sweep
    calls = []
    original = cv2.findTransformECC
    monkeypatch.setattr(pair_module.cv2, "findTransformECC", lambda *a, **k: calls.append(1) or original(*a, **k))
    result = match_pair(frames[2], frames[3], "similarity")
    assert result.ok and result.method == "ecc"
    assert calls == []
    # measured: 0.044 px with the tile refinement (0.12 px after the correlation match alone)
    assert corner_error(result.matrix, steps[2]) < 0.1


@pytest.mark.parametrize("kind", ["flat grey", "black", "not a number"])
def test_a_frame_without_texture_is_a_refused_match_not_an_exception(kind):
    value = {"flat grey": 0.5, "black": 0.0, "not a number": np.nan}[kind]
    flat = prepare_frame(np.full((300, 400), value, np.float32))
    other = prepare_frame(np.random.default_rng(0).random((300, 400), dtype=np.float32) if kind == "not a number"
                          else np.full((300, 400), value, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a NaN frame printed NumPy's "invalid value encountered in cast")
        result = match_pair(flat, other, "similarity")  # (a singular Hessian raised NumPy's LinAlgError)
    assert not result.ok and result.reason == "correlation match diverged"


def test_a_template_textured_in_one_direction_still_matches():
    rng = np.random.default_rng(1)
    row = cv2.GaussianBlur(rng.random((1, 400), dtype=np.float32), (0, 0), 2.0)
    stripes = np.tile(row, (300, 1))  # texture along x only: a shift along y cannot be seen
    moved = np.tile(cv2.warpAffine(row, np.float32([[1, 0, 0.6], [0, 1, 0]]), (400, 1), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REFLECT), (300, 1))  # content at x sits at x + 0.6
    result = match_pair(prepare_frame(stripes), prepare_frame(moved), "similarity")
    assert result.ok and result.method == "ecc"
    centre = result.matrix @ [200, 150, 1]
    assert abs(centre[0] - 200.6) < 0.05, result.matrix
