"""``postfocus serve`` through its window: a real uvicorn process, driven in headless Chromium.

Upload the generated 5-frame stack (see ``test_web_api.make_stack_files``) by
picking files, wait for the result, tap, move the aperture slider, use the range
merge, download the JPEG, try bad input, then restart the server (a new process
on another free port, same data folder) and find the result in the gallery.

Against one more server with one finished job: every download link answers with
its file, frame numbers read 1-based with the file name, and the layout keeps the
picture and the tools in view at 1366x900 (tools beside the picture) and works at
600x900 (tools under it). Against a server of its own, the range merge's sliders
on a long generated sweep span the scene's frames, as the focus slider does.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser import artifact_path
from test_web_api import make_stack_files

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.browser

N = 5
VIEWPORT = {"width": 1100, "height": 900}
MAX_UPLOAD_MB = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``python -m postfocus serve`` on a free localhost port; stop() ends it (and its workers)."""

    def __init__(self, data: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "postfocus", "serve", "--no-browser", "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(data), "--max-upload-mb", str(MAX_UPLOAD_MB)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start: {log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl+C does
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the server and its workers
                self.proc.wait(timeout=5)
        self.log.close()


@pytest.fixture
def workdir(tmp_path):
    frames = tmp_path / "photos"
    frames.mkdir()
    paths = []
    for name, data in make_stack_files(N):
        (frames / name).write_bytes(data)
        paths.append(frames / name)
    return tmp_path, paths


def open_app(browser, url: str, viewport: dict = VIEWPORT):  # noqa: F811
    ctx = browser.new_context(viewport=viewport, accept_downloads=True)
    page = ctx.new_page()
    errors, outside = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url + "/")
    page.wait_for_selector("body[data-app=ready]")
    return ctx, page, errors, outside


def state(page) -> dict:
    return page.evaluate("window.postfocusState")


