"""Depth decided by the forward model: two experiments of the seventh session, tried and dropped (measured here).

The forward-model check (:mod:`postfocus.check`) re-renders every aligned frame from the all-in-focus image
and a depth map under a defocus calibrated from the frames (occlusion-aware: near slabs over far ones) and
measures each pixel's error in typical errors of its contrast (the Laplace scale of
:mod:`postfocus.check.evidence`). Both experiments use it to *decide* depths instead of only flagging them:

``--experiment sides``
    Near a depth step (within ``--reach`` px of a neighbour more than the occlusion band's jump farther) a
    pixel may be read too near: the near object's focus energy dominates its focus curve. Two depth maps are
    rendered: postfocus's and the same with those pixels given the farther side's depth (the maximum within
    the reach); each pixel takes the far side where its summed, windowed error is lower by ``x`` times the
    likelihood-ratio level (``1.25 sqrt(frames)``), for ``x`` in -1, 0, 0.5, 1. Also printed: of the
    pixels read too near whose far side is right ("fixable"), the share whose error prefers the far side;
    of the pixels read right whose far side is wrong, the same share (each should be 100 % and 0 %).
``--experiment patches``
    The outlier step rejects islands of depth (:func:`postfocus.focus.clean.islands`) and gives them the
    surface's median. Here each rejected 8-connected patch keeps its own reading where the frames, rendered
    with the patch at its own reading, are explained better (summed over up to 12 frames spread over the
    sweep and over the patch) than with the patch at the median (with ``--level x``: by ``x`` times the
    likelihood-ratio level per pixel, and not touching the picture's border band). Scored on the generated stacks (within one
    frame, median) and, with ``--real``, on the real stacks of ``shared/data``: the share of pixels moved by
    more than two frames, the largest depth, and the CPU of ``depth_map`` with and without the judge.

Both hook into :func:`postfocus.products.depth.refine_depth` from outside (the library is unchanged).

Usage::

    python bench/bench_depth_frames.py --experiment sides   [--profiles tripod] [--reach 4]
    python bench/bench_depth_frames.py --experiment patches [--profiles tripod,handheld,long] [--real] [--level 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

import postfocus.products.depth as depth_module
from bench_depth import PROFILES, SCENES, make_stack
from postfocus.check.defocus import calibrate
from postfocus.check.forward import _contrast, _rgb, _typical_error  # the check's own yardstick
from postfocus.check.layers import hidden_jump, hidden_zone, render_closest, soft_slabs
from postfocus.check.stack import forward_check
from postfocus.colour import gamma_decode, to_grey
from postfocus.pipeline.run import process
from postfocus.products.depth import depth_map
from postfocus.synth import optics

FRAMES = 12  # frames, spread over the sweep, that judge the patches
WINDOW = 2  # half-size of the error window (px), as the check's
REAL = Path(__file__).resolve().parents[2] / "shared" / "data"


def render_costs(image: np.ndarray, depths: list[np.ndarray], frames: dict[int, np.ndarray], model) -> list:  # noqa: ANN001
    """Per depth map: each pixel's windowed error over ``frames``, in typical errors, summed (the check's render)."""
    linear = gamma_decode(np.clip(image, 0.0, 1.0).astype(np.float32))
    premult = optics.premultiply(linear)
    kernels = optics.KernelCache()
    slope = max(model.near_slope, model.far_slope)
    out = []
    for depth in depths:
        slabs, slab_depth = soft_slabs(depth, depth.shape, slope)
        zone = hidden_zone(depth, model, np.asarray(sorted(frames)), hidden_jump(slabs, model))
        cost = np.zeros(depth.shape, np.float32)
        for k, frame in frames.items():
            _, _, _, error = render_closest(premult, slabs, slab_depth, model, k, kernels, frame, zone=zone,
                                            window=WINDOW)
            cost += error / _typical_error(error, _contrast(to_grey(frame)), np.ones(error.shape, bool))
        out.append(cost)
    return out


def sides(ps, truth: np.ndarray, reach: int) -> str:  # noqa: ANN001
    """The far side of a depth step against the pixel's reading, decided pixel by pixel by the frames."""
    d = depth_map(ps).depth
    model = forward_check(ps, depth=d).model
    frames = {i: np.clip(_rgb(ps.read_frame(i)), 0, 1).astype(np.float32) for i in ps.used}
    jump = max(1.0, 0.1 * (len(ps.used) - 1))
    far = cv2.dilate(d, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    zone = far - d > jump
    other = np.where(zone, far, d)
    mine, theirs = render_costs(ps.all_in_focus(), [d, other], frames, model)
    level = 1.25 * math.sqrt(len(ps.used))
    within = lambda x: float((np.abs(x - truth) <= 1.0).mean())  # noqa: E731
    cells = [f"{within(d):.1%}"] + [f"{within(np.where(zone & (theirs < mine - x * level), other, d)):.1%}"
                                    for x in (-1.0, 0.0, 0.5, 1.0)]
    prefers = theirs < mine
    fixable = zone & (d - truth < -1.0) & (np.abs(other - truth) <= 1.0)
    spoiled = zone & (np.abs(d - truth) <= 1.0) & (np.abs(other - truth) > 1.0)
    share = lambda m: f"{prefers[m].mean():.0%}" if m.any() else "-"  # noqa: E731
    return " | ".join(cells + [f"{fixable.mean():.1%}", share(fixable), f"{spoiled.mean():.1%}", share(spoiled)])


class PatchJudge:
    """Wraps the depth module's ``outliers`` and ``islands``: rejected patches the frames support keep their reading."""

    def __init__(self, level: float | None = None) -> None:  # noqa: D107
        self.level = level
        self.stack = None
        self.kept = 0
        self._outliers, self._islands = depth_module.outliers, depth_module.islands
        self._median = None

    def __enter__(self) -> "PatchJudge":
        depth_module.outliers, depth_module.islands = self.outliers, self.islands
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        depth_module.outliers, depth_module.islands = self._outliers, self._islands

    def outliers(self, index, confidence, guide, **kw):  # noqa: ANN001, ANN003, D102
        bad, self._median = self._outliers(index, confidence, guide, **kw)
        return bad, self._median

    def islands(self, index, confidence, bad, **kw):  # noqa: ANN001, ANN003, D102
        bad = self._islands(index, confidence, bad, **kw)
        if self.stack is None or not bad.any():
            return bad
        keep = self.judge(index, np.where(bad, self._median, index).astype(np.float32), bad)
        self.kept += int(keep.sum())
        return bad & ~keep

    def judge(self, own: np.ndarray, replaced: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """The rejected patches (8-connected) whose own reading explains the frames better, over their pixels."""
        ps = self.stack
        used = list(ps.used)
        h, w = bad.shape
        image = np.clip(cv2.resize(ps.all_in_focus(), (w, h), interpolation=cv2.INTER_AREA), 0, 1)
        pick = sorted({int(round(v)) for v in np.linspace(0, len(used) - 1, min(FRAMES, len(used)))})
        frames = {k: np.clip(cv2.resize(_rgb(ps.read_frame(used[k])), (w, h), interpolation=cv2.INTER_AREA), 0, 1)
                  for k in pick}
        grey = to_grey(gamma_decode(image))
        mean = max(float(grey.mean()), 1e-6)

        def read_grey(k: int) -> np.ndarray:  # exposure-matched grey in linear light, as the check calibrates
            g = to_grey(gamma_decode(frames[k]))
            return g * np.float32(mean / max(float(g.mean()), 1e-6))

        model = calibrate(grey, replaced, read_grey, pick, weight=(~bad).astype(np.float32))
        if model.samples == 0 or max(model.near_slope, model.far_slope) <= 0:
            return np.zeros_like(bad)  # no defocus measured: nothing judged
        costs = render_costs(image, [replaced, own], frames, model)
        count, labels = cv2.connectedComponents(bad.astype(np.uint8), connectivity=8)
        sums = [np.bincount(labels.ravel(), c.ravel(), count) for c in costs]
        better = sums[1] < sums[0]
        if self.level is not None:  # by the likelihood-ratio level per pixel, and not at the picture's border
            border = max(2, int(0.02 * max(h, w)))  # the frames there hold blur from outside the picture
            edge = np.ones_like(bad)
            edge[border:-border, border:-border] = False
            pixels = np.maximum(np.bincount(labels.ravel(), minlength=count), 1)
            better = ((sums[0] - sums[1]) / pixels > self.level * 1.25 * math.sqrt(len(frames)))
            better &= np.bincount(labels.ravel(), edge.ravel().astype(np.float64), count) == 0
        better[0] = False
        return better[labels]


def judged_depth(judge: PatchJudge, ps) -> tuple[np.ndarray, float]:  # noqa: ANN001
    """``depth_map`` with the patch judge, and its CPU seconds."""
    judge.stack = ps
    t0 = time.process_time()
    d = depth_map(ps).depth
    return d, time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", choices=("sides", "patches"), required=True)
    ap.add_argument("--profiles", default="tripod", help=f"comma-separated, of {', '.join(PROFILES)}")
    ap.add_argument("--reach", type=int, default=4, help="px from a depth step where the far side is tried (sides)")
    ap.add_argument("--real", action="store_true", help="patches: also the real stacks of shared/data")
    ap.add_argument("--level", type=float, default=None,
                    help="patches: keep a patch only where its own reading wins by this many times the likelihood-"
                         "ratio level per pixel, and not at the border (default: any win, anywhere)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        if args.experiment == "sides":
            print("| profile | scene | within 1 | far side at x = -1 | x = 0 | x = 0.5 | x = 1 | fixable | prefers far "
                  "there | right, far side wrong | prefers far there |\n|---|---|---|---|---|---|---|---|---|---|---|")
        else:
            print("| profile | scene | within 1 / median | judged: within 1 / median | pixels kept |\n|---|---|---|---|---|")
        for profile in args.profiles.split(","):
            frames, camera, fmt = PROFILES[profile]
            for name in SCENES:
                ps, _, truth = make_stack(name, Path(tmp) / f"{profile}-{name}", frames=frames,
                                          cache=Path(tmp) / "cache", fmt=fmt, **camera)
                if args.experiment == "sides":
                    print(f"| {profile} | {name} | {sides(ps, truth, args.reach)} |", flush=True)
                    continue
                plain = depth_map(ps).depth
                with PatchJudge(args.level) as judge:
                    d, _ = judged_depth(judge, ps)
                err0, err1 = np.abs(plain - truth), np.abs(d - truth)
                print(f"| {profile} | {name} | {(err0 <= 1).mean():.1%} / {np.median(err0):.3f} | "
                      f"{(err1 <= 1).mean():.1%} / {np.median(err1):.3f} | {judge.kept} |", flush=True)
        if args.experiment == "patches" and args.real:
            print("\n| real stack | moved > 2 frames | largest depth: plain / judged | CPU s: plain / judged |\n"
                  "|---|---|---|---|")
            for name in ("keyboard_sweep.mp4", "pcb", "pcb_depthmap"):
                ps = process(REAL / name, cache_dir=Path(tmp) / "real")
                image = ps.all_in_focus()
                t0 = time.process_time()
                plain = depth_map(ps, image=image).depth
                cpu = time.process_time() - t0
                with PatchJudge(args.level) as judge:
                    d, cpu_judged = judged_depth(judge, ps)
                moved = float((np.abs(d - plain) > 2.0).mean())
                print(f"| {name} | {moved:.2%} | {plain.max():.2f} / {d.max():.2f} | {cpu:.2f} / {cpu_judged:.2f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
