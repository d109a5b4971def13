"""Aperture render latency on the processed 30-frame 4K stack, this version against another.

The stack is bench_speed's 4K MP4 (the keyboard sweep scaled to 3840x2160, 30
frames), processed once into ``--work``. Its depth map is made once; then
``render_aperture`` (f-number given, focus at the centre, what the web app runs
on a stored depth map) and ``aperture()`` (which makes the depth map again) are
timed for this version and the ``--base`` version in turn, ``--repeat`` rounds:
medians of wall and CPU time (user + system, all threads), the load average, and
the PSNR of this version's render against the base's.

Usage::

    git archive main src | tar x -C /tmp/base   # the version to compare with
    python bench/bench_aperture.py --base /tmp/base/src --f-number 2.8
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(1, str(ROOT / "src"))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(call):
    wall, cpu, load = time.perf_counter(), _cpu(), os.getloadavg()[0]
    out = call()
    return (time.perf_counter() - wall, _cpu() - cpu, load), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="src folder of the version to compare with")
    ap.add_argument("--f-number", type=float, default=2.8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_aperture"))
    args = ap.parse_args()

    import bench_speed
    from postfocus import process
    from postfocus.products.depth import depth_map

    new = importlib.import_module("postfocus.products.aperture")
    old = _load(args.base / "postfocus" / "products" / "aperture.py", "base_aperture")
    args.work.mkdir(parents=True, exist_ok=True)
    mp4, _frames = bench_speed.sweep_mp4(args.work, 30)
    ps = process(str(mp4), cache_dir=str(args.work / "cache"))
    h, w = ps.size
    image = ps.all_in_focus()
    result = depth_map(ps, image=image)
    focus = new.focus_at(result.depth, w / 2, h / 2, result.confidence)
    blur = new.blur_from_f_number(args.f_number, result.size, max(result.frames - 1, 1))
    print(f"{w}x{h}, f/{args.f_number:g}: focus {focus:.2f} frames, {blur:.2f} px per frame, "
          f"{new.plan_layers(result.depth, focus, blur).count} layers", flush=True)
    runs: dict[str, list] = {}
    for _ in range(args.repeat):
        for tag, module in (("base", old), ("this", new)):
            t, out = _timed(lambda: module.render_aperture(image, result.depth, focus, blur_px=blur))
            runs.setdefault(f"render_aperture, {tag}", []).append(t)
            if tag == "base":
                ref = out
            else:
                psnr = 10 * np.log10(1.0 / max(float(np.mean((out - ref) ** 2)), 1e-12))
            t, _out = _timed(lambda: module.aperture(ps, focus_at_point=(w / 2, h / 2), f_number=args.f_number))
            runs.setdefault(f"aperture() with its depth map, {tag}", []).append(t)
    for name, rs in runs.items():
        print(f"{name}: wall {statistics.median(r[0] for r in rs):.2f} s, CPU {statistics.median(r[1] for r in rs):.2f} s "
              f"(load {min(r[2] for r in rs):.1f}-{max(r[2] for r in rs):.1f})")
    print(f"PSNR of this render against the base's: {psnr:.1f} dB (120 = identical)")


if __name__ == "__main__":
    main()