def tap(page, fx: float, fy: float) -> None:
    box = page.locator("#viewer .pf-stage").bounding_box()
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def wait_shown(page, part: str, timeout: float = 20.0) -> str:
    """Wait until the picture over the viewer shows a URL containing ``part``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = page.evaluate("(document.getElementById('preview') || {dataset: {}}).dataset.shown || ''")
        if part in shown and page.locator("#preview").is_visible():
            return shown
        page.wait_for_timeout(50)
    raise AssertionError(f"the tool's picture never showed {part!r}")


def test_upload_tap_aperture_download_restart(browser, workdir):  # noqa: F811
    tmp, photos = workdir
    data = tmp / "data"
    t0 = time.monotonic()
    server = ServeProcess(data, tmp / "server1.log")
    try:
        ctx, page, errors, outside = open_app(browser, server.url)
        page.screenshot(path=str(artifact_path("web-home-empty.png")))

        # Bad input first: a text file named .jpg, and an upload over the limit.
        notes = tmp / "notes.jpg"
        notes.write_text("not a photo\n" * 50)
        page.set_input_files("#file-input", [str(photos[0]), str(notes)])
        page.wait_for_selector("#messages .error")
        text = page.inner_text("#messages")
        assert "notes.jpg" in text and "not a photo or video" in text
        huge = tmp / "huge.jpg"
        huge.write_bytes(photos[0].read_bytes() + bytes(MAX_UPLOAD_MB * 1024 * 1024))
        page.set_input_files("#file-input", [str(photos[1]), str(huge)])
        deadline = time.monotonic() + 10
        while "more than this server accepts" not in page.inner_text("#messages"):
            assert time.monotonic() < deadline, page.inner_text("#messages")
            page.wait_for_timeout(50)
        page.screenshot(path=str(artifact_path("web-bad-input.png")))
        assert not any((data / "jobs").iterdir())
        assert all("415" in e for e in errors), errors  # the browser logs the refused upload
        errors.clear()

        # The real stack: pick the files, wait for the viewer.
        page.set_input_files("#file-input", [str(p) for p in photos])
        page.wait_for_selector("body[data-workspace=ready]", timeout=60000)
        assert "IMG_0001.jpg" in page.inner_text("#job-title")
        job_id = page.evaluate("location.hash").rsplit("/", 1)[-1]

        tap(page, 0.2, 0.5)
        assert state(page)["frame"] == 0
        tap(page, 0.8, 0.5)
        assert state(page)["frame"] == N - 1
        page.wait_for_timeout(250)  # the cross-fade
        page.screenshot(path=str(artifact_path("web-tap.png")))

        # Aperture: tap the subject on the left, open wide: the right half turns soft.
        page.click(".tab[data-tool=aperture]")
        tap(page, 0.25, 0.5)
        page.locator("#aperture-f").fill("0")  # f/1.4
        shown = wait_shown(page, "f=1.4")
        assert "x=" in shown and "full=1" not in shown
        assert page.inner_text("#aperture-f-out") == "f/1.4"
        page.screenshot(path=str(artifact_path("web-aperture.png")))

        # Range merge by two taps.
        page.click(".tab[data-tool=range]")
        tap(page, 0.2, 0.5)
        tap(page, 0.8, 0.5)
        wait_shown(page, f"start=0&end={N - 1}")
        assert "Showing frames 1 to 5 of 5 (IMG_0001.jpg to IMG_0005.jpg) merged" in page.inner_text("#range-text")
        page.screenshot(path=str(artifact_path("web-range.png")))

        # Downloads: the all-in-focus JPEG and the colour pop.
        page.click(".tab[data-tool=save]")
        with page.expect_download() as dl:
            page.click("#dl-image")
        body = Path(dl.value.path()).read_bytes()
        assert body[:3] == b"\xff\xd8\xff"
        assert dl.value.suggested_filename.endswith("all-in-focus.jpg")
        page.click(".tab[data-tool=pop]")
        with page.expect_download() as dl:
            page.click("#dl-pop")
        assert Path(dl.value.path()).read_bytes()[:3] == b"\xff\xd8\xff"
        assert not errors, errors
        assert not outside, f"requests outside the app: {outside}"
        ctx.close()
    finally:
        server.stop()
    assert server.proc.returncode is not None

    # A new server process on the same data folder lists the result in the gallery.
    server = ServeProcess(data, tmp / "server2.log")
    try:
        ctx, page, errors, outside = open_app(browser, server.url)
        card = page.locator(f".card[data-id='{job_id}']")
        card.wait_for()
        assert "IMG_0001.jpg" in card.inner_text()
        card.locator("img").wait_for()
        page.screenshot(path=str(artifact_path("web-gallery-after-restart.png")))
        card.locator("a").click()
        page.wait_for_selector("body[data-workspace=ready]", timeout=30000)
        tap(page, 0.2, 0.5)
        assert state(page)["frame"] == 0
        assert not errors, errors
        assert not outside, outside
        ctx.close()
    finally:
        server.stop()
    # Everything stayed inside the data folder and the test folder.
    assert sorted(p.name for p in (data / "jobs" / job_id / "in").iterdir()) == [f"{k:03d}.jpg" for k in range(N)]
    assert time.monotonic() - t0 < 80


# ------------------------------------------------- one finished job: downloads, frame texts, layout

# Every download of the job view, with the last frame shown and the whole range merged:
# id -> (first bytes, end of the file name, content type). File names count frames from 1.
DOWNLOADS = {
    "dl-frame": (b"\xff\xd8\xff", f"-frame-{N}.jpg", "image/jpeg"),
    "dl-range": (b"\xff\xd8\xff", f"-frames-1-to-{N}.jpg", "image/jpeg"),
    "dl-aperture": (b"\xff\xd8\xff", "-f2.8.jpg", "image/jpeg"),
    "dl-pop": (b"\xff\xd8\xff", "-colour-pop.jpg", "image/jpeg"),
    "dl-image": (b"\xff\xd8\xff", "-all-in-focus.jpg", "image/jpeg"),
    "dl-page": (b"<!DOCTYPE html>", "-page.html", "text/html"),
    "dl-depth": (b"\x89PNG\r\n", "-depth-map.png", "image/png"),
}
TOOLS = ("refocus", "range", "aperture", "pop", "retouch", "save")


def submit(server: ServeProcess, files: list[tuple[str, bytes]], state: str) -> str:
    """Upload through the API, wait until the job is in ``state``; its id."""
    parts = [("files", (name, data, "image/jpeg")) for name, data in files]
    r = httpx.post(server.url + "/api/jobs", files=parts, headers={"X-Postfocus": "1"}, timeout=60)
    assert r.status_code == 201, r.text
    return wait_state(server, r.json()["id"], state)


def wait_state(server: ServeProcess, job_id: str, state: str) -> str:
    deadline = time.monotonic() + 60
    while (job := httpx.get(f"{server.url}/api/jobs/{job_id}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["state"] == state, job
    return job_id


@pytest.fixture(scope="module")
def served_job(tmp_path_factory):
    """A server with a finished job (the 5-frame stack) and a failed one (frames of two sizes).

    -> the ServeProcess, with ``job_id`` and ``failed_id``.
    """
    tmp = tmp_path_factory.mktemp("served")
    server = ServeProcess(tmp / "data", tmp / "server.log")
    try:
        good = make_stack_files(N)
        server.job_id = submit(server, good, "done")
        server.failed_id = submit(server, [good[0], make_stack_files(2, size=(120, 160))[1]], "failed")
        yield server
    finally:
        server.stop()


def open_job(browser, server: ServeProcess, viewport: dict = VIEWPORT, job_id: str | None = None):  # noqa: F811
    ctx, page, errors, outside = open_app(browser, server.url, viewport)
    page.evaluate(f"location.hash = '#/job/{job_id or server.job_id}'")
    page.wait_for_selector("body[data-workspace=ready]" if job_id is None else "#job-error", timeout=30000)
    return ctx, page, errors, outside


def show_tool(page, tool: str) -> None:
    page.click(f".tab[data-tool={tool}]")
    assert page.locator(f".panel[data-panel={tool}]").is_visible()


def test_every_download_answers_with_its_file(browser, served_job):  # noqa: F811
    server = served_job
    ctx, page, errors, outside = open_job(browser, server)
    tap(page, 0.8, 0.5)  # the last frame: the frame download is not frame 0's
    links = page.eval_on_selector_all("#workspace a[download], #workspace button[download]",
                                      "els => els.map(e => e.id)")
    assert sorted(links) == sorted(DOWNLOADS), "a new download must be added to DOWNLOADS"
    for link in links:
        magic, suffix, media = DOWNLOADS[link]
        show_tool(page, page.locator(f"#{link}").evaluate("a => a.closest('.panel').dataset.panel"))
        href = page.get_attribute(f"#{link}", "href")
        assert href and href != "#" and "//" not in href, (link, href)
        with page.expect_download(timeout=120000) as dl:
            page.click(f"#{link}")
        download = dl.value
        assert download.failure() is None, (link, href, download.failure())
        body = Path(download.path()).read_bytes()
        assert len(body) > 100 and body.startswith(magic), (link, href, body[:40])
        assert download.suggested_filename.endswith(suffix), (link, download.suggested_filename)
        r = httpx.get(server.url + href, timeout=120)
        assert r.status_code == 200, (link, href, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith(media), (link, r.headers["content-type"])
        assert r.content.startswith(magic) and "attachment" in r.headers["content-disposition"], link
    assert not errors, errors
    assert not outside, outside
    ctx.close()


def test_retry_buttons_reach_the_server(browser, served_job):  # noqa: F811
    server = served_job
    ctx, page, errors, _ = open_app(browser, server.url)
    retry = page.locator(f".card[data-id='{server.failed_id}'] button", has_text="Retry")
    with page.expect_response(lambda r: r.url.endswith("/retry")) as answer:
        retry.click()
    assert answer.value.status == 200 and f"/api/jobs/{server.failed_id}/retry" in answer.value.url, answer.value.url
    wait_state(server, server.failed_id, "failed")
    ctx.close()
    ctx, page, errors, _ = open_job(browser, server, job_id=server.failed_id)
    with page.expect_response(lambda r: r.url.endswith("/retry")) as answer:
        page.click("#retry-job")
    assert answer.value.status == 200, answer.value.url
    wait_state(server, server.failed_id, "failed")
    assert not errors, errors
    ctx.close()


def test_frame_numbers_count_from_one_with_the_file_name(browser, served_job):  # noqa: F811
    ctx, page, errors, _ = open_job(browser, served_job)
    for fx, frame in ((0.2, 0), (0.8, N - 1)):
        tap(page, fx, 0.5)
        label = f"Frame {frame + 1} of {N} (IMG_{frame + 1:04d}.jpg)"
        s = state(page)
        assert s["frame"] == frame and s["label"] == label  # the state stays 0-based, the words are 1-based
        assert page.inner_text("#viewer .pf-status").startswith(label + ".")
        assert page.inner_text("#viewer .pf-slider-label") == label  # (the name too, fixes25)
        assert page.get_attribute("#viewer .pf-slider input", "aria-valuetext") == label
        assert page.inner_text("#dl-frame") == f"Download frame {frame + 1} of {N} (IMG_{frame + 1:04d}.jpg), full size"
        assert page.get_attribute("#dl-frame", "href").endswith(f"/frames/{frame}?download=1")  # the API: 0-based

    show_tool(page, "range")
    page.locator("#range-from").fill("1")
    page.locator("#range-to").fill("3")
    wait_shown(page, "start=1&end=3")
    assert page.inner_text("#range-from-out") == "2" and page.inner_text("#range-to-out") == "4"
    assert page.get_attribute("#range-from", "aria-valuetext") == f"Frame 2 of {N} (IMG_0002.jpg)"
    assert page.get_attribute("#range-to", "aria-valuetext") == f"Frame 4 of {N} (IMG_0004.jpg)"
    assert f"Showing frames 2 to 4 of {N} (IMG_0002.jpg to IMG_0004.jpg) merged." in page.inner_text("#range-text")
    assert "start=1&end=3" in page.get_attribute("#dl-range", "href")

    page.keyboard.press("Home")
    for tool in TOOLS:  # no 0-based frame number anywhere a person reads
        show_tool(page, tool)
        text = page.inner_text("body")
        assert not re.search(r"\bframes? 0\b", text, re.IGNORECASE), (tool, text)
    assert not errors, errors
    ctx.close()


def test_the_depth_tools_say_which_photo_was_taken_as_the_nearest(browser, served_job):  # noqa: F811
    """The command line says once which frame the depth took as the nearest when ``--order`` is left at its default
    (``--json``: ``order: {near_to_far, assumed}``); the app said nothing, though it always assumes (fixes23). The job's
    result holds the order and the page says it in one line beside the aperture, the colour pop and the depth map."""
    job = httpx.get(f"{served_job.url}/api/jobs/{served_job.job_id}").json()
    order = job["result"]["order"]
    assert {k: order[k] for k in ("near_to_far", "assumed", "nearest", "farthest")} == {
        "near_to_far": True, "assumed": True, "nearest": "IMG_0001.jpg", "farthest": f"IMG_{N:04d}.jpg"}
    ctx, page, errors, _ = open_job(browser, served_job)
    for tool in ("aperture", "pop", "save"):
        show_tool(page, tool)
        line = page.locator(f".panel[data-panel={tool}] .order-said")
        assert line.is_visible(), tool
        said = line.inner_text()
        assert said == order["said"] and said.startswith("Depth order assumed: IMG_0001.jpg is the nearest;"), said
        assert f"if IMG_{N:04d}.jpg is" in said and "--order far-to-near" in said, said
    show_tool(page, "aperture")
    page.screenshot(path=str(artifact_path("web-depth-order.png")))
    assert not errors, errors
    ctx.close()


def in_view(box: dict, viewport: dict) -> bool:
    return (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5
            and box["y"] + box["height"] <= viewport["height"] + 0.5)


def tool_controls(page):
    """The tabs and the controls of the shown tool: sliders, buttons, links."""
    return page.locator(".tab, .panel:not([hidden]) input, .panel:not([hidden]) .button").all()


def test_wide_window_shows_picture_and_tools_together(browser, served_job):  # noqa: F811
    viewport = {"width": 1366, "height": 900}
    ctx, page, errors, _ = open_job(browser, served_job, viewport)
    stage = page.locator("#viewer .pf-stage").bounding_box()
    tools = page.locator(".tools").bounding_box()
    assert in_view(stage, viewport), stage
    assert stage["height"] >= 0.6 * viewport["height"], stage  # the picture fills the window's height
    assert tools["x"] >= stage["x"] + stage["width"] and tools["y"] < stage["y"] + stage["height"] / 2, (stage, tools)
    for control in page.locator("#viewer .pf-bar button, #viewer .pf-bar input").all():
        assert in_view(control.bounding_box(), viewport)
    for tool in TOOLS:
        show_tool(page, tool)
        for control in tool_controls(page):
            assert in_view(control.bounding_box(), viewport), (tool, control.evaluate("e => e.outerHTML"))
        assert page.evaluate("[window.scrollX, window.scrollY]") == [0, 0], tool
    assert page.evaluate("document.documentElement.scrollHeight") <= viewport["height"]
    show_tool(page, "range")
    page.screenshot(path=str(artifact_path("web-layout-1366x900.png")))
    assert not errors, errors
    ctx.close()


def test_narrow_window_puts_the_tools_under_the_picture(browser, served_job):  # noqa: F811
    viewport = {"width": 600, "height": 900}
    ctx, page, errors, _ = open_job(browser, served_job, viewport)
    stage = page.locator("#viewer .pf-stage").bounding_box()
    tools = page.locator(".tools").bounding_box()
    assert in_view(stage, viewport) and stage["width"] >= 0.9 * (viewport["width"] - 40), stage
    assert tools["y"] >= stage["y"] + stage["height"], (stage, tools)
    for control in page.locator("#viewer .pf-bar button, #viewer .pf-bar input").all():
        assert in_view(control.bounding_box(), viewport)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # nothing sideways
    for tool in TOOLS:
        show_tool(page, tool)
        for control in tool_controls(page):
            control.scroll_into_view_if_needed()
            assert in_view(control.bounding_box(), viewport), (tool, control.evaluate("e => e.outerHTML"))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifact_path("web-layout-600x900.png")), full_page=True)
    assert not errors, errors
    ctx.close()


def test_tilt_moves_the_picture_in_the_app(browser, served_job):  # noqa: F811
    """Parallax (the viewer's Tilt button, living.js) in the app: off at first, on with the button, no pull hint."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    ctx, page, errors, outside = open_job(browser, served_job)
    deadline = time.monotonic() + 20
    while not page.evaluate("!!(window.postfocusLivingState && window.postfocusLivingState.ready)"):
        assert time.monotonic() < deadline, "the living picture did not load"
        page.wait_for_timeout(50)
    s = page.evaluate("window.postfocusLivingState")
    assert not s["parallax"] and s["pullFrames"] == 0  # the focus-pull hint is the page's, not the app's
    page.click("#viewer .pf-tilt")
    box = page.locator("#viewer .pf-stage").bounding_box()

    def tilted(fx: float) -> np.ndarray:
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + 0.5 * box["height"], steps=3)
        page.wait_for_timeout(700)
        url = page.evaluate("window.__postfocusLiving.canvas.toDataURL('image/png')")
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"), np.float32)

    left, right = tilted(0.02), tilted(0.98)
    assert page.evaluate("window.postfocusLivingState.tilt.x") > 0.9
    assert np.abs(left - right).mean() > 1.0  # the picture moved
    page.locator("#viewer").screenshot(path=str(artifact_path("web-tilt.png")))
    assert not errors and not outside, (errors, outside)
    ctx.close()


