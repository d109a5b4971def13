"""Alignment accuracy and time at 1080p: postfocus vs align_image_stack, on generated handheld sweeps.

Renders sweeps of the generator's scenes at 1920x1080 (10 frames; normal and
strong handheld motion), so every frame's true transform is known, and reports
the worst and mean corner error (px) of:

* postfocus's alignment (``analyse``), for each ``--ecc-size`` given (the long
  edge of the finest level of its global correlation match; the tile
  refinement always works at the full working size);
* align_image_stack (``-m``, neighbours chained): its aligned TIFFs are
  compared with the same frames warped by their true transforms (identical
  blur, so an ECC match between the two is unbiased), which gives the residual
  transform of each frame.

With ``--sweep depthmap`` the sweep is instead a tilted textured board (the ``ramp`` scene) seen from a
tripod in the regime of the real ``pcb_depthmap`` stack: 10 frames, a blur radius of up to 5 % of the frame's
width, so that neighbouring frames differ strongly in defocus (two thirds of the tiles' first Lucas-Kanade
steps clipped at 1 px, nearly all still iterating at the eighth, the tiles pixels from the model fitted to
them, as ``bench_tile_steps.py`` shows on pcb_depthmap). ``--tile-steps`` runs postfocus with the tile
refinement's step cap at each value given (0: no tile refinement, the correlation match's matrix kept).

Usage:
    python bench/bench_align.py                    # --ecc-size 900 450
    python bench/bench_align.py --sweep depthmap --no-peers --ecc-size 450 --tile-steps 8 5 0
    python bench/bench_align.py --scenes steps --no-peers
    python bench/bench_align.py --ecc-size 450 --no-peers --size 750x500   # small frames (working size = frame)

Before/after a change: run it with ``PYTHONPATH`` pointing at each version's ``src``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import ensure_peers, timed_cpu  # noqa: E402

from postfocus.align import pair as alignment  # noqa: E402 (ECC_MAX_SIZE is read there)
from postfocus.io.arrays import ArraySource  # noqa: E402
from postfocus.pipeline.analyse import analyse  # noqa: E402
from postfocus.synth import render_stack, scene  # noqa: E402

HANDHELD = dict(shake_px=8.0, rotation_deg=0.5, breathing=0.03, exposure_drift=0.05, noise=0.004, jpeg_quality=95)
STRONG = dict(shake_px=15.0, rotation_deg=1.0, breathing=0.04, exposure_drift=0.10, noise=0.008, jpeg_quality=95)
DEPTHMAP = dict(shake_px=2.0, rotation_deg=0.1, breathing=0.05, exposure_drift=0.03, noise=0.004, jpeg_quality=92)
SIZE = (1080, 1920)


def corner_error(estimated: np.ndarray, true: np.ndarray, size: tuple[int, int] = SIZE) -> float:
    """Largest displacement (px) of the image corners between two transforms (reference -> frame)."""
    h, w = size
    c = np.array([[0, w, w, 0], [0, 0, h, h], [1, 1, 1, 1]], np.float64)
    a, b = estimated @ c, true @ c
    return float(np.hypot(*(a[:2] / a[2] - b[:2] / b[2])).max())


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.asarray(image, np.float32), cv2.COLOR_RGB2GRAY)


def ais_errors(frames: list[np.ndarray], transforms: list[np.ndarray], work: Path) -> tuple[list[float], float]:
    """align_image_stack's corner errors (frames 1.., in frame 0's geometry) and its wall time."""
    paths = []
    for k, f in enumerate(frames):
        p = work / f"f{k:02d}.tif"
        cv2.imwrite(str(p), cv2.cvtColor((np.clip(f, 0, 1) * 65535 + 0.5).astype(np.uint16), cv2.COLOR_RGB2BGR))
        paths.append(p)
    seconds, _, code, err, _ = timed_cpu(["align_image_stack", "-m", "-a", str(work / "al_"), "--use-given-order",
                                          *map(str, paths)])
    aligned = sorted(work.glob("al_*.tif"))
    if code != 0 or len(aligned) != len(frames):
        return [float("nan")], seconds
    h, w = SIZE
    errors = []
    for k in range(1, len(frames)):
        ais = cv2.imread(str(aligned[k]), cv2.IMREAD_UNCHANGED)[..., :3][..., ::-1].astype(np.float32) / 65535
        # Frame k in frame 0's geometry by the true transforms: frame0 coords -> frame k coords.
        truth = transforms[k] @ np.linalg.inv(transforms[0])
        expected = cv2.warpPerspective(frames[k], truth, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        inner = (slice(60, h - 60), slice(60, w - 60))
        # Residual: expected coords -> ais coords (same picture, same blur: unbiased).
        residual, _ = alignment.ecc_match(grey(expected)[inner], grey(ais)[inner], "affine")
        shift = np.array([[1, 0, -60], [0, 1, -60], [0, 0, 1.0]])
        errors.append(corner_error(np.linalg.inv(shift) @ residual @ shift, np.eye(3), SIZE))
    return errors, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", default=None, help="default: steps motorcycle occluder ramp (handheld), "
                    "ramp (depthmap)")
    ap.add_argument("--sweep", choices=["handheld", "depthmap"], default="handheld",
                    help="handheld: normal and strong shake, blur up to 8 px; depthmap: tripod, blur up to 5 %% of "
                    "the width")
    ap.add_argument("--tile-steps", type=int, nargs="*", default=[8],
                    help="the tile refinement's step caps (0: no refinement)")
    ap.add_argument("--ecc-size", type=int, nargs="*", default=[900, 450])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--size", default=None, help="frame size WxH of the rendered sweeps (default 1920x1080 "
                    "handheld, 1200x900 depthmap)")
    args = ap.parse_args()
    global SIZE
    depthmap = args.sweep == "depthmap"
    size = args.size or ("1200x900" if depthmap else "1920x1080")
    SIZE = tuple(int(v) for v in size.lower().split("x"))[::-1]
    scenes = args.scenes or (["ramp"] if depthmap else ["steps", "motorcycle", "occluder", "ramp"])
    motions = (("depthmap", DEPTHMAP),) if depthmap else (("handheld", HANDHELD), ("strong", STRONG))
    max_blur = 0.05 * SIZE[1] if depthmap else 8.0
    if not args.no_peers:
        ensure_peers()
    stacks = {}
    for name in scenes:
        sharp, depth = scene(name, SIZE, seed=1)
        for label, motion in motions:
            stacks[(name, label)] = render_stack(sharp, depth, args.frames, max_blur=max_blur, seed=2, **motion)
    print(f"rendered {len(stacks)} sweeps of {args.frames} frames at {SIZE[1]}x{SIZE[0]}", file=sys.stderr)
    print("| sweep | aligner | worst corner px | mean corner px | seconds |")
    print("|---|---|---|---|---|")
    default, shifts, refine = alignment.ECC_MAX_SIZE, alignment.tile_shifts, alignment.refine_with_tiles
    totals: dict[str, list[float]] = {}
    for (name, label), st in stacks.items():
        for ecc in args.ecc_size:
            for steps in args.tile_steps:
                alignment.ECC_MAX_SIZE = ecc
                if steps == 0:
                    alignment.refine_with_tiles = lambda template, moving, matrix, *a, **k: matrix
                elif steps != 8:
                    alignment.tile_shifts = lambda *a, _n=steps, **k: shifts(*a, iterations=_n, **k)
                try:
                    t = time.perf_counter()
                    a = analyse(ArraySource(st.frames), motion="off")
                    seconds = time.perf_counter() - t
                finally:
                    alignment.ECC_MAX_SIZE, alignment.tile_shifts, alignment.refine_with_tiles = default, shifts, refine
                errors = [corner_error(r.matrix, W, SIZE) for r, W in zip(a.alignment, st.transforms)]
                tiles = "" if args.tile_steps == [8] else (", no tiles" if steps == 0 else f", tiles {steps} steps")
                tool = f"postfocus (ECC to {ecc} px{tiles})"
                totals.setdefault(tool, []).append(max(errors))
                print(f"| {name} {label} | {tool} | {max(errors):.3f} | {np.mean(errors):.3f} | {seconds:.1f} |")
        if not args.no_peers:
            with tempfile.TemporaryDirectory(prefix="pf-align-") as tmp:
                errors, seconds = ais_errors(st.frames, st.transforms, Path(tmp))
            totals.setdefault("align_image_stack", []).append(max(errors))
            print(f"| {name} {label} | align_image_stack | {max(errors):.3f} | {np.mean(errors):.3f} | {seconds:.1f} |")
    for tool, worst in totals.items():
        print(f"{tool}: worst corner error over all sweeps {max(worst):.3f} px, mean of worsts {np.mean(worst):.3f} px")


if __name__ == "__main__":
    main()
