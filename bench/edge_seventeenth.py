"""Occlusion edges of the focus index against the true outline, sixteenth session (edge17; docs/quality.md).

In-process on the halo bench's renders (``bench/halo_fifth.py``: 480x720, 10 frames, seed 1, JPEG q95 read
back, 8-bit). For each focus-index map it prints the signed distance (px) of the map's occlusion edges from the
true outline (median and p90; positive: the near index reaches past the near object's outline onto the far
surface), the share of the 9 px halo band more than 1.5 frames off the truth, and the halo score (near / far
side) and PSNR of the default fusion, of ``restore=True`` with the fall-off's blur growth (``defocus_slope``: the
maps without their guide), and of ``restore=True`` as the library runs it since the seventeenth session (solver18:
the growth read against the maps' guide, ``blur_growth``, which halo5 and edge17 patched in), with its CPU time.

Maps: the default; ``sides=True``; ``outline=True`` (:mod:`postfocus.focus.near_outline`); both; an *edge oracle*
(the default map with every pixel within ``ORACLE_BAND`` px of a true occlusion edge that lies on the wrong side
of it, nearer to the other side's true depth than to its own, set to its true depth: the edge moved to the truth,
the rest of the estimate kept); the true depth.

Usage: ``PYTHONPATH=src python bench/edge_seventeenth.py --scenes grass pins steps occluder [--maps default
outline=True ...]`` (a minute or two a scene; ``--maps`` picks rows by their label, default all).
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402

JUMP = 1.5  # frames: an index step between neighbours that is an occlusion edge, not a slope
ORACLE_BAND = 16  # px


def true_sides(depth: np.ndarray, reach: int = ORACLE_BAND) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(near, far, nearest, farthest): pixels within ``reach`` of a true occlusion edge on its near / far side, and
    the nearest / farthest true depth within ``reach``."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    lo = cv2.erode(depth, disc)
    hi = cv2.dilate(depth, disc)
    step = (hi - lo) > JUMP
    near = step & (depth - lo < hi - depth)
    return near, step & ~near, lo, hi


def signed_edge_distance(index: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Signed distance (px) from the true outline of every near-side pixel of the map's occlusion edges near a
    true one: positive outside the true near object (onto the far surface), negative inside it."""
    d = depth.astype(np.float32)
    k3 = np.ones((3, 3), np.uint8)
    tedge = (cv2.dilate(d, k3) - d) > JUMP  # true near-side edge pixels
    # the true near object: pixels within JUMP / 2 of the nearest true depth within ORACLE_BAND px
    lo = cv2.erode(d, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ORACLE_BAND + 1,) * 2))
    true_near = (d - lo) < JUMP / 2
    outside = cv2.distanceTransform((~true_near).astype(np.uint8), cv2.DIST_L2, 5)  # >0 off the near object
    inside = cv2.distanceTransform(true_near.astype(np.uint8), cv2.DIST_L2, 5)
    signed = np.where(true_near, 0.5 - inside, outside - 0.5)
    mi = index.astype(np.float32)
    medge = (cv2.dilate(mi, k3) - mi) > JUMP
    close = cv2.distanceTransform((~tedge).astype(np.uint8), cv2.DIST_L2, 5) <= ORACLE_BAND
    return signed[medge & close]


def edge_oracle(index: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``index`` with the pixels near a true occlusion edge that lie on the wrong side of it set to the truth."""
    d = depth.astype(np.float32)
    near, far, lo, hi = true_sides(d)
    said_near = np.abs(index - lo) < np.abs(index - hi)
    wrong = (near & ~said_near) | (far & said_near)
    return np.where(wrong, d, index).astype(np.float32)


def maps_of(st, analysis, volume, wanted=None) -> list[tuple[str, object]]:  # noqa: ANN001
    maps, guide = analysis.maps, analysis.guide
    out = [("default", maps)]
    variants = [("sides=True", dict(sides=True))]
    variants += [("outline=True", dict(outline=True)), ("sides=True, outline=True", dict(sides=True, outline=True))]
    for label, kw in variants:
        t = time.process_time()
        index, conf = focus_index_map(volume, guide, **kw)
        print(f"({label}: map {time.process_time() - t:.2f} s CPU)", flush=True)
        out.append((label, dataclasses.replace(maps, focus_index=index)))
    depth = st.depth.astype(np.float32)
    out.append(("edge oracle", dataclasses.replace(maps, focus_index=edge_oracle(maps.focus_index, depth))))
    out.append(("true depth", dataclasses.replace(maps, focus_index=depth, confidence=np.ones_like(maps.confidence))))
    return [(label, m) for label, m in out if not wanted or label in wanted]


def main() -> None:
    wanted = [a for a in sys.argv[sys.argv.index("--maps") + 1:]] if "--maps" in sys.argv else None
    if wanted:
        del sys.argv[sys.argv.index("--maps"):]
    print("| scene | map | edge px median / p90 | band off | fused halo (near / far), PSNR | restore, fall-off growth | "
          "restore (guide's growth) | CPU s fused / restore |\n|---|---|---|---|---|---|---|---|")
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        assert maps.focus_index.shape == st.depth.shape, (maps.focus_index.shape, st.depth.shape)
        print(f"({name}: growth read against the guide {growth:.3f} px a frame)", flush=True)
        for label, m in maps_of(st, analysis, maps.volume, wanted):
            s = signed_edge_distance(m.focus_index, st.depth)
            q = np.percentile(s, [50, 90]) if s.size else (np.nan, np.nan)
            off = float((np.abs(m.focus_index - st.depth)[truth.box] > 1.5)[truth.band].mean())
            cells, cpu = [], []
            for kw, guide in ((dict(), True), (dict(restore=True), False), (dict(restore=True), True)):
                mm = m if guide else dataclasses.replace(m, guide=None)
                t = time.process_time()
                image = fuse(source, dataclasses.replace(mm, blur_slope=None), alignment=analysis.alignment,
                             threads=1, **kw)
                cpu.append(time.process_time() - t)
                h, n, f, p = scored(st, truth, image)
                cells.append(f"{h:.2f} ({n:.2f} / {f:.2f}), {p:.2f}")
            print(f"| {name} | {label} | {q[0]:.1f} / {q[1]:.1f} | {off:.3f} | " + " | ".join(cells)
                  + f" | {cpu[0]:.2f} / {cpu[2]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
