"""Make the README's pictures from a real stack: input frames, result, crops.

Usage: python bench/readme_figures.py [STACK_DIR] [--out docs/img]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from postfocus import stack
from postfocus.align import warp_to_reference
from postfocus.io.open import open_source

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 12 + 11 * len(text)), 26), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def to_bgr8(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stack_dir", nargs="?", default=str(DATA / "keyboard"))
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    out = Path(args.out)
    name = args.name or Path(args.stack_dir).name
    source = open_source(args.stack_dir)
    result = stack(source)
    t, l, b, r = result.crop
    n = len(source)
    picks = [0, n // 2, n - 1]
    thumbs = []
    aligned = {}
    for i in picks:
        frame = warp_to_reference(source.read(i), result.alignment[i].matrix)[t:b, l:r]
        aligned[i] = frame
        thumbs.append(label(cv2.resize(to_bgr8(frame), (400, round(400 * (b - t) / (r - l)))), f"frame {i}"))
    res = to_bgr8(result.image)
    thumbs.append(label(cv2.resize(res, (400, round(400 * (b - t) / (r - l)))), "postfocus"))
    cv2.imwrite(str(out / f"{name}_overview.jpg"), np.hstack(thumbs), [cv2.IMWRITE_JPEG_QUALITY, 85])
    # Crops at 100 %: two regions, each frame and the result.
    h, w = result.image.shape[:2]
    size = min(h, w) // 4
    rows = []
    for cy, cx in ((int(h * 0.3), int(w * 0.25)), (int(h * 0.7), int(w * 0.7))):
        y0, x0 = max(0, cy - size // 2), max(0, cx - size // 2)
        tiles = [label(to_bgr8(aligned[i][y0 : y0 + size, x0 : x0 + size]), f"frame {i}") for i in picks]
        tiles.append(label(res[y0 : y0 + size, x0 : x0 + size], "postfocus"))
        tiles = [cv2.resize(tile, (300, 300), interpolation=cv2.INTER_AREA) for tile in tiles]
        rows.append(np.hstack(tiles))
    cv2.imwrite(str(out / f"{name}_crops.jpg"), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(out / f"{name}_overview.jpg", out / f"{name}_crops.jpg")


if __name__ == "__main__":
    main()
