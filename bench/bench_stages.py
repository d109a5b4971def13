"""Where one command's CPU goes, per postfocus function and thread: exclusive CPU, system time and page faults.

Runs a ``postfocus`` command in this process with a profile hook on every thread (``threading.setprofile``)
that reads the thread's own ``getrusage(RUSAGE_THREAD)`` at each call and return of a postfocus function
and charges the difference to the innermost postfocus function on that thread's stack (exclusive:
the postfocus functions it calls are charged to themselves; NumPy, OpenCV and the standard library
are charged to the postfocus function that called them). Prints the run's CPU (user + system, after
the command line's own import), its minor page faults, each thread's total and the top functions.

What it does not see: OpenCV's and OpenBLAS's own worker threads (their ticks are printed at the end
from ``/proc``), and the command line's import before the run (``python -X importtime``). The hook
costs about 10 % more CPU; compare versions with it on both.

    python bench/bench_stages.py -- -q stack ../shared/data/beetle -o /tmp/out.jpg --cache /tmp/cache
    python bench/bench_stages.py --top 60 -- -q stack ../shared/data/pcb -o /tmp/out.jpg --no-cache

(``PYTHONPATH`` picks the version; with ``--cache``, use a fresh folder every run.)
"""

from __future__ import annotations

import argparse
import collections
import glob
import resource
import sys
import threading

__all__: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=40, help="functions listed")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- and the postfocus command line")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    from postfocus.cli import main as cli

    cpu: collections.Counter = collections.Counter()
    system: collections.Counter = collections.Counter()
    faults: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    local = threading.local()

    def now() -> tuple[float, float, int]:
        r = resource.getrusage(resource.RUSAGE_THREAD)
        return r.ru_utime + r.ru_stime, r.ru_stime, r.ru_minflt

    def charge(key: tuple[str, tuple[str, str]], at: tuple, since: tuple) -> None:
        cpu[key] += at[0] - since[0]
        system[key] += at[1] - since[1]
        faults[key] += at[2] - since[2]

    def hook(frame, event, arg):  # noqa: ANN001
        if event not in ("call", "return") or "/postfocus/" not in frame.f_code.co_filename:
            return
        stack = getattr(local, "stack", None)
        if stack is None:
            stack = local.stack = []
            local.name = threading.current_thread().name.rsplit("_", 1)[0]
        at = now()
        if event == "call":
            if stack:
                charge((local.name, stack[-1][0]), at, stack[-1][1])
            key = (frame.f_code.co_filename.split("/postfocus/")[-1], frame.f_code.co_qualname)
            stack.append((key, at))
            calls[key] += 1
        elif stack:
            key, since = stack.pop()
            charge((local.name, key), at, since)
            if stack:
                stack[-1] = (stack[-1][0], at)

    before = resource.getrusage(resource.RUSAGE_SELF)
    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        cli(command, standalone_mode=False)
    except SystemExit:
        pass
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    after = resource.getrusage(resource.RUSAGE_SELF)
    run = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"run CPU {run:.3f} s (system {after.ru_stime - before.ru_stime:.3f} s), "
          f"{after.ru_minflt - before.ru_minflt} minor page faults")
    threads: collections.Counter = collections.Counter()
    for (thread, _), value in cpu.items():
        threads[thread] += value
    print("per thread: " + ", ".join(f"{name} {value:.3f}" for name, value in threads.most_common()))
    print(f"{'CPU s':>7} {'system':>7} {'faults':>7} {'calls':>6}  thread / function")
    for (thread, key), value in cpu.most_common(args.top):
        print(f"{value:7.3f} {system[(thread, key)]:7.3f} {faults[(thread, key)]:7d} {calls[key]:6d}  "
              f"{thread:18s} {key[0]}:{key[1]}")
    named = {t.native_id: t.name for t in threading.enumerate()}
    for path in sorted(glob.glob("/proc/self/task/*/stat")):
        tid = int(path.split("/")[4])
        if tid not in named:
            with open(path) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            print(f"native thread {tid}: {(int(fields[11]) + int(fields[12])) / 100:.2f} s (its whole life)")


if __name__ == "__main__":
    main()
