"""Depth accuracy on generated focus stacks: postfocus depth vs a per-pixel argmax-of-Laplacian baseline.

Each stack is rendered by :mod:`postfocus.synth` (240x320 by default, 8 frames,
6 px of blur across the sweep, 2 px of hand shake, light noise), written to
PNG files, processed like any input (aligned, analysed) and its depth map is
compared with the generator's true focus position of every pixel, inside the
output crop. Reported per scene: share of pixels within one frame of the
truth, median absolute error (frames), and the same for the baseline that
takes, per pixel, the frame with the largest |Laplacian| of the aligned frames,
and for the stack's own focus-index map (what ``process`` stores, before refinement).

Usage::

    python bench/bench_depth.py [--size 240x320] [--frames 8] [--seeds 1] [--markdown]
    python bench/bench_depth.py --doc-images docs/img   # the pictures of docs/depth-and-aperture.md
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

from postfocus.products.depth import depth_map
from postfocus.pipeline.run import process
from postfocus.synth import render_stack, scene, write_stack

SCENES = ("motorcycle", "steps", "ramp", "flat", "occluder")


def make_stack(name: str, folder: Path, *, size=(240, 320), frames=8, max_blur=6.0, shake_px=2.0,
               noise=0.005, seed=1, cache: Path | None = None):
    """Render, write and process one generated stack; returns (processed stack, synthetic stack, truth in crop)."""
    image, depth01 = scene(name, size, seed=seed)
    stack = render_stack(image, depth01, frames, max_blur=max_blur, shake_px=shake_px, noise=noise, seed=seed)
    paths = write_stack(stack, folder, fmt="png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(paths, cache_dir=cache or folder / "cache")
    t, l, b, r = ps.manifest["crop"]
    return ps, stack, np.asarray(stack.depth[t:b, l:r], np.float32)


def argmax_baseline(ps) -> np.ndarray:  # noqa: ANN001
    """Per pixel, the aligned frame with the largest |Laplacian| (no aggregation, no regularisation)."""
    scores = []
    for i in ps.used:
        grey = cv2.cvtColor(ps.read_frame(i), cv2.COLOR_RGB2GRAY)
        scores.append(np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3)))
    best = np.argmax(np.stack(scores), axis=0)
    return np.asarray(ps.used, np.float32)[best]


def score(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(share of pixels within one frame, median absolute error in frames)."""
    err = np.abs(np.asarray(estimate, np.float32) - truth)
    return float((err <= 1.0).mean()), float(np.median(err))


def _panel(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def _save_small(path: Path, panels: list[np.ndarray], width: int = 600) -> None:
    """Side-by-side panels, ``width`` px in all, as a palette PNG (small files for the docs)."""
    from PIL import Image

    each = width // len(panels)
    row = np.hstack([_panel(np.clip(p, 0, 1), each) for p in panels])
    Image.fromarray((row * 255 + 0.5).astype(np.uint8)).quantize(colors=256, dither=Image.Dither.NONE).save(
        path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KB")


def doc_images(out: Path, real: Path | None) -> None:
    """The pictures of docs/depth-and-aperture.md: a generated stack and (if present) the real pcb_depthmap stack."""
    from postfocus.products.aperture import aperture, render_aperture
    from postfocus.products.depth import colourise
    from postfocus.products.mesh import render_view

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ps, stack, truth = make_stack("motorcycle", Path(tmp) / "m", size=(360, 480), seed=1)
        result = depth_map(ps)
        aif = ps.all_in_focus()
        _save_small(out / "synth_depth.png", [aif, colourise(truth, result.frames), colourise(result.depth, result.frames)])
        near = render_aperture(aif, result.depth, 1.0, f_number=1.4, span=result.frames - 1)
        far = render_aperture(aif, result.depth, 6.5, f_number=1.4, span=result.frames - 1)
        _save_small(out / "synth_aperture.png", [near, far])
        _save_small(out / "synth_mesh.png", [render_view(aif, result.depth, result.frames, width=600)])
    if real is None or not real.is_dir():
        return
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(real, cache_dir=Path(tmp))
        result = depth_map(ps)
        aif = ps.all_in_focus()
        _save_small(out / "pcb_depth.png", [aif, colourise(result.depth, result.frames), result.confidence[..., None].repeat(3, 2)])
        h, w = ps.size
        button = aperture(ps, focus_at_point=(0.48 * w, 0.45 * h), f_number=1.4).image
        board = aperture(ps, focus_at_point=(0.1 * w, 0.5 * h), f_number=1.4).image
        _save_small(out / "pcb_aperture.png", [button, board])
        _save_small(out / "pcb_mesh.png", [render_view(aif, result.depth, result.frames, width=600, relief=0.15)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="240x320", help="HxW of the generated stacks")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--max-blur", type=float, default=6.0)
    ap.add_argument("--seeds", type=int, default=1, help="seeds 1..N per scene")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--doc-images", type=Path, default=None, metavar="DIR",
                    help="write the documentation pictures to DIR instead of measuring")
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "pcb_depthmap",
                    help="real stack for the documentation pictures")
    args = ap.parse_args(argv)
    if args.doc_images:
        doc_images(args.doc_images, args.real)
        return 0
    h, w = (int(v) for v in args.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SCENES:
            for seed in range(1, args.seeds + 1):
                ps, _, truth = make_stack(name, Path(tmp) / f"{name}{seed}", size=(h, w), frames=args.frames,
                                          max_blur=args.max_blur, seed=seed, cache=Path(tmp) / "cache")
                t0 = time.perf_counter()
                ours = score(depth_map(ps).depth, truth)
                elapsed = time.perf_counter() - t0
                base = score(argmax_baseline(ps), truth)
                h_, w_ = ps.size
                raw = score(cv2.resize(np.asarray(ps.focus_index, np.float32), (w_, h_)), truth)
                rows.append((name, seed, *ours, *base, *raw, elapsed))
    if args.markdown:
        print("| scene | seed | depth: within 1 frame | depth: median error | argmax baseline: within 1 | "
              "argmax baseline: median | stack focus index: within 1 | stack focus index: median | time (s) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, seed, w1, med, bw1, bmed, rw1, rmed, el in rows:
            print(f"| {name} | {seed} | {w1:.1%} | {med:.3f} | {bw1:.1%} | {bmed:.3f} | {rw1:.1%} | {rmed:.3f} | {el:.2f} |")
    else:
        for name, seed, w1, med, bw1, bmed, rw1, rmed, el in rows:
            print(f"{name:10s} seed {seed}: within 1 frame {w1:6.1%}  median {med:.3f}   "
                  f"baseline {bw1:6.1%}  median {bmed:.3f}   focus index {rw1:6.1%}  median {rmed:.3f}  ({el:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
