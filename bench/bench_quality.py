"""Quality benchmark: postfocus vs align_image_stack + enfuse on generated stacks with ground truth.

Each scene is rendered by postfocus.synth as a handheld sweep (shake, rotation,
breathing, exposure drift, noise, JPEG), written as JPEG frames, then merged by
every tool as a separate process. Results are brought to the reference frame's
geometry (postfocus: --no-crop; enfuse: from the first frame's geometry with the
true transform of that frame) and scored over the area every frame covers.

Usage:
    python bench/bench_quality.py                      # all scenes, 10 frames
    python bench/bench_quality.py --scenes steps --frames 8
    python bench/bench_quality.py --real               # also time the real stacks in ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import ensure_peers, run_enfuse, run_postfocus  # noqa: E402

from postfocus.align import common_area  # noqa: E402
from postfocus.focus import tenengrad  # noqa: E402
from postfocus.io.images import read_image  # noqa: E402
from postfocus.io.sources import natural_key  # noqa: E402
from postfocus.synth import oracle_composite, psnr, render_stack, scene, ssim, write_stack  # noqa: E402

HANDHELD = dict(shake_px=8.0, rotation_deg=0.5, breathing=0.03, exposure_drift=0.05, noise=0.004, jpeg_quality=95)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def halo_band(depth: np.ndarray, width: int = 9) -> np.ndarray:
    """Band ``width`` px wide around depth discontinuities (> 1 frame between neighbours)."""
    gx = np.abs(np.diff(depth, axis=1, prepend=depth[:, :1]))
    gy = np.abs(np.diff(depth, axis=0, prepend=depth[:1]))
    edges = ((gx > 1.0) | (gy > 1.0)).astype(np.uint8)
    return cv2.dilate(edges, np.ones((width, width), np.uint8)).astype(bool)


def naive_argmax(stack) -> np.ndarray:  # noqa: ANN001
    """Per pixel, the frame with the largest |Laplacian|, aligned with the TRUE transforms."""
    h, w = stack.sharp.shape[:2]
    aligned = [
        cv2.warpPerspective(f, W, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT) / g
        for f, W, g in zip(stack.frames, stack.transforms, stack.gains)
    ]
    lap = np.stack([np.abs(cv2.Laplacian(cv2.cvtColor(a.astype(np.float32), cv2.COLOR_RGB2GRAY), cv2.CV_32F))
                    for a in aligned])
    best = np.argmax(lap, axis=0)
    return np.take_along_axis(np.stack(aligned), best[None, ..., None], axis=0)[0].astype(np.float32)


def score(image: np.ndarray, truth: np.ndarray, box: tuple[int, int, int, int], band: np.ndarray) -> dict:
    t, l, b, r = box
    a, g, hb = image[t:b, l:r], truth[t:b, l:r], band[t:b, l:r]
    return {"psnr": psnr(a, g), "ssim": ssim(a, g), "halo_psnr": psnr(a, g, hb) if hb.any() else float("nan")}


def bench_scene(name: str, frames: int, seed: int, work: Path, methods: list[str]) -> list[dict]:
    size = None if name == "motorcycle" else (480, 720)
    sharp, depth01 = scene(name, size, seed=seed)
    st = render_stack(sharp, depth01, frames, max_blur=8.0, seed=seed, **HANDHELD)
    folder = work / name
    paths = write_stack(st, folder, fmt="jpg", quality=95)
    h, w = st.sharp.shape[:2]
    t, l, b, r = common_area(st.transforms, (h, w))
    box = (t + 4, l + 4, b - 4, r - 4)
    band = halo_band(st.depth)
    rows = []
    for method in methods:
        out = work / f"{name}_postfocus_{method}.png"
        run = run_postfocus(paths, out, method, ["--no-crop"])
        row = {"scene": name, "tool": f"postfocus {method}", "seconds": run.seconds, "peak_mb": run.peak_mb, "ok": run.ok}
        if run.ok:
            row.update(score(read_image(out), st.sharp, box, band))
        rows.append(row)
    out = work / f"{name}_enfuse.tif"
    run = run_enfuse(paths, out, work)
    row = {"scene": name, "tool": "align_image_stack + enfuse", "seconds": run.seconds, "peak_mb": run.peak_mb,
           "ok": run.ok}
    if run.ok:
        enf = read_image(out)
        # enfuse's result is in frame 0's geometry: bring it to the reference with frame 0's true transform.
        enf = cv2.warpPerspective(enf, st.transforms[0], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT)
        row.update(score(enf, st.sharp, box, band))
    else:
        print(run.log, file=sys.stderr)
    rows.append(row)
    rows.append({"scene": name, "tool": "oracle (true depth, true transforms)", **score(oracle_composite(st), st.sharp, box, band)})
    rows.append({"scene": name, "tool": "naive argmax of abs Laplacian (true transforms)", **score(naive_argmax(st), st.sharp, box, band)})
    return rows


def bench_real(name: str, work: Path) -> list[dict]:
    folder = DATA / name
    paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png", ".tif")),
                   key=lambda p: natural_key(p.name))
    rows = []
    out = work / f"{name}_postfocus.png"
    run = run_postfocus(paths, out)
    rows.append({"scene": name, "tool": "postfocus depthmap", "seconds": run.seconds, "peak_mb": run.peak_mb,
                 "ok": run.ok, "tenengrad": tenengrad(read_image(out)) if run.ok else float("nan")})
    out = work / f"{name}_enfuse.tif"
    run = run_enfuse(paths, out, work)
    rows.append({"scene": name, "tool": "align_image_stack + enfuse", "seconds": run.seconds, "peak_mb": run.peak_mb,
                 "ok": run.ok, "tenengrad": tenengrad(read_image(out)) if run.ok else float("nan")})
    return rows


def fmt(v) -> str:  # noqa: ANN001
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", default=["motorcycle", "steps", "occluder", "ramp", "flat"])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--methods", nargs="*", default=["depthmap", "pyramid"])
    ap.add_argument("--real", nargs="*", default=None, help="real stacks to time (default none; bare flag: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args()
    ensure_peers()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pf-bench-") as tmp:
        work = Path(tmp)
        for name in args.scenes:
            rows += bench_scene(name, args.frames, args.seed, work, args.methods)
            print(f"done {name}", file=sys.stderr)
        print("## Generated stacks (ground truth)\n")
        print(table(rows, ["scene", "tool", "psnr", "ssim", "halo_psnr", "seconds", "peak_mb"]))
        if args.real is not None:
            names = args.real or ["ring", "pcb", "pcb_depthmap", "beetle", "algae", "keyboard"]
            real = []
            for name in names:
                real += bench_real(name, work)
                print(f"done {name}", file=sys.stderr)
            print("\n## Real stacks (no ground truth)\n")
            print(table(real, ["scene", "tool", "tenengrad", "seconds", "peak_mb", "ok"]))
            rows += real
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
