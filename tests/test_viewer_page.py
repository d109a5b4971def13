"""The self-contained page: export, then drive it in headless Chromium from file://.

The sweep is built here: a textured photo whose left half is sharp in frame 0
and blurs frame by frame, the right half the reverse (sharp in the last frame).
So a tap on the left must show frame 0 and a tap on the right the last frame,
by construction, and the page must agree with ``postfocus.products.refocus.tap`` at
every point, not only there.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser import artifact_path
from conftest import save_rgb, textured_scene
from PIL import Image

from postfocus.products.refocus import plain_fill, sharpest_frame, stack_floor, tap
from postfocus.pipeline.run import process
from postfocus.viewer.export import export_page, render_page, viewer_data
from postfocus.viewer.tapmap import stack_tap_map

H, W, N = 240, 320, 6
BLUR_STEP = 0.8  # sigma added per frame away from a half's sharp frame
VIEWPORT = {"width": 960, "height": 760}
ALLOWED_SCHEMES = ("data:", "file:", "blob:", "about:")


def make_sweep(folder: Path, plain: tuple[int, int, int, int] | None = None) -> Path:
    """The sweep's frames in ``folder``; ``plain`` (top, bottom, left, right): a flat grey square in the scene."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = textured_scene(H, W)
    if plain is not None:
        top, bottom, left, right = plain
        scene[top:bottom, left:right] = 0.3
    for k in range(N):
        left_sigma, right_sigma = BLUR_STEP * k, BLUR_STEP * (N - 1 - k)
        left = scene if left_sigma == 0 else cv2.GaussianBlur(scene, (0, 0), left_sigma)
        right = scene if right_sigma == 0 else cv2.GaussianBlur(scene, (0, 0), right_sigma)
        frame = np.where(np.arange(W)[None, :, None] < W // 2, left, right)
        save_rgb(folder / f"frame{k}.png", frame)
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewer")
    frames = make_sweep(root / "frames")
    ps = process(frames, cache_dir=root / "cache")
    page = export_page(ps, root / "sweep.html")
    return ps, page


@pytest.fixture
def page(browser, sweep):  # noqa: F811 (fixture)
    """The exported page opened from file://, ready; checks afterwards that nothing went to the network."""
    yield from _open(browser, sweep[1])


def _open(browser, path: Path, **context):  # noqa: F811
    ctx = browser.new_context(viewport=VIEWPORT, **context)
    pg = ctx.new_page()
    requests, errors = [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(path.resolve().as_uri())
    wait_ready(pg)
    pg.requests = requests
    try:
        yield pg
        assert not errors, f"page errors: {errors}"
        assert requests and requests[0].startswith("file:"), requests
        outside = [u for u in requests if not u.startswith(ALLOWED_SCHEMES)]
        assert not outside, f"the page made network requests: {outside}"
    finally:
        ctx.close()


def wait_ready(pg, timeout: float = 20.0) -> None:
    """Wait until the viewer has decoded its maps (polled from Python: the page's CSP forbids eval,
    which Playwright's wait_for_function needs)."""
    end = time.monotonic() + timeout
    while not pg.evaluate("() => !!(window.postfocusState && window.postfocusState.ready)"):
        if time.monotonic() > end:
            raise AssertionError("the page did not become ready")
        pg.wait_for_timeout(25)


def state(pg) -> dict:
    return pg.evaluate("window.postfocusState")


def stage_box(pg) -> dict:
    return pg.locator(".pf-stage").bounding_box()


def click_at(pg, fx: float, fy: float) -> dict:
    """Click at a fraction of the picture; return the state after the tap."""
    box = stage_box(pg)
    pg.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    return state(pg)


def stage_shot(pg, name: str) -> np.ndarray:
    """Screenshot of the picture once the cross-fade has ended (saved as a test artefact)."""
    pg.wait_for_timeout(350)
    png = pg.locator(".pf-stage").screenshot()
    artifact_path(name).write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32) / 255


def sharpness(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())


def saturation(rgb: np.ndarray) -> float:
    return float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean())


