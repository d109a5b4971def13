"""Which step of ``refine_depth`` loses the pixels its first fit had right, on the generated depth scenes.

:func:`postfocus.products.depth.refine_depth` fits each pixel's focus curve and then cleans the index map:
the occlusion sides, the outlier islands, the occlusion bands and the confidence fill, and the snap of depth
edges onto outlines (its docstring, steps 1-5). This benchmark hooks into those steps from outside (the
library is unchanged) and reads the index after each of them, at the analysis size, against the generator's
truth: the share within one frame after each step, and, of the pixels more than a frame off in the end,
those the first fit (the Gaussian peak and the sweep's ends, before any cleaning) had within a frame, by the
step that moved them away:

* ``sides``: :func:`~postfocus.focus.sides.occlusion_sides` gave them another index;
* ``outliers``: flagged as an outlier island (:func:`~postfocus.focus.clean.islands`) and refilled;
* ``band``: in an occlusion band (a confidently farther pixel within the band), taken from the fill;
* ``fill``: confidence below ``FILLED``, taken (mostly) from the fill;
* ``blend``: a confident pixel whose blend with the fill moved it;
* ``snap``: right before :func:`~postfocus.focus.edges.snap_to_outlines`, wrong after it.

``--patches K`` also lists each scene's K largest connected patches of misses (8-connected), with their
boxes and the same split.

Usage::

    PYTHONPATH=src:bench python bench/bench_depth_steps.py [--profiles tripod,handheld,long] [--scenes steps]
                                                           [--patches 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import postfocus.products.depth as depth_module
from bench_depth import PROFILES, SCENES, make_stack

STEPS = ("sides", "outliers", "band", "fill", "blend", "snap")


class Steps:
    """Record refine_depth's intermediate index maps while in a ``with`` block."""

    def __enter__(self) -> "Steps":
        self.saved = {k: getattr(depth_module, k) for k in ("end_peaks", "outliers", "islands", "snap_to_outlines")}
        self.seen: dict[str, np.ndarray] = {}

        def end_peaks(*a, **k):  # noqa: ANN002, ANN003
            self.seen["fit"] = self.saved["end_peaks"](*a, **k)
            return self.seen["fit"]

        def outliers(index, confidence, *a, **k):  # noqa: ANN001, ANN002, ANN003
            self.seen["sided"], self.seen["confidence"] = np.array(index), np.array(confidence)
            bad, median = self.saved["outliers"](index, confidence, *a, **k)
            self.seen["median"] = median
            return bad, median

        def islands(*a, **k):  # noqa: ANN002, ANN003
            self.seen["bad"] = self.saved["islands"](*a, **k)
            return self.seen["bad"]

        def snap(depth, guide, conf, **k):  # noqa: ANN001, ANN003
            self.seen["presnap"], self.seen["out_conf"] = np.array(depth), np.array(conf)
            return self.saved["snap_to_outlines"](depth, guide, conf, **k)

        for name, f in (("end_peaks", end_peaks), ("outliers", outliers), ("islands", islands),
                        ("snap_to_outlines", snap)):
            setattr(depth_module, name, f)
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        for name, f in self.saved.items():
            setattr(depth_module, name, f)


def stages(ps) -> dict[str, np.ndarray]:  # noqa: ANN001
    """refine_depth's index after each step (analysis size, slices nearest first) and its masks."""
    volume = np.asarray(ps.volume, np.float32)
    mh, mw = volume.shape[1:]
    image = ps.all_in_focus()
    small = cv2.resize(image, (mw, mh), interpolation=cv2.INTER_AREA) if image.shape[:2] != (mh, mw) else image
    ntf = ps.near_to_far
    with Steps() as rec:
        final, conf = depth_module.refine_depth(volume if ntf else volume[::-1], small, motion=ps.motion)
    s = rec.seen
    bad = s["bad"]
    clean = np.where(bad, s["median"], s["sided"])
    occluding = (s["out_conf"] < 0.25 * s["confidence"] + 1e-7) & ~bad & (s["confidence"] > 0)
    used = np.asarray(ps.used, np.float32)
    n = len(ps.used)

    def frames(position: np.ndarray) -> np.ndarray:  # slice position -> frame number of the sweep
        p = position if ntf else (n - 1) - position
        return np.interp(p, np.arange(n, dtype=np.float32), used).astype(np.float32)

    return dict(fit=frames(s["fit"]), sided=frames(s["sided"]), clean=frames(clean), presnap=frames(s["presnap"]),
                final=frames(final), bad=bad, occluding=occluding, confidence=s["confidence"])


