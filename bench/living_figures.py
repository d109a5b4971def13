"""The pictures of docs/living.md and docs/viewer.md: a focus pull, a stereo pair, a wiggle and the tilting page.

Made from a real stack (default ``shared/data/beetle``, 28 frames of 750x500),
small enough for the repository (each file under 700 kB)::

    python bench/living_figures.py [--stack ../shared/data/beetle] [--out docs/img] [--cache DIR]

Prints each file with its size and the CPU seconds it took.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from postfocus.io.animation import write_gif
from postfocus.io.write import write_image
from postfocus.pipeline.run import process
from postfocus.products.animate import animate
from postfocus.products.depth import depth_map
from postfocus.products.stereo import anaglyph, side_by_side, stereo_pair, wiggle_frames
from postfocus.viewer.export import export_page

ROOT = Path(__file__).resolve().parents[1]


def _small(image: np.ndarray, long_edge: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(1.0, long_edge / max(h, w))
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def page_screenshot(page: Path, out: Path) -> None:
    """The page with the tilt on, the pointer at the top right, as a JPEG (q85)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 860, "height": 680})
        pg.goto(page.resolve().as_uri())
        while not pg.evaluate("() => !!(window.postfocusLivingState && window.postfocusLivingState.ready"
                              " && window.postfocusState.ready)"):
            pg.wait_for_timeout(20)
        pg.evaluate("() => window.postfocusLiving.stopPull()")
        pg.keyboard.press("a")
        pg.keyboard.press("t")
        box = pg.locator(".pf-stage").bounding_box()
        pg.mouse.move(box["x"] + 0.97 * box["width"], box["y"] + 0.3 * box["height"], steps=5)
        pg.wait_for_timeout(900)
        status = pg.locator(".pf-status").bounding_box()
        png = pg.screenshot(clip={"x": 0, "y": 0, "width": 860, "height": status["y"] + status["height"] + 6})
        browser.close()
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, "JPEG", quality=85, optimize=True)
    out.write_bytes(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stack", type=Path, default=ROOT.parent / "shared" / "data" / "beetle")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="living_figures_"))
    args.out.mkdir(parents=True, exist_ok=True)
    ps = process(sorted(args.stack.glob("*.jpg")) or args.stack, cache_dir=cache)
    made = []

    def done(path: Path, t0: float) -> None:
        made.append(path)
        print(f"{path}: {path.stat().st_size / 1024:.0f} kB, {time.process_time() - t0:.1f} s CPU", flush=True)

    t0 = time.process_time()
    path, _ = animate(ps, args.out / "living_pull.gif", duration=2.0, fps=6, long_edge=220, bounce=True)
    done(path, t0)
    t0 = time.process_time()
    image = ps.all_in_focus()
    result = depth_map(ps, image=image)
    small, depth = _small(image, 480), None
    depth = cv2.resize(result.depth, small.shape[1::-1], interpolation=cv2.INTER_AREA)
    pair = stereo_pair(small, depth, strength=0.03, frames=result.frames)
    done(write_image(args.out / "living_anaglyph.jpg", anaglyph(pair), quality=85), t0)
    t0 = time.process_time()
    done(write_image(args.out / "living_pair.jpg", side_by_side(pair, gap=8), quality=85), t0)
    t0 = time.process_time()
    tiny, tiny_depth = _small(image, 240), None
    tiny_depth = cv2.resize(result.depth, tiny.shape[1::-1], interpolation=cv2.INTER_AREA)
    done(write_gif(args.out / "living_wiggle.gif", wiggle_frames(tiny, tiny_depth, strength=0.03,
                                                                 frames=result.frames, count=8), duration_ms=100), t0)
    t0 = time.process_time()
    page = export_page(ps, cache / "page.html")
    page_screenshot(page, args.out / "viewer_tilt.jpg")
    done(args.out / "viewer_tilt.jpg", t0)


if __name__ == "__main__":
    main()
