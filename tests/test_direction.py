"""The sweep direction measured at occlusion edges (``postfocus.focus.direction``), and its consumers.

Rendered stacks (``postfocus.synth``) are measured as rendered (near to far) and with their frames reversed
(far to near); a reversed halo scene is fused, its depth and aperture made, as well as the forward one.
Thresholds are the values measured when the module was written (commented), with a margin.
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pytest

from postfocus import process
from postfocus.align import common_area
from postfocus.focus.direction import SweepDirection, direction_of, stated_direction, sweep_direction
from postfocus.io.arrays import ArraySource
from postfocus.options import StackOptions
from postfocus.pipeline.analyse import analyse
from postfocus.pipeline.merge import fuse
from postfocus.products.aperture import aperture
from postfocus.products.depth import depth_map
from postfocus.synth import render_stack, scene
from postfocus.synth.halo_scenes import render_layered

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from metrics import halo_band, halo_score  # noqa: E402

CAMERA = dict(shake_px=3.0, rotation_deg=0.3, noise=0.004, jpeg_quality=95)


def _measured(frames: list, reference: int | None = None):  # noqa: ANN202
    analysis = analyse(ArraySource(list(frames)), StackOptions(reference=reference))
    return analysis, direction_of(analysis.maps, analysis.guide)


@pytest.fixture(scope="module")
def occluder():
    return render_stack(*scene("occluder", (240, 360), seed=1), 8, max_blur=6.0, seed=1, **CAMERA)


@pytest.fixture(scope="module")
def pins():
    st = render_layered("pins", 8, size=(300, 450), max_blur=8.0, seed=1, **CAMERA)
    forward, fwd = _measured(st.frames)
    backward, rev = _measured(st.frames[::-1], reference=len(st.frames) - 1 - forward.reference)
    return st, (forward, fwd), (backward, rev)


def test_a_near_to_far_stack_is_measured_so_and_its_reverse_far_to_near(occluder):
    _, fwd = _measured(occluder.frames)
    _, rev = _measured(occluder.frames[::-1])
    # measured: agreement 0.975 forward, 0.969 reversed, confidence 1 - 4e-10 and better, 43 and 62 effective pieces
    assert fwd.measured and fwd.near_to_far and fwd.source == "measured"
    assert rev.measured and not rev.near_to_far
    for d in (fwd, rev):
        assert d.confidence > 0.999 and d.agreement > 0.9 and d.effective_pieces > 20


def test_a_scene_without_occlusion_falls_back_to_near_to_far():
    st = render_stack(*scene("flat", (240, 360), seed=1), 8, max_blur=6.0, seed=1, **CAMERA)
    for frames in (st.frames, st.frames[::-1]):
        _, d = _measured(frames)
        assert d.near_to_far and not d.measured and d.source == "assumed"
        assert d.confidence < 0.5  # measured: 0 (no edge with a depth step on either side)


def test_fewer_than_three_frames_and_stated_orders():
    rng = np.random.default_rng(0)
    index = np.zeros((40, 40), np.float32)
    d = sweep_direction(rng.random((2, 40, 40)).astype(np.float32), rng.random((40, 40)).astype(np.float32), index,
                        np.ones_like(index), slope=1.0)
    assert d.near_to_far and d.source == "assumed"
    assert stated_direction("auto") is None
    said = stated_direction("far-to-near", d)
    assert not said.near_to_far and said.source == "stated"
    assert SweepDirection.from_dict(said.as_dict()) == said


def _halo(st, image: np.ndarray) -> float:  # noqa: ANN001
    t, l, b, r = common_area(st.transforms, st.sharp.shape[:2])
    box = (slice(t + 4, b - 4), slice(l + 4, r - 4))
    return halo_score(image[box], st.sharp[box], halo_band(st.depth, 9)[box])


def test_reversed_pins_fuse_as_well_as_forward(pins):
    st, (forward, fwd), (backward, rev) = pins
    assert fwd.near_to_far and fwd.measured and not rev.near_to_far and rev.measured
    h_fwd = _halo(st, fuse(ArraySource(list(st.frames)), forward.maps, alignment=forward.alignment))
    source = ArraySource(list(st.frames[::-1]))
    h_rev = _halo(st, fuse(source, backward.maps, alignment=backward.alignment, near_to_far=rev.near_to_far))
    h_old = _halo(st, fuse(source, backward.maps, alignment=backward.alignment, near_to_far=True))
    # measured: forward 12.58, reversed with the measured direction 12.17, reversed taken as near to far 26.45
    # (pins: agreement 0.996 / 1.0, confidence 0.999 / 0.9975 over 11 and 9 effective pieces)
    assert h_rev <= 1.05 * h_fwd + 0.2
    assert h_old >= 1.5 * h_rev


def test_reversed_stack_products_agree_with_forward(tmp_path):
    st = render_layered("pins", 8, size=(240, 360), max_blur=8.0, seed=1, **CAMERA)
    n = len(st.frames)
    results = []
    for name, frames, reference in (("forward", st.frames, n // 2), ("reversed", st.frames[::-1], n - 1 - n // 2)):
        order = "near-to-far" if name == "forward" else "far-to-near"  # (the products' handling of each order)
        ps = process(list(frames), cache_dir=tmp_path / name, reference=reference, order=order)
        t, l, b, r = ps.manifest["crop"]
        truth = st.depth[t:b, l:r]  # frames, nearest first
        depth = depth_map(ps).depth
        error = float(np.mean(np.abs(depth - truth) < 1.0))  # share within a frame of the truth
        near = aperture(ps, preset="near", blur_px=6.0).image
        results.append((ps.near_to_far, error, depth, near))
    (n_fwd, e_fwd, d_fwd, a_fwd), (n_rev, e_rev, d_rev, a_rev) = results
    assert n_fwd and not n_rev
    # measured: 93.9 % of pixels within a frame of the truth forward, 93.8 % reversed; the two depth maps' median
    # difference 0; the aperture images 1.1 levels apart on average
    assert e_fwd > 0.9 and e_rev >= e_fwd - 0.01
    h, w = min(d_fwd.shape[0], d_rev.shape[0]), min(d_fwd.shape[1], d_rev.shape[1])
    assert float(np.median(np.abs(d_fwd[:h, :w] - d_rev[:h, :w]))) < 0.25
    assert float(np.mean(np.abs(a_fwd[:h, :w] - a_rev[:h, :w]))) < 0.02


def test_a_stated_order_is_used_and_nothing_measured(occluder, tmp_path):
    ps = process(list(occluder.frames), cache_dir=tmp_path, order="far-to-near")
    assert not ps.near_to_far
    evidence = ps.manifest["direction"]
    assert evidence["source"] == "stated" and evidence["pieces"] == 0 and evidence["confidence"] == 0.0
    assert ps.describe()["direction"] == evidence


def _in_frames(frames: list):  # noqa: ANN202
    analysis = analyse(ArraySource(frames))
    return direction_of(analysis.maps, analysis.guide, read=lambda i: frames[i], alignment=analysis.alignment)


def _marked(seed: int = 1):  # noqa: ANN202
    """The occluder scene with bright lines painted on the far background 3-5 px outside the near outlines
    (pcb_depthmap's silkscreen beside the switch)."""
    sharp, depth = scene("occluder", (240, 360), seed=seed)
    near = (depth < 0.5 * (depth.min() + depth.max())).astype(np.uint8)
    grown = cv2.dilate(near, np.ones((11, 11), np.uint8)) - cv2.dilate(near, np.ones((7, 7), np.uint8))
    sharp = sharp.copy()
    sharp[grown > 0] = 0.95
    return render_stack(sharp, depth, 8, max_blur=6.0, seed=seed, **CAMERA)


def test_the_frames_judge_the_occluder_both_ways(occluder):
    fwd, rev = _in_frames(list(occluder.frames)), _in_frames(list(occluder.frames[::-1]))
    # measured: near to far, agreement 1.0, confidence 0.9921 (7.0 effective pieces); reversed far to near,
    # 1.0, 0.9976 (9.2)
    assert fwd.measured and fwd.near_to_far and rev.measured and not rev.near_to_far
    assert min(fwd.agreement, rev.agreement) > 0.9


def test_markings_beside_a_near_outline_do_not_turn_the_answer():
    st = _marked()
    for frames, near_to_far in ((list(st.frames), True), (list(st.frames[::-1]), False)):
        d = _in_frames(frames)
        # measured: agreement 1.0 both ways, confidence 0.9925 and 0.9948 (7.1 and 7.8 effective pieces)
        assert d.measured and d.near_to_far == near_to_far and d.agreement > 0.9


def test_prefer_front_names_the_near_surface_in_either_order():
    """--prefer front keeps the nearer of two see-through textures, also when the sweep ran far to near."""
    from postfocus import stack

    rng = np.random.default_rng(0)
    near, far = (cv2.GaussianBlur(rng.random((120, 160, 3)).astype(np.float32), (0, 0), 1.0) for _ in range(2))

    def blur(x, s):
        return x if s == 0 else cv2.GaussianBlur(x, (0, 0), s)

    frames = [0.5 * blur(near, 1.5 * abs(k - 1)) + 0.5 * blur(far, 1.5 * abs(k - 6)) for k in range(8)]
    forward = stack(frames, prefer="front", order="near-to-far", align="none", motion="off")
    backward = stack(frames[::-1], prefer="front", order="far-to-near", align="none", motion="off")
    assert abs(float(np.median(forward.focus_index)) - 1.0) < 0.5  # the near texture's frame
    assert abs(float(np.median(backward.focus_index)) - 6.0) < 0.5  # the same texture, numbered from the far end
def test_a_stated_order_holds_no_decoded_frames_for_a_measurement(tiny_stack, tmp_path):
    """Pass 1's decoded frames are held for the direction only when it is measured (order "auto")."""
    import postfocus.pipeline.run as run

    taken: dict[str, int] = {}
    real = run._DecodedOnce.take_held

    for order in ("near-to-far", "auto"):
        def take(self, order=order):
            held = real(self)
            taken[order] = len(held)
            return held

        with mock.patch.object(run._DecodedOnce, "take_held", take):
            process(tiny_stack.folder, cache_dir=tmp_path / order, order=order)
    assert taken.get("near-to-far", 0) == 0  # nothing held through pass 2 when nothing is measured
    assert taken["auto"] == 3  # every frame, for the measurement


def test_info_shows_evidence_only_when_the_order_was_measured(cli, tiny_stack, tmp_path):
    cache = tmp_path / "cache"
    assert cli("stack", str(tiny_stack.folder), "-o", str(tmp_path / "a.jpg"), cache=cache).returncode == 0
    run = cli("info", str(tiny_stack.folder), cache=cache)
    assert run.returncode == 0
    line = next(x for x in run.stdout.splitlines() if "near to far" in x)
    assert "focus order near to far," in line and "confidence" not in line  # stated: no evidence to show


def test_a_far_side_of_one_colour_is_never_decided():
    """Behind the occluder scene's near discs, a smooth ramp (no detail): the frames then hold the discs' masks
    blurred by their own defocus, the same either side of their frame, so nothing says which end is near."""
    sharp, depth = scene("occluder", (240, 360), seed=1)
    far = depth > 0.5
    yy, xx = np.mgrid[0:240, 0:360] / 360.0
    sharp = sharp.copy()
    sharp[far] = (0.35 + 0.25 * xx + 0.1 * yy).astype(np.float32)[far][:, None]
    st = render_stack(sharp, depth, 8, max_blur=6.0, seed=1, hidden=True, **CAMERA)
    for frames in (list(st.frames), list(st.frames[::-1])):
        d = _in_frames(frames)
        # measured: no vote either way (seed 2, tripod: one piece, confidence 0.68)
        assert not d.measured and d.near_to_far and d.source == "assumed"
