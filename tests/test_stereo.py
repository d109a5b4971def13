"""Stereo pairs by depth-image-based rendering: disparity follows depth, the near covers the far, holes show background.

The disparity test renders a stack with the project's generator (``steps``:
photos on cards at known depths), processes it, makes the pair and measures,
card by card, how far the left view is shifted against the right one: it must
be the disparity the true depth asks for (linear in depth, zero at the
zero-parallax plane): the disparity of the depth map used to within 0.25 px,
that of the true depth to within half a frame of depth error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_depth import make_stack  # noqa: E402

from postfocus.errors import OptionError  # noqa: E402
from postfocus.products.depth import depth_map  # noqa: E402
from postfocus.products.stereo import (  # noqa: E402
    anaglyph,
    disparity,
    render_view,
    side_by_side,
    stereo,
    stereo_pair,
    wiggle_frames,
)

STRENGTH = 0.05


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    ps, _, truth = make_stack("steps", tmp_path_factory.mktemp("stereo") / "steps", size=(160, 240), frames=8, seed=1)
    return ps, truth


def shift_between(left: np.ndarray, right: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Horizontal shift s (pixels) with left(x + s) ~ right(x) over the box: a 1-D search in 0.05 px steps."""
    y0, y1, x0, x1 = box
    gl, gr = (cv2.cvtColor(v, cv2.COLOR_RGB2GRAY) for v in (left, right))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    target = gr[y0:y1, x0:x1]
    shifts = np.arange(-12, 12.001, 0.05, dtype=np.float32)
    errors = [float(((cv2.remap(gl, xs + s, ys, cv2.INTER_CUBIC) - target) ** 2).mean()) for s in shifts]
    return float(shifts[int(np.argmin(errors))])


def card_boxes(truth: np.ndarray, margin: int = 14) -> list[tuple[float, tuple[int, int, int, int]]]:
    """(true depth, box well inside the card) for every card big enough to measure."""
    h, w = truth.shape
    out = []
    for v in np.unique(np.round(truth)):
        m = (np.abs(truth - v) < 0.3).astype(np.uint8)
        m[:, :margin] = m[:, -margin:] = 0
        m[:4] = m[-4:] = 0
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 5)
        cy, cx = np.unravel_index(np.argmax(dist), dist.shape)
        r = int(min(dist.max() - 3, 16))
        if r >= 8:
            out.append((float(v), (cy - r, cy + r, cx - r, cx + r)))
    return out


def test_disparity_follows_true_depth(steps):
    ps, truth = steps
    pair = stereo(ps, strength=STRENGTH)
    estimated = depth_map(ps).depth
    lo, hi = np.percentile(estimated, [2, 98])
    per_frame = STRENGTH * truth.shape[1] / (hi - lo)  # pixels of disparity per frame of depth
    boxes = card_boxes(truth)
    assert len(boxes) >= 4
    measured = []
    for depth, box in boxes:
        shift = shift_between(pair.left, pair.right, box)
        y0, y1, x0, x1 = box
        used = float(np.median(pair.disparity[y0:y1, x0:x1]))  # what the estimated depth asks for
        expected = per_frame * (pair.zero - depth)  # what the true depth asks for
        assert abs(shift - used) < 0.25, (depth, shift, used)  # the warp moves pixels by their disparity
        assert abs(shift - expected) < 0.5 * per_frame, (depth, shift, expected)  # depth within half a frame
        measured.append((depth, shift))
    depths, shifts = np.asarray(measured).T
    slope, _ = np.polyfit(depths, shifts, 1)
    assert slope == pytest.approx(-per_frame, rel=0.1)  # nearer: more crossed disparity, linear in depth
    assert shifts[np.argmin(depths)] > 2 and shifts[np.argmax(depths)] < -2  # in front of and behind the screen


def square_scene(h=64, w=96):
    rng = np.random.default_rng(3)
    image = np.repeat(rng.uniform(0.3, 0.6, (h, w, 1)), 3, axis=2).astype(np.float32)  # grey texture, far
    depth = np.full((h, w), 7.0, np.float32)
    image[20:44, 40:60] = (1.0, 0.0, 0.0)  # a red square, near
    depth[20:44, 40:60] = 0.0
    return image, depth


def test_near_covers_far_and_holes_take_the_background():
    image, depth = square_scene()
    shift = np.where(depth == 0, 6.0, 0.0).astype(np.float32)  # the square moves 6 px right, the background stays
    view, holes = render_view(image, depth, shift)
    red = (view[..., 0] > 0.9) & (view[..., 1] < 0.1)
    assert red[20:44, 46:66].all() and red.sum() == 24 * 20  # the whole square, moved, nowhere else
    assert holes[20:44, 40:46].all() and holes.sum() == 24 * 6  # what the square uncovered
    filled = view[20:44, 40:46]
    assert filled[..., 1].min() > 0.25 and np.ptp(filled[..., 0] - filled[..., 1]) < 1e-6  # grey background
    assert filled.std() > 0.03  # the background's texture, not one smeared colour
    # Moving over the background, the square covers it (z-order): the background far pixels do not show through.
    view2, _ = render_view(image, depth, -shift)
    assert ((view2[..., 0] > 0.9) & (view2[..., 1] < 0.1))[20:44, 34:54].all()


