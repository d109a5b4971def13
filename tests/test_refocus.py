"""Post Focus on a generated sweep encoded as MP4: tap, range merge, colour pop, the stack folder.

The sweep is rendered by postfocus.synth ('steps': photos on five flat cards at
known depths), shaken by hand, then encoded with H.264 like a camera's Post
Focus video. Two held frames (the lens resting at the start and end of the
sweep) are inserted as exact repeats.
"""

from __future__ import annotations

import dataclasses
import json
import time

import cv2
import numpy as np
import pytest

from postfocus import merge, process, tap
from postfocus.store import FORMAT_VERSION
from postfocus.errors import OptionError, PostfocusError, PostfocusWarning
from postfocus.focus import tenengrad
from postfocus.io.video_write import write_video
from postfocus.products.pop import colour_pop, pop_mask, saturation
from postfocus.products.refocus import parse_point
from postfocus.synth import render_stack, scene

N = 8


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    sharp, depth01 = scene("steps", (240, 320), seed=3)
    st = render_stack(sharp, depth01, N, max_blur=6.0, seed=3, shake_px=3.0, breathing=0.02, noise=0.003)
    # Held frames: frame 0 twice at the start, the last frame twice at the end.
    frames = [st.frames[0]] + list(st.frames) + [st.frames[-1]]
    folder = tmp_path_factory.mktemp("sweep")
    path = write_video(frames, folder / "sweep.mp4", fps=30, crf=12)
    cache = folder / "cache"
    with pytest.warns(PostfocusWarning, match="repeats the frame before it") as held:
        ps = process(path, cache_dir=cache)
    return st, path, cache, ps, [str(w.message) for w in held]


def video_frame(k: int) -> int:
    """Frame number in the video of the generator's frame k (frame 1 repeats frame 0 and is left out)."""
    return 0 if k == 0 else k + 1


def true_depth_at(st, ps, x: float, y: float) -> float:
    """Ground-truth focus position (generator frames) at an output pixel."""
    t, l, _, _ = ps.manifest["crop"]
    return float(st.depth[int(round(y + t)), int(round(x + l))])


def card_centres(st, ps) -> list[tuple[float, float, float]]:
    """(x, y, true depth) at the middle of each card region, in output pixels."""
    t, l, b, r = ps.manifest["crop"]
    depth = st.depth[t:b, l:r]
    out = []
    for level in np.unique(np.round(depth, 3)):
        mask = (np.abs(depth - level) < 1e-3).astype(np.uint8)
        # deepest interior point of the region, away from its edges
        dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
        y, x = np.unravel_index(np.argmax(dist), dist.shape)
        if dist[y, x] > 12:
            out.append((float(x), float(y), float(level)))
    return out


def test_repeated_frames_are_left_out(sweep):
    *_, ps, said = sweep
    assert sum("left out" in m for m in said) == 2, said
    # (named as every message names a video's frame: its number from 1 and its time, labels.frame_label)
    assert any(m.startswith("frame 2 (") for m in said) and any(m.startswith(f"frame {N + 2} (") for m in said), said
    assert ps.manifest["dropped"] == [1, N + 1]
    assert 1 not in ps.used and N + 1 not in ps.used
    assert len(ps.used) == N


def test_tap_returns_the_frame_focused_at_each_card(sweep):
    st, _, _, ps, _ = sweep
    centres = card_centres(st, ps)
    assert len(centres) >= 4
    for x, y, depth in centres:
        answer = tap(ps, x, y)
        expected = video_frame(int(round(depth)))
        assert abs(answer.frame - expected) <= 1, (x, y, depth, answer)
        # (the far card's centre lies at the top-right border, in the photo's plain grey: its window's curve is
        # at a quarter of the noise floor, answered from the fill, and said so)
        assert answer.confidence > 0.3 or (answer.fallback and answer.filled_from), (x, y, answer)


def test_tap_accepts_percentages_and_refuses_points_outside(sweep):
    *_, ps, _ = sweep
    h, w = ps.size
    assert parse_point("50%,50%", ps.size) == (w / 2, h / 2)
    with pytest.raises(PostfocusError, match="outside"):
        tap(ps, w + 5, 3)
    with pytest.raises(PostfocusError, match="outside"):
        parse_point(f"{w + 1},3", ps.size)
    with pytest.raises(PostfocusError, match="expected X,Y"):
        parse_point("left,top", ps.size)


def test_a_point_given_as_fractions_is_refused_with_the_percentages_meant():
    """``--at 0.5,0.5`` tapped the top-left pixel without a word (user20: "frame 3 is sharpest at 0,0"): shares of
    the picture are percentages; a point below one pixel that is not the corner itself is refused, saying so."""
    with pytest.raises(PostfocusError) as caught:
        parse_point("0.5,0.25", (1058, 1885))
    assert str(caught.value) == ("point '0.5,0.25': pixels count from the top-left corner; "
                                 "for a share of the picture write percentages (50%,25%)")
    with pytest.raises(PostfocusError, match=r"\(30%,0%\)"):
        parse_point("0.3,0", (100, 200))
    assert parse_point("0,0", (100, 200)) == (0.0, 0.0)
    assert parse_point("1,0.5", (100, 200)) == (1.0, 0.5)  # a pixel, not a share
    assert parse_point("0.5%,0.5%", (100, 200)) == (1.0, 0.5)



