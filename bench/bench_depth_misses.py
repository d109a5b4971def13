"""Where a rendered stack's depth misses (more than a frame off the truth) come from: the pixel's peak or a neighbour.

Renders and processes one of :mod:`bench_depth`'s stacks (the dense ``long`` motorcycle by default), then compares
with the generator's truth both the first per-pixel reading (:func:`postfocus.focus.core_fit.first_fit` on the guided
aggregation, before any cleaning, as :func:`postfocus.products.depth.refine_depth` makes it) and the final
``depth_map``. Five tables:

1. misses by distance from a true depth step of more than a frame between neighbours (``depth_edges(truth, 1.0)``)
   and by the aggregated peak's level over the noise floor, as shares of the whole picture;
2. every pixel in one class of :func:`classes` (a mixed truth, textureless, two surfaces within ``--reach`` px of
   it, the sweep's end, one textured surface), each class's share within a frame and its misses;
3. the misses by the side of a true step they lie on and the way they err (:func:`step_sides`: the far side read
   nearer, the near side read farther, ...), each with the share that errs by at most two frames, and how many of the
   misses beside a step of the final map would be right had each taken the nearer or the farther depth of the map
   within ``--reach`` px (a bound on any rule that only chooses a side);
4. of the misses, the share whose own focus curve (the stored measure, and the aggregated one) has a local maximum
   within a frame of the truth: where it has none, no reading of that curve can be right; and the share within a
   frame if every miss that has one took it (a bound on any choice among a curve's peaks, and a loose one: a noisy
   curve has many);
5. the bound of a finer measure near steps (:func:`fine_measure`, the squared 3x3 Laplacian of each aligned frame
   boxed over 3x3: 2 px of reach, the stored measure's 4): in the band within ``--reach`` px of a step of the final
   map, the share whose own peak (:func:`own_peak`, each curve lightly smoothed along the sweep) lies within a frame
   of the truth, for the stored measure and the finer one, beside the final map's share, and the share of the whole
   picture within a frame had every band pixel the finer peak put right taken it (an oracle's bound on any rule
   that lets band pixels take the finer peak).

It also prints the fit's median signed error on the clear pixels far from steps (its bias) and the generator's
flat top: a disc under half a pixel leaves a pixel unchanged (:func:`postfocus.synth.optics.disc_kernel`), so every
frame within ``0.5 * (N - 1) / max_blur`` frames of a pixel's depth renders it alike.

Usage::

    python bench/bench_depth_misses.py [--profile long] [--scene motorcycle] [--seed 1] [--size 240x320] [--hidden]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_depth import PROFILES, depth_edges, one_stack, one_stack_options  # noqa: E402

from postfocus.colour import to_grey  # noqa: E402
from postfocus.focus.core_fit import first_fit  # noqa: E402
from postfocus.focus.map import aggregate, curve_width  # noqa: E402
from postfocus.numeric import argmax0, pick0  # noqa: E402
from postfocus.products.depth import LEVEL_RATIO, SHAPE_AGREE, SHAPE_WIDTH, depth_map  # noqa: E402
from postfocus.products.depth_frames import grid_frames  # noqa: E402

BANDS = ((0.0, 1.5), (1.5, 4.0), (4.0, np.inf))  # px from a true step of more than a frame
LEVELS = ((30.0, np.inf), (3.0, 30.0), (0.0, 3.0))  # aggregated peak / noise floor
SPANS = ((2.0, 4.0), (4.0, 8.0), (8.0, np.inf))  # frames of true depth within the measure's reach


def first_reading(volume: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first fit's reading (index + shift), the peak's level over the noise floor and the aggregated volume, as
    ``refine_depth`` makes them with its defaults (before the sweep's ends, the sides and the cleaning)."""
    n, h, w = volume.shape
    guide = to_grey(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA) if image.shape[:2] != (h, w) else image)
    agg = aggregate(volume, guide, max(2, int(round(0.005 * max(h, w)))), 1e-3)
    floor = float(np.median(agg.min(axis=0))) + 1e-12
    best = argmax0(agg)
    peak = pick0(agg, best)
    width = max(1.0, curve_width(agg, best, floor))
    clear = (best > 0) & (best < n - 1) & (peak > LEVEL_RATIO[1] * floor) if width >= SHAPE_WIDTH else None
    index, shift = first_fit(agg, best, peak, width, floor, least=LEVEL_RATIO[0], clear=clear, agree=SHAPE_AGREE)
    return (index + shift).astype(np.float32), peak / floor, agg


