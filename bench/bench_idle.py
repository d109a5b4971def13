"""Where one of two cores would idle in a whole command: a load-independent estimate from per-thread CPU (issue 16).

``bench_timeline.py`` shows which threads work when, in 10 ms ticks and the machine's wall time, which on a
loaded machine says more about the load than about the run. This samples every thread's CPU in nanoseconds
(``/proc/self/task/*/schedstat``, OpenCV's own pool threads included) and what each Python thread is in, every
``--step`` ms, and estimates the run's wall on two otherwise idle cores from the work alone: each step's work
``W`` (CPU over all threads) takes at least ``W / 2`` and at least the busiest thread's CPU ``c`` (one thread
uses one core), so the step costs ``max(W / 2, c)``. Where ``c > W / 2`` one core idles for ``2 c - W``; that
idle time is charged to what the busiest thread was doing. Under load every runnable thread gets a share of the
cores, so the shares, not the wall, carry over (roughly: a thread that wakes briefly may be served first).

    python bench/bench_idle.py "-q stack ../shared/data/beetle -o /tmp/o.jpg --cache /tmp/fresh"
    python bench/bench_idle.py --src /tmp/base/src "-q stack ..."     # another version's code

The command runs in this process, cold: the sampler starts before ``postfocus`` is imported (numpy and cv2 too),
so start-up is in; the interpreter's own start (``python -c pass``, about 0.1 s) is not. The sampler costs
about 0.1-0.3 ms a step of one core (it holds the GIL while it reads the Python stacks).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

__all__: list[str] = []


def _label(frame, depth: int) -> str:
    """The innermost postfocus function of a thread's stack (``depth`` > 1: that many postfocus levels, outer
    last), else the innermost function (e.g. an import)."""
    names, f = [], frame
    while f is not None and len(names) < depth:
        path = f.f_code.co_filename
        if "postfocus" in path and "bench_idle" not in path:
            names.append(f"{os.path.basename(path)[:-3]}.{f.f_code.co_name}")
        f = f.f_back
    if names:
        return "<".join(names)
    if frame is None:
        return "?"
    f = frame
    while f is not None:  # an import in progress: the module being imported
        if f.f_code.co_name == "<module>":
            return f"import {os.path.basename(f.f_code.co_filename)}"
        f = f.f_back
    return frame.f_code.co_name


def _cpu_ns(tid: int) -> int | None:
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as fh:
            return int(fh.read().split()[0])
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", help="the postfocus command line, in one argument")
    parser.add_argument("--step", type=float, default=10.0, help="milliseconds between samples")
    parser.add_argument("--src", help="import postfocus from this src folder")
    parser.add_argument("--depth", type=int, default=1, help="postfocus levels in a label")
    parser.add_argument("--top", type=int, default=25, help="labels listed")
    parser.add_argument("--bins", type=float, default=50.0, help="ms of estimated wall a timeline line")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    rows: list[tuple[float, dict[int, int], dict[int, str]]] = []
    names: dict[int, str] = {}
    done = threading.Event()

    def sample() -> None:
        me = threading.get_ident()  # (the sampler's own CPU is left out)
        while True:
            frames = sys._current_frames()
            by_native = {t.native_id: t for t in threading.enumerate()}
            cpu, labels = {}, {}
            for tid in (int(t) for t in os.listdir("/proc/self/task")):
                thread = by_native.get(tid)
                if thread is not None and thread.ident == me:
                    continue
                ns = _cpu_ns(tid)
                if ns is None:
                    continue
                cpu[tid] = ns
                if thread is not None:
                    names[tid] = thread.name.replace("postfocus-", "")
                    labels[tid] = _label(frames.get(thread.ident), args.depth)
                else:
                    names.setdefault(tid, "opencv-pool")
            rows.append((time.perf_counter(), cpu, labels))
            if done.wait(args.step / 1000):
                break

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from postfocus.cli import main as cli  # (timed: the sampler runs)

    try:
        cli(args.command.split(), standalone_mode=False)
    finally:
        done.set()
        sampler.join()
    estimate = idle = work = 0.0
    charged: dict[str, list[float]] = {}  # label: [idle-core s, estimated s while the busiest]
    timeline: list[list] = []
    last_label: dict[int, str] = {}
    for (t0, before, _), (t1, after, labels) in zip(rows, rows[1:]):
        used = {tid: (after[tid] - before.get(tid, 0)) / 1e9 for tid in after}
        last_label.update(labels)
        w = sum(used.values())
        if w <= 0:
            continue
        busiest = max(used, key=used.get)
        c = used[busiest]
        step = max(w / 2, c)
        estimate, work, idle = estimate + step, work + w, idle + (2 * step - w)
        label = f"{names.get(busiest, '?')}:{last_label.get(busiest, 'native')}"
        entry = charged.setdefault(label, [0.0, 0.0])
        entry[0] += 2 * step - w
        entry[1] += step
        if not timeline or timeline[-1][0] + args.bins / 1000 <= estimate:
            timeline.append([estimate, 0.0, 0.0, {}])
        line = timeline[-1]
        line[1] += step
        line[2] += w
        for tid, u in used.items():
            if u > 0:
                key = f"{names.get(tid, '?')}:{last_label.get(tid, 'native')}"
                line[3][key] = line[3].get(key, 0.0) + u
    print(f"samples {len(rows)}, measured wall {rows[-1][0] - rows[0][0]:.2f} s, CPU {work:.3f} s")
    print(f"estimated wall on two idle cores {estimate:.3f} s; one core idle {idle:.3f} s "
          f"({100 * idle / max(2 * estimate, 1e-9):.0f} % of 2 x wall)")
    print("\nestimated timeline (s at the line's end, its estimated s, its CPU s, the threads' CPU ms):")
    for end, step, w, who in timeline:
        parts = "  ".join(f"{k}:{1000 * v:.0f}" for k, v in sorted(who.items(), key=lambda kv: -kv[1])[:5])
        print(f"{end:6.3f} {step:5.3f} {w:5.3f} {'*' if w < 1.5 * step else ' '} {parts}")
    print("\nidle core charged to what the busiest thread did (idle s, estimated s as the busiest):")
    for label, (i, s) in sorted(charged.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"  {i:6.3f} {s:6.3f}  {label}")


if __name__ == "__main__":
    main()
