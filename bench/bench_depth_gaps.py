"""A far surface seen through the gaps of a near fence: where a dense sweep's depth reads it, and what evidence it has.

Renders a near fence (bars ``--bar`` px wide every ``--pitch`` px, both ways, a fine beige checker on them) over a
far textured plane (gravel), as :mod:`bench_depth`'s ``long`` profile renders its stacks (30 frames, blur up to 8 px,
64 slabs, JPEG 95), processes it and compares with the generator's truth, by a far pixel's distance from the nearest
bar (the measure's reach: the stored measure is a 5 px box of a 3x3 Laplacian of a smoothed frame, 4 px in all):

* the final ``depth_map`` and the first per-pixel reading (``bench_depth_misses.first_reading``), within a frame;
* the share of pixels whose own focus curve has a local maximum within a frame of the truth
  (``bench_depth_misses.truth_peak``): in the stored measure, and in the finest measure of the aligned frames (the
  squared 3x3 Laplacian of each frame at the depth's grid, no box: it reaches 2 px); where the curve has none, no
  choice among its peaks can be right;
* the finest measure's own best frame within a frame of the truth.

``--hidden`` renders with a background behind the near objects (``render_stack(hidden=True)``: the fence's blurred
rim lets the far plane through, as a real lens does); without it a blurred near object stays filled with its own
colour to its sharp outline, so the bars' outlines are sharp in every frame.

Usage::

    python bench/bench_depth_gaps.py [--size 120x160] [--pitch 14] [--bar 4] [--hidden] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_depth import PROFILES  # noqa: E402
from bench_depth_misses import first_reading, truth_peak  # noqa: E402

from postfocus import process  # noqa: E402
from postfocus.focus.measure import laplacian_energy  # noqa: E402
from postfocus.products.depth import depth_map  # noqa: E402
from postfocus.products.depth_frames import grid_frames  # noqa: E402
from postfocus.synth.files import write_stack  # noqa: E402
from postfocus.synth.render import render_stack  # noqa: E402

BANDS = ((0.0, 1.5), (1.5, 2.5), (2.5, 3.5), (3.5, np.inf))  # px from the nearest bar


def fence(size: tuple[int, int], *, pitch: int = 14, bar: int = 4, near: float = 0.1,
          far: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(sharp float32 RGB, depth01): a fence of ``bar`` px bars every ``pitch`` px over a gravel plane."""
    from skimage import data  # (the bench's scenes come from scikit-image, a test dependency)

    h, w = size
    gravel = cv2.resize(data.gravel().astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    image = (0.05 + 0.85 * gravel)[..., None] * np.array([0.7, 0.8, 1.0], np.float32)
    depth = np.full((h, w), far, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    bars = ((xx % pitch) < bar) | ((yy % (2 * pitch)) < bar)
    checker = 0.9 + 0.1 * ((xx // 2 + yy // 2) % 2)
    image[bars] = np.array([0.85, 0.8, 0.7], np.float32) * checker[bars][:, None]
    depth[bars] = near
    return image.astype(np.float32), depth


def bar_distance(truth: np.ndarray) -> np.ndarray:
    """Each pixel's distance (px, L2) from the nearest pixel of the nearest surface (0 on it)."""
    t = np.asarray(truth, np.float32)
    far = (t > 0.5 * (float(t.min()) + float(t.max()))).astype(np.uint8)
    return cv2.distanceTransform(far, cv2.DIST_L2, 5)


def band_table(distance: np.ndarray, truth: np.ndarray, readings: dict[str, np.ndarray]) -> list[list[str]]:
    """Rows (band, share of picture, then each reading's share within a frame of the truth, or each boolean mask's
    share) over the far pixels in each band of :data:`BANDS`, and a last row for the near surface (distance 0)."""
    rows = []
    near = distance == 0
    groups = [(f"far, {lo:g}-{hi:g} px from a bar", (distance > lo) & (distance <= hi)) for lo, hi in BANDS]
    for label, where in groups + [("near (the bars)", near)]:
        row = [label, f"{100 * where.mean():.1f} %"]
        for value in readings.values():
            ok = value if value.dtype == bool else np.abs(value - truth) <= 1.0
            row.append(f"{100 * ok[where].mean():.1f} %" if where.any() else "-")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="120x160", help="HxW of the rendered stack")
    ap.add_argument("--pitch", type=int, default=14)
    ap.add_argument("--bar", type=int, default=4)
    ap.add_argument("--hidden", action="store_true", help="a background behind the near fence (render_stack hidden)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    frames, camera, fmt = PROFILES["long"]
    image, depth01 = fence(size, pitch=args.pitch, bar=args.bar)
    stack = render_stack(image, depth01, frames, seed=args.seed, hidden=args.hidden, **camera)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_stack(stack, Path(tmp), fmt=fmt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ps = process(paths, cache_dir=Path(tmp) / "cache")
        t, l, b, r = ps.manifest["crop"]
        truth = np.asarray(stack.depth[t:b, l:r], np.float32)
        final = depth_map(ps, threads=1).depth
        volume = np.asarray(ps.volume, np.float32)
        n, h, w = volume.shape
        if (h, w) != truth.shape or not ps.near_to_far:
            raise SystemExit("the bench expects the volume at the output size, nearest frame first")
        first, _, _ = first_reading(volume, ps.all_in_focus())
        read = grid_frames(ps, (h, w))
        fine = np.stack([laplacian_energy(read(k), 1) for k in ps.used])
    distance = bar_distance(truth)
    readings = {"final: within 1": final, "first reading: within 1": first,
                "stored curve peaks at the truth": truth_peak(volume, truth),
                "finest curve peaks at the truth": truth_peak(fine, truth),
                "finest curve's best frame: within 1": np.argmax(fine, axis=0).astype(np.float32)}
    print(f"fence {size[0]}x{size[1]}, bars {args.bar} px every {args.pitch} px, frames {frames}, near "
          f"{float(truth.min()):.1f}, far {float(truth.max()):.1f}{', background behind' if args.hidden else ''}\n")
    print("| pixels | share of picture | " + " | ".join(readings) + " |")
    print("|---" * (len(readings) + 2) + "|")
    for row in band_table(distance, truth, readings):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