def classes(truth: np.ndarray, level: np.ndarray, frames: int, reach: int) -> list[tuple[str, np.ndarray]]:
    """Each pixel in one class, the first that holds (the candidates for a miss, in this order).

    ``mixed truth``: its true depth lies more than a frame from both its 3x3 neighbourhood's nearest and farthest (an
    area average of two surfaces, what the generator gives a pixel on an outline: no surface is there);
    ``textureless``: its aggregated peak under ``LEVEL_RATIO[0]`` noise floors; ``two surfaces``: the true depth spans
    more than two frames within ``reach`` px (the stored measure's window and the aggregation: the curve holds a
    neighbour's texture), in three classes by that span (``SPANS``); ``sweep's end``: the truth within 1.5 frames of
    the first or last frame (a cut curve);
    ``one surface``: the rest, a single textured surface inside the sweep (the peak fit itself)."""
    three, wide = np.ones((3, 3), np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)
    mixed = (truth - cv2.erode(truth, three) > 1.0) & (cv2.dilate(truth, three) - truth > 1.0)
    flat = ~mixed & (level < LEVEL_RATIO[0])
    span = np.where(mixed | flat, 0.0, cv2.dilate(truth, wide) - cv2.erode(truth, wide))
    kinds = [("mixed truth", mixed), ("textureless", flat)]
    kinds += [(f"two surfaces within {reach} px, {lo:g}-{hi:g} frames apart", (span > lo) & (span <= hi))
              for lo, hi in SPANS]
    rest = ~mixed & ~flat & (span <= SPANS[0][0])
    end = rest & ((truth < 1.5) | (truth > frames - 2.5))
    return kinds + [("sweep's end", end), ("one surface", rest & ~end)]


def step_sides(truth: np.ndarray, depth: np.ndarray, reach: int) -> list[tuple[str, np.ndarray]]:
    """The misses (more than a frame off the truth) by the side of a true step they lie on and the way they err.

    A pixel lies beside a step where the true depth within ``reach`` px spans more than two frames; it is on the far
    side where its truth is nearer that span's farthest depth than its nearest, else on the near side; ``one
    surface`` otherwise. Frames count from the nearest (0): a pixel that reads nearer reads a smaller number."""
    wide = np.ones((2 * reach + 1,) * 2, np.uint8)
    lo, hi = cv2.erode(truth, wide), cv2.dilate(truth, wide)
    step = hi - lo > 2.0
    far = step & (truth - lo > hi - truth)
    err = depth - truth
    return [("far side, read nearer", far & (err < -1)), ("far side, read farther", far & (err > 1)),
            ("near side, read farther", step & ~far & (err > 1)), ("near side, read nearer", step & ~far & (err < -1)),
            ("one surface, read nearer", ~step & (err < -1)), ("one surface, read farther", ~step & (err > 1))]


def side_bound(truth: np.ndarray, depth: np.ndarray, reach: int, jump: float) -> tuple[np.ndarray, np.ndarray]:
    """The misses beside a step of ``depth`` (its depths within ``reach`` px span more than ``jump``) and those of
    them the nearer or the farther of those depths would put within a frame of the truth."""
    wide = np.ones((2 * reach + 1,) * 2, np.uint8)
    lo, hi = cv2.erode(depth, wide), cv2.dilate(depth, wide)
    beside = (hi - lo > jump) & (np.abs(depth - truth) > 1)
    return beside, beside & ((np.abs(lo - truth) <= 1) | (np.abs(hi - truth) <= 1))


