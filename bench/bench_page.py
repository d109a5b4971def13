"""Size and speed of the self-contained page for a 30-frame 4K sweep.

A 4K sweep is made from the real keyboard stack (``shared/data/keyboard``,
1920x1080 JPEGs): its first 30 frames upscaled to 3840x2160 and written as
JPEG q92. It is processed like any input, exported with the defaults
(``long_edge=1600``, JPEG q82; and once as WebP), then opened from file:// in
headless Chromium, where random clicks measure the tap latency: from the
pointer event to the viewer's state update (``lastTap.ms``) and to the next
animation frame (``lastTap.frameMs``).

Usage::

    python bench/bench_page.py [--frames 30] [--clicks 60] [--gaps 400,60] [--keep DIR] [--json OUT]
                               [--screenshot docs/img/viewer.png]

The budget (issue 8): a 30-frame 4K sweep gives a page of at most 20 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from postfocus.products.refocus import tap
from postfocus.pipeline.run import process
from postfocus.viewer.export import export_page

ROOT = Path(__file__).resolve().parents[1]
KEYBOARD = ROOT.parent / "shared" / "data" / "keyboard"
BUDGET_MB = 20.0


def make_4k_sweep(folder: Path, frames: int) -> list[Path]:
    sources = sorted(KEYBOARD.glob("*.jpg"))[:frames]
    if len(sources) < frames:
        sys.exit(f"need {frames} frames in {KEYBOARD}, found {len(sources)}")
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(sources):
        path = folder / f"frame{i:02d}.jpg"
        out.append(path)
        if path.exists():  # kept from an earlier run (--keep): same inputs, so the processed stack is reused
            continue
        img = cv2.imread(str(src), cv2.IMREAD_COLOR)
        big = cv2.resize(img, (3840, 2160), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out


def browser_timings(page_path: Path, stack, clicks: int, gap_ms: int) -> dict:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        t0 = time.perf_counter()
        page.goto(page_path.resolve().as_uri())
        while not page.evaluate("() => !!(window.postfocusState && window.postfocusState.ready)"):
            page.wait_for_timeout(20)
        ready_s = time.perf_counter() - t0
        box = page.locator(".pf-stage").bounding_box()
        rng = random.Random(1)
        ms, frame_ms, handler_ms, agree = [], [], [], 0
        for _ in range(clicks):
            page.mouse.click(box["x"] + rng.random() * box["width"], box["y"] + rng.random() * box["height"])
            page.wait_for_timeout(gap_ms)
            s = page.evaluate("() => window.postfocusState")
            t = s["lastTap"]
            ms.append(t["ms"])
            handler_ms.append(t["handlerMs"])
            if t.get("frameMs") is not None:
                frame_ms.append(t["frameMs"])
            agree += s["frame"] == tap(stack, t["x"], t["y"]).frame
        page.keyboard.press("p")
        page.wait_for_timeout(200)
        pop_first = page.evaluate("() => window.postfocusViewer.popMs")
        page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.6 * box["height"])
        pop_again = page.evaluate("() => window.postfocusViewer.popMs")
        browser.close()
    outside = [u for u in requests if not u.startswith(("data:", "file:", "blob:"))]
    return {
        "ready_s": round(ready_s, 2),
        "gap_between_taps_ms": gap_ms,
        "tap_handler_ms_median": round(float(np.median(handler_ms)), 2),
        "tap_handler_ms_max": round(float(np.max(handler_ms)), 2),
        "tap_ms_median": round(float(np.median(ms)), 2),
        "tap_ms_p95": round(float(np.percentile(ms, 95)), 2),
        "tap_ms_max": round(float(np.max(ms)), 2),
        "tap_to_next_frame_ms_median": round(float(np.median(frame_ms)), 2) if frame_ms else None,
        "tap_to_next_frame_ms_p95": round(float(np.percentile(frame_ms, 95)), 2) if frame_ms else None,
        "taps_agreeing_with_python": f"{agree}/{clicks}",
        "pop_render_ms_first": round(pop_first, 1),
        "pop_render_ms_again": round(pop_again, 1),
        "network_requests": outside,
    }


def screenshot(work: Path, out: Path, max_kb: int = 150) -> int:
    """The docs' screenshot: the bundled ring sample's page, a tap, then the magnifier with focus peaking.

    A palette PNG under ``max_kb`` (the keyboard's fine grain does not fit in that as PNG; the ring does).
    """
    import io

    from PIL import Image
    from playwright.sync_api import sync_playwright

    ring = ROOT / "src" / "postfocus" / "data" / "ring"
    page_path = export_page(process(ring, cache_dir=work / "cache"), work / "ring.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 860, "height": 640})
        page.goto(page_path.resolve().as_uri())
        while not page.evaluate("() => !!(window.postfocusState && window.postfocusState.ready)"):
            page.wait_for_timeout(20)
        box = page.locator(".pf-stage").bounding_box()
        page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
        page.wait_for_timeout(900)
        page.keyboard.press("m")
        page.mouse.move(box["x"] + 0.45 * box["width"], box["y"] + 0.45 * box["height"])
        page.wait_for_timeout(300)
        status = page.locator(".pf-status").bounding_box()
        png = page.screenshot(clip={"x": 0, "y": 0, "width": 860, "height": status["y"] + status["height"] + 6})
        browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    for colours in (256, 128, 64):
        buf = io.BytesIO()
        image.quantize(colours, method=Image.Quantize.FASTOCTREE).save(buf, "PNG", optimize=True)
        if buf.tell() <= max_kb * 1024:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return buf.tell()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--clicks", type=int, default=60)
    ap.add_argument("--gaps", default="400,60", help="Pause(s) between clicks in ms, comma-separated.")
    ap.add_argument("--keep", type=Path, default=None, help="Work folder to keep (default: a temporary one).")
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--screenshot", type=Path, default=None, help="Also write the docs' screenshot (PNG) here.")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_page_"))
    results: dict = {"frames": args.frames, "input": "keyboard frames upscaled to 3840x2160, JPEG q92"}
    t = time.perf_counter()
    paths = make_4k_sweep(work / "frames", args.frames)
    results["make_inputs_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    stack = process(paths, cache_dir=work / "cache")
    results["process_s"] = round(time.perf_counter() - t, 1)
    results["output_size"] = list(stack.size)
    for fmt in ("jpeg", "webp"):
        t = time.perf_counter()
        page = export_page(stack, work / f"page_{fmt}.html", fmt=fmt)
        mb = page.stat().st_size / 1e6
        results[f"export_{fmt}_s"] = round(time.perf_counter() - t, 1)
        results[f"page_{fmt}_mb"] = round(mb, 2)
        print(f"{fmt}: {mb:.2f} MB ({results[f'export_{fmt}_s']} s)", flush=True)
    results["within_budget"] = results["page_jpeg_mb"] <= BUDGET_MB
    if not args.no_browser:
        for gap in (int(g) for g in args.gaps.split(",")):
            results[f"browser_gap{gap}ms"] = browser_timings(work / "page_jpeg.html", stack, args.clicks, gap)
    if args.screenshot:
        results["screenshot_kb"] = round(screenshot(work, args.screenshot) / 1024, 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
