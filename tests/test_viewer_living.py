"""The living picture in the page: parallax moves the near more than the far, the focus-pull hint plays once.

The sweep is built here: a textured photo with a square in the middle that is
sharp in frame 0 (near) while the rest is sharp in the last frame (far). So
the depth map has a near square on a far background by construction; tilted
with the pointer, the page must move the square's pixels by the tilt's
amplitude and leave the background in place (the zero-parallax plane), and
fill what the square uncovers from the background layer.
"""

from __future__ import annotations

import base64
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
from test_viewer_page import _open
from PIL import Image

from postfocus.pipeline.run import process
from postfocus.viewer.export import render_page, viewer_data
from postfocus.viewer.living import AMPLITUDE, background_layer, depth_levels

H, W, N = 240, 320, 6
SQUARE = (slice(70, 170), slice(110, 210))
LIVING_JS = Path(__file__).parents[1] / "src/postfocus/viewer/living.js"


def make_sweep(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    scene = textured_scene(H, W)
    near = np.zeros((H, W), bool)
    near[SQUARE] = True
    for k in range(N):
        s_near, s_far = 0.9 * k, 0.9 * (N - 1 - k)
        a = scene if s_near == 0 else cv2.GaussianBlur(scene, (0, 0), s_near)
        b = scene if s_far == 0 else cv2.GaussianBlur(scene, (0, 0), s_far)
        save_rgb(folder / f"frame{k}.png", np.where(near[..., None], a, b))
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("living")
    ps = process(make_sweep(root / "frames"), cache_dir=root / "cache")
    data = viewer_data(ps)
    page = root / "sweep.html"
    page.write_text(render_page(data), encoding="utf-8")
    data["living"]["pull"]["onLoad"] = False
    quiet = root / "quiet.html"
    quiet.write_text(render_page(data), encoding="utf-8")
    return ps, page, quiet


def opened(browser, path: Path, **context):  # noqa: F811
    """The page from file:// (test_viewer_page's opener: no page error, no request outside), living picture ready."""
    for pg in _open(browser, path, **context):
        wait_for(pg, "() => !!(window.postfocusLivingState && window.postfocusLivingState.ready)")
        yield pg


@pytest.fixture
def page(browser, sweep):  # noqa: F811
    """The page that plays its focus-pull hint."""
    yield from opened(browser, sweep[1])


@pytest.fixture
def quiet_page(browser, sweep):  # noqa: F811
    """The page made with the hint turned off."""
    yield from opened(browser, sweep[2])


@pytest.fixture
def still_page(browser, sweep):  # noqa: F811
    """The page with the hint, opened where the system asks for reduced motion."""
    yield from opened(browser, sweep[1], reduced_motion="reduce")


def wait_for(pg, script: str, timeout: float = 20.0) -> None:
    """Poll ``script`` from Python (the page's CSP forbids the eval that wait_for_function needs)."""
    end = time.monotonic() + timeout
    while not pg.evaluate(script):
        if time.monotonic() > end:
            raise AssertionError(f"never true: {script}")
        pg.wait_for_timeout(25)


def living(pg) -> dict:
    return pg.evaluate("window.postfocusLivingState")


def canvas_pixels(pg) -> np.ndarray:
    url = pg.evaluate("() => window.postfocusLiving.canvas.toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32) / 255


def tilt_with_pointer(pg, fx: float) -> np.ndarray:
    """Move the mouse to a fraction of the picture's width, wait for the tilt to settle, read the canvas."""
    box = pg.locator(".pf-stage").bounding_box()
    pg.mouse.move(box["x"] + fx * box["width"], box["y"] + 0.5 * box["height"], steps=4)
    target = 2 * fx - 1
    wait_for(pg, f"() => Math.abs(window.postfocusLivingState.tilt.x - ({target})) < 0.005")
    pg.wait_for_timeout(50)
    return canvas_pixels(pg)


def shift_between(a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Horizontal shift s (pixels) with a(x - s) ~ b(x) over the box (a 1-D search in 0.1 px steps)."""
    y0, y1, x0, x1 = box
    ga, gb = (cv2.cvtColor(v, cv2.COLOR_RGB2GRAY) for v in (a, b))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    shifts = np.arange(-20, 20.001, 0.1, dtype=np.float32)
    errors = [float(((cv2.remap(ga, xs - s, ys, cv2.INTER_LINEAR) - gb[y0:y1, x0:x1]) ** 2).mean()) for s in shifts]
    return float(shifts[int(np.argmin(errors))])


# ------------------------------------------------------------------ no browser


def test_background_layer_grows_the_far_side_only():
    rng = np.random.default_rng(0)
    image = rng.random((60, 80, 3)).astype(np.float32)
    levels = np.full((60, 80), 255, np.uint8)
    levels[20:40, 30:50] = 0  # a near square
    image[20:40, 30:50] = (1.0, 0.0, 0.0)
    colour, depth = background_layer(image, levels, 4)
    ring = np.zeros((60, 80), bool)
    ring[20:40, 30:50] = True
    ring[25:35, 35:45] = False  # the square's band within reach of its edge
    assert (depth[ring] == 255).all()  # the far side grew into it
    red = (colour[..., 0] > 0.99) & (colour[..., 1] < 0.01)
    assert not red[ring].any()  # and never the near colour
    assert np.array_equal(colour[levels == 255], image[levels == 255])  # the background itself is unchanged


def test_depth_levels_spread_the_scene():
    d = np.zeros((10, 10), np.float32)
    d[:, 5:] = 4.0
    levels, lo, hi = depth_levels(d)
    assert (lo, hi) == (0.0, 4.0) and levels[0, 0] == 0 and levels[0, 9] == 255


def test_page_carries_the_living_data(sweep):
    ps, page, _ = sweep
    text = page.read_text(encoding="utf-8")
    assert "PostfocusLiving.attach" in text and "pf-living" in text
    js = LIVING_JS.read_text()
    assert "</script" not in js.lower()
    assert not re.search(r"\?\.(?![0-9])|\?\?", js)  # ES2019, as viewer.js


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_living_script_parses():
    subprocess.run(["node", "--check", str(LIVING_JS)], check=True, capture_output=True)


# ---------------------------------------------------------------- in Chromium


@pytest.mark.browser
def test_parallax_moves_near_pixels_more_than_far(quiet_page):
    pg = quiet_page
    assert living(pg)["parallax"] is False  # off by default
    pg.keyboard.press("a")  # the all-in-focus picture: texture everywhere
    pg.click(".pf-tilt")
    assert pg.get_attribute(".pf-tilt", "aria-pressed") == "true"
    assert pg.evaluate("() => window.postfocusLiving.tiltTo(0, 0).parallax")
    level = canvas_pixels(pg)
    left = tilt_with_pointer(pg, 0.002)
    right = tilt_with_pointer(pg, 0.998)
    artifact_path("living-tilt-right.png").write_bytes(pg.locator(".pf-stage").screenshot())
    h, w = left.shape[:2]
    sy, sx = h / H, w / W
    inner = (int(95 * sy), int(145 * sy), int(140 * sx), int(180 * sx))  # well inside the near square
    outer = (int(20 * sy), int(50 * sy), int(30 * sx), int(80 * sx))  # far background
    near_shift = shift_between(left, right, inner)
    far_shift = shift_between(left, right, outer)
    expected = 2 * AMPLITUDE * w  # from tilt -1 to +1, the nearest level moves this far
    assert near_shift < 0, "looking from the right, the near moves left"
    assert abs(near_shift) == pytest.approx(expected, rel=0.2), (near_shift, expected)
    assert abs(far_shift) < 0.5, far_shift
    # Untilted, the canvas is the picture shown; the band the square uncovers is filled, not left black.
    shown = pg.evaluate("() => { const c = document.createElement('canvas'); const i = window.postfocusViewer"
                        "._current; c.width = %d; c.height = %d; const x = c.getContext('2d');"
                        " x.drawImage(i, 0, 0, c.width, c.height); return c.toDataURL('image/png'); }" % (w, h))
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(shown.split(",", 1)[1]))).convert("RGB"),
                       np.float32) / 255
    assert np.abs(level - shown).mean() < 0.01
    band = right[int(80 * sy):int(160 * sy), int(205 * sx):int(210 * sx)]  # right of the square, uncovered
    assert band.mean() > 0.1 and living(pg)["renderMs"] < 100
    pg.keyboard.press("t")
    assert living(pg)["parallax"] is False
    assert pg.evaluate("getComputedStyle(window.postfocusLiving.canvas).opacity") == "0"


@pytest.mark.browser
def test_focus_pull_plays_once_on_load(page, sweep):
    ps = sweep[0]
    positions = []
    end = time.monotonic() + 10
    while time.monotonic() < end:
        s = living(page)
        if s["pullPosition"] is not None:
            positions.append(s["pullPosition"])
        if s["pullPlayed"]:
            break
        page.wait_for_timeout(40)
    s = living(page)
    assert s["pullPlayed"] and not s["pulling"] and s["pullFrames"] > 20
    assert max(positions) > len(ps.used) - 1.5  # reached the far frame
    assert any(abs(p - round(p)) > 0.2 for p in positions)  # and passed between frames
    assert page.evaluate("getComputedStyle(document.querySelector('.pf-pull')).opacity") == "0"
    assert page.evaluate("window.postfocusState.frame") == ps.used[0]  # the viewer was left as it was


@pytest.mark.browser
@pytest.mark.parametrize("opened_as", ["still_page", "quiet_page"])
def test_focus_pull_can_be_turned_off(request, opened_as):
    pg = request.getfixturevalue(opened_as)  # reduced motion asked for; made with the hint off
    pg.wait_for_timeout(600)
    s = living(pg)
    assert not s["pulling"] and s["pullFrames"] == 0


@pytest.mark.browser
def test_a_tap_stops_the_pull(page, sweep):
    wait_for(page, "() => window.postfocusLivingState.pulling")
    box = page.locator(".pf-stage").bounding_box()
    page.mouse.click(box["x"] + 0.1 * box["width"], box["y"] + 0.1 * box["height"])
    s = living(page)
    assert not s["pulling"] and not s["pullPlayed"]
    assert page.evaluate("window.postfocusState.frame") == sweep[0].used[-1]  # the tap's answer (far corner) shows


@pytest.mark.browser
def test_turning_the_phone_tilts(quiet_page):
    pg = quiet_page
    turn = ("(g) => window.dispatchEvent(new DeviceOrientationEvent('deviceorientation',"
            " {alpha: 0, beta: 10, gamma: g}))")
    pg.evaluate(turn, 5)  # ignored while the tilt is off
    assert living(pg)["tilt"] == {"x": 0, "y": 0}
    pg.keyboard.press("t")
    pg.evaluate(turn, 5)  # where the phone is when the tilt is turned on is no tilt
    pg.evaluate(turn, 5 + 25 / 2)  # half the full turn to the right
    wait_for(pg, "() => Math.abs(window.postfocusLivingState.tilt.x - 0.5) < 0.01")
    assert abs(living(pg)["tilt"]["y"]) < 1e-6
