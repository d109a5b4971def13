"""Depth accuracy on generated focus stacks: postfocus depth vs focus-stack's ``--depthmap`` and an argmax baseline.

Each stack is rendered by :mod:`postfocus.synth` (an independent thin-lens
model: disc blur in linear light on depth slabs composited far to near) and
written to files. Three profiles:

* ``tripod``: 240x320 by default, 8 frames, 6 px of blur across the sweep,
  2 px of hand shake, light noise, PNG frames;
* ``handheld``: the same size, 10 frames, 8 px of blur, the quality
  benchmark's hand-held camera (8 px shake, 0.5 deg rotation, 3 % breathing,
  exposure drift, noise, JPEG 95);
* ``long``: a dense sweep, 30 frames, 8 px of blur, 2 px of shake, JPEG 95,
  rendered on 64 depth slabs (see ``PROFILES``).

Every stack is processed like any input (aligned, analysed) and its depth map
is compared with the generator's true focus position of every pixel, inside
the output crop. The same frames go to focus-stack (``--depthmap``, in the
middle frame's geometry with ``--nocrop``; its 8-bit value ``v`` is frame
``v * N / 255 - 1`` for N < 255 frames, ``task_depthmap.cc``). Reported per
scene: share of pixels within one frame of the truth and median absolute
error (frames) for postfocus, focus-stack, the baseline that takes, per pixel,
the frame with the largest |Laplacian| of the aligned frames, and the stack's
own focus-index map (what ``process`` stores, before refinement); then the
same for postfocus and focus-stack over the pixels off the depth-edge band
(:func:`depth_edges`: a pixel whose 3x3 true depth spans more than two frames,
where the truth is a mix of two surfaces), and the share that band leaves out.
``--error-maps DIR`` writes each scene's signed error (red: read too far, blue:
too near) to look at where the misses are. ``--hidden`` renders every stack with a background behind near
objects (``render_stack(hidden=True)``); the default renders without it. ``--renders plain,hidden`` runs every
stack on both renders in one go (each row of the layered render named ``PROFILE hidden``), to judge a rule on both.

Usage::

    python bench/bench_depth.py [--size 240x320] [--seeds 1] [--profiles tripod,handheld,long] [--markdown]
                                [--error-maps DIR] [--hidden | --renders plain,hidden]
    python bench/bench_depth.py --doc-images docs/img   # the pictures of docs/depth-and-aperture.md
"""

from __future__ import annotations

import argparse
import subprocess
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

SCENES = ("motorcycle", "steps", "ramp", "flat", "occluder", "grass", "pins")
FOCUS_STACK = Path("/tmp/focus-stack/build/focus-stack")
# name -> (frames, render_stack options, file format). The generator renders depth on slabs (``layers``, 24 by
# default) of equal width over the sweep: every pixel is blurred as if at its slab's mean depth. The slabs must be
# narrow next to a frame or the picture itself is off the truth: 24 slabs over the 30-frame sweep are 1.21 frames
# wide, and an estimator that reads the rendered depth exactly is off by a median 0.30 frames on the motorcycle, ramp
# and flat scenes (0.07-0.09 with the 8- and 10-frame sweeps, slabs 0.29 and 0.38 frames wide). The dense sweep is
# therefore rendered with 64 slabs (0.45 frames wide).
PROFILES = {
    "tripod": (8, dict(max_blur=6.0, shake_px=2.0, noise=0.005), "png"),
    "handheld": (10, dict(max_blur=8.0, shake_px=8.0, rotation_deg=0.5, breathing=0.03, exposure_drift=0.05,
                          noise=0.004, jpeg_quality=95), "jpg"),
    "long": (30, dict(max_blur=8.0, shake_px=2.0, noise=0.004, jpeg_quality=95, layers=64), "jpg"),
}


