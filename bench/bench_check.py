"""The forward-model check on every real stack, and the crops of ``docs/check.md``.

For each stack in ``../shared/data`` (ring, pcb, pcb_depthmap, beetle, keyboard,
algae, keyboard_sweep.mp4) the stack is processed (or its cached folder reused),
checked with :func:`postfocus.check.forward_check` (the default all-in-focus
image and the depth map the products use) and reported: share flagged, 99th
percentile, the defocus slopes found, the check's CPU time and its worst
regions. Named places (the pin halo of pcb, the depth outliers of the sweep,
the groove of keyboard) get their mean and 90th-percentile residual, and on pcb
the pyramid result is checked too (the issue found it cleaner at the pins).

Usage::

    python bench/bench_check.py [--data ../shared/data] [--cache DIR] [--stacks pcb,keyboard_sweep.mp4]
    python bench/bench_check.py --doc-images docs/img      # also write the crops (heat map beside the image)
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
# crops for the docs: stack -> [(file stem, x0, y0, x1, y1, method)]
CROPS = {
    "pcb": [("check-pcb-pins", 1300, 660, 1640, 980, "depthmap"), ("check-pcb-pins-pyramid", 1300, 660, 1640, 980,
                                                                     "pyramid")],
    "keyboard_sweep.mp4": [("check-sweep-outlier", 413, 561, 693, 781, "depthmap"),
                           ("check-sweep-top", 760, 0, 1110, 120, "depthmap")],
    "keyboard": [("check-keyboard-groove", 1540, 560, 1882, 840, "depthmap")],
}


WHOLE = ("pcb", "pcb_depthmap", "keyboard_sweep.mp4")  # whole pictures for the docs


def synthetic(images: Path | None, work: Path) -> dict:
    """The check of postfocus's own result on a rendered occluder scene, against the checked truth."""
    from postfocus.check import band_ratio, check_frames
    from postfocus.synth import render_stack, scene, write_stack

    img, depth01 = scene("occluder", size=(240, 320))
    stack = render_stack(img, depth01, 10, max_blur=8.0, noise=0.005, jpeg_quality=90)
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


def _cpu() -> float:
    return time.process_time()


def _picture(path: Path, image: np.ndarray, quality: int = 88) -> None:
    pixels = cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])


def _pair(image: np.ndarray, residual: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Image crop beside the heat map of the same crop, with a 4 px gap."""
    x0, y0, x1, y1 = box
    crop = image[y0:y1, x0:x1]
    heat = heat_overlay(crop, residual[y0:y1, x0:x1])
    gap = np.full((crop.shape[0], 4, 3), 0.1, np.float32)
    return np.concatenate([crop, gap, heat], axis=1)


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
    s = result.summary
    row = {"stack": name, "size": list(ps.size), "frames": len(ps.used), "check_cpu_s": round(cpu, 2),
           "flagged": s["flagged"], "p99": s["p99"], "scale": s["scale"], "layers": s["layers"],
           "slopes": [round(result.model.near_slope, 2), round(result.model.far_slope, 2)],
           "floor": round(result.model.floor, 2), "regions": s["regions"][:3], "places": {}}
    residuals = {"depthmap": result.residual}
    if name in CROPS and any(c[5] == "pyramid" for c in CROPS[name]):
        other = forward_check(ps, method="pyramid", depth=depth.depth, confidence=depth.confidence,
                              model=result.model)
        residuals["pyramid"] = other.residual
    for place, x0, y0, x1, y1 in PLACES.get(name, []):
        for method, res in residuals.items():
            v = res[y0:y1, x0:x1]
            key = place if method == "depthmap" else f"{place} ({method})"
            row["places"][key] = {"mean": round(float(v.mean()), 2), "p90": round(float(np.quantile(v, 0.9)), 2),
                                  "peak": round(float(v.max()), 2), "flagged": round(float((v > s["level"]).mean()), 3)}
    if images is not None and name in WHOLE:
        h, w = ps.size
        f = 720 / max(h, w)
        small = cv2.resize(heat_overlay(image, result.residual), (round(w * f), round(h * f)),
                           interpolation=cv2.INTER_AREA)
        _picture(images / f"check-{Path(name).stem.replace('_', '-')}-whole.jpg", small, 85)
    if images is not None:
        for stem, x0, y0, x1, y1, method in CROPS.get(name, []):
            picture = image if method == "depthmap" else ps.all_in_focus(method)
            _picture(images / f"{stem}.jpg", _pair(picture, residuals[method], (x0, y0, x1, y1)))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=None, help="Stack folders (default: the usual cache).")
    ap.add_argument("--stacks", default=",".join(STACKS), help="Comma-separated stack names.")
    ap.add_argument("--doc-images", type=Path, default=None, help="Write the crops into this folder.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON.")
    ap.add_argument("--no-synthetic", action="store_true", help="Skip the rendered occluder scene.")
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
    print(f"{'stack':20} {'frames':>6} {'size':>11} {'cpu s':>6} {'flagged':>8} {'p99':>5} {'slopes px/frame':>16}")
    for name in args.stacks.split(","):
        row = check_stack(name, args.data, args.cache, args.doc_images)
        rows.append(row)
        h, w = row["size"]
        print(f"{name:20} {row['frames']:6d} {w:5d}x{h:<5d} {row['check_cpu_s']:6.2f} {100 * row['flagged']:7.2f}% "
              f"{row['p99']:5.2f} {row['slopes'][0]:7.2f} {row['slopes'][1]:7.2f}")
        for place, v in row["places"].items():
            print(f"    {place}: mean {v['mean']:.2f}, p90 {v['p90']:.2f}, peak {v['peak']:.2f}, "
                  f"flagged {100 * v['flagged']:.1f}%")
        for r in row["regions"]:
            print(f"    region x {r['x']}-{r['x'] + r['width']}, y {r['y']}-{r['y'] + r['height']}: "
                  f"peak {r['peak']:.1f}, mean {r['mean']:.1f}")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
