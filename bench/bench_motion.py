"""Moving subjects: one-instant merge vs blending, false motion, dense refinement.

Generated stacks (:mod:`postfocus.synth.motion`): the 'steps' scene, 320x480,
8 frames, 6 px of blur across the sweep, handheld (6 px shake, 0.5 deg
rotation, 3 % breathing, 5 % exposure drift, noise 0.008, JPEG 95), seed 1,
with

* flame: an ellipse at one depth (frame 4's focal plane) whose texture is new
  in every frame;
* mover: a textured disc moving 3 px per frame;
* parallax: the static scene, content shifted by ``parallax_px * u_i * (d - 0.5)``
  per frame (u_i uniform in [-1, 1]^2): local parallax a global alignment
  cannot absorb.

Reported: PSNR in the moving region against the best single instant (the
sharp content of the one frame that matches best), PSNR of the static part
(12 px away from the motion) against the truth, the share of the image found
moving, and for parallax and static stacks the PSNR over the covered area with
and without ``refine_flow``. ``--real`` adds the moved share of the real
stacks in shared/data (no ground truth: they stood still, the share must be 0).

Usage::

    python bench/bench_motion.py [--markdown] [--real] [--doc-images docs/img]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from postfocus import stack
from postfocus.align import common_area
from postfocus.io.arrays import ArraySource
from postfocus.synth import psnr, render_stack, scene
from postfocus.synth.motion import flame_stack, mover_stack, parallax_stack

HANDHELD = dict(shake_px=6.0, rotation_deg=0.5, breathing=0.03, exposure_drift=0.05, noise=0.008, jpeg_quality=95)
SIZE = (320, 480)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data"




def covered(st, margin: int = 4) -> np.ndarray:  # noqa: ANN001
    h, w = st.sharp.shape[:2]
    t, l, b, r = common_area(st.transforms, (h, w))
    box = np.zeros((h, w), bool)
    box[t + margin : b - margin, l + margin : r - margin] = True
    return box


def areas(st) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    box = covered(st)
    near = cv2.dilate(st.moving.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (25, 25))) > 0
    return st.moving & box, box & ~near


def run(frames, **options):  # noqa: ANN001
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stack(ArraySource(frames), crop=False, **options)
    return result, time.perf_counter() - t


def moving_rows(seed: int) -> list[dict]:
    rows = []
    for kind, make in (("flame", flame_stack), ("mover", mover_stack)):
        st = make("steps", SIZE, 8, seed=seed, max_blur=6.0, **HANDHELD)
        moving, static = areas(st)
        for motion in ("off", "auto"):
            for method in ("depthmap", "pyramid"):
                result, seconds = run(st.frames, motion=motion, method=method)
                k, value = st.best_instant(moving, result.image)
                rows.append(dict(stack=kind, method=method, motion=motion, instant=k, moving_psnr=value,
                                 static_psnr=psnr(result.image, st.sharp, static), share=result.motion_share,
                                 seconds=seconds))
    return rows


def static_rows(seed: int) -> list[dict]:
    rows = []
    for name in ("steps", "motorcycle", "occluder"):
        image, depth01 = scene(name, SIZE, seed=seed)
        st = render_stack(image, depth01, 8, max_blur=6.0, seed=seed, **HANDHELD)
        box = covered(st, 8)
        for refine in (False, True):
            result, seconds = run(st.frames, refine_flow=refine)
            rows.append(dict(stack=f"{name} (still)", refine=refine, psnr=psnr(result.image, st.sharp, box),
                             share=result.motion_share, seconds=seconds))
    for name in ("steps", "motorcycle"):
        for px in (1.5, 3.0):
            st = parallax_stack(name, SIZE, 8, parallax_px=px, seed=seed, max_blur=6.0, **HANDHELD)
            box = covered(st, 8)
            for refine in (False, True):
                result, seconds = run(st.frames, refine_flow=refine)
                rows.append(dict(stack=f"{name} parallax {px:g} px", refine=refine,
                                 psnr=psnr(result.image, st.sharp, box), share=result.motion_share, seconds=seconds))
    return rows


def real_rows() -> list[dict]:
    from postfocus.io.open import open_source
    from postfocus.pipeline.analyse import analyse

    rows = []
    for name in ("ring", "pcb", "pcb_depthmap", "beetle", "keyboard", "algae"):
        if not (REAL / name).is_dir():
            continue
        source = open_source(REAL / name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            analyse(source, motion="off")
            plain = time.perf_counter() - t
            t = time.perf_counter()
            a = analyse(source)
        rows.append(dict(stack=name, frames=len(source), share=a.maps.motion_share, plain=plain,
                         seconds=time.perf_counter() - t))
    return rows


def doc_image(folder: Path, seed: int = 1) -> Path:
    """Before/after crops of the flame stack: --motion off, auto, and the mask outline."""
    st = flame_stack("steps", SIZE, 8, seed=seed, max_blur=6.0, **HANDHELD)
    off, _ = run(st.frames, motion="off")
    auto, _ = run(st.frames)
    y0, y1, x0, x1 = 170, 320, 0, 200
    mask = cv2.resize(auto.motion, SIZE[::-1], interpolation=cv2.INTER_LINEAR)
    edge = cv2.morphologyEx((mask > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    outlined = auto.image.copy()
    outlined[edge] = (0.1, 0.9, 1.0)
    tiles = [st.frames[2], off.image, auto.image, outlined]
    crops = [cv2.resize(np.clip(t[y0:y1, x0:x1], 0, 1), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
             for t in tiles]
    gap = np.ones((crops[0].shape[0], 6, 3), np.float32)
    row = np.hstack([c for t in crops for c in (t, gap)][:-1])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "motion_flame.jpg"
    bgr = cv2.cvtColor((np.clip(row, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 88])
    return path


def table(rows: list[dict], columns: list[tuple[str, str, str]], markdown: bool) -> str:
    head = [c[1] for c in columns]
    lines = []
    for r in rows:
        lines.append([format(r[key], fmt) if fmt else str(r[key]) for key, _, fmt in columns])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--real", action="store_true", help="also the moved share of the real stacks in shared/data")
    ap.add_argument("--doc-images", type=Path, default=None, metavar="DIR", help="write motion_flame.jpg there")
    args = ap.parse_args(argv)
    if args.doc_images:
        path = doc_image(args.doc_images, args.seed)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    rows = moving_rows(args.seed)
    for r in rows:
        r["share"] *= 100
    print(table(rows, [("stack", "stack", ""), ("method", "method", ""), ("motion", "--motion", ""),
                       ("moving_psnr", "moving region vs best instant (dB)", ".2f"), ("instant", "instant", ""),
                       ("static_psnr", "static part (dB)", ".2f"), ("share", "moved (%)", ".1f"),
                       ("seconds", "time (s)", ".1f")], args.markdown))
    print()
    rows = static_rows(args.seed)
    for r in rows:
        r["share"] *= 100
    print(table(rows, [("stack", "stack", ""), ("refine", "--refine-flow", ""), ("psnr", "PSNR (dB)", ".2f"),
                       ("share", "moved (%)", ".1f"), ("seconds", "time (s)", ".1f")], args.markdown))
    if args.real:
        print()
        rows = real_rows()
        for r in rows:
            r["share"] *= 100
        print(table(rows, [("stack", "real stack", ""), ("frames", "frames", ""), ("share", "moved (%)", ".2f"),
                           ("plain", "pass 1, --motion off (s)", ".1f"), ("seconds", "pass 1, auto (s)", ".1f")],
                    args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
