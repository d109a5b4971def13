"""Aperture render latency on the processed 30-frame 4K stack, this version against another.

The stack is bench_speed's 4K MP4 (the keyboard sweep scaled to 3840x2160, 30
frames), processed once into ``--work`` by this version; its all-in-focus image
and depth map are made once and saved for the ``render_aperture`` rows. Each
measurement runs in a child process of its own with one version's ``src`` on
the path (both versions' ``aperture`` import ``postfocus.products.layers``, so
they cannot share a process), the versions taking turns, ``--repeat`` rounds;
medians of wall and CPU time (user + system of all the process's threads), the
load average, and the PSNR of this version's render against the base's.

Rows, each a library call in a process that has made one render already (the
web app's case; the first call of a process pays its page faults and is shown too):

* ``render_aperture``: f-number given, focus at the centre, on the saved depth
  map (what the web app runs);
* ``aperture()``: reads the all-in-focus image and the depth map (the base makes
  it again on every call; this version keeps it in the stack folder), renders;
* ``aperture() first``: this version, the kept depth map removed first (the
  first call after ``postfocus stack``: it makes the map and keeps it).

For ``render_aperture`` the child also reports how busy the two threads were:
the CPU time of the strips (``products.layers``) against the wall time from the
first strip's start to the last one's end. ``--one-thread`` adds this version's
render with its strips on one thread: on a quiet machine the wall time against
the two-thread row shows how far the threads overlap (the GIL held for a share
of the work would keep them apart).

Usage::

    git archive main src | tar x -C /tmp/base   # the version to compare with
    python bench/bench_aperture.py --base /tmp/base/src --f-number 2.8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _overlap(layers) -> list:  # noqa: ANN001 - the module measured
    """Wrap the strip worker of ``layers`` (this version's) to record (start, end, thread CPU) of each strip."""
    spans: list = []
    inner = getattr(layers, "_composite_strip", None)
    if inner is None:
        return spans

    def timed(*args, **kwargs):
        start, cpu = time.perf_counter(), time.thread_time()
        inner(*args, **kwargs)
        spans.append((start, time.perf_counter(), time.thread_time() - cpu))

    layers._composite_strip = timed
    return spans


def child(args: argparse.Namespace) -> None:
    """One measurement in this process: two calls, timings as one JSON line."""
    import importlib

    from postfocus.store import ProcessedStack

    aperture = importlib.import_module("postfocus.products.aperture")
    layers = importlib.import_module("postfocus.products.layers")
    spans = _overlap(layers)
    if args.what == "render1":
        from concurrent.futures import ThreadPoolExecutor

        layers.ThreadPoolExecutor = lambda max_workers=None: ThreadPoolExecutor(max_workers=1)
        args.what = "render"
    ps = ProcessedStack.open(args.folder)
    h, w = ps.size
    if args.what == "render":
        image, depth = np.load(args.work / "image.npy"), np.load(args.work / "depth.npy")
        focus = float(np.load(args.work / "focus.npy"))
        call = lambda: aperture.render_aperture(image, depth, focus, f_number=args.f_number,  # noqa: E731
                                                span=float(np.load(args.work / "span.npy")))
    else:
        if args.what == "first":
            for kept in Path(args.folder).glob("depth_*.npz"):
                kept.unlink()
        call = lambda: aperture.aperture(ps, focus_at_point=(w / 2, h / 2), f_number=args.f_number).image  # noqa: E731
    runs = []
    for i in range(1 if args.what == "first" else 2):
        spans.clear()
        wall, cpu, load = time.perf_counter(), _cpu(), os.getloadavg()[0]
        out = call()
        run = {"wall": time.perf_counter() - wall, "cpu": _cpu() - cpu, "load": load}
        if spans:
            run["strips_cpu"] = sum(s[2] for s in spans)
            run["strips_wall"] = max(s[1] for s in spans) - min(s[0] for s in spans)
        runs.append(run)
    if args.out:
        np.save(args.out, out)
    print(json.dumps(runs))


def _run(src: Path, what: str, args: argparse.Namespace, folder: Path, out: Path | None = None) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, __file__, "--child", what, "--folder", str(folder), "--work", str(args.work),
           "--f-number", str(args.f_number)] + (["--out", str(out)] if out else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} with {src} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, help="src folder of the version to compare with")
    ap.add_argument("--f-number", type=float, default=2.8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_aperture"))
    ap.add_argument("--one-thread", action="store_true", help="also this version's render with one thread")
    ap.add_argument("--child", choices=("render", "render1", "aperture", "first"), help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.what = args.child
        return child(args)
    if args.base is None:
        ap.error("--base is required")

    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(1, str(ROOT / "src"))
    import bench_speed
    from postfocus import process
    from postfocus.products.aperture import blur_from_f_number, focus_at, plan_layers
    from postfocus.products.depth import depth_map

    args.work.mkdir(parents=True, exist_ok=True)
    mp4, _frames = bench_speed.sweep_mp4(args.work, 30)
    ps = process(str(mp4), cache_dir=str(args.work / "cache"))
    h, w = ps.size
    image = ps.all_in_focus()
    result = depth_map(ps, image=image)
    focus = focus_at(result.depth, w / 2, h / 2, result.confidence)
    span = max(result.frames - 1, 1)
    for name, value in (("image", image), ("depth", result.depth), ("focus", focus), ("span", span)):
        np.save(args.work / f"{name}.npy", value)
    blur = blur_from_f_number(args.f_number, result.size, span)
    print(f"{w}x{h}, f/{args.f_number:g}: focus {focus:.2f} frames, {blur:.2f} px per frame, "
          f"{plan_layers(result.depth, focus, blur).count} layers", flush=True)
    this = ROOT / "src"
    rows: dict[str, list] = {}
    outs = {tag: args.work / f"render_{tag}.npy" for tag in ("base", "this")}
    for _ in range(args.repeat):
        for tag, src in (("base", args.base), ("this", this)):
            rows.setdefault(f"render_aperture, {tag}", []).append(_run(src, "render", args, ps.folder, outs[tag]))
            rows.setdefault(f"aperture(), {tag}", []).append(_run(src, "aperture", args, ps.folder))
        rows.setdefault("aperture() first after processing (makes and keeps the depth), this", []).append(
            _run(this, "first", args, ps.folder))
        if args.one_thread:
            rows.setdefault("render_aperture, this, strips on one thread", []).append(
                _run(this, "render1", args, ps.folder))
    for name, runs in rows.items():
        warm = [r[-1] for r in runs]
        line = (f"{name}: wall {statistics.median(r['wall'] for r in warm):.2f} s, "
                f"CPU {statistics.median(r['cpu'] for r in warm):.2f} s")
        if len(runs[0]) > 1:
            line += (f"; first call of its process: wall {statistics.median(r[0]['wall'] for r in runs):.2f} s, "
                     f"CPU {statistics.median(r[0]['cpu'] for r in runs):.2f} s")
        if "strips_cpu" in warm[0]:
            busy = statistics.median(r["strips_cpu"] / max(r["strips_wall"], 1e-9) for r in warm)
            line += f"; strips: {busy:.2f} cores busy"
        loads = [r[0]["load"] for r in runs]
        print(line + f" (load {min(loads):.1f}-{max(loads):.1f})")
    a, b = np.load(outs["this"]), np.load(outs["base"])
    psnr = 10 * np.log10(1.0 / max(float(np.mean((a.astype(np.float64) - b) ** 2)), 1e-12))
    print(f"PSNR of this render against the base's: {psnr:.1f} dB (120 = identical); "
          f"largest difference {float(np.abs(a - b).max()) * 255:.2f} / 255")


if __name__ == "__main__":
    main()
