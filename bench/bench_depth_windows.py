"""Depth read from shifted windows of the pixel's own surface: the seventh session's second step, tried and dropped.

The aggregated focus measure of a pixel is a window sum of pointwise contrast energy. Beside a near object's
outline the window of a background pixel holds the outline's sharp edge energy in the frames focused near,
which only ever *adds* to the background's own energy there, so its curve peaks at the near object's frame
(the "foreground fattening" of window-based stereo). Among the windows that contain the pixel, those shifted
away from the outline hold none of it: per frame, the smallest aggregated measure over the windows centred
within ``r`` px is the one closest to the pixel's own (shiftable windows, Kang, Szeliski & Chai 2001;
Fusiello et al. 1997). Variants, each hooked into :func:`postfocus.products.depth.refine_depth` from outside
by replacing its aggregation (the library is unchanged; its later steps, the end-of-sweep placement included,
read the replaced volume):

``min r``
    every frame's aggregated measure eroded by a disc of radius ``r`` (all window centres take part).
``colour r t``
    only window centres whose all-in-focus colour is within ``t`` (sum over channels) of the pixel's (a hard
    adaptive-support weight, Yoon & Kweon 2006): a thin near object keeps its own windows.
``colour r t, level L``
    the colour-constrained curve only where it still peaks ``L`` noise floors up (a pixel with no texture of its
    own keeps the window sum).
``colour r t, second peak``
    and only where the best frame changes to one at which the window-sum curve has a local maximum of its own,
    apart from its first peak by a dip below half of it (the far surface seen as a second surface).

``--measure-windows 5,3,1``
    instead, the depth from a focus measure made again from the aligned frames with a smaller box than the
    stored 5x5 (:func:`postfocus.focus.measure.laplacian_energy` ``window``; 1 = the pointwise squared
    Laplacian): how much of the near outline's spill lies in the measure's own reach.

Scored on the 21 generated stacks of ``bench_depth.py`` (share within one frame, and where the misses are), and
with ``--real`` the CPU of ``depth_map`` and the share of pixels that move on the real stacks of ``shared/data``.

Usage::

    python bench/bench_depth_windows.py [--profiles tripod,handheld,long] [--real pcb,pcb_depthmap]
    python bench/bench_depth_windows.py --measure-windows 5,3,1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

import postfocus.products.depth as depth_module
from bench_depth import PROFILES, SCENES, error_breakdown, make_stack, score
from postfocus.colour import to_grey
from postfocus.focus.map import curve_width, guided_upsample, peak_near
from postfocus.focus.measure import laplacian_energy
from postfocus.numeric import argmax0, pick0
from postfocus.pipeline.run import process
from postfocus.products.depth import depth_map

REAL = Path(__file__).resolve().parents[2] / "shared" / "data"
FAILING = {("tripod", "motorcycle"), ("tripod", "steps"), ("handheld", "motorcycle"), ("long", "motorcycle"),
           ("long", "steps")}


def own_windows(volume: np.ndarray, image: np.ndarray, radius: int, tolerance: float | None) -> np.ndarray:
    """Per frame, the smallest window sum over the centres within ``radius`` (of the pixel's colour, if a tolerance)."""
    n, h, w = volume.shape
    if tolerance is None:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        return np.stack([cv2.erode(v, disc, borderType=cv2.BORDER_REPLICATE) for v in volume])
    colour = np.asarray(image, np.float32).reshape(h, w, -1)
    out = volume.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if (dy == 0 and dx == 0) or dy * dy + dx * dx > radius * radius + radius:
                continue
            ty, sy = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
            tx, sx = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
            same = np.abs(colour[sy, sx] - colour[ty, tx]).sum(axis=2) < tolerance
            np.minimum(out[:, ty, tx], volume[:, sy, sx], out=out[:, ty, tx], where=same[None])
    return out


def second_peak(volume: np.ndarray, best: np.ndarray, other: np.ndarray, where: np.ndarray, dip: float) -> np.ndarray:
    """Where ``where``: whether the curve falls below ``dip`` of its value at ``other`` between ``best`` and it."""
    ys, xs = np.nonzero(where)
    found = np.zeros(where.shape, bool)
    if ys.size:
        curves = volume[:, ys, xs]
        a, b = best[ys, xs], other[ys, xs]
        k = np.arange(volume.shape[0])[:, None]
        between = np.where((k > np.minimum(a, b)) & (k < np.maximum(a, b)), curves, np.inf).min(axis=0)
        found[ys, xs] = between < dip * curves[b, np.arange(ys.size)]
    return found


class Windows:
    """Replace refine_depth's aggregation by a shifted-window reading while in a ``with`` block."""

    def __init__(self, radius: int, tolerance: float | None = None, level: float | None = None,
                 second: bool = False) -> None:  # noqa: D107
        self.radius, self.tolerance, self.level, self.second = radius, tolerance, level, second
        self.image: np.ndarray | None = None

    def __enter__(self) -> "Windows":
        self.aggregate, self.refine = depth_module.aggregate, depth_module.refine_depth
        depth_module.aggregate, depth_module.refine_depth = self._aggregate, self._refine
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        depth_module.aggregate, depth_module.refine_depth = self.aggregate, self.refine

    def _refine(self, volume, image, **kw):  # noqa: ANN001, ANN003
        self.image = np.asarray(image, np.float32)
        return self.refine(volume, image, **kw)

    def _aggregate(self, volume, guide, radius, eps):  # noqa: ANN001
        agg = self.aggregate(volume, guide, radius, eps)
        own = own_windows(agg, self.image, self.radius, self.tolerance)
        if self.level is None and not self.second:
            return own
        floor = float(np.median(agg.min(axis=0))) + 1e-12
        best, own_best = argmax0(agg), argmax0(own)
        use = pick0(own, own_best) > (self.level or depth_module.LEVEL_RATIO[0]) * floor
        if self.second:
            width = max(1.0, curve_width(agg, best, floor))
            use = peak_near(agg, own_best, use & (own_best != best), int(np.ceil(width)), floor)
            use = second_peak(agg, best, own_best, use, 0.5)
        return np.where(use[None], own, agg)


VARIANTS = {
    "window sums (main)": None,
    "min 1": Windows(1), "min 2": Windows(2), "min 3": Windows(3),
    "colour 2 0.1": Windows(2, 0.1), "colour 2 0.2": Windows(2, 0.2), "colour 3 0.1": Windows(3, 0.1),
    "colour 2 0.1, level 10": Windows(2, 0.1, 10.0),
    "colour 2 0.1, second peak": Windows(2, 0.1, second=True),
}


def remade_depth(ps, image: np.ndarray, window: int) -> np.ndarray:  # noqa: ANN001
    """The depth (frames, output size) from a measure with a ``window`` box made again from the aligned frames."""
    greys = []
    for i in ps.used:
        frame = np.asarray(ps.read_frame(i))
        greys.append(to_grey(frame.astype(np.float32) / (255.0 if frame.dtype == np.uint8 else 1.0)))
    volume = np.stack([laplacian_energy(g, window) for g in greys])
    used, ntf = list(ps.used), ps.near_to_far
    position, _ = depth_module.refine_depth(volume if ntf else volume[::-1], image, motion=ps.motion)
    position = position if ntf else (len(used) - 1) - position
    frame = np.interp(position, np.arange(len(used), dtype=np.float32), np.asarray(used, np.float32))
    depth = guided_upsample(frame.astype(np.float32), image)
    n = len(ps.names)
    return np.clip(depth if ntf else (n - 1) - depth, 0, n - 1)


def measure_windows(profiles: list[str], windows: list[int]) -> None:
    """Print the share within one frame of the stored measure's depth and of the remade measures' ones."""
    print("| profile | scene | stored measure | " + " | ".join(f"box {w}" for w in windows) + " |")
    print("|---|---|---|" + "---|" * len(windows))
    with tempfile.TemporaryDirectory() as tmp:
        for profile in profiles:
            frames, camera, fmt = PROFILES[profile]
            for name in SCENES:
                ps, _, truth = make_stack(name, Path(tmp) / f"{profile}-{name}", frames=frames, fmt=fmt, **camera)
                image = ps.all_in_focus()
                if np.shape(ps.volume)[1:] != image.shape[:2]:
                    raise SystemExit("the stored measure is pooled: render at the analysis size or smaller")
                cells = [score(depth_map(ps, image=image).depth, truth)[0]]
                cells += [score(remade_depth(ps, image, w), truth)[0] for w in windows]
                print(f"| {profile} | {name} | " + " | ".join(f"{100 * c:.1f}%" for c in cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="tripod,handheld,long")
    parser.add_argument("--real", default="", help="comma-separated stacks of shared/data to time and compare")
    parser.add_argument("--measure-windows", default="", help="e.g. 5,3,1: depth from remade measures instead")
    args = parser.parse_args(argv)
    if args.measure_windows:
        measure_windows(args.profiles.split(","), [int(w) for w in args.measure_windows.split(",")])
        return 0
    rows, misses = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles.split(","):
            frames, camera, fmt = PROFILES[profile]
            for name in SCENES:
                ps, _, truth = make_stack(name, Path(tmp) / f"{profile}-{name}", frames=frames, fmt=fmt, **camera)
                image = ps.all_in_focus()
                for label, hook in VARIANTS.items():
                    if hook is None:
                        depth = depth_map(ps, image=image).depth
                    else:
                        with hook:
                            depth = depth_map(ps, image=image).depth
                    rows.setdefault((profile, name), {})[label] = score(depth, truth)[0]
                    if label in ("window sums (main)", "min 2", "colour 2 0.1, second peak"):
                        misses.setdefault((profile, name), {})[label] = error_breakdown(depth, truth, image, frames)
                print(f"{profile} {name}", file=sys.stderr)
        labels = list(VARIANTS)
        print("| profile | scene | " + " | ".join(labels) + " |")
        print("|---|---|" + "---|" * len(labels))
        for (profile, name), row in rows.items():
            base = row[labels[0]]
            cells = [f"{100 * base:.1f}%"] + [f"{100 * row[k]:.1f}% ({100 * (row[k] - base):+.1f})" for k in labels[1:]]
            bold = "**" if (profile, name) in FAILING else ""
            print(f"| {profile} | {bold}{name}{bold} | " + " | ".join(cells) + " |")
        print("\nmisses (at depth edges / textureless / elsewhere), main -> min 2 -> colour 2 0.1, second peak:\n")
        print("| profile | scene | main | min 2 | colour, second peak |\n|---|---|---|---|---|")
        for (profile, name), m in misses.items():
            kinds = [" / ".join(f"{100 * b[k]:.1f}" for k in ("edge", "textureless", "other")) for b in m.values()]
            print(f"| {profile} | {name} | " + " | ".join(kinds) + " |")
        for name in filter(None, args.real.split(",")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ps = process(REAL / name, cache_dir=Path(tmp) / "real")
            image = ps.all_in_focus()
            cpu: dict[str, list[float]] = {"main": [], "second peak": []}
            depth = {}
            for _ in range(3):  # interleaved
                for label, hook in (("main", None), ("second peak", VARIANTS["colour 2 0.1, second peak"])):
                    start = time.process_time()
                    if hook is None:
                        depth[label] = depth_map(ps, image=image).depth
                    else:
                        with hook:
                            depth[label] = depth_map(ps, image=image).depth
                    cpu[label].append(time.process_time() - start)
            moved = np.abs(depth["second peak"] - depth["main"])
            print(f"{name}: CPU of depth_map main {np.median(cpu['main']):.2f} s, second peak "
                  f"{np.median(cpu['second peak']):.2f} s; moved > 2 frames {100 * (moved > 2).mean():.3f} %, "
                  f"> 0.5 frames {100 * (moved > 0.5).mean():.3f} %; largest depth {depth['main'].max():.2f} -> "
                  f"{depth['second peak'].max():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
