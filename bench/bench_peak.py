"""Where a run's peak memory is: the resident size sampled beside every thread's postfocus stack (issue 16).

Runs one ``postfocus`` command line in-process (``runpy``, as ``python -m postfocus`` would) while a
thread reads ``/proc/self/statm`` every ``--step`` milliseconds beside ``sys._current_frames()`` and
glibc's ``mallinfo2()``. It prints:

* the resident peak, when it happened, glibc's heap then (bytes in use, bytes freed but kept in the
  heap: resident while they were touched) and each thread's postfocus stack at that sample;
* the highest resident size seen under each distinct place (the innermost postfocus function of every
  busy thread), highest first: the run's other near-peaks and where they are;
* with ``--every N``, every N-th sample as a timeline;
* with ``--traced``, what is alive near the peak: a ``tracemalloc`` snapshot (NumPy's and Python's
  allocations, not OpenCV's own) taken each time the traced size passes the last snapshot's by
  ``--snap-mb`` (with ``--at TEXT`` only while a busy thread's innermost postfocus function contains
  TEXT, e.g. ``to_uint``: what is alive at that place's highest), grouped by the innermost postfocus
  line that allocated it. The traced size, not the resident one, decides: tracemalloc's own records
  grow the resident size all run long, so a snapshot by it was taken at the end, with nothing alive
  (mem9's empty tables). Tracing slows the run several times and moves the peak: find the place
  without it, then look at what is alive with it.

Usage::

    python bench/bench_peak.py --stack ../shared/data/ring                 # stack DIR -o out.jpg, fresh --cache
    python bench/bench_peak.py --stack ../shared/data/pcb --every 10
    python bench/bench_peak.py --stack ../shared/data/ring --traced --at to_uint
    python bench/bench_peak.py --cli "depth ../shared/data/pcb_depthmap -o /tmp/d.png"

With ``--stack`` the output goes to a temporary folder (``--out`` names the file, e.g. ``out.tif``) and
the processed stack is kept in a fresh ``--cache`` folder there, as the default command keeps it. The
one malloc arena the CLI asks for is set here before the sampler's thread starts (else that thread gets
an arena of its own, which the CLI's threads then share: 30-50 MB more). In-process peaks still run
10-30 MB above ``/usr/bin/time -v``'s and move from run to run (the threads' overlap sets how many
frames are in flight): this finds the place; ``bench_speed.py`` gives the numbers.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc

__all__: list[str] = []

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_mb() -> float:
    """The process's resident size now, in MB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 1e6


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_mb() -> tuple[float, float]:
    """glibc's heap now: MB in use (heap and mmapped chunks) and MB free but kept in the heap (0, 0 elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return 0.0, 0.0
    return (info.uordblks + info.hblkhd) / 1e6, info.fordblks / 1e6


def _postfocus_stack(frame) -> list[str]:
    """A thread's postfocus frames, outermost first (``module.function:line``)."""
    out = []
    f = frame
    while f is not None:
        name = f.f_code.co_filename
        if "postfocus" in name and "bench_peak" not in name:
            out.append(f"{os.path.basename(name)[:-3]}.{f.f_code.co_name}:{f.f_lineno}")
        f = f.f_back
    return out[::-1]


def _innermost(frame) -> str | None:
    """A thread's innermost postfocus function, or None when it is in none (idle, or not postfocus's)."""
    stack = _postfocus_stack(frame)
    return stack[-1].rsplit(":", 1)[0] if stack else None


class _Sampler(threading.Thread):
    """Samples the resident size and every thread's postfocus stack until stopped."""

    def __init__(self, step: float, traced: bool, snap_mb: float, at: str | None, every: int) -> None:
        super().__init__(daemon=True, name="bench_peak")
        self.step, self.traced, self.snap_mb, self.at, self.every = step, traced, snap_mb, at, every
        self.lines: list[str] = []
        self.stop = threading.Event()
        self.start_time = time.perf_counter()
        self.peak = (0.0, 0.0, {}, (0.0, 0.0))  # MB, seconds, {thread name: stack}, malloc (in use, free kept)
        self.places: dict[tuple[str, ...], tuple[float, float]] = {}  # place -> (MB, seconds)
        self.snapshot = None
        self.snapshot_at = (0.0, 0.0, 0.0)  # traced MB, seconds, resident MB

    def run(self) -> None:
        me = threading.get_ident()
        count = 0
        while not self.stop.wait(self.step):
            count += 1
            mb, now = _rss_mb(), time.perf_counter() - self.start_time
            names = {t.ident: t.name for t in threading.enumerate()}
            frames = {tid: f for tid, f in sys._current_frames().items() if tid != me}
            place = tuple(sorted(filter(None, (_innermost(f) for f in frames.values())))) or ("(no postfocus)",)
            if self.every and count % self.every == 0:
                used, kept = _malloc_mb()
                self.lines.append(f"  {now:6.2f} s {mb:6.0f} MB  malloc {used:5.0f} in use {kept:5.0f} kept  {' | '.join(place)}")
            if mb > self.places.get(place, (0.0, 0.0))[0]:
                self.places[place] = (mb, now)
            if mb > self.peak[0]:
                stacks = {names.get(tid, str(tid)): _postfocus_stack(f) for tid, f in frames.items()}
                self.peak = (mb, now, {k: v for k, v in stacks.items() if v}, _malloc_mb())
            here = self.at is None or any(self.at in p for p in place)
            if self.traced and here and tracemalloc.get_traced_memory()[0] / 1e6 >= self.snapshot_at[0] + self.snap_mb:
                self.snapshot = None  # (the last one's records go before the next is taken)
                self.snapshot = tracemalloc.take_snapshot()
                self.snapshot_at = (tracemalloc.get_traced_memory()[0] / 1e6, now, _rss_mb())


