"""How the tile refinement's Lucas-Kanade steps go on a real stack, and what a lower step cap does to the matrices.

Captures the working-size grey frames the aligner receives in one run of ``postfocus stack`` (as
``bench/bench_pair_costs.py`` does), then, one thread, for every neighbour pair (``match_pair``):

* per step of ``tiles._iterate``: the tiles still in the arrays (the converged ones leave in batches, see
  :data:`~postfocus.align.tiles.CONVERGED_PX`) and those whose step was clipped at 1 px (a tile outside the
  range where its linearisation holds; counted before a stopped tile's step is set to 0);
* for each ``--iterations`` cap: ``match_pair``'s CPU a pair (``time.thread_time``, median of ``--passes``) and
  how far each pair's matrix moves the frame's corners (px, working size) against the default cap of 8;
* with the default cap: how far the tiles' shifts lie from the model fitted to them (median over a round's
  tiles, px) and how far each round's correction moved the corners: tiles that agree with each other lie a
  small fraction of a pixel from the fit.

A cap whose corner differences are far below the alignment's own error would be a speed change to consider
(with ``bench_align.py``, ``bench_quality.py`` and ``bench_depth.py`` before and after); large differences
say the tiles had not settled when the cap stopped them.

    python bench/bench_tile_steps.py ../shared/data/pcb --iterations 6 5
    python bench/bench_tile_steps.py ../shared/data/beetle --iterations 5 4 --passes 3
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pair_costs import one_thread_greys  # noqa: E402

__all__: list[str] = []


def _matches(pyramids: list, iterations: int, passes: int) -> tuple[np.ndarray, float, list[tuple[float, float]]]:
    """Every neighbour pair's matrix with the tiles capped at ``iterations`` steps, the CPU a pair (s), and per
    refinement round the median distance (px) of the tiles' shifts from the model fitted to them and how far
    that round's correction moved the corners (px)."""
    from postfocus.align import pair

    shifts, fit = pair.tile_shifts, pair.fit_model
    rounds: list[tuple[float, float]] = []

    def fitted(points, targets, model, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        matrix = fit(points, targets, model, *a, **k)
        if matrix is not None and len(points):
            apart = np.hypot(*(cv2.perspectiveTransform(points[None], matrix)[0] - targets).T)
            h, w = pyramids[0].shape
            corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
            rounds.append((float(np.median(apart)),
                           float(np.abs(cv2.perspectiveTransform(corners, matrix) - corners).max())))
        return matrix

    pair.tile_shifts = lambda *a, **k: shifts(*a, iterations=iterations, **k)
    pair.fit_model = fitted
    try:
        spent, matrices = [], None
        for _ in range(passes):
            rounds.clear()
            start = time.thread_time()
            found = [pair.match_pair(a, b) for a, b in zip(pyramids[:-1], pyramids[1:])]
            spent.append((time.thread_time() - start) / len(found))
            matrices = np.stack([m.matrix for m in found])
    finally:
        pair.tile_shifts, pair.fit_model = shifts, fit
    return matrices, float(np.median(spent)), list(rounds)


def _steps(pyramids: list) -> dict[int, np.ndarray]:
    """Per step number: tiles in the arrays and those clipped at 1 px (summed over every pair's rounds).

    Reads ``_iterate``'s clipped steps through a stand-in for NumPy in :mod:`postfocus.align.tiles` alone
    (its ``np.clip`` of the (n, 2) steps; everything else is NumPy's own).
    """
    from postfocus.align import pair, tiles

    counts: dict[int, np.ndarray] = collections.defaultdict(lambda: np.zeros(2, int))
    seen: list[int] = []

    class Watched:
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(np, name)

        @staticmethod
        def clip(values, low, high, out=None):  # noqa: ANN001, ANN205
            result = np.clip(values, low, high, out=out)
            if values.ndim == 2 and values.shape[1] == 2 and high == 1.0:
                counts[len(seen)] += (len(values), int(np.count_nonzero(np.abs(result).max(axis=1) >= 1.0)))
                seen.append(len(values))
            return result

    iterate = tiles._iterate

    def watched(*a, **k):  # noqa: ANN002, ANN003, ANN202
        seen.clear()
        return iterate(*a, **k)

    tiles._iterate, tiles.np = watched, Watched()
    try:
        for a, b in zip(pyramids[:-1], pyramids[1:]):
            pair.match_pair(a, b)
    finally:
        tiles._iterate, tiles.np = iterate, np
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="a folder of frames")
    parser.add_argument("--iterations", type=int, nargs="*", default=[6, 5], help="step caps compared with 8")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    from postfocus.align.pair import prepare_frame

    greys = one_thread_greys(args.stack)
    h, w = greys[0].shape
    pyramids = [prepare_frame(g) for g in greys]
    load = open("/proc/loadavg").read().split()[0] if sys.platform.startswith("linux") else "?"
    print(f"{args.stack}: {len(greys)} frames of {w}x{h}, load {load}")
    print("step | tiles in the arrays | clipped at 1 px")
    for step, (live, clipped) in sorted(_steps(pyramids).items()):
        print(f"{step} | {live} | {clipped} ({100 * clipped / max(live, 1):.1f} %)")
    corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
    base, spent, rounds = _matches(pyramids, 8, args.passes)
    apart, moved = np.array(rounds).T if rounds else (np.zeros(1), np.zeros(1))
    print(f"cap 8: match_pair {1000 * spent:.1f} ms a pair; {len(rounds)} tile rounds in {len(base)} pairs; median "
          f"distance of the tiles' shifts from the fitted model {np.min(apart):.2f}-{np.max(apart):.2f} px (median "
          f"{np.median(apart):.2f}); the rounds' corrections moved the corners "
          f"{np.min(moved):.2f}-{np.max(moved):.2f} px")
    for cap in args.iterations:
        matrices, spent, _ = _matches(pyramids, cap, args.passes)
        moved = [float(np.abs(cv2.perspectiveTransform(corners, m) - cv2.perspectiveTransform(corners, b)).max())
                 for m, b in zip(matrices, base)]
        print(f"cap {cap}: match_pair {1000 * spent:.1f} ms a pair; corners against cap 8: "
              f"largest {max(moved):.3f} px, mean {np.mean(moved):.3f} px over {len(moved)} pairs")


if __name__ == "__main__":
    main()
