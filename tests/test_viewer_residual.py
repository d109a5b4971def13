"""The forward-model check in the page: the residual data, the inlined add-on and its toggle in Chromium."""

from __future__ import annotations

import json
import re
import time

import pytest

from browser import artifact_path
from postfocus.synth import render_stack, scene, write_stack
from postfocus.viewer.export import export_page, viewer_data


@pytest.fixture(scope="module")
def occluder(tmp_path_factory):
    """A small rendered stack (the check flags its occlusion edges) processed without alignment."""
    from postfocus import process

    root = tmp_path_factory.mktemp("residual_page")
    img, depth01 = scene("occluder", size=(240, 320))
    write_stack(render_stack(img, depth01, 8, max_blur=7.0, noise=0.005), root / "frames")
    return process(root / "frames", cache_dir=root / "cache", align="none"), root


def test_the_residual_is_in_the_data_only_when_asked(occluder):
    ps, _ = occluder
    assert "residual" not in viewer_data(ps, tap_map=False)
    data = viewer_data(ps, tap_map=False, check=True)
    res = data["residual"]
    assert res["src"].startswith("data:image/png;base64,")
    assert res["level"] == 3.0 and 0 <= res["flagged"] < 1 and res["regions"] and 0 <= res["unverifiable"] < 1
    assert set(res["regions"][0]) == {"x", "y", "width", "height", "peak"}


def test_the_page_toggles_the_heat_map(browser, occluder):  # noqa: F811 (fixture)
    ps, root = occluder
    plain = export_page(ps, root / "plain.html")
    assert "viewer add-on" not in plain.read_text()  # residual.js is inlined only with a residual
    path = export_page(ps, root / "check.html", check=True)
    text = path.read_text()
    assert "viewer add-on" in text
    data = json.loads(re.search(r'id="postfocus-data">(.*?)</script>', text, re.S).group(1))
    assert "residual" in data
    page = browser.new_page(viewport={"width": 900, "height": 700})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    end = time.monotonic() + 30  # polled: the page's CSP forbids eval, which wait_for_function needs
    while not page.evaluate("() => !!(window.postfocusState && window.postfocusState.ready)"):
        assert time.monotonic() < end, "the page did not become ready"
        page.wait_for_timeout(25)
    layer = page.locator(".pf-residual")
    assert layer.evaluate("e => getComputedStyle(e).display") == "none"
    page.keyboard.press("a")
    page.keyboard.press("r")
    assert page.get_attribute("#postfocus", "data-residual") == "on"
    assert layer.evaluate("e => getComputedStyle(e).display") == "block"
    assert page.locator(".pf-residual-box").count() == len(data["residual"]["regions"])
    assert page.locator(".pf-residual img").evaluate("e => e.complete && e.naturalWidth") > 0
    page.screenshot(path=str(artifact_path("viewer-residual.png")))
    legend = page.locator(".pf-residual-legend")
    for height in (700, 380):  # a short window: the legend stays in view, on the picture
        page.set_viewport_size({"width": 900, "height": height})
        page.wait_for_timeout(100)
        box = legend.bounding_box()
        assert legend.is_visible() and box["y"] >= 0 and box["y"] + box["height"] <= height, (height, box)
    page.screenshot(path=str(artifact_path("viewer-residual-short.png")))
    page.set_viewport_size({"width": 900, "height": 700})
    page.get_by_role("button", name=re.compile("Residual")).click()
    assert page.get_attribute("#postfocus", "data-residual") is None
    page.keyboard.press("r")  # the viewer's own keys still work beside it
    page.keyboard.press("d")
    assert page.evaluate("() => window.postfocusState.mode") == "depth"
    assert page.get_attribute("#postfocus", "data-residual") == "on"
    assert not errors, errors
    page.close()
