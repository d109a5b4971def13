"""``postfocus serve`` through its window: a real uvicorn process, driven in headless Chromium.

Upload the generated 5-frame stack (see ``test_web_api.make_stack_files``) by
picking files, wait for the result, tap, move the aperture slider, use the range
merge, download the JPEG, try bad input, then restart the server (a new process
on another free port, same data folder) and find the result in the gallery.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
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


def open_app(browser, url: str):  # noqa: F811
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
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
        assert "Showing frames 0 to 4" in page.inner_text("#range-text")
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