def _alive(snapshot, top: int, depth: int = 1) -> list[tuple[float, int, str]]:
    """The snapshot's memory grouped by the innermost postfocus line that allocated it (``depth``: the innermost
    ``depth`` postfocus lines, innermost last): (MB, blocks, lines).

    Grouped from ``statistics("traceback")`` (one row per distinct traceback): walking every trace's own
    ``Trace`` object took minutes on pcb (hundreds of thousands of blocks), which is how mem9 saw the
    heading with no rows (the run was stopped before they came)."""
    groups: dict[str, list[float]] = {}
    for stat in snapshot.statistics("traceback"):
        lines = [f"{os.path.relpath(f.filename, os.path.dirname(f.filename.split('postfocus')[0]))}:{f.lineno}"
                 for f in stat.traceback if "postfocus" in f.filename and "bench_peak" not in f.filename]
        where = " > ".join(lines[-depth:]) or "(outside postfocus)"
        g = groups.setdefault(where, [0.0, 0])
        g[0] += stat.size / 1e6
        g[1] += stat.count
    rows = sorted(((mb, n, where) for where, (mb, n) in groups.items()), reverse=True)
    return rows[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--stack", help="a folder of frames: runs `stack DIR -o OUT --cache FRESH`")
    what.add_argument("--cli", help="a whole postfocus command line (without `postfocus`), in one argument")
    parser.add_argument("--out", default="out.jpg", help="with --stack: the output file's name (its suffix: format)")
    parser.add_argument("--step", type=float, default=4.0, help="milliseconds between samples")
    parser.add_argument("--traced", action="store_true", help="also show what tracemalloc sees alive near the peak")
    parser.add_argument("--snap-mb", type=float, default=4.0, help="with --traced: MB between snapshots")
    parser.add_argument("--at", help="with --traced: snapshot only where a busy thread's innermost postfocus"
                        " function contains this text (e.g. to_uint): what is alive at that place's highest")
    parser.add_argument("--depth", type=int, default=1, help="with --traced: group by the innermost N postfocus lines")
    parser.add_argument("--nframes", type=int, default=30, help="with --traced: frames kept per allocation")
    parser.add_argument("--every", type=int, default=0, help="also print every N-th sample (a timeline)")
    parser.add_argument("--top", type=int, default=12, help="rows of each table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_peak_") as work:
        if args.stack:
            argv = ["-q", "stack", args.stack, "-o", os.path.join(work, args.out), "--cache", os.path.join(work, "c")]
        else:
            argv = args.cli.split()
        if "MALLOC_ARENA_MAX" not in os.environ:  # as the CLI does, but before the sampler's thread allocates:
            ctypes.CDLL("libc.so.6").mallopt(ctypes.c_int(-8), ctypes.c_int(1))  # else it gets an arena others share
        if args.traced:
            tracemalloc.start(args.nframes)
        sampler = _Sampler(args.step / 1000.0, args.traced, args.snap_mb, args.at, args.every)
        sampler.start()
        sys.argv = ["postfocus", *argv]
        t0 = time.perf_counter()
        try:
            runpy.run_module("postfocus", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            if exc.code not in (0, None):
                print(f"bench_peak: the command exited with {exc.code}", file=sys.stderr)
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()

    hwm = next(int(line.split()[1]) / 1e3 for line in open("/proc/self/status") if line.startswith("VmHWM"))
    mb, at, stacks, (used, kept) = sampler.peak
    print(f"command: postfocus {' '.join(argv)}")
    print(f"resident peak {mb:.0f} MB at {at:.2f} s of {wall:.2f} s (sampled every {args.step:g} ms,"
          f" load {os.getloadavg()[0]:.1f}); malloc then: {used:.0f} MB in use, {kept:.0f} MB free but kept")
    print(f"(the kernel's high-water mark, VmHWM: {hwm:.0f} MB)")
    for name, stack in stacks.items():
        print(f"  {name}: {' > '.join(stack)}")
    if sampler.lines:
        print("\ntimeline (seconds, resident MB, malloc's heap, the busy threads' innermost postfocus functions):")
        print("\n".join(sampler.lines))
    print(f"\nhighest resident size under each place (the busy threads' innermost postfocus functions):")
    for place, (pmb, pat) in sorted(sampler.places.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"  {pmb:7.0f} MB at {pat:6.2f} s  {' | '.join(place)}")
    if args.traced and sampler.snapshot is not None:
        _, sat, smb = sampler.snapshot_at
        rows = _alive(sampler.snapshot, args.top, args.depth)
        total = sum(t.size for t in sampler.snapshot.statistics("filename")) / 1e6
        print(f"\ntraced alive at {sat:.2f} s (resident {smb:.0f} MB; the traced peak): {total:.0f} MB,"
              " by the line that allocated it:")
        for amb, n, where in rows:
            print(f"  {amb:7.1f} MB in {n:6d} blocks  {where}")


if __name__ == "__main__":
    main()
