"""Which step of ``refine_depth`` turns a small change of the focus volume into a large change of the depth.

Runs :func:`postfocus.products.depth.refine_depth` (through ``grid_depth``, on the volume's grid, one thread) on
two inputs and hooks into its steps from outside (the library is unchanged): the peak fit, the occlusion sides,
the outliers and their islands, the fill (:func:`~postfocus.products.depth_fill.fill_regions`), the snap onto
outlines and the pixel and frame sides. For each step it prints, over a box of the picture, the share of pixels
whose output moved by more than a frame (or, for a mask, changed), so the first step with a large share is the
one that amplifies. The two inputs are

* two processed stack folders of the same frames (``--stacks A B``: e.g. processed by two versions of the
  alignment), or
* one folder and its focus volume times ``1 + u``, ``u`` uniform in ``[-amp, amp]`` (``--stack A --amp 0.01
  --seeds 3``).

``--scene plain-patch`` renders and processes ``tests/test_refocus.py``'s ``plain_patch_scene`` (12 frames,
seed 4: a dark plain far patch with a near textured disc in it) into ``--cache`` and uses its patch, 14 px inside
its border and 15 px off the disc, as the box (the IC ECC revert, docs/performance.md, fourteenth session).

Usage::

    PYTHONPATH=src python bench/bench_depth_flip.py --scene plain-patch --cache /tmp/flip [--amp 0.01 --seeds 3]
    PYTHONPATH=src python bench/bench_depth_flip.py --stacks FOLDER_A FOLDER_B [--box top,bottom,left,right]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

import postfocus.products.depth as depth_module
from postfocus.store import ProcessedStack

STEPS = ("first_fit", "end_peaks", "occlusion_sides", "spilled", "outliers", "islands", "seen_through",
         "fill_regions", "snap_to_outlines", "pixel_sides", "frame_sides")


def run(stack: ProcessedStack, volume: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each hooked step's first (h, w) output, and the final depth, for one run of ``grid_depth``."""
    seen: dict[str, np.ndarray] = {}
    originals = {name: getattr(depth_module, name) for name in STEPS}

    def hook(name):
        def step(*args, **kwargs):
            out = originals[name](*args, **kwargs)
            first = out[0] if isinstance(out, tuple) else out
            seen.setdefault(name, np.array(first))
            return out
        return step

    try:
        for name in STEPS:
            setattr(depth_module, name, hook(name))
        if volume is not None:  # (the perturbed volume read in place of the stored one)
            stack.__dict__["maps"] = dataclasses.replace(stack.maps, volume=volume)
        seen["depth"] = depth_module.grid_depth(stack, stack.all_in_focus(), threads=1)[0]
    finally:
        for name, f in originals.items():
            setattr(depth_module, name, f)
    return seen


def compare(a: dict, b: dict, box: np.ndarray) -> list[str]:
    rows = []
    for name in (*STEPS, "depth"):
        if name not in a or name not in b or a[name].shape != box.shape:
            continue
        x, y = a[name], b[name]
        if x.dtype == bool:
            rows.append(f"{name:18s} mask differs on {100 * np.mean(x[box] != y[box]):6.2f} % (whole grid "
                        f"{100 * np.mean(x != y):.2f} %)")
        else:
            moved = np.abs(x.astype(np.float64) - y)[box] > 1
            rows.append(f"{name:18s} moved > 1 frame  {100 * moved.mean():6.2f} %   mean {x[box].mean():6.2f} -> "
                        f"{y[box].mean():6.2f}")
    return rows


def plain_patch(cache: Path) -> tuple[Path, np.ndarray]:
    """``plain_patch_scene`` rendered and processed into ``cache``; its folder and the patch box on its grid."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_refocus import DISC, PATCH, plain_patch_scene

    from postfocus import process
    from postfocus.synth import render_stack
    from postfocus.synth.files import write_stack

    if not (cache / "frames").is_dir():
        sharp, depth01 = plain_patch_scene()
        write_stack(render_stack(sharp, depth01, 12, max_blur=8.0, noise=0.01, seed=4), cache / "frames", "png")
    ps = process(cache / "frames", cache_dir=cache / "cache")
    t, l, _, _ = ps.manifest["crop"]
    mh, mw = np.asarray(ps.volume).shape[1:]
    h, w = ps.size
    yy, xx = np.mgrid[:mh, :mw]
    y, x = yy * h / mh + t, xx * w / mw + l
    top, bottom, left, right = PATCH
    box = (y >= top + 14) & (y < bottom - 14) & (x >= left + 14) & (x < right - 14) & (
        np.hypot(x - DISC[0], y - DISC[1]) > DISC[2] + 15)
    return ps.folder, box


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stacks", nargs=2, type=Path, metavar="FOLDER")
    ap.add_argument("--stack", type=Path)
    ap.add_argument("--scene", choices=["plain-patch"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/bench_depth_flip"))
    ap.add_argument("--box", default=None, help="top,bottom,left,right on the volume's grid (default: all)")
    ap.add_argument("--amp", type=float, default=0.01)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    box = None
    if args.scene:
        folder, box = plain_patch(args.cache)
        args.stack = folder
    first = ProcessedStack.open(args.stacks[0] if args.stacks else args.stack)
    shape = np.asarray(first.volume).shape[1:]
    if args.box:
        t, b, l, r = map(int, args.box.split(","))
        box = np.zeros(shape, bool)
        box[t:b, l:r] = True
    box = np.ones(shape, bool) if box is None else box
    base = run(first)
    if args.stacks:
        print(f"{args.stacks[0]} -> {args.stacks[1]}")
        print("\n".join(compare(base, run(ProcessedStack.open(args.stacks[1])), box)))
        return
    volume = np.asarray(first.volume, np.float32)
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        changed = volume * (1 + rng.uniform(-args.amp, args.amp, volume.shape)).astype(np.float32)
        print(f"volume x (1 +- {args.amp}), seed {seed}:")
        print("\n".join("  " + row for row in compare(base, run(ProcessedStack.open(first.folder), changed), box)))


if __name__ == "__main__":
    main()
