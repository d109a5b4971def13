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

People (:mod:`postfocus.synth.people`, 240x360, 40 frames, 14 px of blur across
the sweep, handheld, seed 1): a figure walking 3.5 px a frame across a plaza
at about the wall's depth, sharp in 5 frames, and a standing figure raising an
arm (its hand about 1.5 px a frame). Reported: the share found, the IoU of the
detected core with the truly changing pixels, the specks (pixels of the
figure's silhouette at the chosen instant more than 0.25 away from that
instant's truth) and PSNR/SSIM of the figure (its silhouette widened by 4 px)
against that instant.

``--cost`` measures what detection costs: each run in a fresh process, CPU
time (user + sys) of the whole ``postfocus.stack`` run and the thread CPU time
spent inside ``MotionDetector`` (prepare, add, finish) with ``threads=1`` (so
OpenCV works in the calling thread), on beetle and on a 40-frame 600x900 JPEG
walker stack; ``--src`` names the ``src`` folders to measure, their runs interleaved (e.g.
main's, before, and this one's, after).

Usage::

    python bench/bench_motion.py [--markdown] [--real] [--people] [--doc-images docs/img]
    (--doc-images writes motion_flame.jpg and motion_walker.jpg; with --real also motion_algae.jpg)
    python bench/bench_motion.py --cost [--src ../main/src src] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
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
    for name in ("ring", "pcb", "pcb_depthmap", "beetle", "keyboard", "algae", "keyboard_sweep.mp4"):
        if not (REAL / name).exists():
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


PEOPLE = dict(shake_px=4.0, rotation_deg=0.3, breathing=0.02, exposure_drift=0.03, noise=0.006, jpeg_quality=92)


def figure_scores(st, result) -> dict:  # noqa: ANN001
    """Share, IoU with the changing pixels, specks and PSNR/SSIM of the figure at the chosen instant."""
    from postfocus.synth import ssim

    h, w = st.sharp.shape[:2]
    if result.motion is None:  # --motion off
        core = np.zeros((h, w), bool)
    else:
        core = cv2.resize(result.motion, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.999
    iou = float((core & st.moving).sum() / max((core | st.moving).sum(), 1))
    k = next(iter(result.motion_frames.values()), int(round(st.figure_depth)))
    figure, truth = st.figure_masks[k] > 0.5, st.sharp_frames[k]
    specks = int((figure & (np.abs(result.image - truth).max(axis=2) > 0.25)).sum())
    near = cv2.dilate(figure.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    ys, xs = np.nonzero(near)
    box = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return dict(share=result.motion_share * 100, iou=iou, instant=k, specks=specks, figure=int(figure.sum()),
                psnr=psnr(result.image, truth, near), ssim=ssim(result.image[box], truth[box]))


def people_rows(seed: int) -> list[dict]:
    from postfocus.synth.people import arm_stack, walker_stack

    rows = []
    for name, make in (("walker", walker_stack), ("arm", arm_stack)):
        st = make((240, 360), 40, seed=seed, **PEOPLE)
        for motion in ("off", "auto"):
            result, seconds = run(st.frames, motion=motion)
            rows.append(dict(stack=name, motion=motion, seconds=seconds, **figure_scores(st, result)))
    return rows


def _cost_worker(path: str) -> None:
    """One run in this process: print JSON {cpu, detect, share} (see --cost)."""
    import postfocus.pipeline.analyse as analyse_module
    from postfocus.io.open import open_source

    detector, spent = analyse_module.MotionDetector, [0.0]

    def timed(method):  # noqa: ANN001, ANN202
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent[0] += time.thread_time() - t
        return wrapper

    for name in ("prepare", "add", "finish"):
        setattr(detector, name, timed(getattr(detector, name)))
    source = open_source(path)
    warnings.simplefilter("ignore")
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = stack(source, threads=1)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps(dict(cpu=cpu, detect=spent[0], share=result.motion_share)))


def cost_rows(sources: list[Path], repeat: int) -> list[dict]:
    """Median run of ``repeat`` per stack and source folder, the sources' runs interleaved."""
    from postfocus.synth import write_stack
    from postfocus.synth.people import walker_stack

    walker = Path(os.environ.get("TMPDIR", "/tmp")) / "postfocus-bench-walker-600x900"
    if not (walker / "frame_039.jpg").exists():
        write_stack(walker_stack((600, 900), 40, step_px=3.5, max_blur=30.0, seed=1, **PEOPLE), walker, quality=92)
    rows = []
    for name, path in (("beetle", REAL / "beetle"), ("walker 40 x 600x900", walker)):
        runs: dict[Path, list[dict]] = {src: [] for src in sources}
        for _ in range(repeat):
            for src in sources:
                env = dict(os.environ, PYTHONPATH=str(src))
                out = subprocess.run([sys.executable, __file__, "--cost-worker", str(path)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                runs[src].append(json.loads(out.strip().splitlines()[-1]))
        for src in sources:
            best = sorted(runs[src], key=lambda r: r["cpu"])[len(runs[src]) // 2]  # the median run
            rows.append(dict(stack=name, src=str(src), cpu=best["cpu"], detect=best["detect"],
                             part=100 * best["detect"] / best["cpu"], share=100 * best["share"]))
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


def walker_image(folder: Path, seed: int = 1) -> Path:
    """The walker (600x900, 40 frames) at the instant shown: --motion off, auto, and the truth of that instant."""
    from postfocus.synth.people import walker_stack

    st = walker_stack((600, 900), 40, step_px=3.5, max_blur=30.0, seed=seed, **PEOPLE)
    off, _ = run(st.frames, motion="off")
    auto, _ = run(st.frames)
    k = next(iter(auto.motion_frames.values()))
    ys, xs = np.nonzero(st.figure_masks[k] > 0.5)
    y0, y1, x0, x1 = max(0, ys.min() - 16), ys.max() + 16, max(0, xs.min() - 40), xs.max() + 40
    tiles = [off.image, auto.image, st.sharp_frames[k]]
    gap = np.ones((y1 - y0, 6, 3), np.float32)
    row = np.hstack([c for t in tiles for c in (np.clip(t[y0:y1, x0:x1], 0, 1), gap)][:-1])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "motion_walker.jpg"
    bgr = cv2.cvtColor((row * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def algae_image(folder: Path) -> Path | None:
    """The real algae stack around the region found moving: --motion off and auto, 100 % crops."""
    from postfocus.io.open import open_source

    if not (REAL / "algae").is_dir():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = stack(open_source(REAL / "algae"))
        off = stack(open_source(REAL / "algae"), motion="off")
    if not auto.motion_frames:
        return None
    h, w = auto.image.shape[:2]
    core = cv2.resize((auto.motion >= 0.999).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(core)
    cy, cx = int(ys.mean()), int(xs.mean())
    y0, x0 = max(0, cy - 250), max(0, cx - 300)
    tiles = [np.clip(t[y0 : y0 + 500, x0 : x0 + 600], 0, 1) for t in (off.image, auto.image)]
    row = np.hstack([tiles[0], np.ones((tiles[0].shape[0], 8, 3), np.float32), tiles[1]])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "motion_algae.jpg"
    cv2.imwrite(str(path), cv2.cvtColor((row * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
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
    ap.add_argument("--doc-images", type=Path, default=None, metavar="DIR", help="write motion_flame.jpg and motion_walker.jpg there")
    ap.add_argument("--people", action="store_true", help="also the walker and arm scenes")
    ap.add_argument("--cost", action="store_true", help="only: CPU time of detection against the whole run")
    ap.add_argument("--src", type=Path, nargs="*", default=None,
                    help="with --cost: the src folders to measure, runs interleaved (default: this one)")
    ap.add_argument("--repeat", type=int, default=3, help="with --cost: runs per stack (the median is shown)")
    ap.add_argument("--cost-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cost_worker:
        _cost_worker(args.cost_worker)
        return 0
    if args.cost:
        sources = args.src or [Path(__file__).resolve().parents[1] / "src"]
        print(table(cost_rows(sources, args.repeat),
                    [("stack", "stack", ""), ("src", "src", ""), ("cpu", "run CPU (s)", ".2f"), ("detect", "detection CPU (s)", ".2f"),
                     ("part", "detection (%)", ".1f"), ("share", "moved (%)", ".1f")], args.markdown))
        return 0
    if args.doc_images:
        paths = [doc_image(args.doc_images, args.seed), walker_image(args.doc_images, args.seed)]
        paths += [algae_image(args.doc_images)] if args.real else []
        for path in filter(None, paths):
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
    if args.people:
        print()
        print(table(people_rows(args.seed),
                    [("stack", "stack", ""), ("motion", "--motion", ""), ("share", "moved (%)", ".1f"),
                     ("iou", "IoU", ".2f"), ("instant", "instant", ""), ("specks", "specks", ""),
                     ("figure", "figure px", ""), ("psnr", "figure PSNR (dB)", ".2f"), ("ssim", "figure SSIM", ".3f"),
                     ("seconds", "time (s)", ".1f")], args.markdown))
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
