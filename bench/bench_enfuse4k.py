"""Speed and memory benchmark at 4K: postfocus vs align_image_stack + enfuse, in one run (issue 5).

(The table against focus-stack on every stack shape, issue 16, is ``bench_speed.py``.)

Builds a 3840x2160 focus sweep from the real keyboard stack (41 frames, scaled
up; longer sweeps go back and forth through it), as an H.264 MP4 (what the
camera records) and as JPEG frames (what the peers read), then times:

* postfocus stack on the MP4 (streaming, --no-cache) for 10, 30, 60 frames;
* postfocus stack on the MP4 keeping the processed stack (the default), and a
  tap on that processed stack (library call, median of 20);
* align_image_stack + enfuse on the same frames as JPEG (10 and 30 frames).

Wall time and peak memory come from /usr/bin/time -v for every process.

Usage:
    python bench/bench_enfuse4k.py                  # 10/30/60 frames, peers at 10/30
    python bench/bench_enfuse4k.py --counts 30 --no-peers
    python bench/bench_enfuse4k.py --big            # also 100 frames of 24 MP (6000x4000) JPEG
    python bench/bench_enfuse4k.py --counts 30 --big --big-memory 1200   # ... and again under --memory 1200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import sweep_order  # noqa: E402
from peers import ensure_peers, run_enfuse, timed  # noqa: E402

from postfocus.io.base import natural_key  # noqa: E402
from postfocus.io.images import read_image  # noqa: E402
from postfocus.io.video_write import write_video  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def build(count: int, size: tuple[int, int], work: Path, video: bool = True) -> tuple[Path | None, list[Path]]:
    src = sorted((DATA / "keyboard").glob("*.jpg"), key=lambda p: natural_key(p.name))
    w, h = size
    frames_dir = work / f"frames_{count}_{w}"
    frames_dir.mkdir()
    paths = []
    cache: dict[int, np.ndarray] = {}
    for k, i in enumerate(sweep_order(len(src), count)):
        if i not in cache:
            cache = {i: cv2.resize(cv2.imread(str(src[i])), (w, h), interpolation=cv2.INTER_CUBIC)}
        p = frames_dir / f"frame_{k:03d}.jpg"
        cv2.imwrite(str(p), cache[i], [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(p)
    mp4 = None
    if video:
        mp4 = work / f"sweep_{count}_{w}.mp4"
        write_video((read_image(p) for p in paths), mp4, fps=30, crf=18)
    return mp4, paths


def postfocus_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "postfocus", "-q", *args]


def tap_latency(inputs: Path, cache: Path) -> float:
    """Median seconds of a library tap on a processed stack (after it is processed)."""
    from postfocus import process, tap

    ps = process(inputs, cache_dir=cache)
    h, w = ps.size
    rng = np.random.default_rng(0)
    times = []
    for _ in range(20):
        x, y = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
        t = time.perf_counter()
        tap(ps, x, y)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="*", default=[10, 30, 60])
    ap.add_argument("--peer-counts", type=int, nargs="*", default=[10, 30])
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--big", action="store_true", help="also 100 frames of 6000x4000 JPEG")
    ap.add_argument("--big-memory", type=float, nargs="*", default=[],
                    help="with --big: also run it with these --memory limits (MB)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build the test sweeps (needs ~3 GB)")
    args = ap.parse_args()
    if not args.no_peers:
        ensure_peers()
    rows = []
    load_start = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory(prefix="pf-speed-", dir=args.workdir) as tmp:
        work = Path(tmp)
        for count in args.counts:
            mp4, paths = build(count, (3840, 2160), work)
            print(f"built {count} frames", file=sys.stderr)
            out = work / f"pf_{count}.jpg"
            s, mb, code, err = timed(postfocus_cmd("stack", str(mp4), "-o", str(out), "--no-cache"))
            rows.append(("postfocus stack MP4 (streaming, --no-cache)", count, s, mb, code))
            cache = work / f"cache_{count}"
            s, mb, code, err = timed(postfocus_cmd("stack", str(mp4), "-o", str(out), "--cache", str(cache)))
            rows.append(("postfocus stack MP4 (keeps processed stack)", count, s, mb, code))
            s, mb, code, err = timed(postfocus_cmd("stack", str(mp4), "-o", str(out), "--cache", str(cache),
                                                   "--range", f"{count // 4}:{count // 2}"))
            rows.append(("postfocus range merge on processed stack", count, s, mb, code))
            rows.append(("postfocus tap on processed stack (library, median)", count, tap_latency(mp4, cache), 0.0, 0))
            if not args.no_peers and count in args.peer_counts:
                run = run_enfuse(paths, work / f"enfuse_{count}.tif", work)
                rows.append(("align_image_stack + enfuse (JPEG frames)", count, run.seconds, run.peak_mb,
                             0 if run.ok else 1))
            for p in paths:
                p.unlink()
            mp4.unlink()
        if args.big:
            _, paths = build(100, (6000, 4000), work, video=False)
            s, mb, code, err = timed(postfocus_cmd("stack", *map(str, paths), "-o", str(work / "big.jpg"),
                                                   "--no-cache"))
            rows.append(("postfocus stack 100 x 24 MP JPEG (--no-cache)", 100, s, mb, code))
            for limit in args.big_memory:
                s, mb, code, err = timed(postfocus_cmd("stack", *map(str, paths), "-o", str(work / "big.jpg"),
                                                       "--no-cache", "--memory", f"{limit:g}"))
                rows.append((f"postfocus stack 100 x 24 MP JPEG (--no-cache --memory {limit:g})", 100, s, mb, code))
    print(f"load average at the start {load_start}, at the end {os.getloadavg()[0]:.2f} (2 cores)")
    print("| run | frames | wall s | peak MB | exit |")
    print("|---|---|---|---|---|")
    for name, count, s, mb, code in rows:
        wall = f"{s * 1000:.1f} ms" if "tap" in name else f"{s:.1f}"
        print(f"| {name} | {count} | {wall} | {mb:.0f} | {code} |")
    print_ratios(rows)


def print_ratios(rows: list[tuple[str, int, float, float, int]]) -> None:
    """Speed-ups and memory ratios against align_image_stack + enfuse, and growth with frame count."""
    table = {(name, count): (s, mb) for name, count, s, mb, code in rows if code == 0}
    peer = "align_image_stack + enfuse (JPEG frames)"
    ours = ["postfocus stack MP4 (streaming, --no-cache)", "postfocus stack MP4 (keeps processed stack)"]
    for (name, count), (s, mb) in sorted(table.items(), key=lambda kv: kv[0][1]):
        if name != peer:
            continue
        for mine in ours:
            if (mine, count) in table:
                ms, mmb = table[(mine, count)]
                print(f"{count} frames, {mine}: {s / ms:.1f}x faster than {peer}, {mmb / mb:.2f}x its peak memory")
    for mine in ours:
        counts = sorted(c for n, c in table if n == mine)
        for a, b in zip(counts, counts[1:]):
            print(f"{mine}: {a} -> {b} frames: time x{table[(mine, b)][0] / table[(mine, a)][0]:.2f}, "
                  f"peak memory x{table[(mine, b)][1] / table[(mine, a)][1]:.2f}")


if __name__ == "__main__":
    main()
