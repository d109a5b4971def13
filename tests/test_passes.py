"""A sweep that turns back through focus, or starts again, is said (``postfocus.focus.passes``).

Rendered stacks (``postfocus.synth``): 10 frames near to far, then the same scene rendered again (another
camera seed: other shake and noise) far to near, or near to far a second time. The truth is how the frames were
put together: frame 11 (0-based 10) repeats frame 9's focus position when the sweep turns back, frame 1's when it
starts again. Measured when the module was written: shares of the pixels with a second focus peak 0.0002-0.002
through once, 0.61-0.78 turning back, 0.98-0.99 starting again (ramp, motorcycle, steps).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from postfocus import process, stack
from postfocus.errors import PostfocusWarning
from postfocus.focus.passes import SHARE, SweepPasses, passes_said, sweep_passes
from postfocus.io.arrays import ArraySource
from postfocus.options import StackOptions
from postfocus.pipeline.analyse import analyse
from postfocus.products.order import turns_said
from postfocus.synth import render_stack, scene
from postfocus.synth.files import write_stack

CAMERA = dict(shake_px=3.0, rotation_deg=0.3, noise=0.004, jpeg_quality=95)


@pytest.fixture(scope="module")
def renders():
    a = render_stack(*scene("motorcycle", (240, 360), seed=1), 10, max_blur=6.0, seed=1, **CAMERA)
    b = render_stack(*scene("motorcycle", (240, 360), seed=1), 10, max_blur=6.0, seed=2, **CAMERA)
    return a, b


def _warned(frames: list) -> tuple[list[str], SweepPasses | None]:
    said: list[str] = []
    analysis = analyse(ArraySource(list(frames)), StackOptions(threads=1), warn=said.append)
    return said, sweep_passes(analysis.maps.volume)


def test_a_stack_through_focus_once_says_nothing(renders):
    said, passes = _warned(renders[0].frames)
    assert not any("focus turns" in s or "focus starts again" in s for s in said)
    assert passes is not None and not passes.repeats and passes.share < 0.2 * SHARE  # 0.0006


def test_a_stack_rendered_forward_then_back_is_flagged_where_it_turns(renders):
    a, b = renders
    said, passes = _warned(a.frames + b.frames[-2::-1])  # positions 0..9, then 8..0
    assert passes.repeats and passes.back and passes.share > 2 * SHARE  # 0.63
    # frame 10 (0-based) repeats 8, the last (18) repeats 0: the truth, to the frame
    assert (passes.first, passes.last, passes.of_first, passes.of_last) == (10, 18, 8, 0)
    turned = [s for s in said if "focus turns back" in s]
    assert turned == [passes_said(passes, range(19), lambda i: f"frame {i + 1}")]
    assert "at frame 11: frames 11-19 repeat the focus positions of frames 9-1" in turned[0]


def test_a_second_pass_forward_is_flagged_as_starting_again(renders):
    a, b = renders
    _, passes = _warned(a.frames + b.frames)
    assert passes.repeats and not passes.back
    assert (passes.first, passes.last, passes.of_first, passes.of_last) == (10, 19, 0, 9)


def test_the_public_api_carries_the_warning(renders, tmp_path):
    a, b = renders
    with pytest.warns(PostfocusWarning, match="the focus turns back at frame 11"):  # (said as a Python warning too)
        result = stack([*a.frames, *b.frames[-2::-1]], threads=1)
    assert sum("the focus turns back at frame 11" in w for w in result.warnings) == 1
    with pytest.warns(PostfocusWarning, match="the focus turns back"):
        kept = process([*a.frames, *b.frames[-2::-1]], cache_dir=tmp_path, threads=1)  # (a processed stack's manifest)
    assert sum("the focus turns back at frame 11" in w for w in kept.manifest["warnings"]) == 1
    turns = turns_said(kept)  # (what the depth products' commands say again)
    assert turns.startswith("the focus turns back at frame 11") and turns in kept.manifest["warnings"]
    assert turns_said(process(list(a.frames), cache_dir=tmp_path, threads=1)) is None
    assert not any("focus turns" in w for w in stack(list(a.frames), threads=1).warnings)


def test_the_command_line_says_it_once_and_in_json_then_again_on_a_depth_map_of_the_kept_stack(renders, tmp_path):
    import json

    from click.testing import CliRunner

    from postfocus.cli import main

    a, b = renders
    folder = tmp_path / "sweep"
    write_stack(a, folder)
    for k, frame in enumerate(b.frames[-2::-1]):  # the frames after the turn, named on from frame 10
        cv2.imwrite(str(folder / f"z{k:02d}.jpg"), cv2.cvtColor((np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8),
                                                                  cv2.COLOR_RGB2BGR))
    names = sorted(p.name for p in folder.glob("*.jpg"))
    before = cv2.getNumThreads()
    try:
        runs = [CliRunner().invoke(main, ["--threads", "1", command, str(folder), "-o", str(tmp_path / out),
                                          "--cache", str(tmp_path / "cache"), "--json"])
                for command, out in (("stack", "out.jpg"), ("depth", "depth.png"))]
    finally:
        cv2.setNumThreads(before)
    for result in runs:  # the depth map reuses the processed stack: its warning is said again, once
        assert result.exit_code == 0, result.output
        turned = [w for w in json.loads(result.stdout)["warnings"] if "focus turns back" in w]
        assert len(turned) == 1 and f"at frame 11 ({names[10]}): frames 11-19 repeat" in turned[0]
        assert "the depth products (depth map, aperture, tap, pop) assume one pass through focus" in turned[0]
        assert result.stderr.count("focus turns back") == 1


def test_too_few_frames_or_no_clear_peak_says_nothing():
    flat = np.ones((5, 40, 40), np.float32)
    assert sweep_passes(flat) is None
    assert sweep_passes(np.random.default_rng(0).random((2, 40, 40)).astype(np.float32)) is None