def range_span(page) -> tuple[int, int, int, int]:
    """The From/To sliders' min, max and values."""
    return tuple(page.evaluate("""() => { const f = document.getElementById('range-from'),
        t = document.getElementById('range-to'); return [+f.min, +f.max, +f.value, +t.value]; }"""))


def test_range_sliders_span_the_scene_on_a_long_sweep(browser, tmp_path):
    """On the 21-frame generated sweep whose scene fills a few frames (``test_viewer_scene``), the Range merge's
    From/To sliders span what the focus slider spans (app24; app22 made the focus slider span the scene): the
    scene's frames at first, every frame with *Whole sweep* (button or W) or once the frame in view lies beyond
    the scene, and back to the scene widened to an end chosen over the whole sweep, so it stays reachable."""
    from test_viewer_scene import FRAMES, write_long_sweep

    folder = write_long_sweep(tmp_path / "frames")
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log")
    try:
        photos = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]  # (not truth/)
        server.job_id = submit(server, photos, "done")
        scene = httpx.get(f"{server.url}/api/jobs/{server.job_id}/viewer").json()["scene"]
        first, last = scene["first"], scene["last"]
        assert 0 < first < last < FRAMES - 3 and last - first + 1 < 0.75 * FRAMES, scene  # (1 and 6 in the test)
        ctx, page, errors, _ = open_job(browser, server)
        show_tool(page, "range")
        assert range_span(page) == (first, last, first, last)
        wait_shown(page, f"start={first}&end={last}")
        assert f"frames {first + 1} to {last + 1} of {FRAMES}" in page.inner_text("#range-text")
        page.focus("#range-to")
        page.keyboard.press("ArrowRight")  # the scene's end is the slider's end
        assert range_span(page)[3] == last
        page.get_by_role("button", name="Whole sweep").click()
        assert range_span(page) == (0, FRAMES - 1, first, last) and state(page)["wholeSweep"] is True
        far = FRAMES - 3
        page.locator("#range-to").fill(str(far))
        wait_shown(page, f"start={first}&end={far}")
        page.screenshot(path=str(artifact_path("web-range-whole-sweep.png")))
        page.focus("#viewer .pf-slider input")
        page.keyboard.press("w")  # back to the scene: the chosen far end stays in reach
        s = state(page)
        assert (s["wholeSweep"], s["sliderFirst"], s["sliderLast"]) == (False, first, last)
        assert range_span(page) == (first, far, first, far)
        page.locator("#range-to").fill(str(last))  # within the scene again; shown, the merge asked for
        wait_shown(page, f"start={first}&end={last}")
        page.evaluate(f"window.__postfocusViewer.showSlot({FRAMES - 2})")  # the frame in view beyond the scene
        assert state(page)["wholeSweep"] is True and range_span(page)[:2] == (0, FRAMES - 1)
        page.focus("#viewer .pf-slider input")
        page.keyboard.press("w")
        assert range_span(page) == (first, last, first, last)
        page.screenshot(path=str(artifact_path("web-range-scene.png")))
        assert not errors, errors
        ctx.close()
    finally:
        server.stop()


