"""Does a tap on the page name the frame ``aperture --focus-at`` focuses at, beside a near object? (fixes25)

Renders ``tests/test_refocus.py``'s plain patch with a near textured disc (12 frames, 240x320), processes it with
the maps at the output size (``--analysis-size 800``) or smaller (``160``: maps 120x160), makes the depth map (as
the page's export does, before its tap map), then at every other point of a 5 px grid in the ring from 3 px inside
to 12 px outside the disc's outline compares the page's tap-map answer at the clicked point's map pixel with what
``aperture(focus_at_point=...)`` focuses at, and both with the truth. Also the page tap at every pixel of that ring
(a tap reads its map pixel's answer), and the least any one value per map pixel could be off there: the median of
the truth over the pixels whose taps round to it (on maps smaller than the output the 65 points sit so that even
that is 0.85 off; tapmap22). Runs on any checkout's code (``PYTHONPATH``):

    PYTHONPATH=src python bench/bench_tap_agreement.py --analysis-size 800 --cache /tmp/tap_agree
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analysis-size", type=int, default=800)
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    from test_refocus import DISC, plain_patch_scene

    from postfocus.pipeline.run import process
    from postfocus.products.aperture import aperture
    from postfocus.products.depth_cache import stack_depth
    from postfocus.products.refocus import _map_point
    from postfocus.synth import render_stack
    from postfocus.synth.files import write_stack
    from postfocus.viewer.tapmap import stack_tap_map

    sharp, depth01 = plain_patch_scene()
    st = render_stack(sharp, depth01, 12, max_blur=8.0, noise=0.01, seed=4)
    folder = args.cache / f"disc_{args.analysis_size}"
    write_stack(st, folder / "frames", "png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(folder / "frames", cache_dir=folder / "cache", analysis_size=args.analysis_size)
    stack_depth(ps)
    tm = stack_tap_map(ps)
    grid = ps.maps.map_grid()
    t, l, _, _ = ps.manifest["crop"]
    cx0, cy0, radius = DISC
    h, w = ps.size
    points = [(x, y) for y in range(0, h, 5) for x in range(0, w, 5)
              if -3 <= np.hypot(x + l - cx0, y + t - cy0) - radius <= 12][::2]
    apart, page_off, aperture_off = [], [], []
    for x, y in points:
        cx, cy = _map_point(ps.volume, x, y, grid[0], grid[1:])
        page = float(tm.position[cy, cx])  # frame numbers
        focus = aperture(ps, focus_at_point=(x, y), blur_px=0.5).focus  # depth from the nearest frame
        shown = focus if ps.near_to_far else (len(ps.names) - 1) - focus
        truth = float(st.depth[y + t, x + l])
        apart.append(abs(page - shown))
        page_off.append(abs(page - truth))
        aperture_off.append(abs(shown - truth))
    apart = np.asarray(apart)
    ys, xs = np.nonzero((np.hypot(np.arange(w)[None, :] + l - cx0, np.arange(h)[:, None] + t - cy0) - radius
                         >= -3) & (np.hypot(np.arange(w)[None, :] + l - cx0, np.arange(h)[:, None] + t - cy0) - radius
                                   <= 12))
    cells = np.asarray([_map_point(ps.volume, x, y, grid[0], grid[1:]) for x, y in zip(xs, ys)])
    truth = st.depth[ys + t, xs + l].astype(np.float64)
    dense = np.abs(tm.position[cells[:, 1], cells[:, 0]] - truth)
    key = cells[:, 1] * ps.volume.shape[2] + cells[:, 0]
    best = np.empty_like(truth)
    for cell in np.unique(key):  # (the median of the truth over a map pixel's taps: the best one value there)
        inside = key == cell
        best[inside] = np.abs(truth[inside] - np.median(truth[inside]))
    print(f"maps {ps.focus_index.shape[1]}x{ps.focus_index.shape[0]} of {w}x{h}: {len(points)} points beside the disc; "
          f"page and aperture >= 0.5 frame apart at {int((apart >= 0.5).sum())} (max {apart.max():.2f}); "
          f"mean error vs truth: page tap {np.mean(page_off):.3f}, aperture {np.mean(aperture_off):.3f} frames; "
          f"page tap at all {len(truth)} ring pixels {dense.mean():.3f} (one value per map pixel at best "
          f"{best.mean():.3f}; at the 65 points {np.mean([best[(xs == x) & (ys == y)][0] for x, y in points]):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
