"""Halo experiments of the seventh session (docs/quality.md, "Fifth step, seventh session").

In-process on the benchmark's own renders (``bench_quality.render``: ``grass`` and ``pins`` at 480x720, 10
frames, 12 px blur, handheld camera, seed 1, written as JPEG q95 and read back), fused by
:func:`postfocus.pipeline.merge.fuse` and rounded to 8 bits like the command's PNG. For each variant of the
focus-index map (the default; depth edges moved onto the guide's outlines at fusion time,
:func:`postfocus.focus.edges.snap_to_outlines`, within ``reach`` px of a depth step; the sided map of
:func:`postfocus.focus.sides.occlusion_sides`; the true depth) it prints the halo score, its near and far side
(the band's pixels whose true depth is more than a frame nearer than the farthest within 4 px, and the rest), the
PSNR, the share of the band's pixels whose index is more than 1.5 frames off, and the CPU time the variant's map
took. ``restore`` rows solve the matting equation with the blur growth read against the guide
(:func:`postfocus.fuse.occlusion.blur_growth`, patched in for ``defocus_slope``: the library does not wire it).

Usage: ``PYTHONPATH=src python bench/halo_fifth.py [--scenes grass pins]`` (about 3 minutes a scene).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import Truth, render  # noqa: E402
from metrics import halo_score  # noqa: E402

from postfocus.focus.edges import snap_to_outlines  # noqa: E402
from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.fuse.occlusion import blur_growth  # noqa: E402
from postfocus.io.open import open_source  # noqa: E402
from postfocus.pipeline.analyse import analyse  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402
from postfocus.synth import write_stack  # noqa: E402


def scored(st, truth: Truth, image: np.ndarray) -> tuple[float, float, float, float]:  # noqa: ANN001
    """(halo, near side, far side, PSNR) of ``image``, rounded to 8 bits first."""
    image = (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)
    depth = st.depth.astype(np.float32)
    farthest = cv2.dilate(depth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    near = ((farthest - depth) > 1.0)[truth.box] & truth.band
    row = truth.score(image, reference_free_too=False)
    a = image[truth.box]
    return row["halo"], halo_score(a, truth.sharp, near), halo_score(a, truth.sharp, truth.band & ~near), row["psnr"]


def variants(st, analysis) -> list[tuple[str, np.ndarray, float]]:  # noqa: ANN001
    """(label, focus index, CPU seconds to make it) of every map tried."""
    maps, guide = analysis.maps, analysis.guide
    out = [("default map", maps.focus_index, 0.0)]

    def timed(label: str, make) -> None:  # noqa: ANN001
        t = time.process_time()
        index = make()
        out.append((label, index, time.process_time() - t))

    for reach in (4, 8, 12):
        timed(f"default, snapped at fusion (reach {reach})",
              lambda r=reach: snap_to_outlines(maps.focus_index, guide, maps.confidence, reach=r, jump=1.0, sigma_r=0.05))
    timed("sided (occlusion_sides)", lambda: focus_index_map(maps.volume, guide, sides=True)[0])
    sided = out[-1][1]
    for reach in (4, 8):
        timed(f"sided, snapped (reach {reach})",
              lambda r=reach: snap_to_outlines(sided, guide, maps.confidence, reach=r, jump=1.0, sigma_r=0.05))
    out.append(("true depth", st.depth.astype(np.float32), 0.0))
    return out


def scenes(names: list[str]):  # noqa: ANN201
    """Per scene: (name, stack, truth, source of its JPEG frames, analysis, blur growth read against the guide)."""
    for name in names:
        st = render(name, 10, 1)
        with tempfile.TemporaryDirectory() as work:
            source = open_source([str(p) for p in write_stack(st, Path(work), fmt="jpg", quality=95)])
            analysis = analyse(source)
            maps = analysis.maps
            yield name, st, Truth(st), source, analysis, blur_growth(maps.volume, analysis.guide, maps.focus_index,
                                                                       maps.confidence)


def scenes_from_args(doc: str):  # noqa: ANN201
    """:func:`scenes` of the command line's ``--scenes`` (default grass and pins), ``doc``'s first line its help."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=["grass", "pins"])
    return scenes(parser.parse_args().scenes)


def main() -> None:
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        print(f"{name}: blur growth read against the guide {growth:.3f} px a frame")
        print("| map | wrong in band | map CPU s | halo (near / far), PSNR | with restore |")
        print("|---|---|---|---|---|")
        for label, index, seconds in variants(st, analysis):
            conf = np.ones_like(maps.confidence) if label == "true depth" else maps.confidence
            m = dataclasses.replace(maps, focus_index=index, confidence=conf)
            wrong = float((np.abs(index - st.depth)[truth.box] > 1.5)[truth.band].mean())
            plain = scored(st, truth, fuse(source, m, alignment=analysis.alignment))
            with mock.patch("postfocus.pipeline.merge.defocus_slope", lambda *a, **k: growth):
                solved = scored(st, truth, fuse(source, m, alignment=analysis.alignment, restore=True))
            cells = [f"{h:.2f} ({n:.2f} / {f:.2f}), {p:.2f}" for h, n, f, p in (plain, solved)]
            print(f"| {label} | {wrong:.3f} | {seconds:.2f} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