def test_pair_of_arrays_and_outputs():
    image, depth = square_scene()
    pair = stereo_pair(image, depth, strength=0.1)
    disp, zero = disparity(depth, strength=0.1)
    assert zero == pytest.approx(3.5) and np.allclose(pair.disparity, disp)
    assert disp[30, 50] == pytest.approx(0.1 * 96 / 2) and disp[5, 5] == pytest.approx(-0.1 * 96 / 2)
    assert 0 < pair.holes < 0.1
    assert side_by_side(pair, gap=4).shape == (64, 196, 3)
    assert np.array_equal(side_by_side(pair, cross=True)[:, :96], pair.right)
    ana = anaglyph(pair)
    assert ana.shape == image.shape and ana.min() >= 0 and ana.max() <= 1
    # Red carries the left view, green and blue the right: a white left and black right make red.
    white = type(pair)(np.ones_like(image), np.zeros_like(image), disp, zero, 0.0)
    r, g, b = anaglyph(white)[0, 0]
    assert r > 0.7 and g < 0.05 and b < 0.05
    views = wiggle_frames(image, depth, strength=0.1, count=6)
    assert len(views) == 6 and np.allclose(views[0], image, atol=1e-6)
    with pytest.raises(OptionError):
        stereo_pair(image, depth, strength=0.5)


def test_stereo_command(steps, tmp_path, cli):
    ps, _ = steps
    frames = sorted(Path(ps.manifest["paths"][0]).parent.glob("frame_*.png"))
    cache = ps.folder.parent
    out, wiggle = tmp_path / "pair.jpg", tmp_path / "wiggle.gif"
    run = cli("-q", "stereo", *frames, "-o", out, "--wiggle", wiggle, "--cache", cache)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(out), str(wiggle)]
    h, w = ps.size
    with Image.open(out) as im:
        assert im.size == (2 * w, h)
    with Image.open(wiggle) as im:
        assert im.n_frames == 8
    run = cli("-q", "stereo", *frames, "-o", tmp_path / "ana.jpg", "--anaglyph", "--cache", cache)
    assert run.returncode == 0 and (tmp_path / "ana.jpg").exists()
    for args, flag in ((["--strength", "1"], "--strength 1"), (["--wiggle", tmp_path / "w.png"], "--wiggle")):
        run = cli("stereo", *frames, "-o", tmp_path / "bad.jpg", *args, "--cache", cache)
        assert run.returncode != 0 and len(run.err_lines) == 1 and flag in run.stderr, run.stderr
    assert not (tmp_path / "bad.jpg").exists()


def test_a_zero_plane_or_frame_count_no_pair_can_use_is_refused_and_a_far_zero_renders():
    """A NaN zero plane (and any far from the scene: 1e6 frames, 1e308) was an IndexError ("boolean index did
    not match") once no pixel of a band of rows landed in the view; ``zero="1"`` was taken as 1.0,
    ``frames="6"`` a TypeError, ``frames=0`` taken; a wiggle of "3" views a TypeError, of 10**9 a MemoryError."""
    from postfocus.errors import OptionError, PostfocusError
    from postfocus.products.stereo import stereo_pair, wiggle_frames

    rng = np.random.default_rng(0)
    image, depth = rng.random((40, 60, 3)).astype(np.float32), (rng.random((40, 60)) * 5).astype(np.float32)
    for kwargs, why in (({"zero": float("nan")}, r"^zero=nan: must be a depth in frames"),
                        ({"zero": "1"}, r"^zero='1': must be a depth"), ({"frames": "6"}, r"^frames='6': must be"),
                        ({"frames": 0}, r"^frames=0: must be the sweep's number of frames"),
                        ({"frames": -3}, r"^frames=-3: must be")):
        with pytest.raises(OptionError, match=why):
            stereo_pair(image, depth, **{"frames": 6, **kwargs})
    for zero in (1e6, 1e308, -1e30):  # every pixel shifted out of the view: the view is all hole, no error
        pair = stereo_pair(image, depth, zero=zero, frames=6)
        assert np.isfinite(pair.left).all() and np.isfinite(pair.right).all() and pair.holes == 1.0
    near = stereo_pair(image, depth, zero=2.0, frames=6)  # a zero inside the scene: as before, few holes
    assert near.holes < 0.2
    for count in ("3", 10**9, 1, True):
        with pytest.raises(PostfocusError, match=r"^a wiggle needs 2 to 1000 views"):
            wiggle_frames(image, depth, frames=6, count=count)
