"""Throughput of ``postfocus batch`` (stacks per minute) with 1 and 2 local workers.

Generates N stacks (default 12 stacks of 10 frames, 1024x768 JPEG: the
astronaut test image with its halves blurred in opposite directions), then for
each worker count starts a LocalCluster and merges all stacks into a fresh
output folder. Reported per row: cluster start-up, batch wall time (from
submitting the first stack to recording the last), stacks per minute over the
batch time, and speed-up over one worker. A plain in-process loop over
``postfocus.pipeline.stack`` is the baseline.

Usage::

    python bench/bench_batch.py                      # 12 stacks, 10 frames, 1024x768, workers 1 and 2
    python bench/bench_batch.py --stacks 24 --workers 1,2,4 --keep /tmp/bench-stacks
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def make_stack(folder: Path, frames: int, width: int, height: int, shift: int) -> None:
    from skimage import data

    base = cv2.resize(np.roll(data.astronaut(), shift, axis=1), (width, height), interpolation=cv2.INTER_LINEAR)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        t = i / (frames - 1)
        left = cv2.GaussianBlur(base, (0, 0), 0.3 + 3 * t)
        right = cv2.GaussianBlur(base, (0, 0), 0.3 + 3 * (1 - t))
        frame = base.copy()
        frame[:, : width // 2] = left[:, : width // 2]
        frame[:, width // 2 :] = right[:, width // 2 :]
        Image.fromarray(frame).save(folder / f"frame{i:02d}.jpg", quality=92)


@contextmanager
def _dask_default_malloc(enabled: bool):
    """Run with Dask's own worker malloc setting instead of postfocus's (for comparison)."""
    import postfocus.batch as batch

    saved = dict(batch.LOCAL_WORKER_CONFIG)
    if enabled:
        batch.LOCAL_WORKER_CONFIG.clear()
    try:
        yield
    finally:
        batch.LOCAL_WORKER_CONFIG.clear()
        batch.LOCAL_WORKER_CONFIG.update(saved)


def _cpu_seconds() -> float:
    """User + system CPU time of the calling process (run in each worker too)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", type=int, default=12)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of each frame")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--keep", type=Path, default=None, help="generate stacks here and keep them (reused if present)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the in-process loop")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every configuration this many times and report the fastest (for a busy machine)")
    ap.add_argument("--compare-dask-malloc", action="store_true",
                    help="also run the largest worker count with Dask's default MALLOC_TRIM_THRESHOLD_=65536")
    args = ap.parse_args()

    from postfocus.batch import find_stacks, open_client, run_batch
    from postfocus.pipeline.run import stack

    width, height = (int(v) for v in args.size.lower().split("x"))
    root = args.keep or Path(tempfile.mkdtemp(prefix="postfocus-bench-"))
    stacks = root / "stacks"
    t = time.perf_counter()
    for k in range(args.stacks):
        folder = stacks / f"specimen{k:03d}"
        if not (folder / f"frame{args.frames - 1:02d}.jpg").exists():
            make_stack(folder, args.frames, width, height, shift=17 * k)
    print(f"{args.stacks} stacks of {args.frames} frames {width}x{height} in {stacks} "
          f"(prepared in {time.perf_counter() - t:.1f} s)")
    print(f"machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
          f"load average before: {os.getloadavg()[0]:.2f}")

    # Configurations take turns (loop, 1 worker, 2 workers, loop, ...) so that
    # other load on the machine hits them alike; the fastest run of each counts.
    counts = [int(v) for v in args.workers.split(",")]
    configs: list[tuple[int, bool]] = [] if args.no_baseline else [(0, False)]
    configs += [(n, False) for n in counts] + ([(max(counts), True)] if args.compare_dask_malloc else [])
    best: dict[tuple[int, bool], tuple[float, float, float]] = {}
    for _ in range(args.repeat):
        for n, dask_malloc in configs:
            out = root / (f"out-{n}{'-dask-malloc' if dask_malloc else ''}" if n else "out-loop")
            shutil.rmtree(out, ignore_errors=True)
            if n == 0:
                out.mkdir()
                t, cpu0 = time.perf_counter(), _cpu_seconds()
                for folder in sorted(stacks.iterdir()):
                    stack(folder).save(out / f"{folder.name}.jpg")
                start, seconds, cpu = 0.0, time.perf_counter() - t, _cpu_seconds() - cpu0
            else:
                jobs = find_stacks([stacks], out)
                t = time.perf_counter()
                with _dask_default_malloc(dask_malloc), open_client(workers=n) as client:
                    start = time.perf_counter() - t
                    cpu0 = client.run(_cpu_seconds)
                    summary = run_batch(jobs, out, client=client)
                    cpu = sum(client.run(_cpu_seconds).values()) - sum(cpu0.values())
                assert summary.ok == args.stacks, summary.line()
                seconds = summary.seconds
            if seconds < best.get((n, dask_malloc), (0.0, float("inf"), 0.0))[1]:
                best[(n, dask_malloc)] = (start, seconds, cpu)
    rows = []
    for (n, dask_malloc), (start, seconds, cpu) in best.items():
        if n == 0:
            name, start_text = "in-process loop", "-"
        else:
            name = f"batch, {n} worker{'s' if n > 1 else ''}" + (", Dask's MALLOC_TRIM_THRESHOLD_" if dask_malloc else "")
            start_text = f"{start:.1f}"
        rows.append((name, start_text, seconds, 60 * args.stacks / seconds, cpu / args.stacks))
    base = next((r[3] for r in rows if r[0].startswith("batch, 1 ")), rows[0][3])
    print()
    if args.repeat > 1:
        print(f"fastest of {args.repeat} runs per row")
    print("| run | cluster start (s) | batch time (s) | stacks/min | speed-up vs 1 worker | CPU s per stack |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, start, seconds, rate, cpu in rows:
        print(f"| {name} | {start} | {seconds:.1f} | {rate:.1f} | {rate / base:.2f}x | {cpu:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