def truth_peak(curves: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Whether each pixel's curve has a local maximum (ends included) within a frame of its true depth."""
    n = curves.shape[0]
    top = np.zeros(curves.shape, bool)
    top[1:-1] = (curves[1:-1] >= curves[:-2]) & (curves[1:-1] >= curves[2:])
    top[0], top[-1] = curves[0] >= curves[1], curves[-1] >= curves[-2]
    near = np.abs(np.arange(n, dtype=np.float32)[:, None, None] - truth[None]) <= 1.0
    return (top & near).any(axis=0)


def fine_measure(frames: np.ndarray, window: int = 3) -> np.ndarray:
    """(N, h, w) squared 3x3 Laplacian of each grey frame of ``frames`` (no presmoothing), boxed over
    ``window`` x ``window``: a Laplacian energy of 1 + ``window // 2`` px reach (Nayar & Nakagawa 1994's family)."""
    out = np.empty(frames.shape, np.float32)
    for k, frame in enumerate(np.asarray(frames, np.float32)):
        lap = cv2.Laplacian(frame, cv2.CV_32F, ksize=3)
        out[k] = cv2.boxFilter(lap * lap, -1, (window, window))
    return out


def own_peak(curves: np.ndarray, smooth: float = 1.0) -> np.ndarray:
    """Each pixel's frame of largest measure after a Gaussian of ``smooth`` frames along the sweep (0: none)."""
    n = curves.shape[0]
    flat = np.asarray(curves, np.float32).reshape(n, -1)
    if smooth > 0:
        half = int(np.ceil(3 * smooth))
        flat = cv2.GaussianBlur(flat, (1, 2 * half + 1), sigmaX=0, sigmaY=smooth, borderType=cv2.BORDER_REPLICATE)
    return flat.argmax(axis=0).reshape(curves.shape[1:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    one_stack_options(ap, profile="long")
    ap.add_argument("--reach", type=int, default=4,
                    help="px around a pixel whose depths its curve holds (the measure's reach)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ps, frames, truth = one_stack(args, Path(tmp) / "stack")
        if not ps.near_to_far or list(ps.used) != list(range(frames)):
            print("the stack was not kept whole near to far: the first reading is not in frames", file=sys.stderr)
            return 1
        image = ps.all_in_focus()
        volume = np.asarray(ps.volume, np.float32)
        final = depth_map(ps).depth
        read = grid_frames(ps, volume.shape[1:])
        fine = None if read is None else fine_measure(np.stack([read(k) for k in range(frames)]))
    first, level, agg = first_reading(volume, image)
    if first.shape != truth.shape:
        print(f"volume {first.shape} is not the output size {truth.shape}", file=sys.stderr)
        return 1
    dist = cv2.distanceTransform((~depth_edges(truth, 1.0)).astype(np.uint8), cv2.DIST_L2, 3)
    print(f"{args.profile} {args.scene} seed {args.seed}: {frames} frames; the generator renders a pixel alike in "
          f"every frame within {0.5 * (frames - 1) / PROFILES[args.profile][1]['max_blur']:.2f} frames of its depth "
          "(blur under half a pixel)")
    print("\n| px from a step | peak / floor | share of picture | first reading: misses | final: misses |")
    print("|---|---|---|---|---|")
    for lo, hi in BANDS:
        for floor_lo, floor_hi in LEVELS:
            where = (dist >= lo) & (dist < hi) & (level >= floor_lo) & (level < floor_hi)
            row = [f"{100 * (np.abs(r - truth)[where] > 1).sum() / truth.size:.2f} %" for r in (first, final)]
            print(f"| {lo:g}-{hi:g} | {floor_lo:g}-{floor_hi:g} | {100 * where.mean():.1f} % | {' | '.join(row)} |")
    kinds = classes(truth, level, frames, args.reach)
    print("\n| class | share of picture | first reading: within a frame / misses (share of picture) | "
          "final: within a frame / misses |")
    print("|---|---|---|---|")
    for name, where in kinds:
        cells = [f"{100 * (np.abs(r - truth)[where] <= 1).mean():.1f} % / "
                 f"{100 * (where & (np.abs(r - truth) > 1)).mean():.2f} %" if where.any() else "-"
                 for r in (first, final)]
        print(f"| {name} | {100 * where.mean():.1f} % | {' | '.join(cells)} |")
    print("\n| final misses | share of picture | of them within two frames of the truth |")
    print("|---|---|---|")
    for name, where in step_sides(truth, final, args.reach):
        print(f"| {name} | {100 * where.mean():.2f} % | {100 * (np.abs(final - truth)[where] <= 2).mean():.0f} % |")
    beside, bound = side_bound(truth, final, args.reach, max(1.0, 0.1 * (frames - 1)))
    print(f"\nmisses beside a step of the final map (within {args.reach} px): {100 * beside.mean():.2f} % of the "
          f"picture, {100 * bound.mean():.2f} % right had each taken the map's nearer or farther depth there; "
          f"other misses {100 * ((np.abs(final - truth) > 1) & ~beside).mean():.2f} %")
    miss = np.abs(final - truth) > 1
    print("\n| curve | final misses whose curve peaks within a frame of the truth: <1.5 / 1.5-4 / >4 px from a step | "
          "within a frame if every such miss took that peak (a bound) |")
    print("|---|---|---|")
    for name, curves in (("stored measure", volume), ("aggregated", agg)):
        has = truth_peak(curves, truth)
        bands = (miss & (dist >= lo) & (dist < hi) for lo, hi in BANDS)
        shares = [100 * (has & m).sum() / max(1, m.sum()) for m in bands]
        print(f"| {name} | {' / '.join(f'{s:.1f} %' for s in shares)} | {100 * (1 - (miss & ~has).mean()):.2f} % |")
    if fine is not None:
        jump = max(1.0, 0.1 * (frames - 1))
        wide = np.ones((2 * args.reach + 1,) * 2, np.uint8)
        band = cv2.dilate(final, wide) - cv2.erode(final, wide) > jump
        right = np.abs(final - truth) <= 1
        print(f"\n| pixels | share of picture | final: within a frame | stored measure's own peak | "
              f"finer measure's own peak | whole picture within a frame had the band taken every right finer peak |")
        print("|---|---|---|---|---|---|")
        fine_right = np.abs(own_peak(fine) - truth) <= 1
        stored_right = np.abs(own_peak(volume) - truth) <= 1
        for name, where in ((f"within {args.reach} px of a step of the final map", band), ("the rest", ~band)):
            bound = f"{100 * (right | (band & fine_right)).mean():.2f} %" if where is band else "-"
            print(f"| {name} | {100 * where.mean():.1f} % | {100 * right[where].mean():.1f} % | "
                  f"{100 * stored_right[where].mean():.1f} % | {100 * fine_right[where].mean():.1f} % | {bound} |")
    clear = (dist >= 4) & (level >= LEVEL_RATIO[1])
    print(f"\nfirst reading's median signed error (frames, + far) on textured pixels over 4 px from a step: "
          f"{float(np.median((first - truth)[clear])):+.3f} ({100 * clear.mean():.1f} % of the picture)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
