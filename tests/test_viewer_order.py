"""The lasting page says the depth order it assumed (``order`` in the viewer data, a line under the viewer).

The words are the web app's (:mod:`postfocus.products.order`, shared with :mod:`postfocus.web.order`); the line
is shown only when the order was assumed, as text (a file name may hold markup).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest
from browser import artifact_path
from conftest import save_rgb, textured_scene

from postfocus.pipeline.run import process
from postfocus.viewer.export import export_page, viewer_data

H, W, N = 120, 160, 3
MARKUP = "<img src=x onerror=window.pwned=1>"  # (no '/': a file name cannot hold one)


def _sweep(folder: Path, prefix: str = "IMG_") -> Path:
    """Three frames, the left half sharp in the first, the right half in the last."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = textured_scene(H, W)
    for k in range(N):
        left = scene if k == 0 else cv2.GaussianBlur(scene, (0, 0), 1.5 * k)
        right = scene if k == N - 1 else cv2.GaussianBlur(scene, (0, 0), 1.5 * (N - 1 - k))
        frame = left.copy()
        frame[:, W // 2:] = right[:, W // 2:]
        save_rgb(folder / f"{prefix}{k + 1}.png", frame)
    return folder


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    root = tmp_path_factory.mktemp("pageorder")
    plain = process(_sweep(root / "plain"), cache_dir=root / "cache")
    marked = process(_sweep(root / "marked", prefix=MARKUP), cache_dir=root / "cache")
    return root, plain, marked


def _page_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="postfocus-data">(.*?)</script>', text, re.S)
    return json.loads(block.group(1))


def test_the_data_holds_the_order_assumed_or_given(stacks):
    _, plain, _ = stacks
    assumed = viewer_data(plain, long_edge=80, tap_map=False, threads=1)["order"]
    assert assumed == {"near_to_far": True, "assumed": True, "nearest": "IMG_1.png", "farthest": "IMG_3.png",
                       "said": "Depth order assumed: IMG_1.png is the nearest; if IMG_3.png is, near and far are "
                               "swapped here (postfocus view --order far-to-near)."}
    given = viewer_data(plain, long_edge=80, tap_map=False, order_stated=True, threads=1)["order"]
    assert given["assumed"] is False and given["said"] == "Depth order given: IMG_1.png is the nearest."


def test_the_view_command_says_whether_the_order_was_given(cli, stacks):
    root, plain, _ = stacks
    frames = root / "plain"
    for extra, assumed in (((), True), (("--order", "near-to-far"), False)):
        out = root / f"cli-{assumed}.html"
        run = cli("view", frames, "-o", out, "--long-edge", "80", "--no-pull", *extra)
        assert run.returncode == 0, run.stderr
        assert _page_data(out)["order"]["assumed"] is assumed
        assert ("depth order assumed" in run.stderr) is assumed


def _open(browser, path: Path):  # noqa: F811 (fixture)
    ctx = browser.new_context(viewport={"width": 720, "height": 640})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(path.resolve().as_uri())
    for _ in range(800):  # ready: its maps decoded (polled: the page's CSP forbids wait_for_function's eval)
        if pg.evaluate("() => !!(window.postfocusState && window.postfocusState.ready)"):
            break
        pg.wait_for_timeout(25)
    return ctx, pg, errors


@pytest.mark.browser
def test_the_page_shows_the_order_only_when_assumed(browser, stacks):  # noqa: F811
    root, plain, _ = stacks
    for stated in (False, True):
        path = export_page(plain, root / f"page-{stated}.html", long_edge=160, order_stated=stated,
                           pull_on_load=False, threads=1)
        ctx, pg, errors = _open(browser, path)
        try:
            line = pg.locator("#postfocus-order")
            if stated:
                assert not line.is_visible()
            else:
                assert line.is_visible() and line.inner_text() == _page_data(path)["order"]["said"]
                assert "IMG_1.png is the nearest" in line.inner_text()
                # just under the viewer's Depth / Colour pop bar and status line
                bar, box = pg.locator(".pf-bar").bounding_box(), line.bounding_box()
                assert 0 < box["y"] - (bar["y"] + bar["height"]) < 60
                pg.keyboard.press("d")
                pg.wait_for_timeout(300)
                pg.screenshot(path=str(artifact_path("viewer-order-assumed.png")))
            assert not errors, errors
        finally:
            ctx.close()


@pytest.mark.browser
def test_a_name_with_markup_is_shown_as_text(browser, stacks):  # noqa: F811
    root, _, marked = stacks
    path = export_page(marked, root / "marked.html", long_edge=160, pull_on_load=False, threads=1)
    ctx, pg, errors = _open(browser, path)
    try:
        line = pg.locator("#postfocus-order")
        assert line.inner_text().startswith(f"Depth order assumed: {MARKUP}1.png is the nearest; if {MARKUP}3.png")
        assert pg.evaluate("document.querySelectorAll('#postfocus-order *').length") == 0
        assert pg.evaluate("window.pwned") is None
        assert not errors, errors
    finally:
        ctx.close()