@pytest.mark.parametrize("args,kwargs,named", [
    (("10", 10), {}, "x='10'"),  # was a TypeError from a comparison
    ((10, None), {}, "y=None"),
    ((10, 10), {"radius": 0}, "radius=0"),  # a ValueError (range() step 0) when the window was unsure
    ((10, 10), {"radius": -1}, "radius=-1"),  # a tap on an empty window (a NaN confidence)
    ((10, 10), {"radius": 2.5}, "radius=2.5"),  # a TypeError from slicing the memory-mapped volume
    ((10**400, 10), {}, "x=1000000000000000000000000000000000000000...0000000000000000000000000000 (401 characters)"),
    ((10, -10**400), {}, "y=-100000000000000000000000000000000000000...0000000000000000000000000000 (402 characters)"),
    ((10, 10**5000), {}, "y=an int too long to show"),  # (were OverflowErrors: no float holds them)
], ids=lambda v: v if isinstance(v, str) else None)
def test_tap_arguments_of_the_wrong_type_are_refused_by_name(sweep, args, kwargs, named):
    from postfocus.errors import OptionError

    *_, ps, _ = sweep
    with pytest.raises(OptionError) as refused:
        tap(ps, *args, **kwargs)
    assert str(refused.value).startswith(named + ":")
    with pytest.raises(OptionError, match="not a processed stack; open one with postfocus.process"):
        tap(str(ps.folder), 10, 10)  # was an AttributeError: 'str' object has no attribute 'size'
    assert tap(ps, np.float32(10), np.int64(10), radius=np.int64(3)).frame in ps.used


def test_tap_on_weak_texture_falls_back_and_says_so():
    # A focus volume with texture only in its left half: a tap on the right half falls back.
    vol = np.zeros((3, 40, 80), np.float32)
    vol[:, :, :30] = np.array([0.1, 1.0, 0.2], np.float32)[:, None, None]
    from postfocus.products.refocus import sharpest_frame

    answer = sharpest_frame(vol, [0, 1, 2], 70, 20, radius=3)
    assert answer.fallback and answer.frame == 1
    assert answer.source_x < 33
    assert "nearest confident area" in answer.describe()


