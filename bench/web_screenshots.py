"""Screenshots of the web app for docs/web-app.md: a real stack at 1366x900 and 600x900.

Starts ``postfocus serve`` on a free port with a fresh data folder, uploads the
photos of a stack (default: the pcb sweep of shared/data), waits for the
result, opens it in headless Chromium, shows frame 3 and the merge of frames
2 to 5, and saves one screenshot per window size (JPEG, small enough for the docs).

Usage: python bench/web_screenshots.py [STACK_DIR] [--out docs/img] [--prefix web-app]
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import sync_playwright

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZES = {"wide": (1366, 900), "narrow": (600, 900)}
PHOTOS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "postfocus", "serve", "--no-browser", "--port", str(port),
                             "--data-dir", str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if httpx.get(url + "/api/info", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the server did not start")


def process(url: str, photos: list[Path]) -> str:
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    job = httpx.post(url + "/api/jobs", files=files, headers={"X-Postfocus": "1"}, timeout=120).json()
    while job["state"] in ("queued", "running"):
        time.sleep(1)
        job = httpx.get(f"{url}/api/jobs/{job['id']}").json()
    if job["state"] != "done":
        raise SystemExit(f"the stack failed: {job.get('error')}")
    return job["id"]


def shoot(url: str, job_id: str, out: Path, prefix: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        for name, (w, h) in SIZES.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            page.on("pageerror", lambda e: print("page error:", e, file=sys.stderr))
            page.goto(f"{url}/#/job/{job_id}")
            page.wait_for_selector("body[data-workspace=ready]", timeout=60000)
            # Frame 3 in the viewer, and the range merge of frames 2 to 5 (slider values are 0-based).
            page.evaluate("window.__postfocusViewer.showSlot(2)")
            page.click(".tab[data-tool=range]")
            page.locator("#range-from").fill("1")
            page.locator("#range-to").fill("4")
            page.wait_for_timeout(400)  # the merge is asked for 250 ms after a change
            preview = page.locator("#preview")
            for _ in range(600):  # until the merge shown is the one asked for (no eval: the app's CSP)
                if preview.get_attribute("data-shown") == preview.get_attribute("data-want"):
                    break
                page.wait_for_timeout(100)
            png = page.screenshot()
            target = out / f"{prefix}-{name}.jpg"
            Image.open(io.BytesIO(png)).convert("RGB").save(target, quality=80, optimize=True)
            print(f"{target}: {target.stat().st_size // 1024} kB")
            page.close()
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stack_dir", nargs="?", default=str(DATA / "pcb"))
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--prefix", default="web-app")
    args = ap.parse_args()
    photos = sorted(p for p in Path(args.stack_dir).iterdir() if p.suffix.lower() in PHOTOS)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp))
        try:
            shoot(url, process(url, photos), Path(args.out), args.prefix)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
