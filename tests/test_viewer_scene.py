"""The focus slider's span: the frames the scene lies in, on a long sweep rendered by the project's generator.

The generated sweep has 21 frames; its scene (the steps) lies at depths 2 to 5,
as a macro subject fills a few frames of a long video sweep. The viewer's data
must say frames 1 to 6 (the scene and one frame either side), and the page's
focus pull must pass through those frames only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from postfocus.pipeline.run import process
from postfocus.synth import render_stack, scene, write_stack
from postfocus.viewer.export import viewer_data
from postfocus.viewer.scene import SCENE_MARGIN, scene_frames

FRAMES = 21
SCENE_DEPTHS = (2.0, 5.0)  # the generated scene's nearest and farthest depth, in frames


def write_long_sweep(folder: Path) -> Path:
    """A 21-frame generated sweep whose scene lies at depths 2 to 5 (frames 3 to 6 of 21, counted from 1)."""
    img, depth01 = scene("steps", size=(160, 240))
    near, far = (d / (FRAMES - 1) for d in SCENE_DEPTHS)
    depth01 = near + (far - near) * (depth01 - depth01.min()) / (depth01.max() - depth01.min())
    write_stack(render_stack(img, depth01, FRAMES, max_blur=40.0, noise=0.005, seed=2), folder)
    return folder


@pytest.fixture(scope="module")
def long_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("long_sweep")
    return process(write_long_sweep(root / "frames"), cache_dir=root / "cache")


def test_scene_frames_is_the_depth_range_and_a_margin():
    depth = np.linspace(1.8, 4.6, 1000, dtype=np.float32).reshape(10, 100)
    assert scene_frames(depth, 41, range(41)) == {"first": 1, "last": 6, "depths": [1.83, 4.57]}
    # frame 0 the farthest: the same depths are frames 40 - 4.57 .. 40 - 1.83
    assert scene_frames(depth, 41, range(41), near_to_far=False)["first"] == 34
    assert scene_frames(depth, 41, range(41), near_to_far=False)["last"] == 39
    # the ends never leave the sweep
    edge = np.linspace(0.0, 40.0, 1000, dtype=np.float32).reshape(10, 100)
    assert (scene_frames(edge, 41, range(41))["first"], scene_frames(edge, 41, range(41))["last"]) == (0, 40)


def test_scene_frames_keeps_to_frames_in_the_stack():
    depth = np.full((10, 10), 3.0, np.float32)  # flat: one frame around depth 3 (2.5 to 3.5) and the margin
    got = scene_frames(depth, 41, range(41))
    assert (got["first"], got["last"]) == (2, 4)
    # frames 2 and 4 left out, only 3 inside: the two kept frames nearest the span's middle bound it
    got = scene_frames(depth, 41, [0, 1, 3, 9, 10])
    assert (got["first"], got["last"]) == (1, 3)


def test_viewer_data_slider_spans_the_generated_scene(long_sweep):
    data = viewer_data(long_sweep, long_edge=240, tap_map=False)
    near, far = data["scene"]["depths"]
    assert abs(near - SCENE_DEPTHS[0]) < 0.35 and abs(far - SCENE_DEPTHS[1]) < 0.35, data["scene"]
    # the truth's frames and the margin: 2 - 1 = 1 to 5 + 1 = 6 (frame 0 is the nearest here)
    assert long_sweep.near_to_far
    assert (data["scene"]["first"], data["scene"]["last"]) == (round(SCENE_DEPTHS[0] - SCENE_MARGIN),
                                                                round(SCENE_DEPTHS[1] + SCENE_MARGIN))
    # the page's focus pull passes through the scene's frames only (slots are indices into frames)
    indices = [f["index"] for f in data["frames"]]
    pulled = [indices[k] for k in data["living"]["pull"]["order"]]
    assert pulled == list(range(data["scene"]["first"], data["scene"]["last"] + 1))
    assert len(indices) == FRAMES and data["frameCount"] == FRAMES
