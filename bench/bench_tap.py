"""Tap to refocus against the depth map and the truth: plain windows, textured windows, latency.

Three measurements, each printed as one block:

``beetle`` (``shared/data/beetle``, 28 frames)
    400 random 13 x 13 windows of the focus map whose pass-1 confidence is below 0.05 everywhere (plain
    background), and 400 whose confidence is above 0.5 everywhere (texture): the tap's frame against the
    depth map kept in the stack folder (``aperture``'s reading there, :func:`postfocus.products.aperture.focus_at`,
    frames), the median distance, the share more than 3 frames apart, the share answered without a fallback.
    After tap12 (a tap that knows the noise floor) also with the plain windows' fill taken from pass 1's
    focus map instead (what a tap said before ``depth``, ``aperture`` or ``pop`` had kept a depth map, until
    tap13), and after tap13 with the depth made on the focus map's grid (``postfocus.products.tap_depth``: what
    a tap says now before a depth map is kept).
``rendered`` (``postfocus.synth``, 12 frames, truth)
    a far random texture with a dark plain far patch and a near textured disc in it: taps in the patch 10-100 px
    from the disc (truth: frame 11), and 300 random taps on textured windows (the far texture and the disc)
    against the true frame: median error, share more than 1 frame off.
``latency``
    CPU ms of a tap (median of ``--repeat`` rounds of 20 taps each, on plain and on textured points) on a
    processed stack given with ``--latency-stack`` (e.g. ``keyboard_sweep.mp4``'s folder); a plain window's
    fill read from memory, from the folder, and (tap13) made at the stack's first plain tap.

The stack folders are made once (``--cache``); run the script with ``PYTHONPATH`` at the code to measure
(a folder made by older code is read by newer, its tap floor measured once).

Usage::

    PYTHONPATH=src python bench/bench_tap.py --cache /tmp/tapcache [--latency-stack FOLDER] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import postfocus
import postfocus.products.refocus as refocus
from postfocus.products.aperture import focus_at
from postfocus.products.depth_cache import stack_depth
from postfocus.products.refocus import sharpest_frame, tap
from postfocus.store import ProcessedStack
from postfocus.synth import render_stack
from postfocus.synth.files import write_stack

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")

RADIUS = 6
TAP_DEPTH = importlib.util.find_spec("postfocus.products.tap_depth") is not None  # (tap13 on)


def made_fill(ps: ProcessedStack) -> np.ndarray:
    """The fill a plain tap reads before a depth map is kept (tap13: the depth made on the focus map's grid)."""
    from postfocus.products.tap_depth import tap_depth, tap_depth_source

    return tap_depth(ps, *tap_depth_source(ps))


def windows(conf: np.ndarray, test, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` random window centres (x, y) of the focus map whose confidence window passes ``test``."""
    h, w = conf.shape
    k = 2 * RADIUS + 1
    lo = cv2.erode(np.asarray(conf, np.float32), np.ones((k, k), np.uint8))
    hi = cv2.dilate(np.asarray(conf, np.float32), np.ones((k, k), np.uint8))
    ok = test(lo, hi)
    ok[:RADIUS], ok[-RADIUS:], ok[:, :RADIUS], ok[:, -RADIUS:] = False, False, False, False
    ys, xs = np.nonzero(ok)
    pick = rng.choice(ys.size, size=min(count, ys.size), replace=False)
    return [(int(xs[i]), int(ys[i])) for i in pick]


def beetle(cache: Path) -> None:
    ps = postfocus.process(DATA / "beetle", cache_dir=cache)
    d = stack_depth(ps)
    depth = d.depth if ps.near_to_far else (d.frames - 1) - d.depth
    conf = np.asarray(ps.confidence, np.float32)
    mh, mw = conf.shape
    h, w = ps.size
    rng = np.random.default_rng(15)
    sets = {"plain (pass-1 confidence < 0.05)": windows(conf, lambda lo, hi: hi < 0.05, 400, rng),
            "textured (pass-1 confidence > 0.5)": windows(conf, lambda lo, hi: lo > 0.5, 400, rng)}
    print(f"beetle: {ps.folder}, format {ps.manifest['format']}, {len(ps.used)} frames, map {mw}x{mh}")
    for name, points in sets.items():
        rows = {"tap": []}
        fills = {}
        if hasattr(refocus, "plain_fill"):
            fills["tap, fill from the focus map"] = np.asarray(ps.focus_index, np.float32)
        if TAP_DEPTH:
            fills["tap, no depth map kept"] = made_fill(ps)
        floor = getattr(refocus, "stack_floor", lambda s: 0.0)(ps)
        for mx, my in points:
            x, y = mx * w / mw, my * h / mh
            truth = focus_at(depth, x, y, d.confidence)
            answer = tap(ps, x, y)
            rows["tap"].append((abs(answer.frame - truth), answer.fallback, answer.confidence))
            for label, fill in fills.items():
                other = sharpest_frame(ps.volume, ps.used, x, y, map_scale=(mw / w, mh / h), radius=RADIUS,
                                       confidence_map=ps.confidence, floor=floor, fill=fill)
                rows.setdefault(label, []).append((abs(other.frame - truth), other.fallback, other.confidence))
        print(f"  {name}, {len(points)} windows, against the depth map:")
        for label, r in rows.items():
            a = np.asarray(r, np.float64)
            print(f"    {label:32s} median {np.median(a[:, 0]):5.2f} frames, over 3: {np.mean(a[:, 0] > 3):5.1%}, "
                  f"no fallback: {np.mean(a[:, 1] == 0):5.1%}, confidence median {np.median(a[:, 2]):.2f}")


def plain_patch_scene(size: tuple[int, int] = (240, 320), seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Far random texture with a dark plain far patch, a near textured disc in the patch (as tests/test_refocus.py)."""
    rng = np.random.default_rng(seed)
    h, w = size
    texture = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.2)
    image = 0.25 + 0.6 * (texture - texture.min()) / (texture.max() - texture.min())
    depth = np.ones((h, w), np.float32)
    image[30:210, 50:300] = 0.06  # the plain far patch
    yy, xx = np.mgrid[:h, :w]
    disc = (xx - 110) ** 2 + (yy - 120) ** 2 <= 30 ** 2
    image[disc] = 0.25 + 0.6 * rng.random((int(disc.sum()), 3)).astype(np.float32)
    depth[disc] = 0.0
    return image.astype(np.float32), depth


def rendered(cache: Path) -> None:
    sharp, depth01 = plain_patch_scene()
    st = render_stack(sharp, depth01, 12, max_blur=8.0, noise=0.01, seed=4)
    with tempfile.TemporaryDirectory(prefix="tap-rendered-") as folder:
        write_stack(st, folder, "png")
        ps = postfocus.process(folder, cache_dir=cache)
    t, l, _, _ = ps.manifest.get("crop", [0, 0, 0, 0])
    print(f"rendered: {ps.folder}, {len(ps.used)} frames, near_to_far {ps.near_to_far}")
    print("  plain patch right of / above the disc (truth frame 11): distance px -> frame (fallback, from)")
    for dist in (10, 20, 30, 45, 60, 80, 100):
        cells = []
        for x, y in ((140 + dist - l, 120 - t), (110 - l, 90 - dist - t) if 90 - dist > 36 else (None, None)):
            if x is None:
                continue
            a = tap(ps, x, y)
            source = ", " + a.filled_from if getattr(a, "filled_from", "") else ""
            cells.append(f"{a.frame} ({'fb' if a.fallback else 'own'}{source}, c {a.confidence:.2f})")
        print(f"    {dist:3d} px: " + "; ".join(cells))
    if hasattr(refocus, "plain_fill"):
        plain_grid(ps, st.depth, t, l)
    truth = st.depth
    rng = np.random.default_rng(7)
    hh, ww = ps.size
    textured = ~((np.arange(truth.shape[0])[:, None] >= 30 - 10) & (np.arange(truth.shape[0])[:, None] < 210 + 10)
                 & (np.arange(truth.shape[1])[None, :] >= 50 - 10) & (np.arange(truth.shape[1])[None, :] < 300 + 10))
    yy, xx = np.mgrid[:truth.shape[0], :truth.shape[1]]
    inner_disc = (xx - 110) ** 2 + (yy - 120) ** 2 <= 20 ** 2
    textured |= inner_disc
    ys, xs = np.nonzero(textured[t:t + hh, l:l + ww])
    pick = rng.choice(ys.size, 300, replace=False)
    err, fallbacks = [], 0
    for i in pick:
        a = tap(ps, float(xs[i]), float(ys[i]))
        err.append(abs(a.position - truth[ys[i] + t, xs[i] + l]))
        fallbacks += a.fallback
    err = np.asarray(err)
    print(f"  300 textured taps: median error {np.median(err):.2f} frames, over 1 frame: {np.mean(err > 1):.1%}, "
          f"fallbacks {fallbacks}")


def plain_grid(ps: ProcessedStack, truth: np.ndarray, t: int, l: int) -> None:
    """Every 6th pixel of the plain patch (14 px inside its border, 15 px outside the disc) against the truth,
    by rule: the old one (curve shape alone, ring search), the noise-aware one with each fill."""
    h, w = ps.size
    mh, mw = ps.focus_index.shape
    scale = (mw / w, mh / h)
    top, bottom, left, right = 30 + 14, 210 - 14, 50 + 14, 300 - 14
    points = [(x - l, y - t) for y in range(top, bottom, 6) for x in range(left, right, 6)
              if (x - 110) ** 2 + (y - 120) ** 2 > 45 ** 2]
    depth = stack_depth(ps)
    frames = depth.frames
    depth_fill = cv2.resize(depth.depth if ps.near_to_far else (frames - 1) - depth.depth, (mw, mh),
                            interpolation=cv2.INTER_AREA)
    rules = {"old (no floor, ring search)": dict(floor=0.0),
             "floor + focus-map fill": dict(floor=refocus.stack_floor(ps), fill=np.asarray(ps.focus_index)),
             "floor + depth-map fill": dict(floor=refocus.stack_floor(ps), fill=depth_fill)}
    if TAP_DEPTH:
        rules["floor + no depth map (tap13)"] = dict(floor=refocus.stack_floor(ps), fill=made_fill(ps))
    print(f"  {len(points)} plain-patch points (truth 11), share within 1 frame / median error, "
          "by distance to the disc:")
    for name, kw in rules.items():
        err, dist = [], []
        for x, y in points:
            a = sharpest_frame(ps.volume, ps.used, x, y, map_scale=scale, radius=RADIUS, confidence_map=ps.confidence,
                               **kw)
            err.append(abs(a.frame - truth[y + t, x + l]))
            dist.append(np.hypot(x + l - 110, y + t - 120) - 30)
        err, dist = np.asarray(err), np.asarray(dist)
        cells = [f"{lo}-{hi} px: {np.mean(err[(dist >= lo) & (dist < hi)] <= 1):4.0%} / "
                 f"{np.median(err[(dist >= lo) & (dist < hi)]):.1f}" for lo, hi in ((15, 40), (40, 300))]
        print(f"    {name:30s} all: {np.mean(err <= 1):4.0%} / {np.median(err):.1f}; " + "; ".join(cells))


def latency(folder: Path, repeat: int) -> None:
    ps = ProcessedStack.open(folder)
    h, w = ps.size
    conf = np.asarray(ps.confidence, np.float32)
    mh, mw = conf.shape
    rng = np.random.default_rng(3)
    tap(ps, w / 2, h / 2)  # the floor (and, on an old folder, its measurement) once
    if hasattr(refocus, "plain_fill"):  # the plain fill once (tap13: made at the first plain tap, timed below)
        refocus.plain_fill(ps)
    k = 2 * RADIUS + 1
    cut = float(np.quantile(cv2.dilate(conf, np.ones((k, k), np.uint8)), 0.02))  # the plainest 2 % of windows
    sets = {"plain": windows(conf, lambda lo, hi: hi <= max(cut, 0.05), 20, rng),
            "textured": windows(conf, lambda lo, hi: lo > 0.5, 20, rng)}
    print(f"latency: {folder}, {w}x{h}, map {mw}x{mh}, {len(ps.used)} frames, load {os.getloadavg()[0]:.1f}")
    for name, points in sets.items():
        runs = []
        for _ in range(repeat):
            t0 = time.process_time()
            for mx, my in points:
                tap(ps, mx * w / mw, my * h / mh)
            runs.append((time.process_time() - t0) / max(len(points), 1))
        answers = [tap(ps, mx * w / mw, my * h / mh) for mx, my in points]
        said = sorted({getattr(a, "filled_from", "") or ("fallback" if a.fallback else "own window") for a in answers})
        print(f"  {name} ({len(points)} points; {', '.join(said)}): {1000 * np.median(runs):.1f} ms CPU per tap "
              f"(median of {repeat})")
    if TAP_DEPTH:  # the first plain tap on a stack without a depth map: the depth made on the map's grid, kept
        from postfocus.products.tap_depth import tap_depth_path, tap_depth_source

        kept_depth = [p for p in folder.glob("depth_*.npz")]
        if kept_depth:
            print(f"  (a depth map is kept: {', '.join(p.name for p in kept_depth)}; the made fill is timed anyway)")
        made, read = [], []
        for _ in range(repeat):
            tap_depth_path(ps, tap_depth_source(ps)[0]).unlink(missing_ok=True)
            refocus._FILLS.clear()
            t0 = time.process_time()
            refocus._tap_depth_fill(ps)
            made.append(time.process_time() - t0)
            refocus._FILLS.clear()  # (a later process: read from the folder)
            t0 = time.process_time()
            refocus._tap_depth_fill(ps)
            read.append(time.process_time() - t0)
        print(f"  the depth on the map's grid, made at the first plain tap: {1000 * np.median(made):.0f} ms CPU, "
              f"read back from the folder {1000 * np.median(read):.1f} ms (medians of {repeat})")
    if hasattr(refocus, "plain_fill"):  # what a plain window adds: reading the fill (forced here, every round)
        runs, first = [], []
        for _ in range(repeat):
            refocus._FILLS.clear()  # (the first read of a kept depth map)
            t0 = time.process_time()
            _, name = refocus.plain_fill(ps)
            first.append(time.process_time() - t0)
            t0 = time.process_time()
            refocus.plain_fill(ps)
            runs.append(time.process_time() - t0)
        print(f"  a plain window's fill ({name}): first {1000 * np.median(first):.1f} ms CPU, then "
              f"{1000 * np.median(runs):.2f} ms (medians of {repeat})")
    old = ProcessedStack.open(folder)
    old.manifest.pop("tap_floor", None)
    (folder / "tap_floor.npz").unlink(missing_ok=True)
    t0 = time.process_time()
    tap(old, w / 2, h / 2)
    print(f"  first tap on a folder without a kept floor (measured and kept): {1000 * (time.process_time() - t0):.1f}"
          " ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--latency-stack", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("beetle", "rendered", "latency"))
    args = parser.parse_args()
    if args.only in (None, "beetle"):
        beetle(args.cache)
    if args.only in (None, "rendered"):
        rendered(args.cache)
    if args.latency_stack and args.only in (None, "latency"):
        latency(args.latency_stack, args.repeat)


if __name__ == "__main__":
    main()
