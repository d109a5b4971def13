"""The sweep direction measured on every real stack (docs/depth-and-aperture.md, "Sweep direction, seventh session").

For each stack in ``../shared/data``: pass 1 (:func:`postfocus.pipeline.analyse.analyse`), then
:func:`postfocus.focus.direction.direction_of` on its maps and guide with the frames read (as the pipeline calls
it; its CPU time), the same with the frame order mirrored (the answer must mirror), and the analysis-size
measurement alone (the first step, kept for videos the pipeline does not hold decoded). ``--check`` also runs the
forward-model check on a stack folder made with the measured order and with the order stated the other way
(``order=``), to see which one the frames contradict less.

Usage::

    PYTHONPATH=src python bench/bench_direction.py [--data ../shared/data] [--stacks ring,pcb_depthmap] [--frames 12]
    PYTHONPATH=src python bench/bench_direction.py --stacks pcb_depthmap --check [--cache DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from postfocus import process
from postfocus.check import forward_check
from postfocus.focus.direction import FRAMES, direction_of
from postfocus.io.open import open_source
from postfocus.pipeline.analyse import analyse

STACKS = ("ring", "pcb", "pcb_depthmap", "beetle", "keyboard", "algae", "keyboard_sweep.mp4")


def _row(name: str, data: Path, frames: int) -> None:
    source = open_source(data / name)
    analysis = analyse(source)
    maps, guide, alignment = analysis.maps, analysis.guide, analysis.alignment
    start = time.process_time()
    old = direction_of(maps, guide)  # the analysis size only (the first step; a video the pipeline does not keep)
    cpu_old = time.process_time() - start
    start = time.process_time()
    d = direction_of(maps, guide, read=source.read_pixels, alignment=alignment, most_frames=frames)  # as the pipeline
    cpu = time.process_time() - start
    used = maps.used
    last = used[-1] + used[0]
    mirrored = dataclasses.replace(maps, focus_index=(last - maps.focus_index).astype(np.float32),
                                   volume=maps.volume[::-1])
    flipped = [alignment[last - i] for i in range(len(alignment))] if alignment is not None else None
    r = direction_of(mirrored, guide, read=lambda i: source.read_pixels(last - i), alignment=flipped,
                     most_frames=frames)

    def way(near: bool) -> str:
        return "near to far" if near else "far to near"

    answer = ("measured " if d.measured else "assumed ") + way(d.near_to_far)
    print(f"{name:20s} {answer:22s} leans {way(d.leans_near_to_far):12s} confidence {d.confidence:.4f} "
          f"agreement {d.agreement:.3f} pieces {d.pieces} (effective {d.effective_pieces:.1f}) edges {d.edges} "
          f"cpu {cpu:.2f} s | mirrored: {'measured' if r.measured else 'assumed'}, leans "
          f"{way(r.leans_near_to_far)} {r.confidence:.4f} {r.agreement:.3f} | analysis size only: leans "
          f"{way(old.leans_near_to_far)} {old.confidence:.4f} {old.agreement:.3f} cpu {cpu_old:.2f} s", flush=True)


def _check(name: str, data: Path, cache: Path) -> None:
    for order in ("auto", "near-to-far", "far-to-near"):
        ps = process(data / name, cache_dir=cache, order=order)
        s = forward_check(ps).summary
        regions = "; ".join(f"{g['x']},{g['y']} {g['width']}x{g['height']}: {g['mean']}" for g in s["regions"][:3])
        print(f"{name} order {order:12s} near_to_far {ps.near_to_far!s:5s} flagged {100 * s['flagged']:.2f} % "
              f"p99 {s['p99']:.2f} contradicted {100 * s['contradicted']:.2f} % | {regions}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--stacks", default=",".join(STACKS), help="Comma-separated stack names.")
    ap.add_argument("--frames", type=int, default=FRAMES, help="At most this many frames read (default %(default)s).")
    ap.add_argument("--check", action="store_true", help="Also the forward-model check with each order.")
    ap.add_argument("--cache", type=Path, default=None, help="Stack folders for --check (default: a temporary one).")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    for name in args.stacks.split(","):
        _row(name, args.data, args.frames)
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                _check(name, args.data, args.cache or Path(tmp))


if __name__ == "__main__":
    main()
