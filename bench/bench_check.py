"""The forward-model check on every real stack, and the crops of ``docs/check.md``.

For each stack in ``../shared/data`` (ring, pcb, pcb_depthmap, beetle, keyboard,
algae, keyboard_sweep.mp4) the stack is processed (or its cached folder reused),
checked with :func:`postfocus.check.forward_check` (the default all-in-focus
image and the depth map the products use) and reported: share flagged, 99th
percentile, share unverifiable, the defocus slopes found, the check's CPU time
and its worst regions. Every stack is also checked with the raw depth (the
depth map without outlier rejection, what the products read before the
cleaning). Named places (the pin halo of pcb, the depth outliers of the sweep,
the groove of keyboard) get their mean and 90th-percentile residual; on pcb and
keyboard the old fusion (``fuse(..., occlusion=False)``, before the halo fix)
and on pcb the pyramid result are checked too. A rendered walker
(``postfocus.synth.people``) shows the motion mask: moving pixels judged
against their instant, and the same judged against every frame. Four scenes
rendered with a background behind their near objects (``hidden=True``: pins,
grass, steps, occluder) give the edge-band ratio of the truth, of postfocus's
result and of the oracle.

Usage::

    python bench/bench_check.py [--data ../shared/data] [--cache DIR] [--stacks pcb,keyboard_sweep.mp4]
    python bench/bench_check.py --doc-images docs/img      # also write the crops (heat map beside the image)
    python bench/bench_check.py --only-synthetic           # only the rendered scenes
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from postfocus.check import forward_check
from postfocus.check.view import heat_overlay
from postfocus.pipeline.merge import fuse, plan_bands
from postfocus.pipeline.run import process
from postfocus.products.depth import depth_map

STACKS = ("ring", "pcb", "pcb_depthmap", "beetle", "keyboard", "algae", "keyboard_sweep.mp4")

# stack -> [(name, x0, y0, x1, y1)] output pixels of places the issue names
PLACES = {
    "pcb": [("pin halo", 1380, 740, 1560, 900)],
    "keyboard": [("groove under the top-right key", 1580, 620, 1885, 800)],
    "keyboard_sweep.mp4": [("depth outlier near (553, 671)", 517, 657, 572, 709),
                           ("depth spike at the top centre", 871, 0, 996, 29),
                           ("depth outlier near (1737, 725)", 1696, 693, 1778, 758)],
}
# crops for the docs: stack -> [(file stem, x0, y0, x1, y1, variant)]; variants: "depthmap" (the result and
# the clean depth), "raw" (the result, raw depth), "old" / "old raw" (the fusion before the halo fix, clean / raw
# depth), "pyramid"; a "-depth" picture (image, clean depth, raw depth) is written beside each "raw" crop
CROPS = {
    "pcb": [("check-pcb-pins", 1300, 660, 1640, 980, "depthmap"), ("check-pcb-pins-raw", 1300, 660, 1640, 980, "raw"),
            ("check-pcb-pins-old", 1300, 660, 1640, 980, "old"),
            ("check-pcb-pins-old-raw", 1300, 660, 1640, 980, "old raw"),
            ("check-pcb-pins-pyramid", 1300, 660, 1640, 980, "pyramid")],
    "keyboard_sweep.mp4": [("check-sweep-outlier", 413, 561, 693, 781, "depthmap"),
                           ("check-sweep-outlier-raw", 413, 561, 693, 781, "raw"),
                           ("check-sweep-outlier2", 1617, 621, 1857, 831, "depthmap"),
                           ("check-sweep-outlier2-raw", 1617, 621, 1857, 831, "raw"),
                           ("check-sweep-top", 760, 0, 1110, 120, "raw")],

    "keyboard": [("check-keyboard-groove", 1540, 560, 1882, 840, "depthmap"),
                 ("check-keyboard-groove-old", 1540, 560, 1882, 840, "old")],
}


WHOLE = ("pcb", "pcb_depthmap", "keyboard_sweep.mp4", "ring")  # whole pictures for the docs
CHANGED = 2.0  # frames: pixels the outlier rejection moved by more than this are "the outliers the cleaning removed"


def synthetic(images: Path | None, work: Path) -> dict:
    """The check of postfocus's own result on a rendered occluder scene, against the checked truth."""
    from postfocus.check import band_ratio, check_frames
    from postfocus.synth import render_stack, scene, write_stack

    img, depth01 = scene("occluder", size=(240, 320))
    stack = render_stack(img, depth01, 10, max_blur=8.0, noise=0.005, jpeg_quality=90, hidden=True)
    write_stack(stack, work / "occluder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(work / "occluder", cache_dir=work / "cache", align="none")
    row = {"stack": "rendered occluder (240x320, 10 frames, 0.89 px of blur per frame)"}
    truth = check_frames(stack.sharp, stack.depth, lambda i: stack.frames[i], range(10))
    row["truth"] = {"flagged": truth.summary["flagged"], "p99": truth.summary["p99"],
                    "band_ratio_4px": round(band_ratio(truth, stack.depth, 4), 2),
                    "slopes": [round(truth.model.near_slope, 3), round(truth.model.far_slope, 3)]}
    image = ps.all_in_focus()
    ours = forward_check(ps, image=image)
    with_true_depth = forward_check(ps, image=image, depth=stack.depth, model=ours.model)
    row["postfocus"] = {"flagged": ours.summary["flagged"], "p99": ours.summary["p99"],
                        "band_ratio_4px": round(band_ratio(ours, stack.depth, 4), 2),
                        "flagged_with_true_depth": with_true_depth.summary["flagged"]}
    if images is not None:
        _picture(images / "check-synth-occluder.jpg", _pair(image, ours.residual, (0, 0, 320, 240)), 90)
    return row


HIDDEN_SCENES = ("pins", "grass", "steps", "occluder")


def hidden_scenes(work: Path) -> list[dict]:
    """Edge-band ratio of the truth, the default fusion and the oracle on scenes rendered with a hidden background.

    Each scene (240x320, 10 frames, 8 px of blur across the sweep, noise 0.005,
    JPEG 90, ``render_stack(..., hidden=True)``) is checked against its frames
    with the true depth: the truth should score about 1 within 4 px of the depth
    edges; a fusion's halo raises it. Also without JPEG for the truth.
    """
    from postfocus.check import band_ratio, check_frames
    from postfocus.synth import render_stack, scene, write_stack
    from postfocus.synth.render import oracle_composite

    rows = []
    for name in HIDDEN_SCENES:
        img, depth01 = scene(name, size=(240, 320))
        stack = render_stack(img, depth01, 10, max_blur=8.0, noise=0.005, jpeg_quality=90, hidden=True)
        plain = render_stack(img, depth01, 10, max_blur=8.0, noise=0.005, hidden=True)
        write_stack(stack, work / f"hidden-{name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ps = process(work / f"hidden-{name}", cache_dir=work / "cache", align="none")
        row = {"stack": f"{name}, hidden background (240x320, 10 frames, JPEG 90)"}
        cpu = 0.0
        for key, st, image in (("truth", stack, stack.sharp), ("truth_no_jpeg", plain, plain.sharp),
                               ("postfocus", stack, np.clip(ps.all_in_focus(), 0.0, 1.0)),
                               ("oracle", stack, oracle_composite(stack))):
            start = time.process_time()
            result = check_frames(image, st.depth, lambda i, st=st: st.frames[i], range(10))
            cpu += time.process_time() - start
            row[key] = {"band_ratio_4px": round(band_ratio(result, st.depth, 4), 2),
                        "flagged": result.summary["flagged"], "p99": result.summary["p99"],
                        "contradicted": result.summary["contradicted"]}
        row["check_cpu_s"] = round(cpu, 2)
        rows.append(row)
    return rows


def walker(images: Path | None, work: Path) -> dict:
    """A rendered walker (3.5 px a frame, shown from one instant): the check with and without the motion mask."""
    from postfocus.synth import write_stack
    from postfocus.synth.people import walker_stack

    st = walker_stack((240, 360), 40, seed=1, shake_px=4.0, rotation_deg=0.3, breathing=0.02, exposure_drift=0.03,
                      noise=0.006, jpeg_quality=92)
    write_stack(st, work / "walker", fmt="png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(work / "walker", cache_dir=work / "cache", crop=False)
    judged = forward_check(ps)
    every = forward_check(ps, motion=False, model=judged.model)
    moving = judged.instant >= 0 if judged.instant is not None else np.zeros(ps.size, bool)
    row = {"stack": "rendered walker (240x360, 40 frames, 3.5 px a frame)", "moving": round(float(moving.mean()), 3),
           "instants": sorted(set(judged.instant[moving].tolist())) if moving.any() else []}
    for key, r in (("instant", judged), ("every_frame", every)):
        row[key] = {"flagged_moving": round(float((r.residual[moving] > 3).mean()), 4) if moving.any() else None,
                    "flagged_static": round(float((r.residual[~moving] > 3).mean()), 4),
                    "mean_moving": round(float(r.residual[moving].mean()), 2) if moving.any() else None}
    if images is not None:
        image = ps.all_in_focus()
        h, w = ps.size
        _picture(images / "check-walker.jpg", np.concatenate([
            _pair(image, every.residual, (0, 0, w, h)), np.full((4, 2 * w + 4, 3), 0.1, np.float32),
            _pair(image, judged.residual, (0, 0, w, h), judged.unverifiable)]), 90)
    return row


def _cpu() -> float:
    return time.process_time()


def _picture(path: Path, image: np.ndarray, quality: int = 88) -> None:
    pixels = cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _pair(image: np.ndarray, residual: np.ndarray, box: tuple[int, int, int, int],
          unverifiable: np.ndarray | None = None) -> np.ndarray:
    """Image crop beside the heat map of the same crop (unverifiable pixels tinted blue), with a 4 px gap."""
    x0, y0, x1, y1 = box
    crop = image[y0:y1, x0:x1]
    blind = None if unverifiable is None else unverifiable[y0:y1, x0:x1]
    heat = heat_overlay(crop, residual[y0:y1, x0:x1], unverifiable=blind)
    gap = np.full((crop.shape[0], 4, 3), 0.1, np.float32)
    return np.concatenate([crop, gap, heat], axis=1)


def _old_fusion(ps) -> np.ndarray:
    """The all-in-focus image of the depth-map method as fused before the halo fix (no occlusion check)."""
    bands = plan_bands(ps.size, len(ps.used), "depthmap", None, lambda message: None)
    return fuse(ps.frames(), ps.maps, method="depthmap", bands=bands, occlusion=False)


def _stats(v: np.ndarray, level: float) -> dict:
    return {"mean": round(float(v.mean()), 2), "p90": round(float(np.quantile(v, 0.9)), 2),
            "peak": round(float(v.max()), 2), "flagged": round(float((v > level).mean()), 3)}


def _depths(image: np.ndarray, clean: np.ndarray, raw: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Image crop, clean depth, raw depth (turbo colours over the crop's own range, near red), 4 px gaps."""
    x0, y0, x1, y1 = box
    lo, hi = np.quantile(np.concatenate([clean[y0:y1, x0:x1].ravel(), raw[y0:y1, x0:x1].ravel()]), [0.01, 0.99])

    def colour(d: np.ndarray) -> np.ndarray:
        t = ((1.0 - np.clip((d[y0:y1, x0:x1] - lo) / max(hi - lo, 1e-6), 0, 1)) * 255).astype(np.uint8)
        return cv2.cvtColor(cv2.applyColorMap(t, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB).astype(np.float32) / 255

    gap = np.full((y1 - y0, 4, 3), 0.1, np.float32)
    return np.concatenate([image[y0:y1, x0:x1], gap, colour(clean), gap, colour(raw)], axis=1)


def check_stack(name: str, data: Path, cache: Path | None, images: Path | None) -> dict:
    """Process and check one stack; returns its row of numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ps = process(data / name, cache_dir=cache)
    image = ps.all_in_focus()
    depth = depth_map(ps, image=image)
    start = _cpu()
    result = forward_check(ps, image=image, depth=depth.depth, confidence=depth.confidence)
    cpu = _cpu() - start
    raw = forward_check(ps, image=image, depth="raw", model=result.model)
    raw_depth = depth_map(ps, image=image, tolerance=float(len(ps.names))).depth  # what depth="raw" judges
    changed = np.abs(raw_depth - depth.depth) > CHANGED
    s = result.summary
    row = {"stack": name, "size": list(ps.size), "frames": len(ps.used), "check_cpu_s": round(cpu, 2),
           "flagged": s["flagged"], "p99": s["p99"], "unverifiable": s["unverifiable"], "instant": s["instant"],
           "flagged_raw_depth": raw.summary["flagged"], "scale": s["scale"], "layers": s["layers"],
           "contradicted": s["contradicted"], "contradicted_raw_depth": raw.summary["contradicted"],
           "hidden_zone": s["hidden_zone"],
           "slopes": [round(result.model.near_slope, 2), round(result.model.far_slope, 2)],
           "floor": round(result.model.floor, 2), "regions": s["regions"][:3], "places": {},
           "changed_by_cleaning": round(float(changed.mean()), 4)}
    if changed.any():  # the outliers the cleaning removed: does the check see them in the raw depth, and not after?
        row["on_changed"] = {"raw": _stats(raw.residual[changed], s["level"]),
                             "clean": _stats(result.residual[changed], s["level"])}
    variants = {"depthmap": (image, result), "raw": (image, raw)}
    wanted = {c[5] for c in CROPS.get(name, [])}
    if "old" in wanted:  # the same depth and defocus: only the image differs
        old = _old_fusion(ps)
        variants["old"] = (old, forward_check(ps, image=old, depth=depth.depth, confidence=depth.confidence,
                                              model=result.model))
        variants["old raw"] = (old, forward_check(ps, image=old, depth="raw", model=result.model))
        row["flagged_old_fusion"] = variants["old"][1].summary["flagged"]
    if "pyramid" in wanted:
        pyramid = ps.all_in_focus("pyramid")
        variants["pyramid"] = (pyramid, forward_check(ps, method="pyramid", image=pyramid, depth=depth.depth,
                                                      confidence=depth.confidence, model=result.model))
    for place, x0, y0, x1, y1 in PLACES.get(name, []):
        for variant, (_, res) in variants.items():
            key = place if variant == "depthmap" else f"{place} ({variant})"
            row["places"][key] = {**_stats(res.residual[y0:y1, x0:x1], s["level"]),
                                  "unverifiable": round(float(res.unverifiable[y0:y1, x0:x1].mean()), 3)}
    if images is not None and name in WHOLE:
        h, w = ps.size
        f = 720 / max(h, w)
        small = cv2.resize(heat_overlay(image, result.residual, unverifiable=result.unverifiable),
                           (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        _picture(images / f"check-{Path(name).stem.replace('_', '-')}-whole.jpg", small, 85)
    if images is not None:
        for stem, x0, y0, x1, y1, variant in CROPS.get(name, []):
            picture, res = variants[variant]
            _picture(images / f"{stem}.jpg", _pair(picture, res.residual, (x0, y0, x1, y1), res.unverifiable))
            if variant == "raw":
                _picture(images / f"{stem}-depth.jpg", _depths(picture, depth.depth, raw_depth, (x0, y0, x1, y1)))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=None, help="Stack folders (default: the usual cache).")
    ap.add_argument("--stacks", default=",".join(STACKS), help="Comma-separated stack names.")
    ap.add_argument("--doc-images", type=Path, default=None, help="Write the crops into this folder.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON.")
    ap.add_argument("--no-synthetic", action="store_true", help="Skip the rendered scenes (occluder, walker, hidden).")
    ap.add_argument("--only-synthetic", action="store_true", help="Only the rendered scenes, no real stack.")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no real stacks at {args.data}", file=sys.stderr)
        return 2
    if args.doc_images:
        args.doc_images.mkdir(parents=True, exist_ok=True)
    rows = []
    if not args.no_synthetic:
        with tempfile.TemporaryDirectory() as work:
            row = synthetic(args.doc_images, Path(work))
            rows.append(row)
            print(json.dumps(row))
            row = walker(args.doc_images, Path(work))
            rows.append(row)
            print(json.dumps(row))
            for row in hidden_scenes(Path(work)):
                rows.append(row)
                print(json.dumps(row))
    print(f"{'stack':20} {'frames':>6} {'size':>11} {'cpu s':>6} {'flagged':>8} {'p99':>5} {'slopes px/frame':>16} "
          f"{'unverif':>8} {'raw depth':>9} {'contradicted clean/raw':>22}")
    for name in [] if args.only_synthetic else args.stacks.split(","):
        row = check_stack(name, args.data, args.cache, args.doc_images)
        rows.append(row)
        h, w = row["size"]
        print(f"{name:20} {row['frames']:6d} {w:5d}x{h:<5d} {row['check_cpu_s']:6.2f} {100 * row['flagged']:7.2f}% "
              f"{row['p99']:5.2f} {row['slopes'][0]:7.2f} {row['slopes'][1]:7.2f} {100 * row['unverifiable']:7.2f}% "
              f"{100 * row['flagged_raw_depth']:8.2f}% {100 * row['contradicted']:10.2f}% "
              f"{100 * row['contradicted_raw_depth']:9.2f}%")
        for kind, v in row.get("on_changed", {}).items():
            print(f"    pixels the cleaning moved > {CHANGED:g} frames ({100 * row['changed_by_cleaning']:.2f} %), "
                  f"{kind} depth: mean {v['mean']:.2f}, p90 {v['p90']:.2f}, flagged {100 * v['flagged']:.1f}%")
        for place, v in row["places"].items():
            print(f"    {place}: mean {v['mean']:.2f}, p90 {v['p90']:.2f}, peak {v['peak']:.2f}, "
                  f"flagged {100 * v['flagged']:.1f}%, unverifiable {100 * v['unverifiable']:.1f}%")
        for r in row["regions"]:
            print(f"    region x {r['x']}-{r['x'] + r['width']}, y {r['y']}-{r['y'] + r['height']}: "
                  f"peak {r['peak']:.1f}, mean {r['mean']:.1f}")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