def make_stack(name: str, folder: Path, *, size=(240, 320), frames=8, max_blur=6.0, shake_px=2.0,
               noise=0.005, seed=1, cache: Path | None = None, fmt: str = "png", **camera):
    """Render, write and process one generated stack; returns (processed stack, synthetic stack, truth in crop)."""
    image, depth01 = scene(name, size, seed=seed)
    stack = render_stack(image, depth01, frames, max_blur=max_blur, shake_px=shake_px, noise=noise, seed=seed,
                         **camera)
    paths = write_stack(stack, folder, fmt=fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(paths, cache_dir=cache or folder / "cache")
    t, l, b, r = ps.manifest["crop"]
    return ps, stack, np.asarray(stack.depth[t:b, l:r], np.float32)



def one_stack_options(ap: argparse.ArgumentParser, *, profile: str) -> None:
    """The options naming one generated stack (``--profile --scene --seed --size --hidden``), for the benches that
    look into a single stack's misses (bench_depth_misses.py, bench_depth_band.py)."""
    ap.add_argument("--profile", default=profile, choices=sorted(PROFILES))
    ap.add_argument("--scene", default="motorcycle")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", default="240x320", help="HxW")
    ap.add_argument("--hidden", action="store_true",
                    help="render with a background behind near objects (render_stack(hidden=True), as --hidden here)")


def one_stack(args: argparse.Namespace, folder: Path):  # noqa: ANN201
    """:func:`make_stack` for the stack :func:`one_stack_options` name: (processed stack, frames, truth in crop)."""
    h, w = (int(v) for v in args.size.lower().split("x"))
    frames, camera, fmt = PROFILES[args.profile]
    camera = {**camera, "hidden": True} if args.hidden else camera
    ps, _, truth = make_stack(args.scene, folder, size=(h, w), frames=frames, seed=args.seed, fmt=fmt, **camera)
    return ps, frames, truth

def focus_stack_depth(ps, folder: Path) -> np.ndarray | None:  # noqa: ANN001
    """focus-stack's ``--depthmap`` of the frames in ``folder``, in frames, cropped like the truth (None if absent)."""
    paths = sorted(p for p in folder.glob("frame_*") if p.is_file())
    if not FOCUS_STACK.exists() or not paths:
        return None
    out = folder / "focus-stack-depth.png"
    proc = subprocess.run([str(FOCUS_STACK), "--no-opencl", "--nocrop", f"--output={folder / 'focus-stack.jpg'}",
                           f"--depthmap={out}", *map(str, paths)], capture_output=True, text=True,
                           errors="replace")  # (its progress may hold bytes that are no UTF-8)
    value = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE) if proc.returncode == 0 else None
    if value is None:
        print(f"focus-stack failed: {proc.stderr[-300:]}", file=sys.stderr)
        return None
    h, w = cv2.imread(str(paths[0])).shape[:2]
    y0, x0 = (value.shape[0] - h) // 2, (value.shape[1] - w) // 2  # it pads to a wavelet size, centred
    n = len(paths)
    frame = value[y0:y0 + h, x0:x0 + w].astype(np.float32) * n / 255.0 - 1.0
    t, l, b, r = ps.manifest["crop"]
    return np.clip(frame, 0, n - 1)[t:b, l:r]


