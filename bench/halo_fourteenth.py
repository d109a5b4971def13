"""The residual-driven choice between the depth-map and pyramid results as library code (sixteenth session, halo14).

docs/quality.md, "Halos at occlusion edges, sixteenth session (halo14)". In-process on the halo bench's renders
(``bench/halo_fifth.py``: 480x720, 10 frames, 12 px blur, seed 1, JPEG q95 read back, 8-bit), per scene: the
default fusion, the pyramid, and :func:`postfocus.pipeline.checked.fuse_checked` (the check only over the box
where the two differ, the clipped-light guard's radius the stack's blur growth times its span of frames) at
``sigma`` 2 px and margins 0 / 0.2. Prints halo (near / far side), PSNR, CPU s (``time.process_time``, one thread),
the pyramid's share, the guard's share and reach, the box's share.

Usage: ``PYTHONPATH=src python bench/halo_fourteenth.py --scenes grass pins steps occluder`` (a few minutes a scene).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

from postfocus.pipeline.checked import fuse_checked  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402


def main() -> None:
    print("| scene | variant | halo (near / far) | PSNR | CPU s | pyramid on | guard | box |\n|---|---|---|---|---|---|---|---|")
    for name, st, truth, source, analysis, _ in scenes_from_args(__doc__):
        maps, common = analysis.maps, dict(alignment=analysis.alignment, threads=1)
        rows = []
        for label, make in (("default", lambda: fuse(source, maps, **common)),
                            ("pyramid", lambda: fuse(source, maps, method="pyramid", **common)),
                            ("checked, margin 0", lambda: fuse_checked(source, maps, **common)),
                            ("checked, margin 0.2", lambda: fuse_checked(source, maps, margin=0.2, **common))):
            t = time.process_time()
            out = make()
            cpu = time.process_time() - t
            extra = ["", "", ""]
            if not hasattr(out, "shape"):
                h, w = out.weight.shape
                b = out.box
                extra = [f"{float((out.weight > 0.5).mean()):.1%}", f"{float(out.guard.mean()):.1%}",
                         f"{(b[2] - b[0]) * (b[3] - b[1]) / (h * w):.0%}"]
                out = out.image
            hh, n, f, p = scored(st, truth, out)
            print(f"| {name} | {label} | {hh:.2f} ({n:.2f} / {f:.2f}) | {p:.2f} | {cpu:.2f} | " + " | ".join(extra) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
