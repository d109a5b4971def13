"""Halo experiments of the seventh session, sixth step (docs/quality.md, "Sixth step, seventh session").

In-process on the benchmark's own renders as ``bench/halo_fifth.py`` (``grass`` and ``pins`` at 480x720, 10
frames, 12 px blur, handheld camera, seed 1, JPEG q95 read back; 8-bit): the background solver (``restore``,
the blur growth read against the guide patched in for ``defocus_slope``) with and without the clipped
highlights' light recovered from the defocused frames (:mod:`postfocus.fuse.clipped`), on the default map,
the sided map (:func:`postfocus.focus.sides.occlusion_sides`) and the true depth. Prints halo (near side /
far side), PSNR and the fusion's process time.

Usage: ``PYTHONPATH=src python bench/halo_sixth.py [--scenes grass pins]``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

from postfocus.focus.map import focus_index_map  # noqa: E402
from postfocus.fuse.restore import BoxSolver as _Restore  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402


def main() -> None:
    for name, st, truth, source, analysis, growth in scenes_from_args(__doc__):
        maps = analysis.maps
        print(f"{name}: blur growth {growth:.3f} px a frame")
        print("| map | fused | restore | restore + clipped light |")
        print("|---|---|---|---|")
        for label, index in (("default map", maps.focus_index),
                             ("sided", focus_index_map(maps.volume, analysis.guide, sides=True)[0]),
                             ("true depth", st.depth.astype(np.float32))):
            conf = np.ones_like(maps.confidence) if label == "true depth" else maps.confidence
            m = dataclasses.replace(maps, focus_index=index, confidence=conf)
            cells = []
            for restore, recover in ((False, False), (True, False), (True, True)):
                with mock.patch("postfocus.pipeline.merge.defocus_slope", lambda *a, **k: growth), \
                     mock.patch.object(_Restore, "RECOVER", recover):
                    t = time.process_time()
                    image = fuse(source, m, alignment=analysis.alignment, restore=restore)
                    cpu = time.process_time() - t
                h, n, f, p = scored(st, truth, image)
                cells.append(f"{h:.2f} ({n:.2f} / {f:.2f}), {p:.2f} [{cpu:.2f} s]")
            print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
