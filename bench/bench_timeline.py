"""Which threads work when: a per-thread CPU timeline of one ``process()`` or ``stack()`` run (issue 16).

Every ``--step`` milliseconds a sampler reads each thread's CPU ticks (``/proc/self/task/*/stat``, Linux,
10 ms ticks) and the innermost postfocus function it is in, and prints one line per step: the process's
resident memory, the ticks of the step over all threads, and per thread ``name:ticks:function``
(``native...`` are OpenCV's own worker threads). By default the run is done twice in one process and the
second is shown (imports and first-call costs left out); ``--cold`` shows the first.

    python bench/bench_timeline.py process ../shared/data/pcb
    python bench/bench_timeline.py stack ../shared/data/ring --step 20
    python bench/bench_timeline.py cli "-q stack ../shared/data/beetle -o /tmp/o.jpg --cache /tmp/fresh"

``cli`` runs one whole command line in-process, cold, the sampler started before the command line's
import (so the start-up, the stack folder and the output file are in the timeline; the interpreter's own
start, about 0.1 s, is not).

A step with about twice the ticks of its length / 10 ms had both cores busy; one thread alone with ticks
in every step is a serial stretch. Wall times mean little on a loaded machine (the ticks show it); the
``ready`` column does not depend on the load: the threads runnable at the sample (Linux state R, running
or waiting for a core; a thread waiting for the GIL, a lock or I/O is not), summed up at the end as the
share of samples with none, one, or two or more runnable threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

__all__: list[str] = []


def _label(frame) -> str:
    """The innermost postfocus function of a thread's stack (or the innermost function at all)."""
    f = frame
    while f is not None:
        if "postfocus" in f.f_code.co_filename:
            return f"{os.path.basename(f.f_code.co_filename)[:-3]}.{f.f_code.co_name}"
        f = f.f_back
    return frame.f_code.co_name if frame is not None else "?"


def _ticks(tid: int) -> tuple[int, bool] | None:
    """A thread's CPU ticks so far and whether it is runnable now (state R: running or waiting for a core)."""
    try:
        with open(f"/proc/self/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12]), fields[0] == "R"  # utime + stime
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("call", choices=("process", "stack", "cli"))
    parser.add_argument("inputs", help="the stack (or, with cli, the whole command line in one argument)")
    parser.add_argument("--step", type=float, default=40.0, help="milliseconds between samples")
    parser.add_argument("--cold", action="store_true", help="show the first run (with imports)")
    args = parser.parse_args()
    if args.call == "cli":
        args.cold = True
    else:
        from postfocus.pipeline.run import process, stack

    def once() -> None:
        if args.call == "cli":
            from postfocus.cli import main as cli

            cli(args.inputs.split(), standalone_mode=False)
        elif args.call == "process":
            with tempfile.TemporaryDirectory() as folder:
                process(args.inputs, cache_dir=folder).all_in_focus()
        else:
            stack(args.inputs)

    if not args.cold:
        once()
    rows, done = [], threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        last: dict[int, int] = {}
        me = threading.get_ident()
        while not done.wait(args.step / 1000):
            frames = sys._current_frames()
            named = {t.native_id: t for t in threading.enumerate()}
            row, ready = [], 0
            for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):
                thread = named.get(tid)
                read = _ticks(tid)
                if read is None or (thread is not None and thread.ident == me):
                    continue
                ticks, runnable = read
                ready += runnable and thread is not None  # (OpenCV's pool threads spin while they wait: not counted)
                used, last[tid] = ticks - last.get(tid, ticks if tid in last else 0), ticks
                name = thread.name.replace("postfocus-", "") if thread else f"native{tid}"
                row.append((name, used, _label(frames.get(thread.ident)) if thread else ""))
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            rows.append((time.perf_counter() - start, rss, row, ready))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    once()
    done.set()
    sampler.join()
    totals: dict[str, int] = {}
    for at, rss, row, ready in rows:
        parts = []
        for name, used, label in row:
            totals[name] = totals.get(name, 0) + used
            if used or (label and not label.endswith("_worker")):
                parts.append(f"{name}:{used}:{label}")
        print(f"{at:6.2f} s  {rss:5.0f} MB  ticks {sum(u for _, u, _ in row):3d}  ready {ready}  " + "  ".join(parts))
    print(f"wall {time.perf_counter() - start:.2f} s; ticks (10 ms) per thread: {totals}")
    # Runnable threads (state R) at each sample: what the run asks of the cores, whatever else the machine runs.
    # Samples with one runnable thread are stretches where a second core would sit idle on a quiet machine.
    counts = [min(ready, 2) for *_, ready in rows]
    shares = [100 * counts.count(k) / max(1, len(counts)) for k in (0, 1, 2)]
    print(f"runnable threads over {len(counts)} samples: none {shares[0]:.0f} %, one {shares[1]:.0f} %, "
          f"two or more {shares[2]:.0f} %")


if __name__ == "__main__":
    main()