def test_range_merge_is_sharp_inside_and_blurred_outside(sweep):
    st, _, _, ps, _ = sweep
    t, l, b, r = ps.manifest["crop"]
    depth = st.depth[t:b, l:r]
    full = merge(ps)
    near = merge(ps, frames=[video_frame(k) for k in range(0, 3)])  # generator frames 0-2
    inside = cv2.erode((depth <= 1.0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    outside = cv2.erode((depth >= 5.0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert inside.sum() > 500 and outside.sum() > 500
    sharp = st.sharp[t:b, l:r]

    def err(img, mask):
        return float(np.abs(img - sharp)[mask].mean())

    # Inside the range the partial merge is as close to the truth as the full merge ...
    assert err(near, inside) < err(full, inside) * 1.2 + 0.005
    # ... outside it stays blurred: much farther from the sharp truth, and less detailed.
    assert err(near, outside) > 2.0 * err(full, outside)
    assert tenengrad(near, outside) < 0.5 * tenengrad(full, outside)


def test_range_merge_has_no_hard_seam(sweep):
    """Weights are smooth in depth: the result has no step larger than the frames have."""
    *_, ps, _ = sweep
    near = merge(ps, frames=[video_frame(k) for k in range(0, 3)])
    frames = [ps.read_frame(i) for i in ps.used]
    step = lambda im: float(np.abs(np.diff(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), axis=1)).max())  # noqa: E731
    assert step(near) <= max(step(f) for f in frames) + 0.05


def test_colour_pop_keeps_colour_only_at_the_tapped_depth(sweep):
    st, _, _, ps, _ = sweep
    image = ps.all_in_focus()
    x, y, depth = card_centres(st, ps)[0]
    answer = tap(ps, x, y)
    mask = pop_mask(ps.focus_index, answer.position, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), tolerance=0.6)
    out = colour_pop(image, mask)
    t, l, b, r = ps.manifest["crop"]
    true = st.depth[t:b, l:r]
    same = cv2.erode((np.abs(true - depth) < 0.01).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    other = cv2.erode((np.abs(true - depth) > 2.0).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert saturation(out, same) > 0.8 * saturation(image, same)
    assert saturation(out, other) < 0.1 * max(saturation(image, other), 1e-3)
    assert mask[same].mean() > 0.9 and mask[other].mean() < 0.1


def test_second_process_reuses_the_stack_folder(sweep):
    _, path, cache, ps, _ = sweep
    again = process(path, cache_dir=cache)
    assert again.folder == ps.folder
    manifest = json.loads((ps.folder / "manifest.json").read_text())
    assert manifest["format"] == FORMAT_VERSION and manifest["kind"] == "video"


def test_changed_input_gets_a_new_stack_folder(sweep, tmp_path):
    st, _, cache, ps, _ = sweep
    other = write_video(list(st.frames), tmp_path / "sweep.mp4", fps=30, crf=12)
    assert process(other, cache_dir=cache).folder != ps.folder


def test_cli_refocus_pop_info_on_the_video(sweep, tmp_path, cli):
    st, path, cache, ps, _ = sweep
    x, y, depth = card_centres(st, ps)[-1]
    out = tmp_path / "tap.jpg"
    run = cli("-q", "refocus", path, "--at", f"{x:.0f},{y:.0f}", "-o", out, cache=cache)
    assert run.returncode == 0, run.stderr
    frame = tap(ps, round(x), round(y)).frame  # 0-based in Python; people read frames from 1, a video's by time
    assert f"frame {frame + 1} ({frame / ps.info.fps:.2f} s) is sharpest" in run.stderr
    assert cv2.imread(str(out)).shape[:2] == tuple(ps.size)
    pop_out, mask_out = tmp_path / "pop.jpg", tmp_path / "mask.png"
    run = cli("-q", "pop", path, "--at", "50%,50%", "-o", pop_out, "--mask", mask_out, cache=cache)
    assert run.returncode == 0, run.stderr and pop_out.exists() and mask_out.exists()
    run = cli("info", path, cache=cache)
    assert run.returncode == 0 and "video: 10 frames" in run.stdout and str(ps.folder) in run.stdout
    run = cli("-q", "refocus", path, "--at", "9999,1", "-o", tmp_path / "x.jpg", cache=cache)
    assert run.returncode == 2 and "outside the image" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_cli_range_by_taps(sweep, tmp_path, cli):
    st, path, cache, ps, _ = sweep
    centres = sorted(card_centres(st, ps), key=lambda c: c[2])
    (xn, yn, _), (xf, yf, _) = centres[0], centres[2]
    out = tmp_path / "range.png"
    run = cli("-q", "stack", path, "-o", out, "--near-at", f"{xn:.0f},{yn:.0f}", "--far-at", f"{xf:.0f},{yf:.0f}",
              cache=cache)
    assert run.returncode == 0, run.stderr
    assert "--range " in run.stderr and "from the taps" in run.stderr
    assert cv2.imread(str(out)).shape[:2] == tuple(ps.size)


def test_real_sweep_video_stacks_and_refocuses(real_data, tmp_path):
    video = real_data / "keyboard_sweep.mp4"
    if not video.exists():
        pytest.skip("keyboard_sweep.mp4 not available")
    ps = process(video, cache_dir=tmp_path / "cache")
    assert len(ps.used) >= 38  # 41 real frames, none repeated
    image = ps.all_in_focus()
    frames_sharpness = [tenengrad(ps.read_frame(i)) for i in ps.used[:: max(1, len(ps.used) // 8)]]
    assert tenengrad(image) > max(frames_sharpness)
    near, far = tap(ps, *parse_point("20%,80%", ps.size)), tap(ps, *parse_point("80%,15%", ps.size))
    assert near.frame != far.frame


def test_a_tap_on_a_stack_result_answers_as_on_its_folder(sweep):
    """``tap(stack(...), x, y)``: a :class:`StackResult` is a maps view as a stack folder is (``tap`` checks it is
    one), but had no ``size``: an AttributeError. Now it answers, the frame the folder's tap names at every card."""
    from postfocus import stack

    st, path, _, ps, _ = sweep
    result = stack(path)
    assert result.size == ps.size
    for x, y, _ in card_centres(st, ps):
        assert abs(tap(result, x, y).frame - tap(ps, x, y).frame) <= 1, (x, y)


def test_a_numpy_radius_is_taken_as_an_int(tiny_stack, tmp_path):
    """``tap(ps, 10, 10, radius=np.int64(2**62))`` overflowed in the ring search of an unsure window (``radius * 2``
    in int64: a RuntimeWarning and a search over nothing; review13): the radius is a Python int."""
    import warnings

    from postfocus.pipeline.run import process

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert tap(ps, 10, 10, radius=np.int64(2**62)) == tap(ps, 10, 10, radius=2**62)


# ------------------------------------------------ a tap that knows the noise floor (issue 15)

PATCH = (30, 210, 50, 300)  # top, bottom, left, right of the dark plain far patch
DISC = (110, 120, 30)  # centre x, y and radius of the near textured disc in it


def plain_patch_scene(size=(240, 320), seed=4):
    """Far random texture (depth 1) with a dark plain far patch, a near textured disc (depth 0) in the patch."""
    rng = np.random.default_rng(seed)
    h, w = size
    texture = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.2)
    image = 0.25 + 0.6 * (texture - texture.min()) / (texture.max() - texture.min())
    depth = np.ones((h, w), np.float32)
    t, b, l, r = PATCH
    image[t:b, l:r] = 0.06
    yy, xx = np.mgrid[:h, :w]
    cx, cy, radius = DISC
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
    image[disc] = 0.25 + 0.6 * rng.random((int(disc.sum()), 3)).astype(np.float32)
    depth[disc] = 0.0
    return image.astype(np.float32), depth


@pytest.fixture(scope="module")
def patch_stack(tmp_path_factory):
    from postfocus.synth.files import write_stack

    sharp, depth01 = plain_patch_scene()
    st = render_stack(sharp, depth01, 12, max_blur=8.0, noise=0.01, seed=4)
    folder = tmp_path_factory.mktemp("patch")
    write_stack(st, folder / "frames", "png")
    ps = process(folder / "frames", cache_dir=folder / "cache")
    return st, ps


def _nearest_used(ps, position):
    return min(ps.used, key=lambda f: abs(f - position))


def _patch_points(ps):
    """Every 6th pixel of the plain patch, 14 px inside its border and 15 px outside the disc (a window there
    holds neither's texture): (x, y, px to the disc)."""
    t, l, _, _ = ps.manifest["crop"]
    top, bottom, left, right = PATCH
    cx, cy, radius = DISC
    return [(x - l, y - t, np.hypot(x - cx, y - cy) - radius) for y in range(top + 14, bottom - 14, 6)
            for x in range(left + 14, right - 14, 6) if np.hypot(x - cx, y - cy) > radius + 15]


def _map_value(ps, values, x, y):
    mh, mw = ps.focus_index.shape
    h, w = ps.size
    return float(values[int(np.clip(round(y * mh / h), 0, mh - 1)), int(np.clip(round(x * mw / w), 0, mw - 1))])


def _reading(ps, fill, x, y):
    """The depth ``fill`` as a tap at output (x, y) reads it: its window median at the tap's map pixel (fixes25)."""
    from postfocus.products.refocus import _map_point
    from postfocus.products.tap_read import depth_radius, depth_reading, depth_weights

    grid = ps.maps.map_grid()
    cx, cy = _map_point(ps.volume, x, y, grid[0], grid[1:])  # (weighed by the kept depth's confidence: conf20)
    return depth_reading(fill, cx, cy, depth_radius(ps.size, grid[0]), depth_weights(ps, fill.shape))


def _without_depth(ps):
    """The stack folder as processed: no depth map kept, no tap depth kept, none remembered."""
    from postfocus.products import refocus

    for kept in [*ps.folder.glob("depth_*.npz"), *ps.folder.glob("tap_depth_*.npz")]:
        kept.unlink()
    refocus._FILLS.clear()


def test_taps_on_a_plain_far_patch_answer_from_the_fill_not_from_noise(patch_stack):
    """Taps in the dark plain patch around the near disc (truth: frame 11, the far end), no depth map kept.

    Before tap12, a plain window's curve (noise, no shape) was answered as if it were texture (confidence
    0.27-1.0): 27 % of these 786 points within 1 frame of the truth. A plain window knows it is one (its peak is
    at the noise floor) and answers with the fill at the point, and says so: since tap13 the depth map's rules
    made on the focus map's grid (tap12's focus-map fill: 64 % beyond 40 px of the disc)."""
    from postfocus.products.refocus import plain_fill

    st, ps = patch_stack
    _without_depth(ps)
    t, l, _, _ = ps.manifest["crop"]
    fill, name = plain_fill(ps)
    assert name == "depth map"
    far, filled = [], []
    for x, y, dist in _patch_points(ps):
        assert st.depth[y + t, x + l] == 11
        answer = tap(ps, x, y)
        filled.append(answer.fallback)
        if answer.fallback:
            assert answer.filled_from == "depth map" and answer.confidence < 0.25, (x, y, answer)
            assert (answer.source_x, answer.source_y) == (x, y)
            said = _reading(ps, fill, x, y)  # (was the fill's one pixel: its window median since fixes25)
            assert answer.frame == _nearest_used(ps, said) and answer.position == pytest.approx(said, abs=1e-5)
            assert "depth map, filled in from the textured areas around, decided" in answer.describe()
        if dist >= 40:
            far.append(abs(answer.frame - 11) <= 1)
    # (a few windows near the patch's border see the far texture's blur spill into it in the near frames: a
    # curve with a shape, above the floor, answered as texture, as before)
    assert np.mean(filled) > 0.9 and len(far) > 400 and np.mean(far) > 0.8, (np.mean(filled), np.mean(far))
    assert not list(ps.folder.glob("depth_*.npz"))  # (no depth map at the output size was made for a tap)


def test_plain_taps_beside_a_near_object_answer_right_without_a_depth_map(patch_stack):
    """The near disc's spill: the focus map reads the disc's frame in a band around its outline, confidently,
    and its fill spread that into the plain far patch: 0 % of the points 15-40 px from the disc within 1 frame of
    the truth without a depth map kept (tap12). The depth map's rules on the focus map's grid give the band back
    to the far side (93 % measured; 89 % of all the patch's points, as with the depth map kept)."""
    st, ps = patch_stack
    _without_depth(ps)
    near, right = [], []
    for x, y, dist in _patch_points(ps):
        answer = tap(ps, x, y)
        right.append(abs(answer.frame - 11) <= 1)
        if dist < 40:
            near.append(right[-1])
    assert len(near) > 100 and np.mean(near) > 0.85 and np.mean(right) > 0.8, (len(near), np.mean(near), np.mean(right))


def test_the_depth_a_plain_tap_makes_is_kept_and_read_back(patch_stack, monkeypatch):
    """Made at the stack's first plain tap, kept in the folder under the depth map's key: a later process reads
    it (nothing is made again), a damaged file is made again, and the depth map made later agrees with it."""
    from postfocus.products import refocus, tap_depth
    from postfocus.products.aperture import focus_at
    from postfocus.products.depth_cache import stack_depth
    from postfocus.store import ProcessedStack

    _, ps = patch_stack
    _without_depth(ps)
    points = [(x, y) for x, y, _ in _patch_points(ps)[::9]]
    first = [tap(ps, x, y) for x, y in points]
    kept = list(ps.folder.glob("tap_depth_*.npz"))
    assert len(kept) == 1 and any(a.filled_from == "depth map" for a in first)
    refocus._FILLS.clear()  # (a later process)

    def refused(*args, **kwargs):
        raise AssertionError("made again")

    with monkeypatch.context() as m:
        m.setattr(tap_depth, "grid_depth", refused)
        assert [tap(ProcessedStack.open(ps.folder), x, y) for x, y in points] == first
    kept[0].write_bytes(kept[0].read_bytes()[:1000])  # cut short: made again, the same
    refocus._FILLS.clear()
    assert [tap(ProcessedStack.open(ps.folder), x, y) for x, y in points] == first
    assert kept[0].stat().st_size > 1000
    depth = stack_depth(ps)  # the depth map at the output size, made later, says what the tap said
    agree = [abs(a.position - focus_at(depth.depth, x, y, depth.confidence)) < 0.5 for a, (x, y) in zip(first, points)]
    assert np.mean(agree) > 0.9, np.mean(agree)


def test_a_plain_tap_and_focus_at_agree_where_the_depth_map_trusts_no_pixel(patch_stack):
    """At the plain patch's points whose tap answers from the depth map (764 of 786), the tap's position and
    ``focus_at`` of the depth map kept later (the depth ``aperture`` focuses at there) are within half a frame
    at more than 98.5 % (tapgrid18).

    Both read the same array here (the maps are at the output size: the tap's fill is the depth map); the tap
    one pixel, ``focus_at`` the median of a 5 x 5 window. On main ``focus_at`` weighed that window by confidences
    of 0.00-0.04 (a filled plain area), so their noise decided: 33 points differed by half a frame or more (95.7 %
    agree), up to 4.8 frames. It now weighs no pixel of a window with none at ``TRUSTED`` or above. Half a frame:
    the tap and aperture then name the same frame or its neighbour. What is left (8 points, 1.0 %) is the fill
    not flat within the window beside the disc (a pixel is not a median) and two lone pixels at 0.12-0.14."""
    from postfocus.products.aperture import focus_at
    from postfocus.products.depth_cache import stack_depth

    _, ps = patch_stack
    _without_depth(ps)
    points = [(x, y) for x, y, _ in _patch_points(ps)]
    taps = [tap(ps, x, y) for x, y in points]
    depth = stack_depth(ps)
    agree = [abs(a.position - focus_at(depth.depth, x, y, depth.confidence)) < 0.5
             for a, (x, y) in zip(taps, points) if a.filled_from == "depth map"]
    assert len(agree) > 0.9 * len(points)
    assert np.mean(agree) > 0.985, np.mean(agree)


def test_plain_fill_ready_and_is_plain_say_what_a_tap_would_do_without_making_anything(patch_stack, monkeypatch):
    """What the web app asks before a tap (tap14): ``is_plain`` is the tap's own verdict at every point (a plain
    window answers from the fill), ``plain_fill_ready`` is False until the tap's depth is made, then True, also
    in a later process (read from the folder), and ``tap(..., make=False)`` answers from the focus map without
    making it. None of them makes the depth."""
    from postfocus.products import refocus, tap_depth
    from postfocus.products.refocus import is_plain, plain_fill_ready
    from postfocus.store import ProcessedStack

    _, ps = patch_stack
    _without_depth(ps)
    h, w = ps.size
    grid = [(x, y) for y in range(3, h, 23) for x in range(3, w, 23)] + [(x, y) for x, y, _ in _patch_points(ps)[::40]]

    def refused(*args, **kwargs):
        raise AssertionError("made")

    with monkeypatch.context() as m:
        m.setattr(tap_depth, "grid_depth", refused)
        plain = [is_plain(ps, x, y) for x, y in grid]
        assert any(plain) and not all(plain)
        assert not plain_fill_ready(ps)
        unmade = [tap(ps, x, y, make=False) for x, y in grid]
        assert {a.filled_from for a, p in zip(unmade, plain) if p} == {"focus map"}
        assert not plain_fill_ready(ps) and not list(ps.folder.glob("tap_depth_*.npz"))
    made = [tap(ps, x, y) for x, y in grid]
    assert [a.filled_from == "depth map" for a in made] == plain  # the tap's own verdict, point by point
    fill = refocus.plain_fill(ps)[0]  # (a textured window read its curve with or without the depth; since fixes25 the
    assert all(a.position == _reading(ps, fill, x, y) and not a.fallback  # depth once it is there, as the aperture)
               for a, p, (x, y) in zip(made, plain, grid) if not p)
    assert plain_fill_ready(ps)
    refocus._FILLS.clear()  # (a later process: read from the folder)
    with monkeypatch.context() as m:
        m.setattr(tap_depth, "grid_depth", refused)
        assert plain_fill_ready(ProcessedStack.open(ps.folder))
        assert [tap(ps, x, y) for x, y in grid] == made


def test_a_folder_that_cannot_be_written_makes_the_plain_taps_depth_unkept(patch_stack, tmp_path, monkeypatch):
    """A read-only cache (or a full disk): the depth a plain tap reads is made and answers as in a writable folder,
    and nothing is written into the folder."""
    import shutil

    from postfocus.errors import OutputError
    from postfocus.products import refocus
    from postfocus.store import ProcessedStack

    _, ps = patch_stack
    _without_depth(ps)
    points = [(x, y) for x, y, _ in _patch_points(ps)[::15]]
    writable = [tap(ps, x, y) for x, y in points]
    shutil.copytree(ps.folder, tmp_path / "ro", ignore=shutil.ignore_patterns("frames", "tap_depth_*.npz"))
    before = sorted(p.name for p in (tmp_path / "ro").iterdir())

    def refuse(path, write):
        raise OutputError(f"{path}: read-only")

    monkeypatch.setattr("postfocus.store.kept.atomic_write", refuse)
    refocus._FILLS.clear()
    again = [tap(ProcessedStack.open(tmp_path / "ro"), x, y) for x, y in points]
    assert [dataclasses.replace(a, position=0.0) for a in again] == [dataclasses.replace(a, position=0.0) for a in writable]
    assert [a.position for a in again] == pytest.approx([a.position for a in writable], abs=0.01)  # (every tap reads
    # the depth's window since fixes25: the copy has no frames folder, and its depth differs by up to 0.002 frames)
    assert sorted(p.name for p in (tmp_path / "ro").iterdir()) == before


def test_plain_taps_read_the_kept_depth_map_when_there_is_one(patch_stack):
    """With a depth map kept (by depth, aperture, pop), a plain window names the frame it says: 89 % of the
    patch's points within 1 frame of the truth (93 % within 40 px of the disc, where the focus map's fill has
    the disc's spill), against 27 % before."""
    from postfocus.products.aperture import focus_at
    from postfocus.products.depth_cache import stack_depth
    from postfocus.products.refocus import plain_fill

    st, ps = patch_stack
    depth = stack_depth(ps)  # made and kept in the folder, as depth, aperture and pop do
    fill, name = plain_fill(ps)
    assert name == "depth map"
    right, agree = [], []
    for x, y, _ in _patch_points(ps):
        answer = tap(ps, x, y)
        if answer.fallback:
            assert answer.filled_from == "depth map"
            assert answer.position == pytest.approx(_reading(ps, fill, x, y), abs=1e-5)  # (its window median: fixes25)
        right.append(abs(answer.frame - 11) <= 1)
        agree.append(abs(answer.position - focus_at(depth.depth, x, y, depth.confidence)) < 0.5)
    assert np.mean(right) > 0.75 and np.mean(agree) > 0.9, (np.mean(right), np.mean(agree))


def test_taps_on_texture_stay_right_with_the_noise_floor(patch_stack):
    """300 random taps on textured windows (the far texture, the disc's middle) against the truth."""
    st, ps = patch_stack
    t, l, _, _ = ps.manifest["crop"]
    h, w = ps.size
    top, bottom, left, right = PATCH
    yy, xx = np.mgrid[:st.depth.shape[0], :st.depth.shape[1]]
    textured = ~((yy >= top - 10) & (yy < bottom + 10) & (xx >= left - 10) & (xx < right + 10))
    textured |= (xx - DISC[0]) ** 2 + (yy - DISC[1]) ** 2 <= (DISC[2] - 10) ** 2
    ys, xs = np.nonzero(textured[t:t + h, l:l + w])
    pick = np.random.default_rng(7).choice(ys.size, 300, replace=False)
    errors, fallbacks = [], 0
    for i in pick:
        answer = tap(ps, float(xs[i]), float(ys[i]))
        errors.append(abs(answer.position - st.depth[ys[i] + t, xs[i] + l]))
        fallbacks += answer.fallback
    errors = np.asarray(errors)
    assert fallbacks == 0
    assert np.median(errors) < 0.2 and np.mean(errors > 1) < 0.01, (np.median(errors), np.mean(errors > 1))


def test_a_folder_made_before_the_floor_was_kept_has_it_measured_once(patch_stack, tmp_path):
    """A format-7 folder (no ``tap_floor`` in its manifest) opened by its path: the floor is measured from its
    volume, kept beside it, the same value a format-8 folder keeps; a damaged kept floor is measured again."""
    import shutil

    from postfocus.store import ProcessedStack

    _, ps = patch_stack
    assert ps.manifest["format"] == FORMAT_VERSION == 8 and ps.manifest["tap_floor"] > 0
    old = tmp_path / "old"
    shutil.copytree(ps.folder, old, ignore=shutil.ignore_patterns("tap_floor.npz", "frames"))
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format"] = 7
    del manifest["tap_floor"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    opened = ProcessedStack.open(old)
    x, y = DISC[0] + DISC[2] + 80, DISC[1]
    assert tap(opened, x, y) == tap(ps, x, y)
    assert opened.tap_floor == ps.manifest["tap_floor"] and (old / "tap_floor.npz").exists()
    kept_bytes = (old / "tap_floor.npz").read_bytes()
    assert ProcessedStack.open(old).tap_floor == ps.manifest["tap_floor"]  # read, not measured again
    assert (old / "tap_floor.npz").read_bytes() == kept_bytes
    (old / "tap_floor.npz").write_bytes(kept_bytes[: len(kept_bytes) // 2])  # cut short
    assert ProcessedStack.open(old).tap_floor == ps.manifest["tap_floor"]


@pytest.mark.parametrize("bad", [2.0, 1e308, -0.5, "0.001", None])
def test_a_manifest_floor_no_volume_can_have_is_measured_not_trusted(patch_stack, tmp_path, bad):
    """The volume is kept divided by its maximum, so its floor lies from 0 to 1: a manifest's ``tap_floor`` of 2.0
    or 1e308 (a stray edit, another tool) was trusted, every window stood below it, and a tap on texture answered
    from the fill (review14). It is measured from the volume instead, as a missing one is."""
    import shutil

    from postfocus.store import ProcessedStack

    _, ps = patch_stack
    folder = tmp_path / "edited"
    shutil.copytree(ps.folder, folder, ignore=shutil.ignore_patterns("tap_floor.npz", "frames"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tap_floor"] = bad
    (folder / "manifest.json").write_text(json.dumps(manifest))
    t, l, _, _ = ps.manifest["crop"]
    x, y = PATCH[2] - 25 - l, DISC[1] - t  # the far texture, left of the plain patch
    assert not tap(ps, x, y).fallback
    edited = ProcessedStack.open(folder)
    assert edited.tap_floor == pytest.approx(ps.manifest["tap_floor"], rel=1e-6)
    assert tap(edited, x, y) == tap(ps, x, y)


class _Yielding(dict):
    """A fill cache that hands the interpreter to another thread inside each read, as a busy server's might."""

    def __contains__(self, key):
        found = super().__contains__(key)
        time.sleep(0.0005)
        return found

    def __iter__(self):
        keys = super().__iter__()
        time.sleep(0.0005)
        return keys

    def get(self, key, default=None):
        found = super().get(key, default)
        time.sleep(0.0005)
        return found


def test_plain_taps_on_more_stacks_than_fills_kept_from_many_threads(patch_stack, tmp_path, monkeypatch):
    """The web app taps from a pool of threads: with more stacks tapped than fills kept, a tap read the fill cache
    while another evicted from it ("dictionary changed size during iteration", a KeyError: a 500; review14). Every
    tap now answers, the same as alone."""
    import shutil
    import threading
    from collections import OrderedDict

    from postfocus.products import refocus
    from postfocus.products.depth_cache import stack_depth
    from postfocus.store import ProcessedStack

    _, ps = patch_stack
    stack_depth(ps)  # kept, as depth, aperture, pop and the web app keep it
    stacks = []
    for k in range(refocus._FILLS_KEPT + 2):  # (copies keep the key: the guide's time is copied with it)
        shutil.copytree(ps.folder, tmp_path / f"copy{k}", ignore=shutil.ignore_patterns("frames"))
        stacks.append(ProcessedStack.open(tmp_path / f"copy{k}"))
    x, y, _ = _patch_points(ps)[-1]
    alone = tap(ps, x, y)
    assert alone.filled_from == "depth map"
    for s in stacks:
        assert s.tap_floor == ps.tap_floor and s.volume.shape == ps.volume.shape  # (read before the threads)
    kind = OrderedDict if isinstance(refocus._FILLS, OrderedDict) else dict
    monkeypatch.setattr(refocus, "_FILLS", type("Fills", (_Yielding, kind), {})())
    answers, failures = [], []

    def taps(first: int) -> None:
        try:
            for i in range(3 * len(stacks)):
                answers.append(tap(stacks[(first + i) % len(stacks)], x, y))
        except Exception as exc:  # noqa: BLE001 (what a server thread would have turned into a 500)
            failures.append(repr(exc))

    threads = [threading.Thread(target=taps, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert len(answers) == 4 * 3 * len(stacks) and all(a == alone for a in answers)
    assert len(refocus._FILLS) <= refocus._FILLS_KEPT


def test_the_web_app_and_the_command_line_tap_through_the_library(patch_stack):
    """Both faces call :func:`postfocus.products.refocus.tap` (no copy of its rules to drift apart)."""
    import inspect

    from postfocus.cli import refocus as cli_refocus
    from postfocus.web import ops

    for module in (cli_refocus, ops):
        source = inspect.getsource(module)
        assert "from postfocus.products.refocus import" in source and "tap(ps" in source
        assert "sharpest_frame" not in source and "_window_scores" not in source


@pytest.mark.parametrize("damage", ["nan", "far", "text", "frames"])
def test_a_kept_depth_map_that_is_no_depth_map_is_not_read_by_a_plain_tap(patch_stack, tmp_path, damage):
    """A depth file under the stack's key whose depth is NaN (the tap's position NaN: the web app's JSON answer a
    500), 1e30 (a position of 1e30), text, or whose frame count is two numbers (a TypeError on every plain tap) is
    not read: a plain tap answers as with no depth map kept (review15; since tap13 from the depth made on the
    focus map's grid)."""
    import shutil

    from postfocus.products import refocus
    from postfocus.products.depth_cache import depth_key, depth_path, stack_depth
    from postfocus.store import ProcessedStack
    from postfocus.store.kept import KEY_FIELD

    _, ps = patch_stack
    made = stack_depth(ps)
    bare = tmp_path / "bare"
    shutil.copytree(ps.folder, bare, ignore=shutil.ignore_patterns("frames", "depth_*.npz"))
    damaged = tmp_path / "damaged"
    shutil.copytree(ps.folder, damaged, ignore=shutil.ignore_patterns("frames"))
    copy = ProcessedStack.open(damaged)
    depth, frames = made.depth, np.asarray(made.frames)
    depth = {"nan": np.full_like(depth, np.nan), "far": np.full_like(depth, 1e30), "text": depth.astype(str),
             "frames": depth}[damage]
    frames = np.asarray([made.frames, 1]) if damage == "frames" else frames
    with open(depth_path(copy), "wb") as fh:
        np.savez(fh, **{KEY_FIELD: np.asarray(depth_key(copy))}, depth=depth, confidence=made.confidence,
                 frames=frames)
    refocus._FILLS.clear()
    for x, y, _ in _patch_points(ps)[::7]:
        answer = tap(copy, x, y)
        assert answer == tap(ProcessedStack.open(bare), x, y) and np.isfinite(answer.position)
        if answer.fallback:
            assert answer.filled_from == "depth map"


def _scored_once_and_as_before(ps, points, monkeypatch):
    """Each tap at ``points`` scores the tapped window once (the ring search's windows aside), and answers as
    :func:`sharpest_frame` given the stack's floor and, for a plain window, its fill."""
    from postfocus.products import refocus
    from postfocus.products.tap_read import depth_radius, depth_weights

    floor = refocus.stack_floor(ps)
    h, w = ps.size
    mh, mw = ps.focus_index.shape
    plain = 0
    for x, y in points:
        cx, cy = int(np.clip(round(x * mw / w), 0, mw - 1)), int(np.clip(round(y * mh / h), 0, mh - 1))
        calls = []
        real = refocus._window_scores
        monkeypatch.setattr(refocus, "_window_scores", lambda v, px, py, r: (calls.append((px, py)), real(v, px, py, r))[1])
        answer = tap(ps, x, y)
        monkeypatch.undo()
        assert calls.count((cx, cy)) == 1, (x, y, calls[:3])
        fill, name = refocus.plain_fill(ps)
        plain_window = refocus._score_confidence(real(ps.volume, cx, cy, 6), floor) < refocus.MIN_CONFIDENCE
        depth = name == "depth map"  # (a folder's depth answers every window since fixes25)
        expected = refocus.sharpest_frame(ps.volume, ps.used, x, y, map_scale=(mw / w, mh / h),
                                          confidence_map=ps.confidence, floor=floor,
                                          fill=fill if plain_window or depth else None, fill_name=name,
                                          fill_radius=depth_radius(ps.size, (mw / w, mh / h)) if depth else None,
                                          fill_weights=depth_weights(ps, fill.shape) if depth else None)
        assert answer == expected, (x, y)
        plain += plain_window
    return plain


def test_a_tap_scores_its_window_once_with_the_same_answer(patch_stack, monkeypatch):
    """``tap()`` scored the tapped window to tell a plain one, then :func:`sharpest_frame` scored it again (the
    lead noticed): once now, the same :class:`Tap` on the rendered stack's texture and plain patch."""
    _, ps = patch_stack
    h, w = ps.size
    points = [(x, y) for x, y, _ in _patch_points(ps)[::5]] + [(w * fx, h * fy) for fx in (0.05, 0.5, 0.95)
                                                                 for fy in (0.05, 0.5, 0.95)]
    plain = _scored_once_and_as_before(ps, points, monkeypatch)
    assert 0 < plain < len(points)  # both kinds of window asked


def test_a_tap_on_a_real_stack_scores_its_window_once_with_the_same_answer(real_data, tmp_path, monkeypatch):
    folder = real_data / "beetle"
    if not folder.is_dir():
        pytest.skip("beetle not available")
    ps = process(folder, cache_dir=tmp_path / "cache")
    h, w = ps.size
    points = [(w * fx, h * fy) for fx in np.linspace(0.02, 0.98, 7) for fy in np.linspace(0.02, 0.98, 5)]
    plain = _scored_once_and_as_before(ps, points, monkeypatch)
    assert 0 < plain < len(points)


def test_the_depth_a_plain_tap_makes_keeps_the_thread_budget(patch_stack, monkeypatch):
    """``postfocus --threads 1 pop`` made the depth of its plain tap on two threads, and the depth map after it
    again (tap13 and review15 met on main): a tap's ``threads`` reaches the depth it makes, and ``pop`` taps
    after its depth map, so a plain tap reads that map instead of making a second depth."""
    import threading

    import postfocus.products.depth_fill as fill_module
    from postfocus.products.pop import pop

    _, ps = patch_stack
    x, y = next((x, y) for x, y, _ in _patch_points(ps) if tap(ps, x, y).filled_from)  # (a plain window)
    real, ran = fill_module.domain_weights, []  # (made once a depth, on a helper with a budget of two: depth18)
    monkeypatch.setattr(fill_module, "domain_weights",
                        lambda *a, **k: (ran.append(threading.get_ident()), real(*a, **k))[1])
    for threads, on_me in ((1, True), (2, False)):
        _without_depth(ps)
        ran.clear()
        assert tap(ps, x, y, threads=threads).filled_from == "depth map"
        assert ran and all((t == threading.get_ident()) == on_me for t in ran), (threads, ran)
    with pytest.raises(OptionError, match="threads"):
        tap(ps, x, y, threads=0)
    _without_depth(ps)
    ran.clear()
    result = pop(ps, x, y, threads=1)
    assert result.tap.filled_from == "depth map" and len(ran) == 1  # (the depth map's fill only)
    assert not list(ps.folder.glob("tap_depth_*.npz"))


def test_a_point_given_as_small_numpy_integers_is_tapped_as_its_numbers(tiny_stack, tmp_path):
    """``tap(ps, np.uint8(30), np.int8(20))`` (a point read from a small-integer array) was NumPy's "OverflowError:
    Python integer 196 out of bounds for int8": the point was compared with the picture's size in its own type
    (review20). A point is its numbers, whatever their type; out of the picture it is refused as any."""
    from postfocus.products.refocus import is_plain

    ps = process(tiny_stack.folder, cache_dir=tmp_path)
    assert tap(ps, np.uint8(30), np.int8(20)) == tap(ps, 30, 20)
    assert is_plain(ps, np.int8(30), np.uint8(20)) == is_plain(ps, 30, 20)
    with pytest.raises(PostfocusError, match="outside the image"):
        tap(ps, np.int8(-3), np.int8(20))


def _uncut(a: np.ndarray, place) -> np.ndarray:
    """Cut maps ``a`` (..., h, w) back in the uncut maps' shape at their map origin (edges replicated)."""
    (ph, pw), (my, mx) = place.shape, place.map_origin
    h, w = a.shape[-2:]
    return np.pad(np.asarray(a, np.float32), [(0, 0)] * (a.ndim - 2) + [(my, ph - my - h), (mx, pw - mx - w)], "edge")


@pytest.fixture(scope="module")
def shaken_kept(tmp_path_factory):
    """merge9's rendered stack (frames move, so the output is a crop; maps at 0.8 scale) kept in a folder."""
    from postfocus.synth import write_stack

    sharp, depth01 = scene("steps", (600, 1000), seed=5)
    st = render_stack(sharp, depth01, 6, max_blur=5.0, seed=5, shake_px=6.0, noise=0.003)
    folder = tmp_path_factory.mktemp("shaken_kept")
    write_stack(st, folder / "frames", fmt="jpg")
    return process(folder / "frames", cache_dir=folder / "cache", threads=1)


def test_a_tap_on_kept_cut_maps_reads_the_window_the_uncut_maps_had(shaken_kept):
    """A kept stack's maps are cut to the output crop; main's tap mapped output pixels onto the cut maps' own grid,
    so 28 % of the pixels read a window one map pixel off the uncut maps' (the grid ``postfocus stack`` merges on)
    and 26 of 400 taps along the depth edges answered otherwise (5 another frame; bench/grid_kept.py). The tap now
    reads the uncut maps' grid (StackMaps.map_grid): the same answers as a tap on the uncut maps."""
    from postfocus.products.refocus import sharpest_frame, stack_floor

    ps = shaken_kept
    maps, place = ps.maps, ps.maps.grid_place
    assert place is not None and place.origin != (0, 0) and maps.shape != place.shape
    (ph, pw), (PH, PW), (oy, ox) = place.shape, place.size, place.origin
    H, W = maps.size
    fi = maps.focus_index  # points along the depth edges (the focus index changes by more than a frame)
    edge = cv2.morphologyEx(fi, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 1
    band = cv2.resize(cv2.dilate(edge.astype(np.uint8), np.ones((3, 3), np.uint8)), (W, H),
                      interpolation=cv2.INTER_NEAREST)[12:-12, 12:-12]
    ys, xs = np.nonzero(band)
    pick = np.random.default_rng(0).choice(len(xs), 200, replace=False)
    volume, floor = _uncut(maps.volume, place), stack_floor(ps)
    compared = moved = 0
    for k in pick:
        x, y = float(xs[k] + 12), float(ys[k] + 12)
        ref = sharpest_frame(volume, list(maps.used), x + ox, y + oy, map_scale=(pw / PW, ph / PH), floor=floor)
        if ref.fallback:
            continue
        got = tap(ps, x, y, make=False)  # (the window's own answer: no depth made, fixes25; its reading: test_tap_read)
        compared += 1
        assert (got.frame, got.position) == pytest.approx((ref.frame, ref.position), abs=1e-9), (x, y)
        assert (got.source_x, got.source_y) == pytest.approx((ref.source_x - ox, ref.source_y - oy))
        own = (round(x * maps.shape[1] / W), round(y * maps.shape[0] / H))  # (main's window centre)
        moved += own != (round((x + ox) * pw / PW) - place.map_origin[1], round((y + oy) * ph / PH) - place.map_origin[0])
    assert compared > 100 and moved > 20, (compared, moved)  # (the points do test the difference)


def test_kept_cut_maps_upscale_onto_the_uncut_maps_pixels(shaken_kept):
    """StackMaps.upscale (the motion mask ``stack --motion-mask`` writes) resized the cut maps on their own grid:
    on this stack up to 1.56 frames off the uncut maps' focus index 8 px inside the edges (bench/grid_kept.py);
    now the uncut grid: inside, to the bit what pass 2's upscale of the uncut maps gives (fuse.base.region_grid),
    and within float rounding of a plain resize of the uncut maps."""
    from postfocus.fuse.base import region_grid, upscale_region

    maps = shaken_kept.maps
    place = maps.grid_place
    (PH, PW), (oy, ox), (H, W) = place.size, place.origin, maps.size
    uncut, box = _uncut(maps.focus_index, place), (oy, ox, oy + H, ox + W)
    merged = upscale_region(uncut, (PH, PW), box, grid=region_grid(uncut.shape, (PH, PW), box))
    resized = cv2.resize(uncut, (PW, PH), interpolation=cv2.INTER_LINEAR)[oy:oy + H, ox:ox + W]
    inner = (slice(8, -8), slice(8, -8))  # (beyond the cut the uncut maps had other values than the replicated edge)
    up = maps.upscale(maps.focus_index)
    np.testing.assert_array_equal(up[inner], merged[inner])
    assert np.abs(up - resized)[inner].max() < 1e-3  # (frames; float32 grid arithmetic against resize)
