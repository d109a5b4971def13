"""A kept stack merged again against ``postfocus stack``'s own picture (docs/quality.md, "Merging a kept stack,
fifteenth session (merge9)").

For each method: :func:`postfocus.stack` and :func:`postfocus.process` then :func:`postfocus.store.merge` of the
whole range, one thread, a fresh cache (``POSTFOCUS_CACHE``, default a temporary folder); both rounded to 8 bits
as the command writes them. Prints the share of pixels more than 2 levels apart (all, and 16 px inside the
edges), the largest and the mean difference, and for a rendered stack (a folder with ``truth/truth_sharp.png``,
``synth.write_stack``) each picture's RMSE against the truth over the output crop. ``--render DIR`` first renders
the stack the test uses (``steps``, 600x1000, 6 frames, seed 5, 6 px shake, JPEG). ``MERGE_OUT`` gets the
difference maps (PNG, 8x).

Usage: ``PYTHONPATH=src python bench/merge_kept.py ../shared/data/pcb [--render /tmp/steps]``
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np


def compare(path: Path, tag: str = "") -> None:
    import postfocus
    from postfocus.store import merge

    truth_file = path / "truth" / "truth_sharp.png"
    truth = cv2.cvtColor(cv2.imread(str(truth_file)), cv2.COLOR_BGR2RGB).astype(np.float64) if truth_file.is_file() else None
    for method in ("depthmap", "pyramid"):
        stacked = postfocus.stack(path, method=method, threads=1)
        again = merge(postfocus.process(path, method=method, threads=1), method=method, threads=1)
        a, b = (np.round(np.clip(x, 0, 1) * 255) for x in (stacked.image, again))
        d = np.abs(a - b).max(axis=2)
        inner = d[16:-16, 16:-16]
        line = (f"{path.name} {method}: > 2 levels {(d > 2).mean():.3%} (16 px inside {(inner > 2).mean():.3%}), "
                f"max {d.max():.0f} (inside {inner.max():.0f}), mean {np.abs(a - b).mean():.4f} "
                f"(inside {np.abs(a - b)[16:-16, 16:-16].mean():.4f})")
        if truth is not None:
            t, l, bottom, r = stacked.crop
            cut = truth[t:bottom, l:r]
            line += (f"; RMSE against the truth: stack {np.sqrt(((a - cut) ** 2).mean()):.3f}, "
                     f"merge {np.sqrt(((b - cut) ** 2).mean()):.3f}")
        print(line, flush=True)
        out = os.environ.get("MERGE_OUT")
        if out:
            cv2.imwrite(str(Path(out) / f"{path.name}-{method}{tag}-diff.png"), np.clip(d * 8, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("stacks", nargs="*", type=Path)
    parser.add_argument("--render", type=Path, help="render the test's stack into this folder and compare it too")
    args = parser.parse_args()
    os.environ.setdefault("POSTFOCUS_CACHE", tempfile.mkdtemp(prefix="merge_kept-"))
    stacks = list(args.stacks)
    if args.render:
        from postfocus.synth import render_stack, scene, write_stack

        sharp, depth01 = scene("steps", (600, 1000), seed=5)
        write_stack(render_stack(sharp, depth01, 6, max_blur=5.0, seed=5, shake_px=6.0, noise=0.003), args.render,
                    fmt="jpg")
        stacks.append(args.render)
    for path in stacks:
        compare(path)


if __name__ == "__main__":
    main()