def plant_outlier(ps, folder: Path, centre: tuple[float, float], radius: float, frame: float, *,
                  confident: bool = True):  # noqa: ANN001
    """A copy of a processed stack whose focus volume has an outlier blob: a disc that peaks at ``frame``.

    ``centre`` (x, y) and ``radius`` are in output pixels. A confident blob
    peaks three times above the strongest measure around it, as a bokeh rim
    or a glint does; a weak one is as strong but nearly flat, rising 30 %
    at ``frame`` (its confidence is low, its peak still wrong). Returns (the copy opened, the
    blob mask at output size).
    """
    import json
    import shutil

    from postfocus.store import ProcessedStack

    shutil.copytree(ps.folder, folder)
    volume = np.load(folder / "volume.npy").astype(np.float32)
    n, mh, mw = volume.shape
    h, w = ps.size
    yy, xx = np.mgrid[0:mh, 0:mw]
    sx, sy = mw / w, mh / h
    blob = ((xx + 0.5) / sx - centre[0]) ** 2 + ((yy + 0.5) / sy - centre[1]) ** 2 <= radius ** 2
    used = np.asarray(ps.used, np.float32)
    curve = np.exp(-0.5 * ((used - frame) / 0.8) ** 2)[:, None]
    around = volume[:, blob]
    if confident:
        volume[:, blob] = 3.0 * float(around.max()) * curve + 0.1 * around
    else:
        volume[:, blob] = 2.0 * float(around.max()) * (0.7 + 0.3 * curve)
    np.save(folder / "volume.npy", volume.astype(np.float16))
    manifest = json.loads((folder / "manifest.json").read_text())
    if "volume.npy" in manifest.get("files", {}):  # record the planted volume's size and checksum
        from postfocus.store.folder import file_record

        manifest["files"]["volume.npy"] = file_record((folder / "volume.npy").read_bytes())
    (folder / "manifest.json").write_text(json.dumps(manifest))
    yy, xx = np.mgrid[0:h, 0:w]
    return ProcessedStack.open(folder), (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2


def argmax_baseline(ps) -> np.ndarray:  # noqa: ANN001
    """Per pixel, the aligned frame with the largest |Laplacian| (no aggregation, no regularisation)."""
    scores = []
    for i in ps.used:
        grey = cv2.cvtColor(ps.read_frame(i), cv2.COLOR_RGB2GRAY)
        scores.append(np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3)))
    best = np.argmax(np.stack(scores), axis=0)
    return np.asarray(ps.used, np.float32)[best]


def score(estimate: np.ndarray, truth: np.ndarray, where: np.ndarray | None = None) -> tuple[float, float]:
    """(share of pixels within one frame, median absolute error in frames), over ``where`` if given."""
    err = np.abs(np.asarray(estimate, np.float32) - truth)
    if where is not None:
        err = err[where]
    return float((err <= 1.0).mean()), float(np.median(err))


def depth_edges(truth: np.ndarray, jump: float = 2.0) -> np.ndarray:
    """Pixels whose true depth is ambiguous: their 3x3 neighbourhood spans more than ``jump`` frames.

    At a depth discontinuity the generator's depth of a boundary pixel is an
    area average of the two surfaces (the scene is resized from a larger
    picture), and the aligned frames are registered to the truth within a
    fraction of a pixel: with a span over two frames no estimate can be within
    one frame of every depth a one-pixel shift could put there. The bench
    reports every pixel and, in separate columns, the pixels off this band,
    with the same rule for focus-stack.
    """
    t = np.asarray(truth, np.float32)
    kernel = np.ones((3, 3), np.uint8)
    return (cv2.dilate(t, kernel) - cv2.erode(t, kernel)) > jump


def error_breakdown(estimate: np.ndarray, truth: np.ndarray, image: np.ndarray, frames: int) -> dict[str, float]:
    """Where the misses (more than one frame off) are, as shares of all pixels, and the bias at the sweep's ends.

    ``edge``: within 1.5 px of a true depth discontinuity (neighbours more than
    one frame apart); ``textureless``: elsewhere, in the tenth of the picture
    with the least detail (smoothed Sobel magnitude of the all-in-focus
    image); ``other``: the rest. ``end_bias`` / ``inner_bias``: median signed
    error (frames, + = read too far) where the truth is within half a frame of
    the sweep's first or last frame / elsewhere.
    """
    err = np.asarray(estimate, np.float32) - truth
    wrong = np.abs(err) > 1.0
    edges = depth_edges(truth, 1.0)
    near_edge = cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 3) < 1.5
    grey = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32), cv2.COLOR_RGB2GRAY)
    detail = cv2.GaussianBlur(np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)),
                              (0, 0), 2.0)
    flat = (detail < np.percentile(detail, 10)) & ~near_edge
    ends = (truth < 0.5) | (truth > frames - 1.5)
    nan = float("nan")
    return {"edge": float((wrong & near_edge).mean()), "textureless": float((wrong & flat).mean()),
            "other": float((wrong & ~near_edge & ~flat).mean()),
            "end_bias": float(np.median(err[ends])) if ends.any() else nan,
            "inner_bias": float(np.median(err[~ends])) if (~ends).any() else nan}


