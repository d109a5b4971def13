"""The web app's first plain tap on a finished job: its latency, and the work made ahead for it.

A DONE job is made in a scratch data folder over a copy of a processed stack folder (``--stack``, e.g. the 4K
sweep's), with the depth map a job keeps (``stack_depth``, as ``web/jobs.py`` makes it). Then, in a fresh
process each round (``--repeat``), the server's side of a job that has just finished: ``Results`` opens the job,
makes the plain tap's depth ahead when the code has it (``Results.tap_ahead``, tap14 on; waited for, timed
apart), then the first tap on a plain spot (``Results.tap``, what ``POST /api/jobs/{id}/tap`` calls), timed in
CPU (all threads of the process) and wall. Two cases: the depth map kept (every job keeps one), and none kept
(the file deleted, or a folder that cannot be written: the tap's depth is made on the focus map's grid).

Usage::

    PYTHONPATH=src python bench/bench_first_tap.py --stack FOLDER [--repeat 5] [--src OTHER/src]

``--src`` runs the rounds with another checkout's ``src`` (the before); the scratch job is made once, with this
one's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from postfocus.web.ops import Results
from postfocus.web.store import Store
data, job_id, x, y = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
job = Store(data).job(job_id)
results = Results()
ahead = 0.0
if hasattr(results, "tap_ahead"):  # what the app does when the job's worker ends (tap14 on)
    c = time.process_time()
    results.tap_ahead(job)
    results.ahead.idle()
    ahead = time.process_time() - c
c, w = time.process_time(), time.perf_counter()
answer = results.tap(job, x, y)
print(json.dumps({"cpu": time.process_time() - c, "wall": time.perf_counter() - w, "ahead": ahead,
                  "frame": answer["frame"], "position": answer["position"], "from": answer["filled_from"]}))
"""


def plain_point(folder: Path) -> tuple[float, float]:
    """A point whose tap window is plain (answered from the fill)."""
    import numpy as np

    from postfocus.products.refocus import is_plain
    from postfocus.store import ProcessedStack

    ps = ProcessedStack.open(folder)
    h, w = ps.size
    for y in np.linspace(20, h - 20, 24):
        for x in np.linspace(20, w - 20, 40):
            if is_plain(ps, float(round(x)), float(round(y))):
                return float(round(x)), float(round(y))
    sys.exit("no plain window on this stack")


def make_job(stack: Path, data: Path) -> str:
    from postfocus.products.depth_cache import stack_depth
    from postfocus.store import ProcessedStack
    from postfocus.web.store import Store

    job = Store(data).create()
    shutil.copytree(stack, job.stack_dir, ignore=shutil.ignore_patterns("tap_depth_*.npz", "depth_*.npz"))
    # The manifest written again after the copy, as a folder's last file is: the copied files' status times are
    # then older than it, as in a job's own folder (else every open reads each file's CRC-32 again).
    manifest = job.stack_dir / "manifest.json"
    record = json.loads(manifest.read_text())
    if "written_ns" in record:
        record["written_ns"] = time.time_ns()
    (job.stack_dir / "manifest.json.new").write_text(json.dumps(record))
    os.replace(job.stack_dir / "manifest.json.new", manifest)
    ps = ProcessedStack.open(job.stack_dir)
    stack_depth(ps)  # kept in the stack folder, as a job does
    record = job.read()
    record.update(state="done", result={"width": ps.size[1], "height": ps.size[0]})
    job.write(record)
    return job.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--src", type=Path, default=None, help="another checkout's src for the rounds")
    args = parser.parse_args()
    x, y = plain_point(args.stack)
    env = dict(os.environ, PYTHONPATH=str((args.src or Path(__file__).resolve().parents[1] / "src").resolve()))
    with tempfile.TemporaryDirectory(prefix="first-tap-") as tmp:
        job_id = make_job(args.stack, Path(tmp))
        folder = Path(tmp) / "jobs" / job_id / "stack"
        kept = sorted(folder.glob("depth_*.npz"))
        print(f"stack {args.stack} point {x:g},{y:g}; src {env['PYTHONPATH']}; load {os.getloadavg()[0]:.1f}")
        for case in ("depth map kept", "no depth map kept"):
            rounds = []
            for _ in range(args.repeat):
                for stale in folder.glob("tap_depth_*.npz"):
                    stale.unlink()
                if case.startswith("no"):
                    for path in kept:
                        path.unlink(missing_ok=True)
                out = subprocess.run([sys.executable, "-c", CHILD, tmp, job_id, str(x), str(y)], env=env,
                                     capture_output=True, text=True, check=True)
                rounds.append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {k: statistics.median(r[k] for r in rounds) * 1000 for k in ("cpu", "wall", "ahead")}
            print(f"  {case}: first plain tap {med['cpu']:.1f} ms CPU / {med['wall']:.1f} ms wall, made ahead "
                  f"{med['ahead']:.0f} ms CPU (medians of {args.repeat}); answer frame {rounds[0]['frame']} "
                  f"position {rounds[0]['position']} from the {rounds[0]['from']}")
        print(f"  load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