def test_names_of_markup_are_said_as_text(browser, served_job):  # noqa: F811
    """Photos named with HTML and script (review21): the order's line (web/order.py) says the names as they were
    uploaded, as text: no element made of them, no script run (held on main). The line's one ``code`` is the
    command's option: on main a name's own "--order near-to-far" was shown as the command too. The first photo
    is a JPEG named ``.png`` (the algae stack's files are such): taken by its bytes."""
    files = make_stack_files(N)
    first = "<img src=x onerror=window.pwned=1>.png"
    last = "z <b>bold<b> --order near-to-far " + "x" * 150 + ".jpg"  # (cut to 120 characters; a "/" cuts it too)
    files[0], files[-1] = (first, files[0][1]), (last, files[-1][1])
    job_id = submit(served_job, files, "done")
    order = httpx.get(f"{served_job.url}/api/jobs/{job_id}").json()["result"]["order"]
    assert (order["nearest"], order["farthest"]) == (first, last[:120])
    ctx, page, errors, outside = open_app(browser, served_job.url)
    page.evaluate(f"location.hash = '#/job/{job_id}'")
    page.wait_for_selector("body[data-workspace=ready]", timeout=30000)
    show_tool(page, "aperture")
    line = page.locator(".panel[data-panel=aperture] .order-said")
    assert line.inner_text() == order["said"]
    assert line.locator("img, b").count() == 0 and page.locator("img[src=x]").count() == 0
    assert [c.inner_text() for c in line.locator("code").all()] == ["--order far-to-near"]
    assert page.evaluate("window.pwned") is None
    assert not errors and not outside, (errors, outside)
    ctx.close()