def error_map(path: Path, image: np.ndarray, estimate: np.ndarray, truth: np.ndarray, scale: float = 3.0) -> None:
    """Signed depth error over the grey image: red too far, blue too near, full colour at ``scale`` frames."""
    grey = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32), cv2.COLOR_RGB2GRAY)[..., None]
    s = np.clip((np.asarray(estimate, np.float32) - truth) / scale, -1.0, 1.0)
    tint = np.dstack([np.clip(s, 0, 1), np.zeros_like(s), np.clip(-s, 0, 1)])
    rgb = 0.7 * tint + 0.3 * grey
    cv2.imwrite(str(path), cv2.cvtColor((rgb * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))


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


def renders(names: str | None, *, hidden: bool = False) -> list[tuple[str, dict]]:
    """The renders to run, as (suffix of the rows' profile name, ``render_stack`` options): ``names`` is a
    comma-separated list of ``plain`` and ``hidden``; without it one render, layered where ``hidden`` (named as the
    profile alone, as the bench always printed it). With two renders the layered one's rows are ``PROFILE hidden``."""
    if names is None:
        return [("", {"hidden": True} if hidden else {})]
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(chosen) - {"plain", "hidden"})
    if unknown or not chosen:
        raise ValueError(f"unknown render {', '.join(unknown) or '(none)'}: choose from plain, hidden")
    if len(chosen) == 1:
        return [("", {"hidden": True} if chosen[0] == "hidden" else {})]
    return [("" if n == "plain" else " hidden", {"hidden": True} if n == "hidden" else {}) for n in chosen]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="240x320", help="HxW of the generated stacks")
    ap.add_argument("--profiles", default="tripod,handheld", help=f"comma-separated, of {', '.join(PROFILES)}")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 1..N per scene")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--hidden", action="store_true",
                    help="render with a background behind near objects (render_stack(hidden=True): blurred near "
                         "outlines show it through their rim, as through a real lens)")
    ap.add_argument("--renders", default=None, metavar="plain,hidden",
                    help="run every stack on each of these renders (rows of the layered one named 'PROFILE hidden'; "
                         "overrides --hidden)")
    ap.add_argument("--doc-images", type=Path, default=None, metavar="DIR",
                    help="write the documentation pictures to DIR instead of measuring")
    ap.add_argument("--error-maps", type=Path, default=None, metavar="DIR",
                    help="also write each scene's signed depth error (red too far, blue too near) to DIR")
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "pcb_depthmap",
                    help="real stack for the documentation pictures")
    args = ap.parse_args(argv)
    if args.doc_images:
        doc_images(args.doc_images, args.real)
        return 0
    h, w = (int(v) for v in args.size.lower().split("x"))
    try:
        runs = renders(args.renders, hidden=args.hidden)
    except ValueError as exc:
        ap.error(str(exc))
    rows, where = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for (suffix, render), base in ((run, profile) for run in runs for profile in args.profiles.split(",")):
            frames, camera, fmt = PROFILES[base]
            camera, profile = {**camera, **render}, base + suffix
            for name in SCENES:
                for seed in range(1, args.seeds + 1):
                    folder = Path(tmp) / f"{profile.replace(' ', '-')}-{name}{seed}"
                    ps, _, truth = make_stack(name, folder, size=(h, w), frames=frames, seed=seed,
                                              cache=Path(tmp) / "cache", fmt=fmt, **camera)
                    t0 = time.process_time()
                    depth = depth_map(ps).depth
                    elapsed = time.process_time() - t0
                    off = ~depth_edges(truth)
                    ours, ours_off = score(depth, truth), score(depth, truth, off)
                    fs = focus_stack_depth(ps, folder)
                    nan = (float("nan"), float("nan"))
                    theirs, theirs_off = (score(fs, truth), score(fs, truth, off)) if fs is not None else (nan, nan)
                    base = score(argmax_baseline(ps), truth)
                    h_, w_ = ps.size
                    raw = score(cv2.resize(np.asarray(ps.focus_index, np.float32), (w_, h_)), truth)
                    rows.append((profile, name, seed, *ours, *theirs, *base, *raw, elapsed, *ours_off, *theirs_off,
                                 1.0 - float(off.mean())))
                    where.append((profile, name, seed, error_breakdown(depth, truth, ps.all_in_focus(), frames)))
                    if args.error_maps:
                        args.error_maps.mkdir(parents=True, exist_ok=True)
                        error_map(args.error_maps / f"{profile.replace(' ', '-')}-{name}{seed}.png", ps.all_in_focus(),
                                  depth, truth)
    if args.markdown:
        print("| profile | scene | seed | postfocus: within 1 frame | postfocus: median | focus-stack: within 1 | "
              "focus-stack: median | argmax: within 1 | argmax: median | stored focus index: within 1 | "
              "stored focus index: median | depth_map CPU (s) | off depth edges: postfocus within 1 / median | "
              "off depth edges: focus-stack within 1 / median | depth-edge band |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for profile, name, seed, w1, med, fw1, fmed, bw1, bmed, rw1, rmed, el, ow1, omed, ofw1, ofmed, band in rows:
            print(f"| {profile} | {name} | {seed} | {w1:.1%} | {med:.3f} | {fw1:.1%} | {fmed:.3f} | {bw1:.1%} | "
                  f"{bmed:.3f} | {rw1:.1%} | {rmed:.3f} | {el:.2f} | {ow1:.1%} / {omed:.3f} | {ofw1:.1%} / {ofmed:.3f} "
                  f"| {band:.1%} |")
    else:
        for profile, name, seed, w1, med, fw1, fmed, bw1, bmed, rw1, rmed, el, ow1, omed, ofw1, ofmed, band in rows:
            print(f"{profile:8s} {name:10s} seed {seed}: postfocus {w1:6.1%} median {med:.3f}   "
                  f"focus-stack {fw1:6.1%} median {fmed:.3f}   argmax {bw1:6.1%} median {bmed:.3f}   "
                  f"focus index {rw1:6.1%} median {rmed:.3f}  ({el:.2f} s CPU); off depth edges ({band:.1%} left "
                  f"out) postfocus {ow1:6.1%} median {omed:.3f}, focus-stack {ofw1:6.1%} median {ofmed:.3f}")
    if args.markdown and where:
        print("\n| profile | scene | seed | missed at depth edges | missed, textureless | missed, elsewhere | "
              "median error at the sweep's ends | median error inside |")
        print("|---|---|---|---|---|---|---|---|")
        for profile, name, seed, b in where:
            print(f"| {profile} | {name} | {seed} | {b['edge']:.1%} | {b['textureless']:.1%} | {b['other']:.1%} | "
                  f"{b['end_bias']:+.2f} | {b['inner_bias']:+.2f} |")
    if rows:
        ours = np.array([r[3:5] for r in rows])
        off = np.array([r[12:14] for r in rows])
        print(f"all: postfocus worst {ours[:, 0].min():.1%} within 1 frame, worst median {ours[:, 1].max():.3f}; "
              f"off depth edges worst {off[:, 0].min():.1%}, worst median {off[:, 1].max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