def halves(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    m = w // 10
    return img[m:-m, m : w // 2 - m], img[m:-m, w // 2 + m : -m]


# ------------------------------------------------------------------ no browser


def test_page_is_one_self_contained_file(sweep):
    ps, path = sweep
    text = path.read_text(encoding="utf-8")
    assert not list(path.parent.glob(".*.part")), "temporary file left behind"
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert csp == "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    assert not re.search(r'<script[^>]+src=|<link[^>]+stylesheet|@import|url\(\s*["\']?https?:', text, re.I)
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text, re.I)
    assert "PostfocusViewer" in text
    assert not re.search(r"\{\{(title|generator|data|css|js|created|frame_count|fallback_src)\}\}", text)
    # ES2019: no optional chaining or nullish coalescing in the viewer.
    js = (Path(__file__).parents[1] / "src/postfocus/viewer/viewer.js").read_text()
    assert not re.search(r"\?\.(?![0-9])|\?\?", js)


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_viewer_script_parses():
    js = Path(__file__).parents[1] / "src/postfocus/viewer/viewer.js"
    subprocess.run(["node", "--check", str(js)], check=True, capture_output=True)


def test_tap_map_equals_python_tap_everywhere(sweep):
    ps = sweep[0]
    tm = stack_tap_map(ps)
    mh, mw = ps.focus_index.shape
    assert tm.slot.shape == (mh, mw)
    vol, conf = np.asarray(ps.volume), np.asarray(ps.confidence)
    floor, fill = stack_floor(ps), plain_fill(ps)[0]  # as tap() reads them
    from postfocus.products.tap_read import depth_radius, depth_weights

    near = depth_radius(ps.size, ps.maps.map_grid()[0])  # (every window reads the depth since fixes25)
    weights = depth_weights(ps, fill.shape)  # (weighed by the kept depth's confidence: conf20)
    assert floor > 0
    for y in range(0, mh, 5):
        for x in range(0, mw, 4):
            t = sharpest_frame(vol, ps.used, x, y, confidence_map=conf, floor=floor, fill=fill, fill_radius=near,
                               fill_weights=weights)
            assert tm.frame[y, x] == t.frame, (x, y)
            assert tm.fallback[y, x] == t.fallback
            assert abs(tm.position[y, x] - t.position) < 1e-3
    # and by construction: left half sharpest in frame 0, right half in the last
    assert (tm.frame[:, 10 : mw // 2 - 10] == ps.used[0]).mean() > 0.9
    assert (tm.frame[:, mw // 2 + 10 : -10] == ps.used[-1]).mean() > 0.9


def test_tap_map_without_a_depth_map_answers_as_the_tap_does(tmp_path):
    """Before any depth map is kept, a plain window's tap answers from the depth made on the focus map's grid
    (tap13): the page's tap map reads the same fill, and equals ``tap()`` at every pixel asked."""
    plain = (80, 170, 30, 130)  # a flat grey square in the left half (sharp in frame 0)
    ps = process(make_sweep(tmp_path / "frames", plain), cache_dir=tmp_path / "cache")
    assert not list(ps.folder.glob("depth_*.npz"))
    tm = stack_tap_map(ps)
    assert tm.filled_from == plain_fill(ps)[1] == "depth map" and tm.fallback.any()
    assert list(ps.folder.glob("tap_depth_*.npz")) and not list(ps.folder.glob("depth_*.npz"))
    mh, mw = ps.focus_index.shape
    h, w = ps.size
    for y in range(0, mh, 5):
        for x in range(0, mw, 4):
            t = tap(ps, x * w / mw, y * h / mh)
            assert (tm.frame[y, x], bool(tm.fallback[y, x])) == (t.frame, t.fallback), (x, y)
            assert abs(tm.position[y, x] - t.position) < 1e-3


def test_tap_map_fallback_matches_python():
    rng = np.random.default_rng(3)
    n, h, w = 5, 60, 90
    vol = np.full((n, h, w), 0.2, np.float32)  # flat: no frame stands out
    vol[:, 5:25, 60:85] = rng.random((n, 1, 1)) * 0.2
    vol[3, 5:25, 60:85] = 1.0  # one textured patch, sharpest in frame 3
    vol[1, 40:55, 5:20] = 1.0  # another, frame 1
    vol += rng.random(vol.shape).astype(np.float32) * 0.01
    conf = rng.random((h, w)).astype(np.float32)
    from postfocus.viewer.tapmap import tap_map

    tm = tap_map(vol.astype(np.float16), [0, 2, 4, 6, 8], conf, radius=3)
    assert tm.fallback.mean() > 0.5
    for y in range(0, h, 2):
        for x in range(0, w, 3):
            t = sharpest_frame(vol.astype(np.float16), [0, 2, 4, 6, 8], x, y, confidence_map=conf, radius=3)
            assert (tm.frame[y, x], bool(tm.fallback[y, x])) == (t.frame, t.fallback), (x, y)


def test_tap_map_with_a_floor_and_a_fill_matches_python():
    """A plain window (at the noise floor) answers with the fill at the point, in the map as in the tap."""
    rng = np.random.default_rng(5)
    n, h, w = 5, 60, 90
    vol = (0.05 + 0.02 * rng.random((n, h, w))).astype(np.float32)  # noise: a curve with no shape
    vol[3, 5:25, 60:85] = 1.0  # texture, sharpest in frame 3
    fill = np.linspace(0, 8, w, dtype=np.float32)[None, :].repeat(h, 0)
    from postfocus.viewer.tapmap import tap_map

    tm = tap_map(vol.astype(np.float16), [0, 2, 4, 6, 8], None, radius=3, floor=0.06, fill=fill)
    assert 0.5 < tm.fallback.mean() < 1.0
    for y in range(0, h, 2):
        for x in range(0, w, 3):
            t = sharpest_frame(vol.astype(np.float16), [0, 2, 4, 6, 8], x, y, radius=3, floor=0.06, fill=fill)
            assert (tm.frame[y, x], bool(tm.fallback[y, x])) == (t.frame, t.fallback), (x, y)
            assert abs(tm.position[y, x] - t.position) < 1e-4


# ---------------------------------------------------------------- in Chromium


@pytest.mark.browser
def test_tap_near_and_far_match_python(page, sweep):
    ps = sweep[0]
    first, last = ps.used[0], ps.used[-1]
    for fx, expected in ((0.25, first), (0.75, last), (0.1, first), (0.9, last)):
        s = click_at(page, fx, 0.5)
        t = s["lastTap"]
        assert t is not None and s["mode"] == "frame"
        answer = tap(ps, t["x"], t["y"])
        assert s["frame"] == answer.frame == expected, (fx, s, answer)
        assert page.locator("#postfocus").get_attribute("data-frame") == str(expected)
        assert t["confidence"] == pytest.approx(answer.confidence, abs=0.01)
        assert t["ms"] < 50, f"tap took {t['ms']:.1f} ms"
    shot = stage_shot(page, "viewer-tap-far.png")
    left, right = halves(shot)
    assert sharpness(right) > 3 * sharpness(left)  # the far (right) half is what is sharp now
    s = click_at(page, 0.25, 0.5)
    shot = stage_shot(page, "viewer-tap-near.png")
    left, right = halves(shot)
    assert sharpness(left) > 3 * sharpness(right)


@pytest.mark.browser
def test_page_tap_agrees_with_python_on_a_grid(page, sweep):
    ps = sweep[0]
    h, w = ps.size
    points = [(x, y) for y in np.linspace(0, h - 1, 9) for x in np.linspace(0, w - 1, 23)]
    points += [(w / 2 + d, h / 2) for d in (-3.5, -2.5, -1, -0.5, 0, 0.5, 1, 2.5, 3.5)]  # the seam, halves
    answers = page.evaluate(
        "pts => pts.map(p => window.postfocusViewer.tapAnswer(p[0], p[1]))", [list(map(float, p)) for p in points]
    )
    for (x, y), a in zip(points, answers):
        t = tap(ps, x, y)
        assert (a["frame"], a["fallback"]) == (t.frame, t.fallback), (x, y, a, t)
        assert a["position"] == pytest.approx(t.position, abs=(ps.used[-1] - ps.used[0]) / 255 + 1e-6)


@pytest.mark.browser
def test_all_in_focus_toggle(page):
    click_at(page, 0.25, 0.5)
    page.get_by_role("button", name="All in focus").click()
    assert state(page)["mode"] == "allInFocus"
    assert page.locator("#postfocus").get_attribute("data-mode") == "allInFocus"
    left, right = halves(stage_shot(page, "viewer-all-in-focus.png"))
    page.keyboard.press("a")
    assert state(page)["mode"] == "frame"
    left0, right0 = halves(stage_shot(page, "viewer-frame0.png"))
    assert sharpness(left) > 0.7 * sharpness(left0)
    assert sharpness(right) > 3 * sharpness(right0)
    page.keyboard.press("A")
    assert state(page)["mode"] == "allInFocus"


@pytest.mark.browser
def test_slider_and_keyboard_change_the_frame(page, sweep):
    ps = sweep[0]
    click_at(page, 0.25, 0.5)
    assert state(page)["slot"] == 0
    page.keyboard.press("ArrowRight")
    assert state(page)["frame"] == ps.used[1]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    assert state(page)["frame"] == ps.used[1]
    page.keyboard.press("End")
    assert state(page)["frame"] == ps.used[-1]
    page.keyboard.press("ArrowRight")  # stays at the end
    assert state(page)["frame"] == ps.used[-1]
    slider = page.locator(".pf-slider input")
    slider.fill("2")
    assert state(page)["frame"] == ps.used[2] and state(page)["mode"] == "frame"
    slider.focus()
    page.keyboard.press("ArrowRight")  # the slider steps itself: one frame, not two
    assert state(page)["frame"] == ps.used[3]
    assert slider.input_value() == "3"
    page.keyboard.press("a")  # letters still work with the slider focused
    assert state(page)["mode"] == "allInFocus"
    page.keyboard.press("ArrowLeft")  # a frame step leaves all-in-focus
    assert state(page)["mode"] == "frame" and state(page)["frame"] == ps.used[2]
    assert page.locator("#postfocus").get_attribute("data-frame") == str(ps.used[2])


@pytest.mark.browser
def test_frame_texts_count_from_one_with_the_file_name(page, sweep):
    """People read 'Frame 3 of 6 (frame2.png)' in the status, the slider and the pictures' alt texts;
    the state, the data and data-frame stay 0-based."""
    ps = sweep[0]
    n = len(ps.names)
    for key, k in (("Home", 0), ("ArrowRight", 1), ("End", N - 1)):
        page.keyboard.press(key)
        label = f"Frame {k + 1} of {n} (frame{k}.png)"
        s = state(page)
        assert (s["frame"], s["label"], s["frameCount"]) == (k, label, n)
        assert page.inner_text(".pf-status").startswith(label + ".")
        assert page.inner_text(".pf-slider-label") == label  # (was "frame 3 of 6": the name now too, fixes25)
        assert page.get_attribute(".pf-slider input", "aria-valuetext") == label
        assert page.locator("#postfocus").get_attribute("data-frame") == str(k)
    alts = page.eval_on_selector_all(".pf-layer[data-slot]", "els => els.map(e => e.alt)")
    assert alts == [f"Frame {i + 1} of {n} (frame{i}.png)" for i in ps.used]
    assert not re.search(r"\bframe 0\b", page.inner_text("body"), re.IGNORECASE)


@pytest.mark.browser
def test_frame_texts_with_frames_left_out(browser, sweep, tmp_path):  # noqa: F811
    """Frames left out of the sweep keep their numbers: the page counts the sweep's frames (frameCount),
    not the frames it holds, so 'Frame 5 of 6' is the fifth photo even when the second is missing."""
    ps = sweep[0]
    data = viewer_data(ps, long_edge=120)
    assert data["frameCount"] == len(ps.names) == N
    del data["tapMap"]  # its slots index the frames removed here
    keep = [k for k, f in enumerate(data["frames"]) if f["index"] not in (1, N - 1)]
    data["frames"] = [data["frames"][k] for k in keep]
    data["names"] = [data["names"][k] for k in keep]
    path = tmp_path / "left-out.html"
    path.write_text(render_page(data), encoding="utf-8")
    for pg in _open(browser, path):
        for key, k in (("Home", 0), ("ArrowRight", 2), ("End", N - 2)):
            pg.keyboard.press(key)
            assert state(pg)["label"] == f"Frame {k + 1} of {N} (frame{k}.png)"
            assert pg.inner_text(".pf-slider-label") == f"Frame {k + 1} of {N} (frame{k}.png)"
            assert pg.inner_text(".pf-status").startswith(f"Frame {k + 1} of {N} (frame{k}.png).")


@pytest.mark.browser
def test_the_slider_names_a_video_frame_as_the_command_line_does(browser, sweep, tmp_path):  # noqa: F811
    """A video's frame has no file name: the slider's readout, the status and the state say it with its time, as
    ``postfocus.labels.frame_label`` (every CLI message) does: 'Frame 6 of 6 (0.20 s)' for 'frame 6 (0.20 s)'.
    On main the readout was 'frame 6 of 6' and the label 'Frame 6 of 6'."""
    from postfocus.io.video_write import write_video
    from postfocus.labels import frame_label

    frames = [np.asarray(Image.open(sweep[0].info.paths[k]).convert("RGB"), np.float32) / 255 for k in range(N)]
    video = process(write_video(frames, tmp_path / "sweep.mp4", fps=25), cache_dir=tmp_path / "cache")
    path = export_page(video, tmp_path / "video.html", long_edge=120)
    for pg in _open(browser, path):
        for key, k in (("Home", 0), ("End", N - 1)):
            pg.keyboard.press(key)
            said = frame_label(video.names, k, fps=video.info.fps)  # 'frame 6 (0.20 s)'
            label = f"Frame {k + 1} of {N} {said[said.index('('):]}"
            assert said == f"frame {k + 1} ({k / 25:.2f} s)" and state(pg)["label"] == label
            assert pg.inner_text(".pf-slider-label") == label
            assert pg.inner_text(".pf-status").startswith(label + ".")


@pytest.mark.browser
def test_a_plain_tap_says_the_map_that_decided_as_the_tap_does(browser, tmp_path):  # noqa: F811
    """A tap on a plain square is answered from the depth map's fill at the point (the page makes the map, and
    its tap map reads it as ``tap()`` does); the page said "the nearest detailed area decided", which no longer
    answers there (review14). It names the map, as ``Tap.describe`` and the command line do."""
    plain = (80, 170, 30, 130)  # top, bottom, left, right: in the left half (sharp in frame 0)
    ps = process(make_sweep(tmp_path / "frames", plain), cache_dir=tmp_path / "cache")
    path = export_page(ps, tmp_path / "plain.html")
    data = viewer_data(ps, long_edge=120)
    assert data["tapMap"]["filledFrom"] == plain_fill(ps)[1] == "depth map"
    t, l = ps.manifest.get("crop", [0, 0])[:2]
    h, w = ps.size
    x, y = (plain[2] + plain[3]) / 2 - l, (plain[0] + plain[1]) / 2 - t
    answer = tap(ps, x, y)
    assert answer.fallback and answer.filled_from == "depth map", answer
    for pg in _open(browser, path):
        s = click_at(pg, x / w, y / h)
        assert s["lastTap"]["fallback"] and s["lastTap"]["filledFrom"] == "depth map"
        assert s["lastTap"]["frame"] == answer.frame
        said = pg.inner_text(".pf-status")
        assert "too little texture there, so the depth map, filled in from the textured areas around, decided" in said
        assert "nearest" not in said
        s = click_at(pg, 0.85, 0.5)  # texture: no fallback, nothing said of one
        assert not s["lastTap"]["fallback"] and s["lastTap"]["filledFrom"] == ""
        assert "too little texture" not in pg.inner_text(".pf-status")


@pytest.mark.browser
def test_colour_pop_depth_and_magnifier(page):
    click_at(page, 0.25, 0.5)  # the near subject: left half
    page.keyboard.press("p")
    s = state(page)
    assert s["mode"] == "pop" and s["popPosition"] == pytest.approx(0, abs=0.3)
    left, right = halves(stage_shot(page, "viewer-pop-near.png"))
    assert saturation(left) > 0.15 and saturation(right) < 0.03
    s = click_at(page, 0.75, 0.5)  # in pop mode a tap chooses the subject
    assert s["mode"] == "pop" and s["popPosition"] > 4
    left, right = halves(stage_shot(page, "viewer-pop-far.png"))
    assert saturation(right) > 0.15 and saturation(left) < 0.03
    page.get_by_role("button", name="Colour pop").click()
    assert state(page)["mode"] == "frame"

    page.keyboard.press("d")
    assert state(page)["mode"] == "depth"
    stage_shot(page, "viewer-depth.png")
    page.keyboard.press("d")
    assert state(page)["mode"] == "frame"

    assert click_at(page, 0.25, 0.5)["slot"] == 0  # frame 0: the left half is sharp
    page.keyboard.press("m")
    assert state(page)["magnifier"] is True
    box = stage_box(page)
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.5 * box["height"])
    assert page.locator(".pf-loupe").is_visible()
    page.wait_for_timeout(50)
    peaks_sharp = page.evaluate("window.postfocusViewer.loupePeaks")
    page.screenshot(path=str(artifact_path("viewer-magnifier.png")))
    page.mouse.move(box["x"] + 0.75 * box["width"], box["y"] + 0.5 * box["height"])
    peaks_blurred = page.evaluate("window.postfocusViewer.loupePeaks")
    assert peaks_sharp > 0.02 and peaks_blurred < peaks_sharp / 4  # peaking marks the sharp half (frame 0)
    page.keyboard.press("M")
    assert state(page)["magnifier"] is False and not page.locator(".pf-loupe").is_visible()


@pytest.mark.browser
def test_long_sweep_slider_spans_the_scene(browser, tmp_path):  # noqa: F811
    """On a 21-frame generated sweep whose scene lies at depths 2 to 5, the slider spans frames 1 to 6 (the scene
    and a frame either side, ``test_viewer_scene``); *Whole sweep* (W) widens it to every frame; a tap beyond the
    scene widens it too, so it shows the frame in view; colour pop's tolerance reaches the pop drawn."""
    from test_viewer_scene import FRAMES, write_long_sweep

    ps = process(write_long_sweep(tmp_path / "frames"), cache_dir=tmp_path / "cache")
    scene = viewer_data(ps, long_edge=240, tap_map=False)["scene"]
    assert (scene["first"], scene["last"]) == (1, 6)
    for pg in _open(browser, export_page(ps, tmp_path / "long.html", pull_on_load=False)):
        slider = pg.locator(".pf-slider input")
        s = state(pg)
        assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("1", "6")
        assert (s["sliderFirst"], s["sliderLast"], s["wholeSweep"], s["frame"]) == (1, 6, False, 1)
        pg.keyboard.press("End")
        assert state(pg)["frame"] == 6
        pg.keyboard.press("ArrowRight")  # the scene's end: the slider's end
        assert state(pg)["frame"] == 6
        pg.keyboard.press("Home")
        assert state(pg)["frame"] == 1
        sweep_button = pg.get_by_role("button", name="Whole sweep")
        sweep_button.click()
        assert (slider.get_attribute("min"), slider.get_attribute("max")) == ("0", str(FRAMES - 1))
        assert state(pg)["wholeSweep"] is True and sweep_button.get_attribute("aria-pressed") == "true"
        pg.keyboard.press("End")
        assert state(pg)["frame"] == FRAMES - 1
        pg.keyboard.press("w")  # back to the scene: the frame shown moves into it
        s = state(pg)
        assert (s["wholeSweep"], s["frame"], slider.get_attribute("max")) == (False, 6, "6")
        pg.evaluate("window.postfocusViewer.showSlot(15)")  # a frame beyond the scene: the slider widens to it
        s = state(pg)
        assert s["wholeSweep"] is True and slider.input_value() == "15"
        pg.keyboard.press("w")
        click_at(pg, 0.75, 0.75)  # the nearest card (depth 2)
        pg.keyboard.press("p")
        wide = pg.evaluate("window.postfocusViewer.popCoverage")
        pg.evaluate("window.postfocusViewer.setPopTolerance(0.25)")
        tight = pg.evaluate("window.postfocusViewer.popCoverage")
        assert state(pg)["mode"] == "pop" and tight < wide - 0.05, (tight, wide)


@pytest.mark.browser
def test_touch_tap(browser, sweep):  # noqa: F811
    ps = sweep[0]
    for pg in _open(browser, sweep[1], has_touch=True, is_mobile=True):
        box = stage_box(pg)
        pg.touchscreen.tap(box["x"] + 0.8 * box["width"], box["y"] + 0.4 * box["height"])
        s = state(pg)
        assert s["lastTap"] is not None
        assert s["frame"] == tap(ps, s["lastTap"]["x"], s["lastTap"]["y"]).frame == ps.used[-1]
        pg.touchscreen.tap(box["x"] + 0.2 * box["width"], box["y"] + 0.4 * box["height"])
        assert state(pg)["frame"] == ps.used[0]


@pytest.mark.browser
def test_state_is_read_only(page):
    before = state(page)
    page.evaluate("() => { try { window.postfocusState = {frame: 99}; } catch (e) {} }")
    page.evaluate("() => { try { window.postfocusState.frame = 99; } catch (e) {} }")
    assert state(page) == before


@pytest.mark.browser
def test_webp_page_and_browser_computed_taps(browser, sweep, tmp_path):  # noqa: F811
    """A WebP page, and the volume path: taps computed in the page from a coarse focus grid."""
    ps = sweep[0]
    webp = export_page(ps, tmp_path / "webp.html", fmt="webp", long_edge=200)
    assert "data:image/webp;base64," in webp.read_text()
    for pg in _open(browser, webp):
        assert click_at(pg, 0.8, 0.5)["frame"] == ps.used[-1]
    data = viewer_data(ps, long_edge=200, tap_map=False, volume=True)
    path = tmp_path / "volume.html"
    path.write_text(render_page(data), encoding="utf-8")
    vol = data["volume"]
    from postfocus.viewer.export import volume_grid

    grid, radius = volume_grid(ps)
    n, gw = len(ps.used), vol["width"]
    gh = vol["height"] // n
    grid = grid.reshape(n, gh, gw).astype(np.float32)
    h, w = ps.size
    points = [(float(x), float(y)) for y in np.linspace(0, h - 1, 7) for x in np.linspace(0, w - 1, 11)]
    for pg in _open(browser, path):
        answers = pg.evaluate("pts => pts.map(p => window.postfocusViewer.tapAnswer(p[0], p[1]))", points)
        for (x, y), a in zip(points, answers):
            t = sharpest_frame(grid, ps.used, x, y, map_scale=(gw / w, gh / h), radius=radius)
            assert (a["frame"], a["fallback"]) == (t.frame, t.fallback), (x, y)
            assert a["position"] == pytest.approx(t.position, abs=1e-6)
            assert a["confidence"] == pytest.approx(t.confidence, abs=1e-6)


def test_view_command(cli, sweep, tmp_path):
    ps, _ = sweep
    frames = Path(ps.manifest["paths"][0]).parent
    out = tmp_path / "cli.html"
    t0 = time.time()
    run = cli("-q", "view", frames, "-o", out, "--long-edge", "200", "--quality", "70", "--cache", tmp_path / "c")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out) and out.stat().st_size > 10_000
    assert time.time() - t0 < 120
    bad = cli("view", frames, "-o", tmp_path / "page.jpg", "--cache", tmp_path / "c")
    assert bad.returncode == 2 and len(bad.err_lines) == 1 and ".html" in bad.stderr


@pytest.mark.browser
def test_same_module_with_http_urls(browser, sweep, tmp_path):  # noqa: F811
    """The web app's way: viewer.js and viewer.css by URL, pictures and maps as files behind http URLs."""
    import functools
    import http.server
    import json
    import threading

    from postfocus.viewer.export import viewer_script, viewer_style

    ps = sweep[0]
    site = tmp_path / "site"
    (site / "pictures").mkdir(parents=True)

    def src(name: str, payload: bytes, mime: str) -> str:  # noqa: ARG001
        (site / "pictures" / name).write_bytes(payload)
        return f"/pictures/{name}"

    data = viewer_data(ps, long_edge=200, src=src)
    assert all(not str(f["src"]).startswith("data:") for f in data["frames"])
    (site / "viewer.js").write_text(viewer_script())
    (site / "viewer.css").write_text(viewer_style())
    (site / "index.html").write_text(
        '<!DOCTYPE html><meta charset="utf-8"><link rel="stylesheet" href="/viewer.css">'
        '<div id="postfocus"></div><script src="/viewer.js"></script><script>'
        f"window.v = PostfocusViewer.mount(document.getElementById('postfocus'), {json.dumps(data)});"
        "</script>"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ctx = browser.new_context(viewport=VIEWPORT)
        pg = ctx.new_page()
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        wait_ready(pg)
        assert state(pg)["warnings"] == [], "the tap map must decode exactly from an http URL too"
        for fx in (0.2, 0.8, 0.45, 0.55):
            s = click_at(pg, fx, 0.3)
            assert s["frame"] == tap(ps, s["lastTap"]["x"], s["lastTap"]["y"]).frame
        pg.keyboard.press("p")
        assert state(pg)["mode"] == "pop"
        assert not errors, errors
        ctx.close()
    finally:
        server.shutdown()
        server.server_close()
