"""Far pixels 2-3 px beside a near surface that read the near depth: at which stage of the depth they are lost.

Renders and processes one of :mod:`bench_depth`'s stacks (the tripod motorcycle by default) and takes the final
``depth_map``'s misses that read nearer than the truth (by more than a frame), classed by their distance to the
nearest pixel whose true depth is within a frame of their reading (the surface they took, as
``docs/depth-and-aperture.md``'s fill18 section counts them). For the pixels 1.5-3.5 px from it (the band), it prints
whether each stage's reading is within a frame of the truth: the stored measure's own best frame (the 5 px box of
:func:`~postfocus.focus.measure.laplacian_energy`), the aggregated curve's best frame, the first fit (as
``refine_depth`` makes it, :func:`bench_depth_misses.first_reading`), and which of them lie in the band the edge
steps (``pixel_sides``, ``frame_sides``: within ``band`` px of a pixel whose 3x3 depth spans more than ``jump``)
judge at all.

Usage::

    python bench/bench_depth_band.py [--profile tripod] [--scene motorcycle] [--seed 1] [--size 240x320] [--hidden]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_depth import one_stack, one_stack_options  # noqa: E402
from bench_depth_misses import first_reading  # noqa: E402

from postfocus.products.depth import depth_map  # noqa: E402


def taken_distance(final: np.ndarray, truth: np.ndarray, where: np.ndarray, reach: int = 5) -> np.ndarray:
    """Per pixel of ``where`` (row order), the distance (px) to the nearest pixel within ``reach`` whose true depth is
    within a frame of the pixel's reading (inf if none)."""
    h, w = truth.shape
    ys, xs = np.nonzero(where)
    out = np.full(ys.size, np.inf)
    for i, (y, x) in enumerate(zip(ys, xs)):
        y0, x0 = max(0, y - reach), max(0, x - reach)
        yy, xx = np.nonzero(np.abs(truth[y0:y + reach + 1, x0:x + reach + 1] - final[y, x]) <= 1.0)
        if yy.size:
            out[i] = np.sqrt((yy + y0 - y) ** 2 + (xx + x0 - x) ** 2).min()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    one_stack_options(ap, profile="tripod")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ps, _, truth = one_stack(args, Path(tmp) / "stack")
        image = ps.all_in_focus()
        volume = np.asarray(ps.volume, np.float32)
        final = depth_map(ps, threads=1).depth
    if volume.shape[1:] != truth.shape:
        print(f"volume {volume.shape[1:]} is not the output size {truth.shape}", file=sys.stderr)
        return 1
    first, _, agg = first_reading(volume, image)
    near = final < truth - 1.0
    dist = taken_distance(final, truth, near)
    within = 100 * (np.abs(final - truth) <= 1).mean()
    print(f"{args.profile} {args.scene} seed {args.seed}: within a frame {within:.2f} %; read nearer than the truth "
          f"{100 * near.mean():.2f} % of the picture")
    print("\n| px to the surface taken | share of picture |\n|---|---|")
    for lo, hi in ((0.5, 1.5), (1.5, 2.5), (2.5, 3.5), (3.5, np.inf)):
        print(f"| {lo:g}-{hi:g} | {100 * ((dist >= lo) & (dist < hi)).sum() / truth.size:.2f} % |")
    ys, xs = (v[(dist >= 1.5) & (dist < 3.5)] for v in np.nonzero(near))
    t = truth[ys, xs]
    n = volume.shape[0]
    jump = max(1.0, 0.1 * (n - 1))  # refine_depth's default
    three = np.ones((3, 3), np.uint8)
    step = ((cv2.dilate(final, three) - cv2.erode(final, three)) > jump).astype(np.uint8)
    rows = [("stored measure's best frame", np.abs(volume[:, ys, xs].argmax(axis=0) - t) <= 1),
            ("aggregated curve's best frame", np.abs(agg[:, ys, xs].argmax(axis=0) - t) <= 1),
            ("first fit", np.abs(first[ys, xs] - t) <= 1)]
    print(f"\nthe band (1.5-3.5 px): {ys.size} px\n\n| stage | within a frame of the truth |\n|---|---|")
    for name, ok in rows:
        print(f"| {name} | {100 * ok.mean():.1f} % |")
    for band in (1, 2, 4):
        inside = cv2.dilate(step, np.ones((2 * band + 1,) * 2, np.uint8))[ys, xs] > 0
        print(f"| in the edge steps' band ({band} px) | {100 * inside.mean():.1f} % |")
    span = cv2.dilate(final, three) - cv2.erode(final, three)
    print(f"\nmedian 3x3 depth span of the final map there: {float(np.median(span[ys, xs])):.2f} frames "
          f"(jump {jump:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
