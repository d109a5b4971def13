"""The residual-driven choice between the depth-map and pyramid results as library code (sixteenth session, halo14).

docs/quality.md, "Halos at occlusion edges, sixteenth session (halo14)". In-process on the halo bench's renders
(``bench/halo_fifth.py``: 480x720, 10 frames, 12 px blur, seed 1, JPEG q95 read back, 8-bit), per scene: the
default fusion, the pyramid, and :func:`postfocus.pipeline.checked.fuse_checked` (the check only over the box
where the two differ, the clipped-light guard's radius the stack's blur growth times its span of frames) at
``sigma`` 2 px and margins 0 / 0.2, and with no clipped-light guard (``clipped_frames=255``: what the check
alone chooses near clipped light; seventeenth session, clip15). Prints halo (near / far side), PSNR, CPU s (``time.process_time``, one thread),
the pyramid's share, the guard's share and reach, the box's share.

``--real pcb keyboard`` also fuses the real stacks (uncropped reference geometry) and writes 100 % PNG crops
into ``HALO_OUT`` (default /tmp/halo14): ``halo14-<stack>.png``, default | pyramid | checked choice | the pyramid's
share (white: pyramid, red: the clipped-light guard), in the command's output pixels as halo13's crops.

Usage: ``PYTHONPATH=src python bench/halo_fourteenth.py --scenes grass pins steps occluder [--real pcb keyboard]``
(a few minutes a scene).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from halo_fifth import scenes_from_args, scored  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from postfocus.pipeline.checked import fuse_checked  # noqa: E402
from postfocus.pipeline.merge import fuse  # noqa: E402


def real(name: str) -> None:
    """Fuse a real stack three ways, print the CPU times and write the crop strip (halo13's boxes)."""
    from postfocus.io.open import open_source
    from postfocus.pipeline.analyse import analyse
    boxes = {"pcb": ((1380, 740, 1560, 900), (25, 18)), "keyboard": ((1580, 620, 1760, 800), (10, 20))}
    (x0, y0, x1, y1), (top, left) = boxes[name]
    source = open_source([f"/work/wt/shared/data/{name}"])
    t = time.process_time()
    analysis = analyse(source, threads=1)
    print(f"{name}: analyse {time.process_time() - t:.1f} s CPU", flush=True)
    maps, common = analysis.maps, dict(alignment=analysis.alignment, threads=1)
    images = {}
    for label, make in (("default", lambda: fuse(source, maps, **common)),
                        ("pyramid", lambda: fuse(source, maps, method="pyramid", **common)),
                        ("checked", lambda: fuse_checked(source, maps, **common))):
        t = time.process_time()
        images[label] = make()
        print(f"{name}: {label} {time.process_time() - t:.1f} s CPU", flush=True)
    choice = images["checked"]
    images["checked"] = choice.image
    cut = (slice(y0 + top, y1 + top), slice(x0 + left, x1 + left))
    h, w = choice.weight.shape
    b = choice.box
    print(f"{name}: pyramid on {float((choice.weight > 0.5).mean()):.1%} of the picture, "
          f"{float((choice.weight[cut] > 0.5).mean()):.1%} of the crop; guard {float(choice.guard.mean()):.2%}; "
          f"box {(b[2] - b[0]) * (b[3] - b[1]) / (h * w):.0%}", flush=True)
    crops = [cv2.cvtColor(np.round(np.clip(images[k][cut], 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
             for k in ("default", "pyramid", "checked")]
    share = np.repeat(np.round(choice.weight[cut] * 255).astype(np.uint8)[..., None], 3, axis=2)
    share[choice.guard[cut]] = (0, 0, 160)
    crops.append(share)
    sep = np.full((crops[0].shape[0], 3, 3), 255, np.uint8)
    dest = Path(os.environ.get("HALO_OUT", "/tmp/halo14"))
    dest.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest / f"halo14-{name}.png"), np.hstack([x for c in crops for x in (c, sep)][:-1]),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> None:
    if "--real" in sys.argv:
        names = sys.argv[sys.argv.index("--real") + 1:]
        sys.argv = sys.argv[:sys.argv.index("--real")]
        for name in names:
            real(name)
        if "--scenes" not in sys.argv:
            return
    print("| scene | variant | halo (near / far) | PSNR | CPU s | pyramid on | guard | box |\n|---|---|---|---|---|---|---|---|")
    for name, st, truth, source, analysis, _ in scenes_from_args(__doc__):
        maps, common = analysis.maps, dict(alignment=analysis.alignment, threads=1)
        rows = []
        for label, make in (("default", lambda: fuse(source, maps, **common)),
                            ("pyramid", lambda: fuse(source, maps, method="pyramid", **common)),
                            ("checked, margin 0", lambda: fuse_checked(source, maps, **common)),
                            ("checked, margin 0.2", lambda: fuse_checked(source, maps, margin=0.2, **common)),
                            ("checked, no guard", lambda: fuse_checked(source, maps, clipped_frames=255, **common))):
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
