"""The app's aperture over the scene's depths, and colour pop's tolerance, on a long generated sweep.

The sweep (:func:`test_viewer_scene.write_long_sweep`): 21 frames, the scene at
depths 2 (a card of gravel, nearest) to 5 (the background). An f-number set
over the whole sweep (the model before lens24) blurs it by about a pixel at f/1.4,
which nobody sees (the keyboard video in the app, user20); set over the scene's
depths it must blur the background by a visible amount, and say how much. The
command and the API use the same lens (``tests/test_lens_model.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from test_viewer_scene import FRAMES, SCENE_DEPTHS, write_long_sweep  # noqa: E402
from test_web_api import Server, multipart, wait_for  # noqa: E402

from postfocus.cli.pop import LARGE_SHARE, kept_colour_text  # noqa: E402
from postfocus.products.aperture import blur_from_f_number  # noqa: E402
from postfocus.synth import scene  # noqa: E402
from postfocus.web.lens import HEADER, scene_lens  # noqa: E402

APP_JS = Path(__file__).resolve().parents[1] / "src" / "postfocus" / "web" / "static" / "app.js"


@pytest.fixture(scope="module")
def long_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_lens")
    frames = sorted(p for p in write_long_sweep(root / "frames").iterdir() if p.is_file())
    srv = Server(root / "data")
    r = srv.client.post("/api/jobs", files=multipart([(p.name, p.read_bytes()) for p in frames]))
    assert r.status_code == 201, r.text
    job = wait_for(srv.client, r.json()["id"], timeout=240)
    assert job["state"] == "done", job.get("error")
    yield srv, job
    srv.stop()


def _truth(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the nearest card (depth 2) and the background (depth 5), eroded off their edges, in the
    result's geometry (the alignment crops a few pixels around the 240x160 frames)."""
    _, depth01 = scene("steps", size=(160, 240))
    top, left = (160 - height) // 2, (240 - width) // 2
    depth01 = depth01[top:top + height, left:left + width]
    kernel = np.ones((15, 15), np.uint8)
    near = cv2.erode((depth01 == depth01.min()).astype(np.uint8), kernel) > 0
    far = cv2.erode((depth01 == depth01.max()).astype(np.uint8), kernel) > 0
    return near, far


def _grey(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32)


def _detail(grey: np.ndarray, mask: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_32F)[mask].var())


def _blur_radius(sharp: np.ndarray, render: np.ndarray, mask: np.ndarray) -> float:
    """The disc radius (px) that, applied to the all-in-focus picture, best matches the render over ``mask``."""
    from postfocus.products.layers import disc_blur

    radii = np.arange(0.0, 16.01, 0.25)
    errors = [float(np.mean((disc_blur(sharp, float(r)) - render)[mask] ** 2)) for r in radii]
    return float(radii[int(np.argmin(errors))])


def test_scene_lens_blurs_the_scene_where_the_sweep_lens_does_not():
    depth = np.linspace(1.8, 4.6, 1000, dtype=np.float32).reshape(10, 100)  # the keyboard video: 1.8-4.6 of 0-40
    lens = scene_lens(depth, 41, 1.8, 1.4, (360, 640))
    sweep_blur = blur_from_f_number(1.4, (360, 640), 40)  # f/1.4 over the whole sweep (the model before lens24)
    assert sweep_blur * (lens.scene[1] - 1.8) < 2.0 <= lens.largest_blur_px
    # the library's lens model: 4 % of the long edge across the scene's span at f/1.4, and 1/N
    assert lens.blur_px * (lens.scene[1] - lens.scene[0]) == pytest.approx(0.04 * 640)
    assert scene_lens(depth, 41, 1.8, 2.8, (360, 640)).blur_px == pytest.approx(lens.blur_px / 2)
    assert "too little to see" not in lens.note()
    assert "too little to see" in scene_lens(depth, 41, 3.2, 22, (360, 640)).note()


def test_aperture_request_on_a_long_sweep_blurs_visibly(long_job):
    srv, job = long_job
    c, base = srv.client, f"/api/jobs/{job['id']}"
    width, height = job["result"]["width"], job["result"]["height"]
    assert 220 <= width <= 240 and 145 <= height <= 160
    near, far = _truth(width, height)
    ys, xs = np.nonzero(near)
    x, y = int(np.median(xs)), int(np.median(ys))
    r = c.get(f"{base}/aperture.jpg?x={x}&y={y}&f=1.4")
    assert r.status_code == 200
    lens = json.loads(r.headers[HEADER])
    assert abs(lens["focus"] - SCENE_DEPTHS[0]) < 0.5, lens
    assert lens["largest_blur_px"] >= 2.0, lens
    # a lens over the whole sweep (before lens24) would have blurred the background by under 2 px: invisible
    assert blur_from_f_number(1.4, (height, width), FRAMES - 1) * (lens["scene"][1] - lens["focus"]) < 2.0
    sharp = _grey(c.get(f"{base}/image.jpg").content)
    render = _grey(r.content)
    # measured on the picture: the background (depth 5) blurred by a disc of about the largest blur said, at
    # least 2 px; the subject (depth 2, the focus) kept sharp
    measured = _blur_radius(sharp, render, far)
    assert measured >= 2.0 and measured == pytest.approx(lens["largest_blur_px"], rel=0.35), (measured, lens)
    assert _blur_radius(sharp, render, near) <= 0.5
    full = c.get(f"{base}/aperture.jpg?x={x}&y={y}&f=1.4&full=1")
    assert json.loads(full.headers[HEADER])["largest_blur_px"] == pytest.approx(lens["largest_blur_px"], rel=0.01)
    faint = json.loads(c.get(f"{base}/aperture.jpg?x={x}&y={y}&f=64").headers[HEADER])
    assert faint["largest_blur_px"] < 2.0 and "too little to see" in faint["note"]


def test_pop_tolerance_reaches_the_render(long_job):
    srv, job = long_job
    c, base = srv.client, f"/api/jobs/{job['id']}"

    def coloured(tolerance: float) -> float:
        data = c.get(f"{base}/pop.jpg?position={SCENE_DEPTHS[0]}&tolerance={tolerance}").content
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return float((cv2.cvtColor(rgb, cv2.COLOR_BGR2HSV)[..., 1] > 40).mean())

    tight, wide = coloured(0.25), coloured(3.0)
    assert wide > tight + 0.2, (tight, wide)  # 3 frames reach the background at depth 5: most of the picture


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_app_says_what_the_command_says_of_colour_pop():
    """The app's page words the colour pop's share as ``postfocus pop`` does, with its control for --tolerance:
    its ``keptColourText`` run in node against :func:`postfocus.cli.pop.kept_colour_text`."""
    text = APP_JS.read_text(encoding="utf-8")
    start = text.index("  var LARGE_SHARE")
    end = text.index("return text;\n  }", start) + len("return text;\n  }")
    cases = [(0.12, 1.0), (0.77, 1.0), (0.68, 0.25), (0.61, 2.5), (0.9, 0.0), (LARGE_SHARE - 0.01, 1.0)]
    script = text[start:end] + f"\nconsole.log(JSON.stringify({json.dumps(cases)}.map(c => keptColourText(c[0], c[1]))));"
    said = json.loads(subprocess.run(["node", "-e", script], check=True, capture_output=True, text=True).stdout)
    for (share, tolerance), words in zip(cases, said):
        cli = kept_colour_text(share, tolerance).replace("--tolerance", "tolerance")
        assert words == cli[0].upper() + cli[1:], (share, tolerance)
