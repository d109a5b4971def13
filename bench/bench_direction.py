"""The sweep direction measured on every real stack (docs/depth-and-aperture.md, "Sweep direction, seventh session").

For each stack in ``../shared/data``: pass 1 (:func:`postfocus.pipeline.analyse.analyse`), then
:func:`postfocus.focus.direction.direction_of` on its maps and guide (as the pipeline calls it), with its CPU
time, and the same maps with the frame order mirrored (the answer must mirror). ``--check`` also runs the
forward-model check on a stack folder made with the measured order and with the order stated the other way
(``order=``), to see which one the frames contradict less.

Usage::

    PYTHONPATH=src python bench/bench_direction.py [--data ../shared/data] [--stacks ring,pcb_depthmap]
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
from postfocus.focus.direction import direction_of
from postfocus.io.open import open_source
from postfocus.pipeline.analyse import analyse

STACKS = ("ring", "pcb", "pcb_depthmap", "beetle", "keyboard", "algae", "keyboard_sweep.mp4")


def _row(name: str, data: Path) -> None:
    maps_and_guide = analyse(open_source(data / name))
    maps = maps_and_guide.maps
    start = time.process_time()
    d = direction_of(maps, maps_and_guide.guide)
    cpu = time.process_time() - start
    used = maps.used
    mirrored = dataclasses.replace(maps, focus_index=(used[-1] + used[0] - maps.focus_index).astype(np.float32),
                                   volume=maps.volume[::-1])
    r = direction_of(mirrored, maps_and_guide.guide)
    answer = ("measured " if d.measured else "assumed ") + ("near to far" if d.near_to_far else "far to near")
    print(f"{name:20s} {answer:22s} leans {'near to far' if d.leans_near_to_far else 'far to near':12s} "
          f"confidence {d.confidence:.4f} agreement {d.agreement:.3f} pieces {d.pieces} "
          f"(effective {d.effective_pieces:.1f}) edges {d.edges} cpu {cpu:.2f} s | mirrored leans "
          f"{'near to far' if r.leans_near_to_far else 'far to near'} {r.confidence:.4f} {r.agreement:.3f}",
          flush=True)


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
    ap.add_argument("--check", action="store_true", help="Also the forward-model check with each order.")
    ap.add_argument("--cache", type=Path, default=None, help="Stack folders for --check (default: a temporary one).")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    for name in args.stacks.split(","):
        _row(name, args.data)
        if args.check:
            with tempfile.TemporaryDirectory() as tmp:
                _check(name, args.data, args.cache or Path(tmp))


if __name__ == "__main__":
    main()