def attribute(st: dict[str, np.ndarray], truth: np.ndarray, where: np.ndarray) -> dict[str, int]:
    """Of the pixels in ``where`` the first fit had right: how many each step lost."""
    ok = {k: np.abs(st[k] - truth) <= 1.0 for k in ("fit", "sided", "clean", "presnap", "final")}
    lost = where & ok["fit"] & ~ok["final"]
    out = {"sides": int((lost & ~ok["sided"]).sum())}
    lost &= ok["sided"]
    out["outliers"] = int((lost & st["bad"]).sum())
    rest = lost & ~st["bad"]
    filled = rest & ~ok["presnap"]
    out["band"] = int((filled & st["occluding"]).sum())
    out["fill"] = int((filled & ~st["occluding"] & (st["confidence"] < depth_module.FILLED)).sum())
    out["blend"] = int((filled & ~st["occluding"] & (st["confidence"] >= depth_module.FILLED)).sum())
    out["snap"] = int((rest & ok["presnap"]).sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", default="tripod,handheld,long")
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--patches", type=int, default=0, help="also list the K largest patches of misses per scene")
    args = ap.parse_args(argv)
    print("| profile | scene | first fit | after sides | after outliers | before snap | final | wrong | "
          "first fit right on | lost by " + " / ".join(STEPS) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    patches = []
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles.split(","):
            frames, camera, fmt = PROFILES[profile]
            for name in args.scenes.split(","):
                ps, _, truth = make_stack(name, Path(tmp) / f"{profile}-{name}", frames=frames,
                                          cache=Path(tmp) / "cache", fmt=fmt, **camera)
                st = stages(ps)
                if truth.shape != st["final"].shape:
                    truth = cv2.resize(truth, st["final"].shape[::-1], interpolation=cv2.INTER_NEAREST)
                share = {k: float((np.abs(st[k] - truth) <= 1.0).mean())
                         for k in ("fit", "sided", "clean", "presnap", "final")}
                wrong = np.abs(st["final"] - truth) > 1.0
                lost = attribute(st, truth, wrong)
                total = wrong.size
                print(f"| {profile} | {name} | {share['fit']:.1%} | {share['sided']:.1%} | {share['clean']:.1%} | "
                      f"{share['presnap']:.1%} | {share['final']:.1%} | {wrong.mean():.1%} | "
                      f"{sum(lost.values()) / max(wrong.sum(), 1):.0%} | "
                      + " / ".join(f"{lost[k] / total:.2%}" for k in STEPS) + " |", flush=True)
                if args.patches:
                    count, labels, boxes, _ = cv2.connectedComponentsWithStats(wrong.astype(np.uint8), connectivity=8)
                    for lab in np.argsort(-boxes[1:, cv2.CC_STAT_AREA])[: args.patches] + 1:
                        x, y, w, h, area = boxes[lab]
                        part = attribute(st, truth, labels == lab)
                        patches.append((profile, name, f"x {x}-{x + w - 1}, y {y}-{y + h - 1}", area / total,
                                        float(np.median(truth[labels == lab])),
                                        float(np.median(st["final"][labels == lab])),
                                        sum(part.values()) / area, part, area))
    if patches:
        print("\n| profile | scene | patch | share of the picture | truth | read | first fit right on | lost by "
              + " / ".join(STEPS) + " (px) |")
        print("|---|---|---|---|---|---|---|---|")
        for profile, name, box, share, t, r, right, part, area in patches:
            print(f"| {profile} | {name} | {box} | {share:.2%} | {t:.2f} | {r:.2f} | {right:.0%} of {area} px | "
                  + " / ".join(str(part[k]) for k in STEPS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
