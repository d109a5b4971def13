"""The alignment's work per neighbour pair of a real stack, one thread: what a small stack's align threads spend.

Runs ``postfocus stack`` once in-process (``--no-cache``) to capture the working-size grey frames the aligner
receives, then times, with ``time.thread_time`` and one OpenCV thread, medians of ``--passes``:

* ``match_pair`` of every neighbour pair (phase correlation, correlation match, tile refinement);
* ``SweepAligner._gain`` of every pair (the exposure comparison), from the frames' exposure copies;
* ``SweepAligner.exposure_frame`` of every frame (made from the frame shrunk to the working size, in linear light).

The heap is set as the command sets it (``one_malloc_arena``, ``small_frame_heap``): without it every
frame-sized array faults its pages in afresh, which the command does not pay. Compare versions by running it
with ``PYTHONPATH`` at each one's ``src``, taking turns (same bits is checked separately).

    python bench/bench_pair_costs.py ../shared/data/beetle
    PYTHONPATH=/tmp/base/src python bench/bench_pair_costs.py ../shared/data/beetle --passes 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

__all__: list[str] = []


def capture(stack: str) -> list[np.ndarray]:
    """The working-size grey frames ``SweepAligner.add`` receives in a run of the command, in frame order."""
    from postfocus.align import sweep
    from postfocus.cli import main as cli

    frames: dict[int, np.ndarray] = {}
    add = sweep.SweepAligner.add

    def keep(self, index, grey, colour, exposure=None):  # noqa: ANN001
        frames[index] = np.array(grey, np.float32)
        return add(self, index, grey, colour, exposure)

    sweep.SweepAligner.add = keep
    try:
        with tempfile.TemporaryDirectory() as folder:
            try:
                cli(["-q", "stack", stack, "-o", str(Path(folder) / "out.jpg"), "--no-cache"])
            except SystemExit:
                pass
    finally:
        sweep.SweepAligner.add = add
    return [frames[i] for i in sorted(frames)]


def one_thread_greys(stack: str) -> list[np.ndarray]:
    """:func:`capture`'s frames, with the command's heap set-up for their size and OpenCV on one thread (as timed)."""
    from postfocus.cli.heap import one_malloc_arena, small_frame_heap

    greys = capture(stack)
    one_malloc_arena()
    small_frame_heap(greys[0].shape)
    cv2.setNumThreads(1)
    return greys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="a folder of JPEG frames")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    from postfocus.align.pair import match_pair, prepare_frame
    from postfocus.align.sweep import SweepAligner
    from postfocus.pipeline.analyse import _LINEAR_OF_BYTE

    greys = one_thread_greys(args.stack)
    h, w = greys[0].shape
    files = sorted(p for p in Path(args.stack).iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    linear = [cv2.LUT(cv2.resize(cv2.imread(str(p))[..., ::-1], (w, h), interpolation=cv2.INTER_AREA), _LINEAR_OF_BYTE)
              for p in files]
    pyramids = [prepare_frame(g) for g in greys]
    clock = time.thread_time
    spent: dict[str, list[float]] = {"match_pair": [], "_gain": [], "exposure_frame (a frame)": []}
    for _ in range(args.passes):
        start = clock()
        copies = [SweepAligner.exposure_frame(x) for x in linear]
        spent["exposure_frame (a frame)"].append((clock() - start) / len(copies))
        start = clock()
        matches = [match_pair(a, b) for a, b in zip(pyramids[:-1], pyramids[1:])]
        spent["match_pair"].append((clock() - start) / len(matches))
        start = clock()
        for a, b, m in zip(copies[:-1], copies[1:], matches):
            SweepAligner._gain(a, b, m, w)
        spent["_gain"].append((clock() - start) / len(matches))
    load = open("/proc/loadavg").read().split()[0] if sys.platform.startswith("linux") else "?"
    print(f"{args.stack}: {len(greys)} frames of {w}x{h}, medians of {args.passes} passes, load {load}")
    print(" | ".join(f"{name} {1000 * float(np.median(v)):.2f} ms" for name, v in spent.items()))


if __name__ == "__main__":
    main()
